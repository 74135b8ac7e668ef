"""Issue 4: delivery without loss -- recovery of a killed worker's
message, dead-host recovery, ETA (across a restart), expiry, revoke,
result TTLs, and a Redis restart while a task runs."""

import datetime
import json
import os
import re
import signal
import time

import pytest
from billiard.exceptions import WorkerLostError
from celery.exceptions import TaskRevokedError

from conftest import make_celery_app, close_celery_app, poll, proc_cmdline

HOST = "h9test"


def meta(r, task_id):
    raw = r.get("celery-task-meta-" + task_id)
    return json.loads(raw) if raw else None


def done(r, task_id):
    m = meta(r, task_id)
    return m if m and m["status"] in ("SUCCESS", "FAILURE", "REVOKED") else None


def busy_worker(d, queue="celery"):
    """Pid of the worker of queue whose title says busy."""
    def find():
        for p in d.children():
            if re.match(r"celeriacd: worker %s#\d+ busy" % queue,
                        proc_cmdline(p)):
                return p
    return poll(find, 5, what="a busy %s worker" % queue)


def runs(d, task_id):
    """How many times a worker started the task (debug log)."""
    return len(re.findall(r"task \S+\[%s\] received" % task_id, d.log_text()))


def date_done(m):
    t = datetime.datetime.fromisoformat(m["date_done"])
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


# ---------------------------------------------------- killed worker

@pytest.mark.parametrize("acks_late", [True, False])
def test_killed_worker_message(celeriacd, celery_app, r, acks_late):
    d = celeriacd(config={"hostname": HOST, "queues": {"celery": {
        "concurrency": 1, "acks_late": acks_late}}})
    res = celery_app.send_task("celeriac.sleep", args=[1], queue="celery")
    plist = "celeriac.processing.%s.celery.0" % HOST
    poll(lambda: r.llen(plist) == 1, 5, what="the message in " + plist)
    raw = r.lindex(plist, 0)
    assert json.loads(raw)["headers"]["id"] == res.id
    os.kill(busy_worker(d), signal.SIGKILL)
    if acks_late:
        assert res.get(timeout=10) == 1
        assert res.status == "SUCCESS"
        assert runs(d, res.id) == 2
        assert re.search(r"re-queueing celeriac\.sleep\[%s\] left by a dead "
                         r"worker" % res.id, d.log_text())
    else:
        with pytest.raises(WorkerLostError) as e:
            res.get(timeout=10)
        assert "signal 9 (SIGKILL)" in str(e.value)
        assert runs(d, res.id) == 1
    poll(lambda: r.llen(plist) == 0, 5, what=plist + " to be emptied")
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=5) is None


# ------------------------------------------------------- dead host

@pytest.mark.parametrize("acks_late", [True, False])
def test_dead_host_recovery(celeriacd, celery_app, r, acks_late):
    # A message a worker of host "deadhost" was running when that host
    # died: no heartbeat key, its list still registered.
    res = celery_app.send_task("celeriac.echo", args=["orphan"],
                               queue="celery")
    dead_list = "celeriac.processing.deadhost.celery.0"
    assert r.rpoplpush("celery", dead_list)
    r.hset("celeriac.processing", dead_list, "deadhost")
    assert not r.exists("celeriac.host.deadhost")
    t0 = time.monotonic()
    d = celeriacd(config={"hostname": HOST, "queues": {"celery": {
        "concurrency": 1, "acks_late": acks_late}}})
    if acks_late:
        assert res.get(timeout=10) == {"args": ["orphan"], "kwargs": {}}
        assert runs(d, res.id) == 1
    else:
        with pytest.raises(WorkerLostError) as e:
            res.get(timeout=10)
        print("dead host's task failed with: %r" % e.value)
        assert runs(d, res.id) == 0
    print("dead host's message handled after %.2fs"
          % (time.monotonic() - t0))
    assert r.llen(dead_list) == 0
    assert re.search(r"host deadhost is gone", d.log_text())
    poll(lambda: not r.hexists("celeriac.processing", dead_list), 10,
         what="the dead list to be forgotten")
    assert r.hget("celeriac.processing",
                  "celeriac.processing.%s.celery.0" % HOST) == HOST


def test_live_host_is_not_recovered(celeriacd, celery_app, r):
    """A list of another host whose heartbeat is fresh is left alone (seen
    in the same recovery pass that takes a dead host's message)."""
    live = celery_app.send_task("celeriac.echo", args=["live"],
                                queue="celery")
    dead = celery_app.send_task("celeriac.echo", args=["dead"],
                                queue="celery")
    for host, res in (("livehost", live), ("deadhost", dead)):
        lst = "celeriac.processing.%s.celery.0" % host
        assert r.rpoplpush("celery", lst)
        r.hset("celeriac.processing", lst, host)
    r.set("celeriac.host.livehost", "{}", px=60000)
    celeriacd(config={"hostname": HOST, "queues": {"celery": {
        "acks_late": True}}})
    assert dead.get(timeout=10) == {"args": ["dead"], "kwargs": {}}
    assert r.llen("celeriac.processing.livehost.celery.0") == 1
    assert r.hget("celeriac.processing",
                  "celeriac.processing.livehost.celery.0") == "livehost"
    assert not live.ready()


# -------------------------------------------------------------- ETA

def test_eta_runs_on_time(celeriacd, celery_app, r):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 2}}})
    sent = []
    for cd in (2, 1, 1.5):
        t = time.time()
        sent.append((celery_app.send_task("celeriac.echo", args=[cd],
                                          queue="celery", countdown=cd),
                     cd, t + cd))
    # In Redis, not in a worker's memory.
    poll(lambda: r.zcard("celeriac.eta") == 3, 2, what="3 in celeriac.eta")
    assert not r.keys("celeriac.processing.*.celery.*") or all(
        r.llen(k) == 0 for k in r.keys("celeriac.processing.*.celery.*"))
    for res, cd, due in sent:
        assert res.get(timeout=5) == {"args": [cd], "kwargs": {}}
        late = date_done(meta(r, res.id)) - due
        print("eta task %s ran %+.0f ms from its time" % (res.id[:8],
                                                          late * 1000))
        assert -0.2 <= late <= 0.2, late
    d.assert_running()


def test_eta_survives_restart(celeriacd, celery_app, r):
    d = celeriacd()
    t = time.time()
    res = celery_app.send_task("celeriac.echo", args=["later"],
                               queue="celery", countdown=2)
    due = t + 2
    poll(lambda: r.zcard("celeriac.eta") == 1, 2, what="the eta set")
    d.signal(signal.SIGTERM)
    assert d.wait(5) == 0
    assert not res.ready()
    assert time.time() < due - 0.5, "restart too slow for the test"
    d2 = celeriacd(name="again")
    assert time.time() < due, "restart too slow for the test"
    assert res.get(timeout=5) == {"args": ["later"], "kwargs": {}}
    late = date_done(meta(r, res.id)) - due
    print("eta task ran %+.0f ms from its time after a restart"
          % (late * 1000))
    assert -0.2 <= late <= 0.2, late
    assert runs(d2, res.id) == 1 and runs(d, res.id) == 0


# ------------------------------------------------------ expires, revoke

def test_expired_message_is_revoked(celeriacd, celery_app, r):
    celeriacd()
    past = datetime.datetime.now(datetime.timezone.utc) - \
        datetime.timedelta(seconds=5)
    res = celery_app.send_task("celeriac.fail", args=["must not run"],
                               queue="celery", expires=past)
    with pytest.raises(TaskRevokedError):
        res.get(timeout=5)
    assert res.status == "REVOKED"
    assert meta(r, res.id)["result"]["exc_message"] == ["expired"]
    # expires in the future: it runs.
    ok = celery_app.send_task("celeriac.echo", args=[1], queue="celery",
                              expires=60)
    assert ok.get(timeout=5) == {"args": [1], "kwargs": {}}


def test_revoke_before_start(celeriacd, celery_app, r):
    d = celeriacd()
    # Keep the only worker busy, queue the victim behind it, revoke it.
    blocker = celery_app.send_task("celeriac.sleep", args=[1],
                                   queue="celery")
    busy_worker(d)
    victim = celery_app.send_task("celeriac.echo", args=["no"],
                                  queue="celery")
    p = d.celeriac("revoke", victim.id)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "revoked %s" % victim.id
    assert r.zscore("celeriac.revoked", victim.id)
    with pytest.raises(TaskRevokedError):
        victim.get(timeout=5)
    assert victim.status == "REVOKED"
    assert blocker.get(timeout=5) == 1
    assert runs(d, victim.id) == 0
    # A worker started later skips it too.
    again_id = victim.id
    r.delete("celery-task-meta-" + again_id)
    d.signal(signal.SIGTERM)
    d.wait(5)
    d2 = celeriacd(name="again")
    again = celery_app.send_task("celeriac.echo", args=["no"],
                                 queue="celery", task_id=again_id)
    with pytest.raises(TaskRevokedError):
        again.get(timeout=5)
    assert runs(d2, again_id) == 0


@pytest.mark.parametrize("how", ["celeriac", "celeriac-kill", "celery"])
def test_revoke_terminate_running(celeriacd, celery_app, r, how):
    d = celeriacd()
    res = celery_app.send_task("celeriac.sleep", args=[30], queue="celery")
    victim = busy_worker(d)
    t0 = time.monotonic()
    if how == "celeriac":
        p = d.celeriac("revoke", res.id, "--terminate")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "revoked %s (terminating)" % res.id
    elif how == "celeriac-kill":
        p = d.celeriac("revoke", res.id, "--terminate", "--signal", "KILL")
        assert p.returncode == 0, p.stderr
    else:
        celery_app.control.revoke(res.id, terminate=True)
    with pytest.raises(TaskRevokedError):
        res.get(timeout=10)
    assert time.monotonic() - t0 < 3
    m = meta(r, res.id)
    assert m["status"] == "REVOKED"
    assert m["result"]["exc_message"] == ["terminated"]
    poll(lambda: victim not in d.children(), 2, what="the worker to die")
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=5) is None


# ------------------------------------------------------- result TTL

def test_result_ttl(celeriacd, celery_app, r):
    d = celeriacd()
    res = celery_app.send_task("celeriac.echo", queue="celery")
    res.get(timeout=5)
    assert 86390 <= r.ttl("celery-task-meta-" + res.id) <= 86400
    failed = celery_app.send_task("celeriac.fail", args=["x"],
                                  queue="celery")
    with pytest.raises(RuntimeError):
        failed.get(timeout=5)
    assert 86390 <= r.ttl("celery-task-meta-" + failed.id) <= 86400
    d.signal(signal.SIGTERM)
    d.wait(5)
    celeriacd(config={"result_expires": "1h"}, name="short")
    res = celery_app.send_task("celeriac.echo", queue="celery")
    res.get(timeout=5)
    assert 3590 <= r.ttl("celery-task-meta-" + res.id) <= 3600


def test_result_expires_zero_keeps_forever(celeriacd, celery_app, r):
    celeriacd(config={"result_expires": 0})
    res = celery_app.send_task("celeriac.echo", queue="celery")
    res.get(timeout=5)
    assert r.ttl("celery-task-meta-" + res.id) == -1


# --------------------------------------------------- Redis outage

def test_redis_restart_while_task_runs(redis_server, celeriacd_at):
    srv = redis_server()
    d = celeriacd_at(srv.url, config={
        "hostname": HOST,
        "queues": {"celery": {"concurrency": 1},
                   "other": {"concurrency": 1}}})
    workers = d.workers()
    c = srv.client()
    app = d.app
    res = app.send_task("celeriac.sleep", args=[1.5], queue="celery")
    plist = "celeriac.processing.%s.celery.0" % HOST
    poll(lambda: c.llen(plist) == 1, 5, what="the task to start")
    t0 = time.monotonic()
    srv.stop(signal.SIGTERM)
    # The outage outlasts the task: it ends while Redis is away.
    time.sleep(2.5)
    srv.start()
    c = srv.client()
    m = poll(lambda: done(c, res.id), 15, interval=0.1,
             what="the result stored after Redis came back")
    print("result stored %.2fs after the outage began"
          % (time.monotonic() - t0))
    assert m["status"] == "SUCCESS" and m["result"] == 1.5
    assert c.llen(plist) == 0
    # Nobody died, and both queues keep consuming.
    assert d.workers() == workers
    d.assert_running()
    app2 = make_celery_app(srv.url)
    try:
        for q in ("celery", "other", "celery"):
            x = app2.send_task("celeriac.echo", args=[q], queue=q)
            m = poll(lambda: done(c, x.id), 10, what="echo on " + q)
            assert m["result"] == {"args": [q], "kwargs": {}}
    finally:
        close_celery_app(app2)
    assert re.search(r"cannot store the result of %s|broker error after "
                     r"task %s" % (res.id, res.id), d.log_text())
