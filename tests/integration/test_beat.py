"""The beat child: periodic tasks fired once per cluster.

Fires are read back from Redis: celeriac.beat.history holds one record per
fire ({"entry", "fire_time", "token", "task_id", "host", "sent_at"}),
written by the same Lua script that queues the message, so it counts what
was sent.  Entries that only need counting go to a queue nobody consumes
(concurrency 0), where the messages themselves can be checked too.
"""

import base64
import json
import os
import re
import signal
import time

from conftest import poll, proc_cmdline

LEASE = "celeriac.beat.lease"
HISTORY = "celeriac.beat.history"
LEASE_TTL = 5.0

TICK = {"task": "celeriac.noop", "every": "1s", "queue": "beatq"}
QUEUES = {"celery": {"concurrency": 1}, "beatq": {"concurrency": 0}}


def history(r, entry=None):
    """Fire records, oldest first."""
    recs = [json.loads(x) for x in reversed(r.lrange(HISTORY, 0, -1))]
    return [x for x in recs if entry is None or x["entry"] == entry]


def leader(r):
    """(host, pid, token) of the lease holder, or None."""
    v = r.get(LEASE)
    if not v:
        return None
    host, pid, token = v.rsplit(":", 2)
    return host, int(pid), int(token)


def assert_no_double(recs):
    times = [x["fire_time"] for x in recs]
    ids = [x["task_id"] for x in recs]
    doubled = sorted({t for t in times if times.count(t) > 1})
    assert not doubled, "fired twice: %s\n%s" % (doubled, recs)
    assert len(set(ids)) == len(ids), recs
    assert times == sorted(times), recs
    # every: 1s is aligned on the epoch: whole seconds.
    assert all(t == int(t) for t in times), times


def wait_until(t):
    """Let wall-clock time t pass (a measuring window, not a sync)."""
    poll(lambda: time.time() >= t, timeout=max(0.0, t - time.time()) + 5,
         interval=0.05, what="the end of the window")


def beat_pid(d):
    pids = [p for p in d.children() if "beat" in proc_cmdline(p)]
    assert len(pids) == 1, [(p, proc_cmdline(p)) for p in d.children()]
    return pids[0]


def beat_daemon(celeriacd, host, beat, name=None, queues=QUEUES):
    return celeriacd(name=name, config={
        "hostname": host, "queues": queues, "beat": beat})


def test_every_second_fires_and_runs(celeriacd, r):
    """One daemon, `every: 1s` of celeriac.echo on the celery queue: about
    one fire a second, each a Celery message its worker runs."""
    d = celeriacd(config={"hostname": "beat-one", "beat": {
        "echo": {"task": "celeriac.echo", "every": "1s",
                 "args": ["tick", 1], "kwargs": {"k": "v"}}}})
    poll(lambda: history(r, "echo"), 5, what="a first fire")
    t0 = time.time()
    wait_until(t0 + 5)
    recs = [x for x in history(r, "echo") if t0 < x["fire_time"] <= t0 + 5]
    assert 4 <= len(recs) <= 6, recs
    assert_no_double(history(r, "echo"))
    assert {x["host"] for x in recs} == {"beat-one"}
    assert "fired echo: task celeriac.echo id %s" % recs[-1]["task_id"] \
        in d.log_text()

    def results():
        out = []
        for x in recs:
            meta = r.get("celery-task-meta-%s" % x["task_id"])
            if meta is None:
                return None
            out.append(json.loads(meta))
        return out
    metas = poll(results, 10, what="the fired tasks' results")
    for m in metas:
        assert m["status"] == "SUCCESS", m
        assert m["result"] == {"args": ["tick", 1], "kwargs": {"k": "v"}}
    # The last fire, as `celeriac beat status` reads it.
    last = json.loads(r.hget("celeriac.beat.last", "echo"))
    assert last["fire_time"] >= recs[-1]["fire_time"]
    assert last["token"] == leader(r)[2]


def test_two_daemons_fire_once(celeriacd, r):
    """Two celeriacd on one Redis, a 1-second entry for 10 s: 10 fires in
    all, by the leader only, none doubled."""
    a = beat_daemon(celeriacd, "beat-a", {"tick": TICK}, name="a")
    b = beat_daemon(celeriacd, "beat-b", {"tick": TICK}, name="b")
    poll(lambda: history(r, "tick"), 5, what="a first fire")
    # Both beats run: one leads, the other follows.
    titles = sorted(proc_cmdline(beat_pid(d)) for d in (a, b))
    assert any("leader" in t for t in titles), titles
    assert any("follower" in t for t in titles), titles
    t0 = int(time.time()) + 1
    wait_until(t0 + 10.3)

    recs = [x for x in history(r, "tick") if t0 <= x["fire_time"] < t0 + 10]
    # 10 scheduled seconds; one may fold into the next if the leader
    # stalls for over a second (a loaded machine), never more fires.
    assert 9 <= len(recs) <= 10, recs
    print("fires in the 10 s window: %d" % len(recs))
    every = history(r, "tick")
    assert_no_double(every)
    assert len({x["host"] for x in every}) == 1, every
    assert len({x["token"] for x in every}) == 1, every

    # Each record is one Celery message on beatq, and nothing else is.
    ids = {x["task_id"] for x in every}
    msgs = [json.loads(m) for m in r.lrange("beatq", 0, -1)]
    assert len(msgs) >= len(every) and len(msgs) <= len(every) + 1
    for m in msgs:
        assert m["headers"]["task"] == "celeriac.noop"
        assert m["properties"]["delivery_info"]["routing_key"] == "beatq"
        body = json.loads(base64.b64decode(m["body"]))
        assert body[0] == [] and body[1] == {}
    assert ids <= {m["headers"]["id"] for m in msgs}
    assert r.smembers("_kombu.binding.beatq")


def test_leader_killed_hands_over(celeriacd, r):
    """SIGKILL the leader (master and beat child, as a crashed host: the
    lease is not released): the other takes the lease within its TTL
    and goes on firing, one catch-up fire for the gap, no double."""
    ds = {"beat-a": beat_daemon(celeriacd, "beat-a", {"tick": TICK},
                                name="a"),
          "beat-b": beat_daemon(celeriacd, "beat-b", {"tick": TICK},
                                name="b")}
    poll(lambda: len(history(r, "tick")) >= 3, 8, what="three fires")
    host, pid, token = leader(r)
    old, new = ds[host], ds["beat-b" if host == "beat-a" else "beat-a"]
    assert beat_pid(old) == pid
    old.expect_returncode = None
    os.kill(pid, signal.SIGKILL)
    os.kill(old.pid, signal.SIGKILL)
    killed = time.time()

    def taken():
        lv = leader(r)
        return lv if lv and lv[0] != host else None
    nhost, npid, ntoken = poll(taken, LEASE_TTL + 3, interval=0.02,
                               what="the lease to move")
    handover = time.time() - killed
    assert handover <= LEASE_TTL + 1.5, handover
    assert npid == beat_pid(new) and ntoken > token

    poll(lambda: len([x for x in history(r, "tick")
                      if x["token"] == ntoken]) >= 3, 5,
         what="three fires by the new leader")
    recs = history(r, "tick")
    assert_no_double(recs)
    before = [x for x in recs if x["token"] == token]
    after = [x for x in recs if x["token"] == ntoken]
    assert before and after and len(before) + len(after) == len(recs)
    assert before[-1]["fire_time"] < after[0]["fire_time"]
    # The gap folds into one catch-up fire; then one fire a second.
    times = [x["fire_time"] for x in after]
    assert times[-1] - times[0] <= len(times), times
    print("hand-over after %.2fs; gap %s..%s" % (
        handover, before[-1]["fire_time"], after[0]["fire_time"]))


def test_restart_catches_up_once_or_skips(celeriacd, r):
    """A beat stopped for a few seconds and started again: it reads the
    last fires back (no fire repeated); missed fires run once, or not at
    all with skip_missed."""
    beat = {"catchup": TICK, "skipper": dict(TICK, skip_missed=True)}
    d1 = beat_daemon(celeriacd, "beat-r", beat, name="first")
    poll(lambda: len(history(r, "skipper")) >= 2, 5, what="two fires")
    d1.stop()
    assert d1.returncode == 0
    assert r.get(LEASE) is None        # released at a clean stop
    stopped = time.time()
    old = {e: history(r, e)[-1]["fire_time"] for e in beat}
    wait_until(stopped + 2.5)
    d2 = beat_daemon(celeriacd, "beat-r", beat, name="second")
    poll(lambda: all(history(r, e)[-1]["fire_time"] >= old[e] + 5
                     for e in beat), 10, what="fires after the restart")
    for e in beat:
        recs = history(r, e)
        assert_no_double(recs)
        later = [x for x in recs if x["fire_time"] > old[e]]
        # The first fire after the restart is the latest one due then.
        assert later[0]["fire_time"] - old[e] >= 2, (old[e], later)
    assert re.search(r"catchup: catch-up: \d+ missed fire", d2.log_text())
    assert re.search(r"skipper: (skipped \d+ missed|skipping missed)",
                     d2.log_text())
    # skip_missed fires nothing late: each went out within half a period.
    for x in history(r, "skipper"):
        assert x["sent_at"] - x["fire_time"] <= 0.5 + 0.05, x


def test_beat_status(celeriacd, r):
    d = celeriacd(config={"hostname": "beat-s", "queues": QUEUES, "beat": {
        "tick": TICK,
        "nightly": {"task": "celeriac.noop", "cron": "30 2 * * *",
                    "timezone": "Europe/Paris"}}})
    poll(lambda: history(r, "tick"), 5, what="a first fire")
    res = d.celeriac("beat", "status")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    host, pid, token = leader(r)
    assert re.search(r"^leader: beat-s \(pid %d\), token %d, lease TTL "
                     r"[0-9.]+s left$" % (pid, token), out, re.M), out
    assert re.search(r"^tick: every 1s, task celeriac.noop, queue beatq$",
                     out, re.M), out
    assert re.search(r"last fire: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                     r"\(token %d, task id [0-9a-f-]{36}, host beat-s\)"
                     % token, out), out
    assert re.search(r"^nightly: cron 30 2 \* \* \* \(Europe/Paris\), "
                     r"task celeriac.noop, queue celery$", out, re.M), out
    assert re.search(r"last fire: never\n  next fire: \d{4}-\d\d-\d\d"
                     r"T02:30:00\+0[12]:00$", out, re.M), out

    d.stop()
    res = d.celeriac("beat", "status")
    assert res.returncode == 0, res.stderr
    assert "leader: none" in res.stdout, res.stdout
    res = d.celeriac("beat", "bogus")
    assert res.returncode == 2 and "usage" in res.stderr
