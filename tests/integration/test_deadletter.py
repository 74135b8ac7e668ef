"""Malformed and refused messages go to celeriac.dead; the worker keeps
serving, and a result is stored when the task id can be read."""

import json

import pytest
from kombu.exceptions import ContentDisallowed

from conftest import FIXTURES, dead_letters, new_id, poll


def envelope(task_id, **changes):
    """task-priority-0.json re-addressed to the `celery` queue with a new
    id, then changed by the keyword arguments (top-level keys)."""
    env = json.loads((FIXTURES / "task-priority-0.json").read_text())
    env["headers"]["id"] = task_id
    env["headers"]["root_id"] = task_id
    env["headers"]["task"] = "celeriac.echo"
    env["properties"]["correlation_id"] = task_id
    env["properties"]["delivery_info"]["routing_key"] = "celery"
    env["properties"]["delivery_tag"] = new_id()
    env.update(changes)
    return json.dumps(env)


@pytest.fixture
def daemon(celeriacd):
    return celeriacd(config={"queues": {"celery": {"concurrency": 1}}})


def push_and_wait_dead(r, raw):
    r.lpush("celery", raw)
    dead = poll(lambda: dead_letters(r), 10, what="a celeriac.dead entry")
    assert len(dead) == 1, dead
    d = dead[0]
    assert d["queue"] == "celery"
    assert isinstance(d["reason"], str) and d["reason"].strip()
    assert d["message"] == raw
    assert isinstance(d["time"], (int, float)) and d["time"] > 1.6e9
    assert d["id"]
    return d


def still_serving(daemon, celery_app, workers_before):
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=10) is None
    # Bad input is not a reason to die.
    assert daemon.workers() == workers_before
    assert daemon.running()


def test_not_json(daemon, celery_app, r):
    workers = daemon.workers()
    d = push_and_wait_dead(r, "this is {not json at all")
    assert d["task_id"] is None
    still_serving(daemon, celery_app, workers)


def test_bad_base64_body(daemon, celery_app, r):
    workers = daemon.workers()
    tid = new_id()
    raw = envelope(tid, body="%%% not base64 !!!")
    d = push_and_wait_dead(r, raw)
    assert d["task_id"] == tid
    still_serving(daemon, celery_app, workers)
    with pytest.raises(Exception) as e:
        celery_app.AsyncResult(tid).get(timeout=10)
    assert type(e.value).__name__ == "MalformedMessage", repr(e.value)


def test_pickle_content_refused(daemon, celery_app, r):
    workers = daemon.workers()
    tid = new_id()
    raw = envelope(tid, **{"content-type": "application/x-python-serialize"})
    d = push_and_wait_dead(r, raw)
    assert d["task_id"] == tid
    still_serving(daemon, celery_app, workers)
    with pytest.raises(ContentDisallowed):
        celery_app.AsyncResult(tid).get(timeout=10)


def test_dead_letters_newest_first(daemon, celery_app, r):
    r.lpush("celery", "garbage one")
    r.lpush("celery", "garbage two")
    poll(lambda: r.llen("celeriac.dead") == 2, 10, what="two dead letters")
    raw = r.lrange("celeriac.dead", 0, -1)
    assert [json.loads(x)["message"] for x in raw] == ["garbage two",
                                                        "garbage one"]
    assert r.llen("celery") == 0
