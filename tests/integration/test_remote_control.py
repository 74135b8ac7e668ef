"""Celery's own tools against celeriacd: celery inspect / control (pidbox)
and the event stream Flower and `celery events` read (issue 6)."""

import contextlib
import datetime
import json
import subprocess
import threading
import time

import pytest

from conftest import FIXTURES, PYTHON, clean_env, poll

APP_MODULE = '''
from celery import Celery
app = Celery("rc", broker=%(url)r, backend=%(url)r)
app.conf.update(task_serializer="json", result_serializer="json",
                accept_content=["json"])

@app.task(name="py.add")
def add(x, y):
    return x + y
'''


@pytest.fixture
def app_dir(tmp_path, redis_url):
    d = tmp_path / "app"
    d.mkdir()
    (d / "rcapp.py").write_text(APP_MODULE % {"url": redis_url})
    return d


def celery_cli(app_dir, *args, timeout=30):
    """Run `python3 -m celery -A rcapp ...` as an operator would."""
    return subprocess.run(
        [PYTHON, "-m", "celery", "-A", "rcapp"] + list(args),
        cwd=str(app_dir), env=clean_env({"PYTHONPATH": str(app_dir)}),
        capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def daemon(celeriacd):
    return celeriacd(config={
        "hostname": "rc-host",
        "queues": {"celery": {"concurrency": 2},
                   "reports": {"concurrency": 1}},
        "tasks": {"reports.generate_dummy_report": {
            "run": "builtin:reports.dummy", "queue": "reports"}},
    })


def test_inspect_ping(daemon, app_dir):
    out = celery_cli(app_dir, "inspect", "ping")
    assert out.returncode == 0, out.stderr
    assert "celeriac@rc-host: OK" in out.stdout
    assert "pong" in out.stdout
    assert "1 node online." in out.stdout


def test_ping_with_destination(daemon, app_dir):
    out = celery_cli(app_dir, "inspect", "ping", "-d", "celeriac@rc-host")
    assert out.returncode == 0 and "pong" in out.stdout
    # A node that is not us gets no answer from us: Celery's exit 69.
    out = celery_cli(app_dir, "inspect", "ping", "-d", "nobody@nowhere",
                     "-t", "0.5")
    assert out.returncode == 69
    assert "No nodes replied" in (out.stdout + out.stderr)


def test_inspect_registered_lists_builtins(daemon, app_dir):
    out = celery_cli(app_dir, "inspect", "registered")
    assert out.returncode == 0, out.stderr
    for name in ("celeriac.noop", "celeriac.echo", "celeriac.sleep",
                 "reports.generate_dummy_report"):
        assert "* %s" % name in out.stdout


def test_inspect_active_shows_running_sleep(daemon, celery_app, app_dir):
    res = celery_app.send_task("celeriac.sleep", args=[6], queue="celery")
    poll(lambda: any(w["state"] == "busy" for w in status(daemon)),
         what="a busy worker")
    replies = celery_app.control.inspect(timeout=2).active()
    assert replies and "celeriac@rc-host" in replies
    active = replies["celeriac@rc-host"]
    assert [t["id"] for t in active] == [res.id]
    info = active[0]
    assert info["name"] == "celeriac.sleep"
    assert info["args"] == [6]
    assert info["worker_pid"] in daemon.workers()
    assert abs(info["time_start"] - time.time()) < 5
    out = celery_cli(app_dir, "inspect", "active")
    assert res.id in out.stdout
    assert res.get(timeout=15) == 6


def test_inspect_stats_describes_the_host(daemon, celery_app):
    for _ in range(3):
        celery_app.send_task("celeriac.noop", queue="celery").get(timeout=10)
    stats = celery_app.control.inspect(timeout=2).stats()["celeriac@rc-host"]
    assert stats["pool"]["max-concurrency"] == 3
    assert sorted(stats["pool"]["processes"]) == sorted(daemon.workers())
    assert stats["total"]["celeriac.noop"] >= 3
    assert stats["broker"]["transport"] == "redis"
    assert isinstance(stats["clock"], str)
    assert "rusage" in stats


def test_active_queues_and_conf(daemon, celery_app):
    i = celery_app.control.inspect(timeout=2)
    queues = i.active_queues()["celeriac@rc-host"]
    assert sorted(q["name"] for q in queues) == ["celery", "reports"]
    assert all(q["exchange"]["type"] == "direct" for q in queues)
    conf = i.conf()["celeriac@rc-host"]
    assert conf["accept_content"] == ["json"]
    assert not any("redis://" in json.dumps(v) for v in conf.values())


def test_scheduled_lists_eta_tasks(daemon, celery_app):
    res = celery_app.send_task("celeriac.noop", queue="celery", countdown=30)

    def scheduled():
        rep = celery_app.control.inspect(timeout=2).scheduled() or {}
        return [e for e in rep.get("celeriac@rc-host", [])
                if e["request"]["id"] == res.id]
    entry = poll(scheduled, what="the ETA task in inspect scheduled")[0]
    assert entry["eta"].startswith(time.strftime("%Y-", time.gmtime()))
    celery_app.control.revoke(res.id)


def test_unknown_command_gets_an_error_reply(daemon, celery_app):
    replies = celery_app.control.broadcast("no_such_command", reply=True,
                                           timeout=2)
    assert replies == [{"celeriac@rc-host": {
        "error": "KeyError('no_such_command')"}}]


def test_revoke_from_celery_api_before_start(daemon, celery_app):
    res = celery_app.send_task("celeriac.echo", args=["late"],
                               queue="celery", countdown=2)
    celery_app.control.revoke(res.id)
    with pytest.raises(Exception) as exc:
        res.get(timeout=10)
    assert type(exc.value).__name__ == "TaskRevokedError"
    assert res.status == "REVOKED"


def test_control_terminate_ends_running_task(daemon, celery_app, app_dir):
    res = celery_app.send_task("celeriac.sleep", args=[30], queue="celery")
    poll(lambda: any(w.get("task_id") == res.id for w in status(daemon)),
         what="the task running")
    out = celery_cli(app_dir, "control", "terminate", "SIGTERM", res.id)
    assert out.returncode == 0, out.stderr
    assert "terminate: %s" % res.id in out.stdout
    with pytest.raises(Exception):
        res.get(timeout=10)
    assert res.status == "REVOKED"
    meta = json.loads(daemon.celeriac("result", res.id).stdout)
    assert meta["result"]["exc_message"] == ["terminated"]


def test_api_revoke_terminate(daemon, celery_app):
    res = celery_app.send_task("celeriac.sleep", args=[30], queue="celery")
    poll(lambda: any(w.get("task_id") == res.id for w in status(daemon)),
         what="the task running")
    t0 = time.monotonic()
    celery_app.control.revoke(res.id, terminate=True)
    with pytest.raises(Exception):
        res.get(timeout=10)
    assert res.status == "REVOKED"
    assert time.monotonic() - t0 < 5
    # The slot is served again afterwards.
    assert celery_app.send_task("celeriac.noop",
                                queue="celery").get(timeout=10) is None


def status(daemon):
    out = daemon.celeriac("status", "--json")
    if out.returncode != 0:
        return []
    return [w for line in out.stdout.splitlines()
            for w in json.loads(line)["workers"]]


def test_pool_grow_and_shrink(daemon, app_dir):
    # The status is published once a second: wait for one that shows
    # both celery workers running.
    before = poll(lambda: [w for w in status(daemon)
                           if w["queue"] == "celery" and w["pid"] > 0]
                  if len([w for w in status(daemon)
                          if w["queue"] == "celery" and w["pid"] > 0]) == 2
                  else None, what="both celery workers in the status")
    assert len(before) == 2
    out = celery_cli(app_dir, "control", "pool_grow", "1", "-d",
                     "celeriac@rc-host")
    assert out.returncode == 0 and "pool will grow" in out.stdout
    poll(lambda: len([w for w in status(daemon) if w["queue"] == "celery"
                      and w["pid"] > 0]) == 3,
         what="a third celery worker in celeriac status")
    old_pids = {w["pid"] for w in before}
    now = {w["pid"] for w in status(daemon) if w["queue"] == "celery"}
    assert old_pids <= now, "growing must not restart existing workers"
    out = celery_cli(app_dir, "control", "pool_shrink", "2", "-d",
                     "celeriac@rc-host")
    assert out.returncode == 0 and "pool will shrink" in out.stdout
    poll(lambda: len([w for w in status(daemon)
                      if w["queue"] == "celery"]) == 1,
         what="one celery worker left")


def test_time_limit_override(daemon, celery_app):
    replies = celery_app.control.time_limit("celeriac.spin", soft=None,
                                            hard=1, reply=True)
    assert replies == [{"celeriac@rc-host": {
        "ok": "time limits set successfully"}}]
    t0 = time.monotonic()
    with pytest.raises(Exception) as exc:
        celery_app.send_task("celeriac.spin", queue="celery").get(timeout=10)
    assert type(exc.value).__name__ == "TimeLimitExceeded"
    assert time.monotonic() - t0 < 4


def start_receiver(celery_app, seen, timeout=8):
    """A Celery event Receiver appending every event to seen, in a
    thread, for up to timeout seconds of silence."""
    ready = threading.Event()

    def capture():
        with celery_app.connection() as conn:
            recv = celery_app.events.Receiver(conn, handlers={
                "*": seen.append})
            ready.set()
            try:
                recv.capture(limit=None, timeout=timeout, wakeup=False)
            except Exception:
                pass
    t = threading.Thread(target=capture, daemon=True)
    t.start()
    ready.wait(5)
    time.sleep(0.5)     # the receiver's PSUBSCRIBE must be in place


def test_events_reach_a_celery_receiver(daemon, celery_app):
    seen = []
    start_receiver(celery_app, seen)
    assert celery_app.control.enable_events(reply=True) == [
        {"celeriac@rc-host": {"ok": "task events enabled"}}]
    res = celery_app.send_task("celeriac.echo", args=[7], kwargs={"k": "v"},
                               queue="celery")
    assert res.get(timeout=10) == {"args": [7], "kwargs": {"k": "v"}}
    poll(lambda: {"task-received", "task-started", "task-succeeded",
                  "worker-heartbeat"} <= {e["type"] for e in seen},
         timeout=8, what="task and heartbeat events")
    by_type = {e["type"]: e for e in seen if e.get("uuid") in (None, res.id)}
    # The fields Flower reads, checked against Celery's own events.
    for kind in ("task-received", "task-started", "task-succeeded",
                 "worker-heartbeat"):
        ref = fixture_event(kind)
        ours = by_type[kind]
        missing = set(ref) - set(ours) - {"local_received"}
        assert not missing, (kind, missing)
    rec = by_type["task-received"]
    assert rec["name"] == "celeriac.echo" and rec["args"] == "[7]"
    assert by_type["task-succeeded"]["result"] == \
        "{'args': [7], 'kwargs': {'k': 'v'}}"
    hb = by_type["worker-heartbeat"]
    assert hb["hostname"] == "celeriac@rc-host" and hb["freq"] == 2.0
    assert hb["sw_ident"] == "celeriac"
    celery_app.control.disable_events()


AWKWARD = ['say "hi"', "C:\\dir\\", "line\nnext\ttab", "\x01\x1f",
           "caf\u00e9 \u4e2d \U0001f600"]


def test_task_events_keep_awkward_strings(celeriacd, celery_app):
    """Task events are written by hand: quotes, backslashes, control
    characters and non-ASCII reach a Celery receiver intact, in every
    kind of task event (one bad string would lose its whole batch)."""
    from celery.utils.saferepr import saferepr
    celeriacd(config={"hostname": "rc-host", "events": True})
    seen = []
    start_receiver(celery_app, seen)
    ok = celery_app.send_task("celeriac.echo", args=AWKWARD,
                              kwargs={'k"ey': "v\\al\u00e9"},
                              queue="celery")
    ok.get(timeout=10)
    msg = 'bad "x" \\ line\nnext \x01\x7f caf\u00e9 \U0001f600'
    bad = celery_app.send_task("celeriac.fail", args=[msg], queue="celery")
    unknown = celery_app.send_task('no.such"task\\', queue="celery")
    gone = celery_app.send_task(
        "celeriac.noop", queue="celery",
        expires=datetime.datetime.now(datetime.timezone.utc) -
        datetime.timedelta(seconds=30))

    def kinds():
        return {(e.get("uuid"), e["type"]) for e in seen}
    want = {(ok.id, "task-received"), (ok.id, "task-started"),
            (ok.id, "task-succeeded"), (bad.id, "task-failed"),
            (unknown.id, "task-failed"), (gone.id, "task-revoked")}
    poll(lambda: want <= kinds(), timeout=10, what="the task events")
    ev = {(e.get("uuid"), e["type"]): e for e in seen}
    rec = ev[(ok.id, "task-received")]
    assert rec["name"] == "celeriac.echo"
    # Celery's argsrepr keeps control characters raw: the escaping is ours.
    assert rec["args"] == saferepr(AWKWARD, 1024)
    assert rec["kwargs"] == saferepr({'k"ey': "v\\al\u00e9"}, 1024)
    assert rec["root_id"] == ok.id and rec["parent_id"] is None
    assert rec["eta"] is None and rec["expires"] is None
    done = ev[(ok.id, "task-succeeded")]
    assert "caf\u00e9 \u4e2d \U0001f600" in done["result"]
    assert isinstance(done["runtime"], float) and done["runtime"] >= 0
    assert ev[(bad.id, "task-failed")]["exception"] == \
        "RuntimeError('%s')" % msg
    assert ev[(unknown.id, "task-failed")]["exception"] == \
        "NotRegistered('%s')" % 'no.such"task\\'
    rv = ev[(gone.id, "task-revoked")]
    assert rv["expired"] is True and rv["terminated"] is False
    assert rv["signum"] is None
    for e in seen:
        if e["type"].startswith("task-"):
            assert e["hostname"] == "celeriac@rc-host"
            assert isinstance(e["timestamp"], float)
            assert abs(e["timestamp"] - time.time()) < 60
    clocks = [e["clock"] for e in seen if e["type"].startswith("task-")]
    assert len(set(clocks)) == len(clocks)


def fixture_event(kind):
    name = "event-%s.body.json" % kind
    body = json.loads((FIXTURES / name).read_text())
    return body[0] if isinstance(body, list) else body


@contextlib.contextmanager
def python_worker(app_dir, node):
    """A real Celery worker named node on queue pyq, for the test's time."""
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "rcapp", "worker", "-c", "1",
         "-n", node, "-Q", "pyq", "--without-mingle",
         "--without-gossip", "--loglevel=warning"],
        cwd=str(app_dir), env=clean_env({"PYTHONPATH": str(app_dir)}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_mixed_cluster_both_answer_ping(daemon, app_dir, celery_app):
    with python_worker(app_dir, "py1@rc-host"):
        def both():
            rep = celery_app.control.ping(timeout=1) or []
            names = {k for r in rep for k in r}
            return {"celeriac@rc-host", "py1@rc-host"} <= names
        poll(both, timeout=30, interval=0.5,
             what="both the Python worker and celeriacd to answer ping")
        out = celery_cli(app_dir, "inspect", "ping")
        assert "2 nodes online." in out.stdout
        # Each still does its own work.
        assert celery_app.send_task("py.add", args=[2, 3],
                                    queue="pyq").get(timeout=15) == 5
        assert celery_app.send_task("celeriac.echo", args=[1],
                                    queue="celery").get(timeout=10) == \
            {"args": [1], "kwargs": {}}


# ---- our own client: celeriac inspect / control ----

def test_celeriac_inspect_ping_and_exit_codes(daemon, rb):
    out = daemon.celeriac("inspect", "ping")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["-> celeriac@rc-host: OK",
                                           "    pong"]
    assert out.stdout.rstrip().endswith("1 node online.")
    out = daemon.celeriac("inspect", "ping", "--json")
    assert json.loads(out.stdout) == {"celeriac@rc-host": {"ok": "pong"}}
    # Nobody by that name: Celery's exit status and message.
    out = daemon.celeriac("inspect", "ping", "-d", "nobody@nowhere",
                          "-t", "0.3")
    assert out.returncode == 69
    assert "No nodes replied within time constraint" in out.stderr
    # The reply queue and its binding are gone afterwards.
    assert not rb.smembers("_kombu.binding.reply.celery.pidbox")
    assert not rb.keys("*.reply.celery.pidbox*")


def test_celeriac_inspect_usage_errors(daemon):
    for args in (["inspect"], ["inspect", "frobnicate"],
                 ["control", "pool_grow", "x"], ["control", "revoke"],
                 ["inspect", "ping", "-t", "-1"]):
        out = daemon.celeriac(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "usage: celeriac" in out.stderr or "celeriac:" in out.stderr


def test_celeriac_inspect_registered_active_and_stats(daemon, celery_app):
    out = daemon.celeriac("inspect", "registered")
    assert "    * celeriac.sleep" in out.stdout
    assert "    * reports.generate_dummy_report" in out.stdout
    res = celery_app.send_task("celeriac.sleep", args=[6], queue="celery")
    poll(lambda: any(w.get("task_id") == res.id for w in status(daemon)),
         what="the task running")
    active = json.loads(daemon.celeriac("inspect", "active",
                                        "--json").stdout)
    assert [t["id"] for t in active["celeriac@rc-host"]] == [res.id]
    stats = json.loads(daemon.celeriac("inspect", "stats", "--json").stdout)
    assert set(stats["celeriac@rc-host"]["pool"]["processes"]) == \
        set(daemon.workers())
    assert daemon.celeriac("control", "revoke", res.id).returncode == 0
    revoked = json.loads(daemon.celeriac("inspect", "revoked",
                                         "--json").stdout)
    assert res.id in revoked["celeriac@rc-host"]


def test_celeriac_control_terminate_and_pool(daemon, celery_app):
    res = celery_app.send_task("celeriac.sleep", args=[30], queue="celery")
    poll(lambda: any(w.get("task_id") == res.id for w in status(daemon)),
         what="the task running")
    out = daemon.celeriac("control", "terminate", "SIGTERM", res.id)
    assert out.returncode == 0, out.stderr
    assert "terminate: %s" % res.id in out.stdout
    with pytest.raises(Exception):
        res.get(timeout=10)
    assert res.status == "REVOKED"
    poll(lambda: len([w for w in status(daemon) if w["queue"] == "celery"
                      and w["pid"] > 0]) == 2,
         what="both celery workers in the status")
    out = daemon.celeriac("control", "pool_grow", "1", "-d",
                          "celeriac@rc-host")
    assert out.returncode == 0 and "pool will grow" in out.stdout
    poll(lambda: len([w for w in status(daemon) if w["queue"] == "celery"
                      and w["pid"] > 0]) == 3,
         what="a third celery worker")
    out = daemon.celeriac("control", "time_limit", "celeriac.sleep", "1",
                          "2", "--json")
    assert out.returncode == 0, out.stderr
    assert "ok" in json.loads(out.stdout)["celeriac@rc-host"]
    with pytest.raises(Exception):
        celery_app.send_task("celeriac.sleep", args=[10],
                             queue="celery").get(timeout=15)
    out = daemon.celeriac("control", "frobnicate")
    assert out.returncode == 2


def test_celeriac_inspect_reaches_a_python_worker(daemon, app_dir):
    """The same client against a real Celery worker on the same broker."""
    with python_worker(app_dir, "py2@rc-host"):
        def both():
            out = daemon.celeriac("inspect", "ping", "--json")
            return out.returncode == 0 and set(json.loads(out.stdout)) == {
                "celeriac@rc-host", "py2@rc-host"}
        poll(both, timeout=30, interval=0.5,
             what="celeriac inspect ping to hear both workers")
        out = daemon.celeriac("inspect", "registered", "-d", "py2@rc-host")
        assert out.returncode == 0, out.stderr
        assert "-> py2@rc-host: OK" in out.stdout
        assert "    * py.add" in out.stdout
        assert "celeriac@rc-host" not in out.stdout
        out = daemon.celeriac("control", "rate_limit", "py.add", "10/m",
                              "-d", "py2@rc-host")
        assert out.returncode == 0, out.stderr
        assert "new rate limit set successfully" in out.stdout


def test_cancel_and_add_consumer(daemon, celery_app, r):
    node = ["celeriac@rc-host"]
    rep = celery_app.control.cancel_consumer("reports", destination=node,
                                             reply=True)
    assert rep == [{"celeriac@rc-host": {
        "ok": "no longer consuming from 'reports'"}}]
    poll(lambda: not [w for w in status(daemon) if w["queue"] == "reports"],
         what="no reports worker left in the status")
    res = celery_app.send_task("reports.generate_dummy_report", args=[1],
                               queue="reports")
    assert r.llen("reports") == 1, "nobody consumes reports now"
    rep = celery_app.control.add_consumer("reports", destination=node,
                                          reply=True)
    assert rep == [{"celeriac@rc-host": {"ok": "add consumer reports"}}]
    assert res.get(timeout=15) == {"report_id": 1}
    rep = celery_app.control.add_consumer("reports", destination=node,
                                          reply=True)
    assert rep == [{"celeriac@rc-host": {
        "ok": "already consuming from 'reports'"}}]
    rep = celery_app.control.cancel_consumer("nope", destination=node,
                                             reply=True)
    assert "error" in rep[0]["celeriac@rc-host"]


def test_rate_limit_spaces_a_workers_tasks(daemon, celery_app):
    node = ["celeriac@rc-host"]
    rep = celery_app.control.rate_limit("celeriac.echo", "60/m",
                                        destination=node, reply=True)
    assert rep == [{"celeriac@rc-host": {
        "ok": "new rate limit set successfully"}}]
    # One reports worker: at most one celeriac.echo a second.
    res = [celery_app.send_task("celeriac.echo", args=[i], queue="reports")
           for i in range(3)]
    for x in res:
        x.get(timeout=15)
    done = sorted(x.date_done.timestamp() for x in res)
    assert done[2] - done[0] >= 1.8, done
    rep = celery_app.control.rate_limit("celeriac.echo", "0",
                                        destination=node, reply=True)
    assert rep == [{"celeriac@rc-host": {
        "ok": "rate limit disabled successfully"}}]
    t0 = time.monotonic()
    res = [celery_app.send_task("celeriac.echo", args=[i], queue="reports")
           for i in range(3)]
    for x in res:
        x.get(timeout=15)
    assert time.monotonic() - t0 < 1.5
    rep = celery_app.control.rate_limit("celeriac.echo", "fast",
                                        destination=node, reply=True)
    assert "error" in rep[0]["celeriac@rc-host"]


def test_report_and_reserved(daemon, celery_app):
    insp = celery_app.control.inspect(timeout=2,
                                      destination=["celeriac@rc-host"])
    rep = insp.report()
    assert rep["celeriac@rc-host"]["ok"].startswith("celeriac ")
    assert "on celeriac@rc-host" in rep["celeriac@rc-host"]["ok"]
    # A worker takes one message at a time: nothing is ever reserved.
    assert insp.reserved() == {"celeriac@rc-host": []}


def test_remote_shutdown_is_warm(daemon, celery_app):
    res = celery_app.send_task("celeriac.sleep", args=[1.5], queue="celery")
    poll(lambda: any(w.get("task_id") == res.id for w in status(daemon)),
         what="the task running")
    rep = celery_app.control.shutdown(destination=["celeriac@rc-host"],
                                      reply=True, timeout=2)
    assert rep == [{"celeriac@rc-host": {"ok": "shutdown"}}]
    # Warm: the running task finishes and its result is stored.
    assert res.get(timeout=15) == 1.5
    assert daemon.wait(20) == 0
