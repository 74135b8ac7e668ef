"""The celeriac command line, and tools/demo."""

import json
import os
import re
import subprocess

import pytest

from conftest import SRCDIR, BUILDDIR, clean_env, free_port, poll

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                  r"[0-9a-f]{12}$")


@pytest.fixture
def daemon(celeriacd):
    return celeriacd(config={
        "queues": {"celery": {"concurrency": 1},
                   "reports": {"concurrency": 1, "priority": 5}},
        "tasks": {"reports.generate_dummy_report": {
            "run": "builtin:reports.dummy", "queue": "reports"}},
    })


def test_send_wait_prints_result(daemon):
    p = daemon.celeriac("send", "celeriac.echo", "--args", "[1,2]",
                        "--kwargs", '{"k": "ünï"}', "--wait")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"args": [1, 2], "kwargs": {"k": "ünï"}}


def test_send_routes_by_configured_queue(daemon, r):
    p = daemon.celeriac("send", "reports.generate_dummy_report",
                        "--args", '["r-1"]', "--wait", "--timeout", "10")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"report_id": "r-1"}


def test_send_then_result(daemon):
    p = daemon.celeriac("send", "celeriac.echo", "--args", '["later"]')
    assert p.returncode == 0, p.stderr
    task_id = p.stdout.strip()
    assert UUID.match(task_id), p.stdout

    def succeeded():
        q = daemon.celeriac("result", task_id)
        if q.returncode != 0:
            return None
        meta = json.loads(q.stdout)
        return meta if meta["status"] == "SUCCESS" else None
    meta = poll(succeeded, 10, interval=0.1, what="celeriac result SUCCESS")
    assert meta["task_id"] == task_id
    assert meta["result"] == {"args": ["later"], "kwargs": {}}


def test_send_is_readable_by_celery(daemon, celery_app):
    p = daemon.celeriac("send", "celeriac.echo", "--args", '["x"]',
                        "--queue", "reports", "--priority", "9")
    assert p.returncode == 0, p.stderr
    res = celery_app.AsyncResult(p.stdout.strip())
    assert res.get(timeout=10) == {"args": ["x"], "kwargs": {}}


def test_result_unknown_id(daemon):
    p = daemon.celeriac("result", "00000000-0000-4000-8000-00000000dead")
    assert p.returncode == 1
    assert "no result for 00000000-0000-4000-8000-00000000dead" in p.stderr


def test_send_wait_failure(daemon):
    p = daemon.celeriac("send", "celeriac.fail", "--args", '["it broke"]',
                        "--wait", "--timeout", "10")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "RuntimeError: it broke" in p.stderr
    assert p.stdout.strip() == ""


def test_send_wait_timeout(celeriacd):
    # celeriacd is not running: nobody answers.
    d = celeriacd(start=False)
    p = d.celeriac("send", "celeriac.noop", "--wait", "--timeout", "1")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert re.search(r"timeout waiting for [0-9a-f-]{36}", p.stderr), p.stderr


def test_run_inline_without_broker(celeriacd):
    closed = "redis://127.0.0.1:%d/0" % free_port()
    d = celeriacd(start=False, config={"broker": closed,
                                       "result_backend": closed})
    p = d.celeriac("run", "celeriac.echo", "--args", '["x"]', timeout=10)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"args": ["x"], "kwargs": {}}

    p = d.celeriac("run", "celeriac.fail", "--args", '["inline"]', timeout=10)
    assert p.returncode == 1
    assert "RuntimeError: inline" in p.stderr

    p = d.celeriac("run", "celeriac.sleep", "--kwargs", '{"seconds": 0.1}',
                   timeout=10)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == 0.1


def test_demo_once():
    demo = SRCDIR / "tools" / "demo"
    assert os.access(demo, os.X_OK), demo
    p = subprocess.run([str(demo), "--once", "--no-deps"],
                       capture_output=True, text=True, timeout=180,
                       stdin=subprocess.DEVNULL,
                       env=clean_env({"CELERIAC_BUILDDIR": str(BUILDDIR)}))
    assert p.returncode == 0, p.stdout + p.stderr
    # The report sample printed its result, the failing one its exception.
    assert re.search(r'"report_id"\s*:\s*"demo-1"', p.stdout), p.stdout
    assert "RuntimeError: this one fails on purpose" in p.stdout, p.stdout
    assert "(exit 1)" in p.stdout
