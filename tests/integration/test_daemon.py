"""Issue 3: daemon conventions -- -d reports start-up through its exit
status, the pidfile is locked, `celeriac stop`, process titles."""

import os
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import (binary, clean_env, poll, proc_cmdline, proc_stat,
                      queue_lists, to_yaml)


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[2] != "Z"


def daemon_config(tmp_path, redis_url, **extra):
    cfg = {
        "broker": redis_url,
        "result_backend": redis_url,
        "shutdown_timeout": "5s",
        "pidfile": str(tmp_path / "celeriacd.pid"),
        "log": {"file": str(tmp_path / "daemon.log"), "level": "debug"},
        "queues": {"celery": {"concurrency": 1}},
    }
    cfg.update(extra)
    path = tmp_path / "daemon.yml"
    path.write_text(to_yaml(cfg) + "\n")
    return path


def launch(path, stderr):
    return subprocess.run([binary("celeriacd"), "-d", "-c", str(path)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=stderr, env=clean_env(), timeout=20)


def celeriac(path, *args, timeout=30):
    return subprocess.run([binary("celeriac"), "-c", str(path)] + list(args),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=clean_env())


def read_pid(path):
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


@pytest.fixture
def reaper(tmp_path):
    """Kills, at teardown, any daemon a failed test left behind."""
    pidfile = tmp_path / "celeriacd.pid"
    yield pidfile
    pid = read_pid(pidfile)
    if pid and alive(pid) and "celeriacd" in proc_cmdline(pid):
        os.kill(pid, signal.SIGQUIT)
        poll(lambda: not alive(pid), 10, what="the leftover daemon to exit")


def test_daemon_bad_config_exits_1(tmp_path, redis_url, r):
    path = daemon_config(tmp_path, redis_url,
                         queues={"celery": {"concurrency": 1,
                                            "concurency": 2}})
    with open(tmp_path / "launch.err", "w+") as err:
        p = launch(path, err)
        err.seek(0)
        text = err.read()
    assert p.returncode == 1, text
    assert "queues.celery.concurency" in text
    assert not (tmp_path / "celeriacd.pid").exists()


def test_daemon_ready_then_celeriac_stop(tmp_path, redis_url, r, reaper,
                                        celery_app):
    path = daemon_config(tmp_path, redis_url)
    t0 = time.monotonic()
    with open(tmp_path / "launch.err", "w+") as err:
        p = launch(path, err)
        err.seek(0)
        text = err.read()
    assert p.returncode == 0, text
    pid = read_pid(reaper)
    assert pid and alive(pid)
    # Ready means ready: the workers are consuming already.
    assert "ready: 1 workers" in (tmp_path / "daemon.log").read_text()
    assert celery_app.send_task("celeriac.echo", args=["d"],
                                queue="celery").get(timeout=5) == {
        "args": ["d"], "kwargs": {}}
    assert time.monotonic() - t0 < 10
    assert proc_cmdline(pid) == "celeriacd: master -c %s" % path
    # The daemon is detached: its own session, not our child.
    assert os.getsid(pid) == pid
    kids = [q for q in map(int, filter(str.isdigit, os.listdir("/proc")))
            if (st := proc_stat(q)) and st[0] == pid]
    assert len(kids) == 2

    # A second celeriacd on the same pidfile is refused.
    second = subprocess.run(
        [binary("celeriacd"), "-c", str(path)], capture_output=True,
        text=True, timeout=10, stdin=subprocess.DEVNULL, env=clean_env())
    assert second.returncode == 1
    assert read_pid(reaper) == pid
    assert re.search(r"pidfile|%s" % re.escape(str(reaper)),
                     second.stderr + (tmp_path / "daemon.log").read_text())

    p = celeriac(path, "stop")
    assert p.returncode == 0, p.stderr
    assert "stopped" in p.stdout
    assert not alive(pid)
    poll(lambda: not [q for q in kids if alive(q)], 2,
         what="the children to be gone")
    assert not reaper.exists(), "pidfile left behind"
    # Now stop has nothing to stop.
    p = celeriac(path, "stop")
    assert p.returncode == 1


def test_second_foreground_daemon_refused(celeriacd, tmp_path):
    pidfile = tmp_path / "shared.pid"
    first = celeriacd(config={"pidfile": str(pidfile)})
    assert read_pid(pidfile) == first.pid
    second = celeriacd(config={"pidfile": str(pidfile)}, start=False,
                       name="second")
    second.expect_returncode = 1
    second.start(wait=False)
    assert second.wait(10) == 1
    assert re.search(r"pidfile", second.log_text()), second.log_text()
    assert read_pid(pidfile) == first.pid
    first.assert_running()
    assert len(first.workers()) == 1


def stop_reaping(d, *args):
    """Run `celeriac stop ARGS` while this process, the daemon's parent,
    reaps it as a shell or a service manager would."""
    p = subprocess.Popen([binary("celeriac"), "-c", str(d.cfg), "stop"]
                         + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=clean_env())
    rc = d.wait(15)
    out, err = p.communicate(timeout=5)
    return rc, p.returncode, out, err


def test_celeriac_stop_foreground(celeriacd, tmp_path, celery_app, r):
    d = celeriacd(config={"pidfile": str(tmp_path / "fg.pid"),
                          "shutdown_timeout": "10s"})
    res = celery_app.send_task("celeriac.sleep", args=[1], queue="celery")
    poll(lambda: not any(r.llen(k) for k in queue_lists("celery")), 5,
         what="the task to start")
    rc, stop_rc, out, err = stop_reaping(d)
    assert stop_rc == 0, err
    assert out.strip() == "celeriacd (pid %d) stopped" % d.pid
    assert rc == 0
    assert res.get(timeout=1) == 1      # warm: it finished
    assert not (tmp_path / "fg.pid").exists()


def test_celeriac_stop_cold(celeriacd, tmp_path, celery_app, r):
    d = celeriacd(config={"pidfile": str(tmp_path / "fg.pid"),
                          "shutdown_timeout": "30s"})
    res = celery_app.send_task("celeriac.sleep", args=[20], queue="celery")
    poll(lambda: not any(r.llen(k) for k in queue_lists("celery")), 5,
         what="the task to start")
    t0 = time.monotonic()
    rc, stop_rc, out, err = stop_reaping(d, "--cold")
    assert stop_rc == 0, err
    assert rc == 0
    assert time.monotonic() - t0 < 2
    assert not res.ready()


def test_celeriac_stop_does_not_wait_for_reaping(celeriacd, tmp_path):
    d = celeriacd(config={"pidfile": str(tmp_path / "z.pid"),
                          "shutdown_timeout": "1s"})
    p = subprocess.Popen([binary("celeriac"), "-c", str(d.cfg), "stop"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        # The daemon exits (a zombie until we reap it; we do not yet).
        poll(lambda: proc_stat(d.pid)[2] == "Z", 5, what="the master's exit")
        assert not (tmp_path / "z.pid").exists()
        out, err = p.communicate(timeout=3)
        assert p.returncode == 0, err
    finally:
        d.wait(5)
        p.communicate(timeout=15)


def test_daemon_releases_launchers_stderr(tmp_path, redis_url, r, reaper):
    path = daemon_config(tmp_path, redis_url)
    p = subprocess.Popen([binary("celeriacd"), "-d", "-c", str(path)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=clean_env())
    try:
        assert p.wait(20) == 0
        # Everything in the daemon has let go of the pipe: EOF.
        ready, _, _ = select.select([p.stderr], [], [], 2)
        assert ready and p.stderr.read() == b"", \
            "the daemon still holds the launcher's stderr"
    finally:
        p.stderr.close()
        celeriac(path, "stop")


def test_process_titles(celeriacd, celery_app, r):
    d = celeriacd(config={"queues": {"celery": {"concurrency": 1},
                                     "reports": {"concurrency": 2}}})
    assert proc_cmdline(d.pid) == "celeriacd: master -c %s" % d.cfg
    titles = sorted(proc_cmdline(p) for p in d.children())
    assert titles == sorted([
        "celeriacd: control",
        "celeriacd: worker celery#0 idle",
        "celeriacd: worker reports#0 idle",
        "celeriacd: worker reports#1 idle",
    ]), titles
    res = celery_app.send_task("celeriac.sleep", args=[1], queue="celery")
    busy = poll(lambda: [t for p in d.children()
                         if "busy" in (t := proc_cmdline(p))], 5,
                what="a busy title")
    assert busy == ["celeriacd: worker celery#0 busy celeriac.sleep"]
    assert res.get(timeout=5) == 1
    poll(lambda: "celeriacd: worker celery#0 idle" in
         [proc_cmdline(p) for p in d.children()], 2, what="idle again")
