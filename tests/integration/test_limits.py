"""Issue 3: time limits (hard, soft, per message), resource limits and
worker recycling, against a running celeriacd."""

import datetime
import re
import time

import pytest
from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from conftest import poll, proc_cmdline, proc_stat


def _title(pid):
    return proc_cmdline(pid)


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[2] != "Z"


def log_time(line_prefix_match):
    """The wall-clock time of a log line 'YYYY-MM-DD HH:MM:SS.mmm ...'."""
    return datetime.datetime.strptime(line_prefix_match,
                                      "%Y-%m-%d %H:%M:%S.%f").timestamp()


GRANDCHILD = """\
#!/bin/sh
cat >/dev/null
sleep 300 &
echo $! > {pidfile}.tmp
mv {pidfile}.tmp {pidfile}
sleep 300
"""


@pytest.fixture
def limited(celeriacd, write_script, tmp_path):
    gc = write_script("grandchild.sh", GRANDCHILD.format(
        pidfile=tmp_path / "grandchild.pid"))
    return celeriacd(config={
        "queues": {
            "celery": {"concurrency": 1, "time_limit": "2s"},
            "soft": {"concurrency": 1, "soft_time_limit": "1s",
                     "time_limit": "5s"},
            "other": {"concurrency": 1, "soft_time_limit": "20s",
                      "time_limit": "30s"},
            "ext": {"concurrency": 1},
        },
        "tasks": {"ext.grandchild": {"run": [gc], "queue": "ext",
                                     "time_limit": "1s"}},
    })


def test_hard_limit_kills_spin_and_replaces_slot(limited, celery_app):
    d = limited
    before = {p for p in d.workers() if "celery#0" in _title(p)}
    assert len(before) == 1
    t0 = time.monotonic()
    res = celery_app.send_task("celeriac.spin", queue="celery")
    with pytest.raises(TimeLimitExceeded) as e:
        res.get(timeout=10)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, "TimeLimitExceeded after %.3fs" % elapsed
    assert elapsed >= 2.0, "killed early, after %.3fs" % elapsed
    assert res.status == "FAILURE"
    assert float(e.value.args[0]) == pytest.approx(2.0)
    # The slot has a new worker, which serves.
    after = poll(lambda: {p for p in d.workers()
                          if "celery#0" in _title(p)} - before, 5,
                 what="a new celery#0 worker")
    assert len(after) == 1
    assert not any(alive(p) for p in before)
    assert celery_app.send_task("celeriac.echo", args=[1],
                                queue="celery").get(timeout=10) == {
        "args": [1], "kwargs": {}}
    # How late was the kill?  Between the worker's "received" line and the
    # master's kill line (both wall-clock, ms).
    log = d.log_text()
    m1 = re.search(r"^(\S+ \S+) .*task celeriac\.spin\[%s\] received"
                   % res.id, log, re.M)
    m2 = re.search(r"^(\S+ \S+) .*celeriac\.spin\[%s\] over its hard time "
                   r"limit" % res.id, log, re.M)
    assert m1 and m2, log
    late = log_time(m2.group(1)) - log_time(m1.group(1)) - 2.0
    print("hard limit enforced %.0f ms after the limit" % (late * 1000))
    assert -0.02 <= late <= 0.05, late


def test_hard_limit_kills_external_grandchild(limited, celery_app, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    res = celery_app.send_task("ext.grandchild", queue="ext")
    gpid = int(poll(lambda: pidfile.exists() and pidfile.read_text().strip(),
                    5, what="the grandchild's pid"))
    assert alive(gpid)
    with pytest.raises(TimeLimitExceeded):
        res.get(timeout=10)
    poll(lambda: not alive(gpid), 2,
         what="grandchild %d to die with its worker" % gpid)


def test_soft_limit_seen_by_builtin(limited, celery_app):
    d = limited
    before = {p for p in d.workers() if "soft#0" in _title(p)}
    t0 = time.monotonic()
    res = celery_app.send_task("celeriac.sleep", args=[10], queue="soft")
    with pytest.raises(SoftTimeLimitExceeded):
        res.get(timeout=10)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 2.5, elapsed
    assert res.status == "FAILURE"
    # The worker survived: same pid, still serving.
    assert celery_app.send_task("celeriac.noop",
                                queue="soft").get(timeout=10) is None
    assert {p for p in d.workers() if "soft#0" in _title(p)} == before


def test_message_limits_override_config(limited, celery_app):
    # Queue "other" has soft 20s / hard 30s; the message asks for less.
    t0 = time.monotonic()
    res = celery_app.send_task("celeriac.spin", queue="other", time_limit=1)
    with pytest.raises(TimeLimitExceeded):
        res.get(timeout=10)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 2.0, elapsed

    t0 = time.monotonic()
    res = celery_app.send_task("celeriac.sleep", args=[10], queue="other",
                               soft_time_limit=0.5, time_limit=5)
    with pytest.raises(SoftTimeLimitExceeded):
        res.get(timeout=10)
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 1.5, elapsed

    # And a message may ask for more than its queue: celery's 2s limit
    # does not kill a 2.5s sleep that allows itself 4s.
    res = celery_app.send_task("celeriac.sleep", args=[2.5], queue="celery",
                               time_limit=4)
    assert res.get(timeout=10) == 2.5


def test_address_space_limit(celeriacd, celery_app):
    d = celeriacd(config={"queues": {"celery": {
        "concurrency": 1, "limits": {"address_space": "256M"}}}})
    worker = d.workers()
    res = celery_app.send_task("celeriac.alloc", args=[2147483648],
                               queue="celery")
    with pytest.raises(MemoryError):
        res.get(timeout=10)
    assert res.status == "FAILURE"
    # The queue keeps serving, with the same worker, and small
    # allocations still work.
    assert celery_app.send_task("celeriac.alloc", args=[1048576],
                                queue="celery").get(timeout=10) == 1048576
    assert d.workers() == worker
    with open("/proc/%d/limits" % next(iter(worker))) as f:
        line = [x for x in f if x.startswith("Max address space")][0]
    assert line.split()[3] == str(256 * 1024 * 1024), line


def test_max_tasks_per_child_recycles(celeriacd, celery_app):
    d = celeriacd(config={"queues": {"celery": {
        "concurrency": 1, "max_tasks_per_child": 10}}})
    # wait_ready ran one noop already.
    (first,) = d.workers()
    for i in range(8):
        assert celery_app.send_task("celeriac.echo", args=[i],
                                    queue="celery").get(timeout=10)
    assert d.workers() == {first}, "recycled before 10 tasks"
    # 10 + up to 10% jitter = at most 11 tasks.
    for i in range(2):
        celery_app.send_task("celeriac.noop", queue="celery").get(timeout=10)
    new = poll(lambda: (w := d.workers()) and first not in w and w, 5,
               what="worker %d to be recycled" % first)
    assert len(new) == 1
    assert re.search(r"worker celery#0 \(pid %d\) recycled" % first,
                     d.log_text())
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=10) is None


FDS = r'''
import json, os, sys
req = json.load(sys.stdin)
fds = []
for fd in range(0, 1024):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
json.dump({"fds": fds, "pgrp_is_worker": os.getpgrp() == os.getppid()},
          sys.stdout)
'''


def test_external_program_inherits_only_stdio(celeriacd, celery_app,
                                              write_script):
    from conftest import PYTHON
    prog = write_script("fds.py", FDS)
    celeriacd(config={"tasks": {"ext.fds": {"run": [PYTHON, prog],
                                            "queue": "celery"}}})
    res = celery_app.send_task("ext.fds", queue="celery")
    # Only stdin, stdout, stderr; and it runs in its worker's process
    # group (so the hard limit's killpg reaches it).
    assert res.get(timeout=10) == {"fds": [0, 1, 2], "pgrp_is_worker": True}
