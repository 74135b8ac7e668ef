"""The master: respawn, warm shutdown, configuration check."""

import os
import re
import signal

from conftest import poll, proc_cmdline, proc_stat, queue_lists


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[2] != "Z"


def test_killed_worker_is_replaced(celeriacd, celery_app):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 2}}})
    before = d.workers()
    assert len(before) == 2, before
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = poll(lambda: (w := d.workers()) and victim not in w
                 and len(w) == 2 and w, 5,
                 what="a new worker in place of %d" % victim)
    assert len(after - before) == 1
    assert after - {victim} >= before - {victim}
    d.assert_running()
    results = [celery_app.send_task("celeriac.echo", args=[i], queue="celery")
               for i in range(4)]
    assert [res.get(timeout=10) for res in results] == [
        {"args": [i], "kwargs": {}} for i in range(4)]


def test_sigterm_lets_running_task_finish(celeriacd, celery_app, r):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 1}},
                          "shutdown_timeout": "20s"})
    res = celery_app.send_task("celeriac.sleep", args=[3], queue="celery")
    # The worker has taken the message: no bucket list holds it any more.
    poll(lambda: not any(r.llen(k) for k in queue_lists("celery")), 5,
         what="the worker to take celeriac.sleep")
    d.signal(signal.SIGTERM)
    assert d.wait(10) == 0
    assert res.get(timeout=1) == 3
    assert res.status == "SUCCESS"


def test_sigterm_idle_exits_zero(celeriacd):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 2},
                                     "reports": {"concurrency": 1}}})
    workers = d.workers()
    assert len(workers) == 3
    d.signal(signal.SIGTERM)
    assert d.wait(10) == 0
    # The master waits for its workers before it exits (a moment for
    # init to reap any it left behind, which the assertion then reports).
    poll(lambda: not [p for p in workers if alive(p)], 1,
         what="workers %s to be gone" % sorted(workers))


def test_config_check_ok(celeriacd):
    d = celeriacd(start=False)
    p = d.check()
    assert p.returncode == 0, p.stderr
    assert "configuration file %s test is successful" % d.cfg in p.stderr


BAD_KEY = """\
broker: redis://127.0.0.1:1/0
queues:
  celery:
    concurrency: 1
    concurency: 2
"""

BAD_BUILTIN = """\
broker: redis://127.0.0.1:1/0
queues:
  celery: {concurrency: 1}
tasks:
  x.y:
    run: builtin:nope
    queue: celery
"""


def test_config_check_typo(celeriacd, tmp_path):
    d = celeriacd(start=False)
    d.cfg.write_text(BAD_KEY)
    p = d.check()
    assert p.returncode == 1, (p.stdout, p.stderr)
    m = re.search(re.escape(str(d.cfg)) + r":(\d+):(\d+): (\S+?):", p.stderr)
    assert m, p.stderr
    assert m.group(1) == "5"
    assert m.group(3) == "queues.celery.concurency"


def test_config_check_unknown_builtin(celeriacd):
    d = celeriacd(start=False)
    d.cfg.write_text(BAD_BUILTIN)
    p = d.check()
    assert p.returncode == 1, (p.stdout, p.stderr)
    m = re.search(re.escape(str(d.cfg)) + r":(\d+):(\d+): tasks\.x\.y\.run: "
                  r'unknown built-in task "builtin:nope"', p.stderr)
    assert m, p.stderr
    assert m.group(1) == "6"


def test_bad_config_does_not_start(celeriacd):
    d = celeriacd(start=False)
    d.cfg.write_text(BAD_KEY)
    d.expect_returncode = 1
    d.start(wait=False)
    assert d.wait(10) == 1
    assert "queues.celery.concurency" in d.log_text()



def test_queues_option(celeriacd, celery_app):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 1},
                                     "reports": {"concurrency": 1}}},
                  args=["--queues", "celery=2"], start=False)
    d.config["queues"] = {"celery": {"concurrency": 2}}  # what wait_ready uses
    d.start()
    assert len(d.workers()) == 2
    # reports is not served by this run.
    res = celery_app.send_task("celeriac.noop", queue="reports")
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=10) is None
    assert not res.ready()


def test_no_beat_option(celeriacd):
    d = celeriacd(args=["--no-beat"])
    assert len(d.workers()) == 1
    assert not [p for p in d.children() if "beat" in proc_cmdline(p)]
