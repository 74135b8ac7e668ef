"""Issue 4: retries (autoretry_for, max_retries, retry_backoff, exit 75 of
an external program) and the dead-letter list with `celeriac dead`."""

import json
import re
import signal
import time

import pytest

from conftest import dead_letters, poll, to_yaml


def states_of(r, task_id, send, until=("SUCCESS", "FAILURE"), timeout=10):
    """Subscribe to the task's result channel, call send(), and return the
    list of states published until a final one."""
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("celery-task-meta-" + task_id)
    try:
        send()
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = ps.get_message(timeout=0.2)
            if not msg:
                continue
            m = json.loads(msg["data"])
            seen.append(m)
            if m["status"] in until:
                return seen
        raise AssertionError("no final state for %s within %ss; saw %s"
                             % (task_id, timeout,
                                [m["status"] for m in seen]))
    finally:
        ps.close()


COUNTER = """\
#!/bin/sh
cat >/dev/null
echo run >> {log}
n=$(wc -l < {log})
if [ "$n" -lt 2 ]; then
    echo "service unavailable, try later" >&2
    exit 75
fi
echo '{{"attempts": '$n'}}'
"""


@pytest.fixture
def daemon(celeriacd, write_script, tmp_path):
    counter = write_script("counter.sh", COUNTER.format(
        log=tmp_path / "attempts.log"))
    always75 = write_script("always75.sh", "#!/bin/sh\ncat >/dev/null\n"
                            "exit 75\n")
    return celeriacd(config={
        "queues": {"celery": {"concurrency": 1},
                   "reports": {"concurrency": 1}},
        "tasks": {
            "t.flaky": {"run": "builtin:celeriac.fail", "queue": "celery",
                        "autoretry_for": ["RuntimeError"], "max_retries": 2,
                        "retry_backoff": "100ms"},
            "t.other_error": {"run": "builtin:celeriac.fail",
                              "queue": "celery",
                              "autoretry_for": ["ValueError"],
                              "retry_backoff": "100ms"},
            "t.ext75": {"run": [counter], "queue": "celery",
                        "retry_backoff": "100ms"},
            "t.always75": {"run": [always75], "queue": "celery",
                           "max_retries": 1, "retry_backoff": "100ms"},
            "t.reports_only": {"run": "builtin:celeriac.echo",
                               "queue": "reports"},
        },
    })


def test_autoretry_then_failure_and_dead_letter(daemon, celery_app, r):
    tid = "retry-" + str(time.time())
    t0 = time.monotonic()
    seen = states_of(r, tid, lambda: celery_app.send_task(
        "t.flaky", args=["flaky"], queue="celery", task_id=tid))
    took = time.monotonic() - t0
    assert [m["status"] for m in seen] == ["RETRY", "RETRY", "FAILURE"]
    for m in seen:
        assert m["result"]["exc_type"] == "RuntimeError"
        assert m["result"]["exc_message"] == ["flaky"]
    # Back-off 100 ms x 2^n: the whole thing takes well under a second
    # (without back-off each retry would wait 180 s).
    assert took < 2.0, took
    res = celery_app.AsyncResult(tid)
    with pytest.raises(RuntimeError):
        res.get(timeout=1)
    dl = poll(lambda: dead_letters(r), 2, what="a dead letter")
    assert len(dl) == 1
    assert dl[0]["reason"] == "retries exhausted (2)"
    assert dl[0]["task_id"] == tid and dl[0]["task"] == "t.flaky"
    assert dl[0]["queue"] == "celery"
    assert json.loads(dl[0]["message"])["headers"]["retries"] == 2
    assert len(re.findall(r"task t\.flaky\[%s\] received" % re.escape(tid),
                          daemon.log_text())) == 3
    assert r.zcard("celeriac.eta") == 0


def test_other_errors_are_not_retried(daemon, celery_app, r):
    res = celery_app.send_task("t.other_error", args=["x"], queue="celery")
    with pytest.raises(RuntimeError):
        res.get(timeout=5)
    assert not dead_letters(r)


def test_external_exit_75_is_retried(daemon, celery_app, tmp_path, r):
    tid = "ext75-" + str(time.time())
    seen = states_of(r, tid, lambda: celery_app.send_task(
        "t.ext75", queue="celery", task_id=tid))
    assert [m["status"] for m in seen] == ["RETRY", "SUCCESS"]
    assert seen[-1]["result"] == {"attempts": 2}
    assert (tmp_path / "attempts.log").read_text() == "run\nrun\n"

    res = celery_app.send_task("t.always75", queue="celery")
    with pytest.raises(Exception) as e:
        res.get(timeout=5)
    assert type(e.value).__name__ == "ExternalTaskError"
    dl = poll(lambda: dead_letters(r), 2, what="a dead letter")
    assert dl[-1]["reason"] == "retries exhausted (1)"


def test_dead_list_retry_purge(daemon, celery_app, r):
    d = daemon
    # A malformed message and a refused one (task on the wrong queue).
    r.lpush("celery", "{definitely not a message")
    refused = celery_app.send_task("t.reports_only", args=["back"],
                                   queue="celery")
    with pytest.raises(Exception) as e:
        refused.get(timeout=5)
    assert type(e.value).__name__ == "QueueNotAllowed"
    poll(lambda: len(dead_letters(r)) == 2, 5, what="two dead letters")

    p = d.celeriac("dead", "list")
    assert p.returncode == 0, p.stderr
    entries = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(entries) == 2
    now = time.time()
    for e_ in entries:
        assert e_["queue"] == "celery"
        assert e_["reason"]
        assert now - 60 < e_["time"] <= now + 1
    assert entries[0]["task_id"] == refused.id       # newest first
    assert entries[1]["task_id"] is None

    # Fix the configuration, reload, then retry the refused one.
    cfg = dict(d.config)
    cfg["tasks"] = dict(cfg["tasks"])
    cfg["tasks"]["t.reports_only"] = {"run": "builtin:celeriac.echo",
                                      "queue": "celery"}
    d.cfg.write_text(to_yaml(cfg) + "\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload done", 5)
    p = d.celeriac("dead", "retry", refused.id)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "re-queued %s on celery" % refused.id

    def succeeded():
        m = r.get("celery-task-meta-" + refused.id)
        return m and json.loads(m)["status"] == "SUCCESS" and json.loads(m)
    m = poll(succeeded, 10, what="the retried task to succeed")
    assert m["result"] == {"args": ["back"], "kwargs": {}}
    left = dead_letters(r)
    assert len(left) == 1 and left[0]["task_id"] is None

    # The malformed one cannot go back.
    p = d.celeriac("dead", "retry", left[0]["id"])
    assert p.returncode == 1
    assert len(dead_letters(r)) == 1

    # purge --older-than keeps recent entries.
    old = {"id": "old-one", "time": time.time() - 7200, "queue": "celery",
           "reason": "test", "task_id": None, "task": None, "message": "x"}
    r.rpush("celeriac.dead", json.dumps(old))
    p = d.celeriac("dead", "purge", "--older-than", "1h")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "purged 1 dead letter"
    left = dead_letters(r)
    assert [x["id"] for x in left] == [left[0]["id"]] and \
        left[0]["id"] != "old-one"
    p = d.celeriac("dead", "purge")
    assert p.stdout.strip() == "purged 1 dead letter"
    assert r.llen("celeriac.dead") == 0
