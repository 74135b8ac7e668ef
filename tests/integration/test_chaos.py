"""Issue 4, the chaos test: 3,000 celeriac.echo tasks with acks_late on two
queues; while they run, a random worker is SIGKILLed every 100-300 ms and
redis-server (appendonly, appendfsync always) is killed and restarted
once.  Every task must end SUCCESS with its own arguments; none missing.
Prints the figures (tasks, kills, recoveries, duplicates, time)."""

import collections
import json
import os
import random
import re
import signal
import threading
import time

from conftest import close_celery_app, make_celery_app, proc_cmdline

N_TASKS = 3000
QUEUES = ("chaos_a", "chaos_b")
SEND_SECONDS = 15.0         # tasks are sent as a stream over this long
KILL_AFTER_SEND = 3.0       # the killing goes on this long after that
DEADLINE = 90.0             # everything done within this, from the start

# A SIGKILL is a crash: the slot is respawned after 1 s, 2 s, 4 s... (the
# count resets once a worker has been ready for 60 s).  Killing for ~18 s
# thus leaves the slots with back-offs of up to ~16 s, and the backlog is
# then served: the whole test takes about 35-45 s.


def live_workers(d):
    out = []
    for p in d.children():
        if re.match(r"celeriacd: worker chaos_[ab]#\d+ ", proc_cmdline(p)):
            out.append(p)
    return out


def test_chaos(redis_server, celeriacd_at):
    srv = redis_server(fsync="always")
    d = celeriacd_at(srv.url, config={
        "hostname": "chaos",
        "crash_limit": 0,       # kills are crashes: never park in this test
        "log": {"level": "debug"},
        "queues": {q: {"concurrency": 2, "acks_late": True}
                   for q in QUEUES},
    })
    rng = random.Random(1234)
    ids = {}                    # task id -> (index, queue)
    lock = threading.Lock()     # the sender pauses while Redis restarts
    stop = threading.Event()
    kills = []
    t_start = time.monotonic()

    def killer():
        while not stop.is_set():
            stop.wait(rng.uniform(0.1, 0.3))
            pids = live_workers(d)
            if pids and not stop.is_set():
                victim = rng.choice(pids)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass

    kt = threading.Thread(target=killer, daemon=True)
    kt.start()
    app = make_celery_app(srv.url)
    restarted_at = None
    try:
        batch = 30
        per_batch = SEND_SECONDS / (N_TASKS / batch)
        for start in range(0, N_TASKS, batch):
            t_batch = time.monotonic()
            with lock:
                for i in range(start, min(start + batch, N_TASKS)):
                    q = QUEUES[i % 2]
                    res = app.send_task("celeriac.echo",
                                        args=[i, "arg-%d" % i],
                                        kwargs={"k": i}, queue=q)
                    ids[res.id] = (i, q)
            if restarted_at is None and start >= N_TASKS * 0.4:
                # Redis dies (SIGKILL: no shutdown save) with work queued
                # and workers mid-task; back after half a second.
                with lock:
                    restarted_at = time.monotonic() - t_start
                    srv.restart(sig=signal.SIGKILL, down=0.5)
                    close_celery_app(app)
                    app = make_celery_app(srv.url)
            left = per_batch - (time.monotonic() - t_batch)
            if left > 0:
                time.sleep(left)
        t_sent = time.monotonic() - t_start

        c = srv.client()
        keys = ["celery-task-meta-" + tid for tid in ids]

        def outstanding():
            vals = c.mget(keys)
            return [tid for tid, v in zip(ids, vals)
                    if v is None or json.loads(v)["status"] != "SUCCESS"]

        missing = list(ids)
        kill_until = time.monotonic() + KILL_AFTER_SEND
        while time.monotonic() - t_start < DEADLINE:
            if time.monotonic() >= kill_until:
                stop.set()
            missing = outstanding()
            if not missing:
                break
            time.sleep(0.2)
        stop.set()
        kt.join(5)
        t_done = time.monotonic() - t_start
    finally:
        stop.set()
        close_celery_app(app)

    vals = c.mget(keys)
    wrong = []
    for tid, v in zip(ids, vals):
        i, q = ids[tid]
        m = json.loads(v) if v else None
        if (m is None or m["status"] != "SUCCESS" or m["result"] !=
                {"args": [i, "arg-%d" % i], "kwargs": {"k": i}}):
            wrong.append((tid, m and m["status"]))

    log = d.log_text()
    received = collections.Counter(re.findall(
        r"task celeriac\.echo\[([0-9a-f-]{36})\] received", log))
    dups = {tid: n for tid, n in received.items() if n > 1}
    requeued = len(re.findall(r"re-queueing celeriac\.echo\[", log))
    repairs = len(re.findall(r"broker error after task", log))
    d.assert_running()
    print("\nCHAOS: %d tasks on %d queues (acks_late, concurrency 2 each); "
          "%d workers SIGKILLed; redis-server SIGKILLed and restarted once "
          "(at %.1fs); sent over %.1fs; all done at %.1fs; %d messages "
          "re-queued from dead workers' lists; %d pipeline repairs; %d "
          "tasks ran twice or more (max %d runs); %d never started; "
          "%d missing or wrong"
          % (N_TASKS, len(QUEUES), len(kills), restarted_at or -1, t_sent,
             t_done, requeued, repairs, len(dups),
             max(dups.values() or [1]),
             N_TASKS - len(received), len(wrong)))
    assert len(ids) == N_TASKS
    assert not wrong, "%d tasks missing or wrong, e.g. %s" % (
        len(wrong), wrong[:5])
    assert len(kills) >= 12
    assert srv.restarts == 1
    # Every task ran; none ran more often than the kills can explain.
    assert set(received) == set(ids)
    assert sum(n - 1 for n in received.values()) <= len(kills)
