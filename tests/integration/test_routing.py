"""Queue validation of configured tasks, and kombu's Redis priority order."""

import json
import time

import pytest

from conftest import PYTHON, dead_letters, poll

MARK_SCRIPT = r'''
import json, sys
req = json.load(sys.stdin)
with open(sys.argv[1], "a") as f:
    f.write("%s\n" % req["args"][0])
json.dump(req["args"][0], sys.stdout)
'''


@pytest.fixture
def two_queues(celeriacd):
    return celeriacd(config={
        "queues": {
            "reports": {"concurrency": 1, "priority": 5},
            "documents": {"concurrency": 1, "priority": 7},
        },
        "tasks": {
            "reports.generate_dummy_report": {
                "run": "builtin:reports.dummy", "queue": "reports"},
        },
    })


def test_task_on_wrong_queue_is_refused(two_queues, celery_app, r):
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-1"], queue="documents")
    with pytest.raises(Exception) as e:
        res.get(timeout=10)
    assert type(e.value).__name__ == "QueueNotAllowed", repr(e.value)
    assert res.status == "FAILURE"

    dead = poll(lambda: dead_letters(r), 5, what="a dead letter")
    assert len(dead) == 1, dead
    d = dead[0]
    assert d["task_id"] == res.id
    assert d["task"] == "reports.generate_dummy_report"
    assert d["queue"] == "documents"
    assert d["reason"]
    assert isinstance(d["time"], (int, float)) and d["time"] > 1.6e9
    assert d["id"] and d["id"] != res.id
    envelope = json.loads(d["message"])
    assert envelope["headers"]["id"] == res.id


def test_task_on_its_queue_and_builtins_anywhere(two_queues, celery_app, r):
    res = celery_app.send_task("reports.generate_dummy_report",
                               args=["r-1"], queue="reports")
    assert res.get(timeout=10) == {"report_id": "r-1"}
    # celeriac.* built-ins not listed under tasks: run on any queue.
    for q in ("reports", "documents"):
        assert celery_app.send_task("celeriac.echo", args=[q],
                                    queue=q).get(timeout=10) == {
            "args": [q], "kwargs": {}}
    assert r.llen("celeriac.dead") == 0


def test_priority_order(celeriacd, celery_app, r, write_script, tmp_path):
    script = write_script("mark.py", MARK_SCRIPT)
    out = tmp_path / "order.txt"
    d = celeriacd(start=False, config={
        "queues": {"reports": {"concurrency": 1}},
        "tasks": {"order.mark": {"run": [PYTHON, script, str(out)],
                                 "queue": "reports"}},
    })
    results = []
    for p in (9, 6, 3, 0, None):
        results.append(celery_app.send_task("order.mark", args=[str(p)],
                                            queue="reports", priority=p))
    # kombu's buckets, as the client filled them.
    assert r.llen("reports") == 2
    for step in (3, 6, 9):
        assert r.llen("reports\x06\x16%d" % step) == 1

    d.start(wait=False)

    def marks():
        return out.exists() and len(out.read_text().split()) >= 5
    poll(marks, 15, what="five order.mark runs")
    assert out.read_text().split() == ["0", "None", "3", "6", "9"]
    for p, res in zip((9, 6, 3, 0, None), results):
        assert res.get(timeout=10) == str(p)


def test_priority_message_wakes_idle_worker(celeriacd, celery_app):
    """A message in a priority bucket list (reports\\x06\\x169, ...) must
    wake an idle worker at once, as kombu's BRPOP over all buckets does;
    not after the wait on the base list times out."""
    celeriacd(config={"queues": {"reports": {"concurrency": 1}}})
    for prio in (9, 6, 3, 9, 6, 3, 0):
        t0 = time.monotonic()
        res = celery_app.send_task("celeriac.echo", args=[prio],
                                   queue="reports", priority=prio)
        assert res.get(timeout=10) == {"args": [prio], "kwargs": {}}
        elapsed = time.monotonic() - t0
        assert elapsed < 0.5, "priority %d took %.2fs" % (prio, elapsed)
