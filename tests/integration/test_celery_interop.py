"""The example configuration (etc/celeriac.yml) serving a stock Celery
client: the four business queues, results as Celery writes them."""

import datetime
import json
import os
import pathlib

import pytest
from celery.exceptions import NotRegistered

from conftest import SRCDIR

# CELERIAC_EXAMPLE_CONFIG: try another file in its place.
EXAMPLE = pathlib.Path(os.environ.get("CELERIAC_EXAMPLE_CONFIG",
                                      SRCDIR / "etc" / "celeriac.yml"))
QUEUES = ("reports", "documents", "notifications", "celery")


@pytest.fixture
def example(celeriacd, services):
    if not EXAMPLE.exists():
        pytest.fail("%s does not exist" % EXAMPLE)
    env = {"REDIS_URL": services["REDIS_URL"]}
    if services.get("DATABASE_URL"):
        env["DATABASE_URL"] = services["DATABASE_URL"]
    return celeriacd(config_path=EXAMPLE, env=env)


def test_example_config_is_valid(celeriacd, services):
    d = celeriacd(config_path=EXAMPLE, start=False,
                  env={"REDIS_URL": services["REDIS_URL"]})
    p = d.check()
    assert p.returncode == 0, p.stderr
    assert set(QUEUES) <= set(d.queues())


@pytest.mark.parametrize("queue", QUEUES)
def test_each_queue_args_kwargs_priority(example, celery_app, queue):
    args = [queue, 1, 2.5, None, True, ["x", {"y": "ünï"}]]
    kwargs = {"queue": queue, "nested": {"a": [1, {"b": None}]}}
    results = [celery_app.send_task("celeriac.echo", args=args + [prio],
                                    kwargs=kwargs, queue=queue,
                                    priority=prio)
               for prio in (0, 4, 9, None)]
    for prio, res in zip((0, 4, 9, None), results):
        assert res.get(timeout=10) == {"args": args + [prio],
                                       "kwargs": kwargs}
        assert res.status == "SUCCESS"


def test_generate_dummy_report(example, celery_app):
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-1"], queue="reports")
    assert res.get(timeout=10) == {"report_id": "r-1"}
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-2"], kwargs={"job_id": "j-2"},
                               queue="reports", priority=5)
    assert res.get(timeout=10) == {"report_id": "r-2"}


def test_failures_raise_celery_exceptions(example, celery_app):
    with pytest.raises(RuntimeError) as e:
        celery_app.send_task("celeriac.fail", args=["no data"],
                             queue="celery").get(timeout=10)
    assert type(e.value) is RuntimeError and e.value.args == ("no data",)
    with pytest.raises(NotRegistered):
        celery_app.send_task("app.tasks.missing", queue="reports").get(
            timeout=10)


def test_result_value_and_ttl(example, celery_app, r):
    res = celery_app.send_task("celeriac.echo", args=["ttl"], queue="celery")
    assert res.get(timeout=10) == {"args": ["ttl"], "kwargs": {}}
    key = "celery-task-meta-" + res.id
    ttl = r.ttl(key)
    assert 86400 - 60 <= ttl <= 86400, ttl
    meta = json.loads(r.get(key))
    assert list(meta)[:5] == ["status", "result", "traceback", "children",
                              "date_done"]
    assert list(meta)[-1] == "task_id"
    assert meta["status"] == "SUCCESS"
    assert meta["task_id"] == res.id
    assert meta["traceback"] is None
    assert meta["children"] == []
    done = datetime.datetime.fromisoformat(meta["date_done"])
    assert done.tzinfo is None
    now = datetime.datetime.utcnow()
    assert abs((now - done).total_seconds()) < 60
    # What the client library makes of it.
    assert res.date_done is not None
    assert res.result == {"args": ["ttl"], "kwargs": {}}
