"""Every built-in task, and external-program tasks, through a stock Celery
client (send_task + AsyncResult.get)."""

import pytest
from billiard.exceptions import WorkerLostError
from celery.exceptions import NotRegistered

from conftest import PYTHON, poll

OK_SCRIPT = r'''
import json, sys
req = json.load(sys.stdin)
json.dump({"seen_args": req["args"], "seen_kwargs": req["kwargs"],
           "seen_id": req["id"], "sum": sum(req["args"])}, sys.stdout)
'''

FAIL_SCRIPT = r'''
import sys
sys.stdin.read()
sys.stdout.write("not the result\n")
sys.stderr.write("lots of noise before\n" * 50)
sys.stderr.write("disk on fire: cannot render page 7\n")
sys.exit(3)
'''


@pytest.fixture
def daemon(celeriacd, write_script):
    ok = write_script("ext_ok.py", OK_SCRIPT)
    bad = write_script("ext_fail.py", FAIL_SCRIPT)
    return celeriacd(config={
        "queues": {
            "celery": {"concurrency": 1},
            "reports": {"concurrency": 1, "priority": 5},
        },
        "tasks": {
            "reports.generate_dummy_report": {
                "run": "builtin:reports.dummy", "queue": "reports"},
            "ext.ok": {"run": [PYTHON, ok], "queue": "celery"},
            "ext.fail": {"run": [PYTHON, bad], "queue": "celery"},
        },
    })


def run(app, name, args=None, kwargs=None, queue="celery", timeout=10):
    return app.send_task(name, args=args, kwargs=kwargs,
                         queue=queue).get(timeout=timeout)


def test_noop(daemon, celery_app):
    res = celery_app.send_task("celeriac.noop", queue="celery")
    assert res.get(timeout=10) is None
    assert res.status == "SUCCESS"


def test_echo_args_kwargs(daemon, celery_app):
    args = [1, "two", 3.5, None, True, [1, 2, [3, {"deep": [4]}]],
            {"k": "v"}, "ünïcødé ✓ 漢字 \U0001F600", "quote\"back\\slash\n"]
    kwargs = {"report_id": 42, "format": "pdf", "tags": ["a", "b"],
              "nested": {"a": {"b": {"c": [1.25, -7, False]}}},
              "émoji": "✓", "empty": {}, "none": None}
    assert run(celery_app, "celeriac.echo", args, kwargs) == {
        "args": args, "kwargs": kwargs}


def test_echo_no_arguments(daemon, celery_app):
    assert run(celery_app, "celeriac.echo") == {"args": [], "kwargs": {}}


def test_sleep(daemon, celery_app):
    assert run(celery_app, "celeriac.sleep", [0.2]) == 0.2


def test_fail(daemon, celery_app):
    with pytest.raises(RuntimeError) as e:
        run(celery_app, "celeriac.fail", ["boom"])
    assert type(e.value) is RuntimeError
    assert e.value.args == ("boom",)


def test_unknown_task(daemon, celery_app):
    res = celery_app.send_task("no.such.task", args=[1], queue="celery")
    with pytest.raises(NotRegistered) as e:
        res.get(timeout=10)
    assert e.value.args == ("no.such.task",)
    assert res.status == "FAILURE"
    # The worker survives it.
    assert run(celery_app, "celeriac.noop") is None


@pytest.mark.parametrize("name,args,kwargs,queue", [
    ("celeriac.noop", [1], None, "celery"),
    ("celeriac.sleep", [], None, "celery"),
    ("celeriac.fail", ["x"], {"bogus": 1}, "celery"),
    ("reports.generate_dummy_report", [], None, "reports"),
    ("reports.generate_dummy_report", ["r-1", "j-1", "extra"], None,
     "reports"),
])
def test_wrong_arguments(daemon, celery_app, name, args, kwargs, queue):
    with pytest.raises(TypeError) as e:
        run(celery_app, name, args, kwargs, queue=queue)
    assert type(e.value) is TypeError
    assert str(e.value)


def test_generate_dummy_report(daemon, celery_app):
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-1"], queue="reports")
    assert res.get(timeout=10) == {"report_id": "r-1"}


def test_generate_dummy_report_job_id(daemon, celery_app):
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-2"], kwargs={"job_id": "j-9"},
                               queue="reports")
    assert res.get(timeout=10) == {"report_id": "r-2"}


def test_crash_replaces_worker(daemon, celery_app):
    before = daemon.workers()
    assert len(before) == 2, before
    res = celery_app.send_task("celeriac.crash", queue="celery")
    with pytest.raises(WorkerLostError):
        res.get(timeout=10)
    # The crashed worker was replaced by a new process; the other stayed.
    after = poll(lambda: (w := daemon.workers()) != before and len(w) == 2
                 and w, 5, what="the crashed worker to be replaced")
    assert len(after - before) == 1
    assert len(before - after) == 1
    daemon.assert_running()
    assert run(celery_app, "celeriac.echo", ["after crash"]) == {
        "args": ["after crash"], "kwargs": {}}


def test_alloc(daemon, celery_app):
    assert run(celery_app, "celeriac.alloc", [1048576]) == 1048576


def test_external_task(daemon, celery_app):
    res = celery_app.send_task("ext.ok", args=[1, 2, 39],
                               kwargs={"name": "ünï"}, queue="celery")
    assert res.get(timeout=10) == {
        "seen_args": [1, 2, 39], "seen_kwargs": {"name": "ünï"},
        "seen_id": res.id, "sum": 42}


def test_external_task_failure(daemon, celery_app):
    res = celery_app.send_task("ext.fail", args=["x"], queue="celery")
    with pytest.raises(Exception) as e:
        res.get(timeout=10)
    assert type(e.value).__name__ == "ExternalTaskError", repr(e.value)
    assert "disk on fire: cannot render page 7" in str(e.value)
    assert res.status == "FAILURE"
    # The worker that ran it is still serving.
    assert run(celery_app, "ext.ok", [1])["sum"] == 1
