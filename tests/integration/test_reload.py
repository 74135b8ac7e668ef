"""Issue 3: reload on SIGHUP (and `celeriac reload`) applies the
difference queue by queue, and refuses a broken file."""

import copy
import re
import signal

import pytest

from conftest import poll, proc_cmdline, proc_stat, queue_lists, to_yaml


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[2] != "Z"


def slots(d):
    """{"reports#1": pid, "control": pid, ...} of the master's live
    children, by their process titles (starting workers included)."""
    out = {}
    for p in d.children():
        t = proc_cmdline(p)
        m = re.match(r"celeriacd: worker (\S+#\d+) ", t)
        if m:
            out[m.group(1)] = p
        elif t.startswith("celeriacd: control"):
            out["control"] = p
    return out


BASE = {
    "queues": {
        "celery": {"concurrency": 1},
        "reports": {"concurrency": 2},
        "documents": {"concurrency": 2, "time_limit": "30s"},
    },
}


def write_config(d, config):
    cfg = copy.deepcopy(d.config)
    cfg.update(copy.deepcopy(config))
    d.cfg.write_text(to_yaml(cfg) + "\n")
    d.config = cfg


def reload_and_wait(d, what=r"reload done"):
    n = len(re.findall(what, d.log_text()))
    d.signal(signal.SIGHUP)
    poll(lambda: len(re.findall(what, d.log_text())) > n
         or (d.assert_running() and False), 10,
         what="log /%s/ after SIGHUP" % what)


@pytest.fixture
def daemon(celeriacd):
    return celeriacd(config=copy.deepcopy(BASE))


def settled(d, n):
    """The slots once n children are up and idle (titles say so)."""
    def ok():
        s = slots(d)
        if len(s) != n:
            return None
        if any(" starting" in proc_cmdline(p) for p in s.values()):
            return None
        return s
    return poll(ok, 10, what="%d settled children" % n)


def test_broken_file_changes_nothing(daemon, celery_app):
    d = daemon
    before = settled(d, 6)
    good = d.cfg.read_text()
    d.cfg.write_text(good.replace("concurrency: 2", "concurency: 3", 1))
    reload_and_wait(d, r"reload refused, configuration unchanged: "
                    + re.escape(str(d.cfg)) + r":\d+:\d+: "
                    r"queues\.\w+\.concurency")
    assert slots(d) == before
    assert "reload done" not in d.log_text()
    for q in ("celery", "reports", "documents"):
        assert celery_app.send_task("celeriac.noop",
                                    queue=q).get(timeout=10) is None
    assert slots(d) == before

    # A YAML syntax error is refused the same way.
    d.cfg.write_text("queues: [\n")
    reload_and_wait(d, r"reload refused, configuration unchanged")
    assert slots(d) == before
    d.assert_running()


def test_concurrency_up_adds_one_worker(daemon, celery_app):
    d = daemon
    before = settled(d, 6)
    write_config(d, {"queues": {
        "celery": {"concurrency": 1}, "reports": {"concurrency": 3},
        "documents": {"concurrency": 2, "time_limit": "30s"}}})
    reload_and_wait(d)
    after = settled(d, 7)
    assert set(after) - set(before) == {"reports#2"}
    for k, pid in before.items():
        assert after[k] == pid, (k, before, after)
    assert re.search(r"reload: queue reports resized \(concurrency 2 -> 3\)",
                     d.log_text())
    assert "1 queues changed, 2 unchanged" in d.log_text()
    results = [celery_app.send_task("celeriac.sleep", args=[0.3],
                                    queue="reports") for _ in range(3)]
    assert [r.get(timeout=10) for r in results] == [0.3] * 3


def test_time_limit_change_restarts_only_that_queue(daemon, celery_app):
    d = daemon
    before = settled(d, 6)
    write_config(d, {"queues": {
        "celery": {"concurrency": 1}, "reports": {"concurrency": 2},
        "documents": {"concurrency": 2, "time_limit": "1s"}}})
    reload_and_wait(d)

    def replaced():
        s = settled(d, 6)
        return all(s[k] != before[k] for k in ("documents#0",
                                               "documents#1")) and s
    after = poll(replaced, 10, what="documents workers replaced")
    for k in ("celery#0", "reports#0", "reports#1", "control"):
        assert after[k] == before[k], (k, before, after)
    assert not alive(before["documents#0"])
    assert re.search(r"reload: queue documents restarted", d.log_text())
    # The new generation has the new limit.
    from billiard.exceptions import TimeLimitExceeded
    res = celery_app.send_task("celeriac.spin", queue="documents")
    with pytest.raises(TimeLimitExceeded):
        res.get(timeout=5)


def test_removed_queue_drains(daemon, celery_app, r):
    d = daemon
    before = settled(d, 6)
    res = celery_app.send_task("celeriac.sleep", args=[1.5],
                               queue="documents")
    poll(lambda: not any(r.llen(k) for k in queue_lists("documents")), 5,
         what="a documents worker to take the task")
    write_config(d, {"queues": {"celery": {"concurrency": 1},
                                "reports": {"concurrency": 2}}})
    reload_and_wait(d)
    # The running task finishes normally; then the pool is gone.
    assert res.get(timeout=10) == 1.5
    assert res.status == "SUCCESS"
    after = poll(lambda: len(s := slots(d)) == 4 and
                 s.get("control", before["control"]) != before["control"]
                 and s, 5,
                 what="the documents workers to exit, control replaced")
    assert not any(k.startswith("documents#") for k in after)
    for k, pid in after.items():
        if k != "control":
            assert before[k] == pid, k
    # The new control child answers for the queues there are now.
    aq = poll(lambda: celery_app.control.inspect(timeout=1).active_queues(),
              10, what="an active_queues reply")
    assert {q["name"] for qs in aq.values() for q in qs} == {
        "celery", "reports"}
    assert re.search(r"reload: queue documents removed", d.log_text())
    # Nothing consumes documents any more.
    late = celery_app.send_task("celeriac.noop", queue="documents")
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=10) is None
    assert not late.ready()
    assert r.llen("documents") == 1


def test_celeriac_reload_checks_then_signals(celeriacd, tmp_path):
    d = celeriacd(config={"pidfile": str(tmp_path / "c.pid"),
                          "queues": {"celery": {"concurrency": 1}}})
    before = settled(d, 2)
    good = d.cfg.read_text()
    d.cfg.write_text(good + "bogus_key: 1\n")
    p = d.celeriac("reload")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "bogus_key" in p.stderr
    assert "SIGHUP" not in d.log_text() and "reload" not in d.log_text()
    assert slots(d) == before

    d.cfg.write_text(good.replace("concurrency: 1", "concurrency: 2"))
    p = d.celeriac("reload")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "reload signalled to celeriacd (pid %d)" % d.pid
    d.wait_log(r"reload done", 5)
    after = settled(d, 3)
    assert after["celery#0"] == before["celery#0"]
    assert after["control"] == before["control"]


def test_concurrency_down_drains_newest_slot(daemon, celery_app):
    d = daemon
    before = settled(d, 6)
    write_config(d, {"queues": {
        "celery": {"concurrency": 1}, "reports": {"concurrency": 1},
        "documents": {"concurrency": 2, "time_limit": "30s"}}})
    reload_and_wait(d)
    after = poll(lambda: len(s := slots(d)) == 5 and s, 5,
                 what="reports#1 to exit")
    assert "reports#1" not in after
    for k, pid in after.items():
        assert before[k] == pid, (k, before, after)
    assert not alive(before["reports#1"])
    assert celery_app.send_task("celeriac.noop",
                                queue="reports").get(timeout=5) is None


def test_restart_drain_past_shutdown_timeout_requeues(celeriacd, celery_app,
                                                      r):
    d = celeriacd(config={"shutdown_timeout": "1s", "hostname": "drain",
                          "queues": {"celery": {"concurrency": 1},
                                     "documents": {"concurrency": 1,
                                                   "time_limit": "30s"}}})
    before = settled(d, 3)
    res = celery_app.send_task("celeriac.sleep", args=[2.5],
                               queue="documents")
    poll(lambda: r.llen("celeriac.processing.drain.documents.0") == 1, 5,
         what="the task to start")
    write_config(d, {"queues": {"celery": {"concurrency": 1},
                                "documents": {"concurrency": 1,
                                              "time_limit": "20s"}}})
    reload_and_wait(d)
    # Killed at the drain deadline, put back on its queue (not a
    # WorkerLostError, whatever acks_late), run again by the new worker.
    d.wait_log(r"worker documents#0 \(pid %d\) still busy after "
               r"shutdown_timeout" % before["documents#0"], 5)
    assert res.get(timeout=10) == 2.5
    assert len(re.findall(r"task celeriac\.sleep\[%s\] received" % res.id,
                          d.log_text())) == 2
    after = slots(d)
    assert after["celery#0"] == before["celery#0"]
    assert after["documents#0"] != before["documents#0"]


def beat_pid(d):
    for p in d.children():
        if proc_cmdline(p).startswith("celeriacd: beat"):
            return p
    return None


def test_reload_starts_changes_and_stops_beat(daemon, r):
    """A beat section added by a reload starts the beat child, a changed
    schedule restarts it, a removed one stops it; workers keep their pids."""
    before = settled(daemon, 6)
    assert beat_pid(daemon) is None
    write_config(daemon, {"beat": {"tick": {"task": "celeriac.noop",
                                            "every": "1s"}}})
    reload_and_wait(daemon)
    first = poll(lambda: beat_pid(daemon), 5, what="a beat child")
    poll(lambda: r.hlen("celeriac.beat.last") == 1, 5,
         what="a first beat fire")
    write_config(daemon, {"beat": {"tick": {"task": "celeriac.noop",
                                            "every": "2s"}}})
    reload_and_wait(daemon)
    second = poll(lambda: (beat_pid(daemon) or first) != first and
                  beat_pid(daemon), 5, what="a new beat child")
    assert second != first
    write_config(daemon, {"beat": None})
    cfg = dict(daemon.config)
    cfg.pop("beat", None)
    daemon.cfg.write_text(to_yaml(cfg) + "\n")
    daemon.config = cfg
    reload_and_wait(daemon)
    poll(lambda: beat_pid(daemon) is None, 5, what="the beat child gone")
    after = slots(daemon)
    assert after == before, "workers and control keep their pids"
