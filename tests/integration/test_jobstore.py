"""The job store: `celeriac db migrate`, every transition a worker records
in PostgreSQL, PostgreSQL going away under load, the spill files, the
`celeriac jobs`/`celeriac job` commands and the system tasks
(cleanup_jobs, health_check, daily_metrics).

Each test gets a database of its own on the harness's PostgreSQL
(DATABASE_URL), created through the superuser the harness's trust
authentication allows, and dropped afterwards.  Two tests stop that
PostgreSQL for a while (pg_ctl stop -m fast, as its owner) and always
start it again.
"""

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from conftest import PYTHON, SRCDIR, poll

MIGRATIONS = SRCDIR / "share" / "migrations"
PGBIN = pathlib.Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
STATUSES = ("pending", "queued", "started", "retrying", "succeeded",
            "failed", "revoked")

TEMPFAIL_SCRIPT = r'''
import sys
sys.stdin.read()
sys.stderr.write("try again later\n")
sys.exit(75)
'''


# ------------------------------------------------------------------ helpers

def psql(url, sql, check=True):
    """Run sql with psql; the rows as lists of strings."""
    out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\x1f",
                          "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError("psql: %s" % out.stderr)
    return [line.split("\x1f") for line in out.stdout.splitlines() if line]


def one(url, sql):
    rows = psql(url, sql)
    return rows[0][0] if rows else None


def job(url, task_id):
    """The jobs row of task_id as a dict (None if absent), with its
    events (oldest first) under "events"."""
    rows = psql(url, "SELECT to_jsonb(j) || jsonb_build_object('events', "
                "coalesce((SELECT jsonb_agg(jsonb_build_object('status', "
                "e.status, 'at', e.at, 'detail', e.detail) ORDER BY e.at, "
                "e.id) FROM job_events e WHERE e.job_id = j.id), '[]')) "
                "FROM jobs j WHERE task_id = '%s'" % task_id)
    return json.loads(rows[0][0]) if rows else None


def wait_job(url, task_id, status, timeout=20, events=None):
    """Wait until the job has status (and, if given, that many events)."""
    def ok():
        j = job(url, task_id)
        if j and j["status"] == status and (
                events is None or len(j["events"]) >= events):
            return j
        return None
    return poll(ok, timeout, 0.1, what="job %s to be %s" % (task_id, status))


def statuses(j):
    return [e["status"] for e in j["events"]]


def admin_url(url):
    u = urllib.parse.urlsplit(url)
    return "postgresql://postgres@%s/postgres" % u.netloc.split("@")[-1]


class Postgres:
    """The harness's cluster, to stop and start it again."""

    def __init__(self, services):
        self.base = pathlib.Path(services["PG_SOCKET_DIR"]).parent
        self.data = self.base / "data"
        opts = (self.data / "postmaster.opts").read_text()
        args = shlex.split(opts)[1:]
        # Drop -D DIR: pg_ctl gives it; keep the port, socket, settings.
        i = args.index("-D")
        del args[i:i + 2]
        self.opts = shlex.join(args)
        self.url = services["DATABASE_URL"]

    def _pg_ctl(self, *args):
        cmd = [str(PGBIN / "pg_ctl"), "-D", str(self.data)] + list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr + out.stdout

    def stop(self):
        self._pg_ctl("-m", "fast", "-w", "-s", "stop")

    def start(self):
        if (self.data / "postmaster.pid").exists():
            return
        self._pg_ctl("-l", str(self.base / "postgres.log"), "-w", "-s",
                     "-o", self.opts, "start")
        poll(lambda: subprocess.run(
            [str(PGBIN / "pg_isready"), "-q", "-d", self.url]).returncode
            == 0, 30, 0.1, what="PostgreSQL to answer again")


# ----------------------------------------------------------------- fixtures

@pytest.fixture
def pg_url(services):
    """A fresh, empty database of this test."""
    url = services.get("DATABASE_URL")
    if not url:
        pytest.skip("no PostgreSQL in this run (DATABASE_URL unset)")
    if not shutil.which("psql"):
        pytest.skip("psql is missing: apt-get install postgresql-client")
    u = urllib.parse.urlsplit(url)
    name = "celeriac_js_%s" % uuid.uuid4().hex[:8]
    psql(admin_url(url), "CREATE DATABASE %s OWNER %s" % (name, u.username))
    yield urllib.parse.urlunsplit(u._replace(path="/" + name))
    psql(admin_url(url), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name,
         check=False)


@pytest.fixture
def migrations(tmp_path):
    """A migrations directory holding the job store's schema only, so
    these tests do not depend on the other tables' migrations."""
    d = tmp_path / "migrations"
    d.mkdir()
    shutil.copy(MIGRATIONS / "001_jobs.sql", d)
    return d


@pytest.fixture
def pg(services):
    """The cluster, restarted after the test whatever happens."""
    p = Postgres(services)
    yield p
    p.start()


@pytest.fixture
def store_daemon(celeriacd, pg_url, migrations, tmp_path, write_script):
    """store_daemon(queues=None, tasks=None, start=True, **top) ->
    Celeriacd with `database:` on a migrated database of this test."""
    tempfail = write_script("tempfail.py", TEMPFAIL_SCRIPT)
    env = {"CELERIAC_MIGRATIONS_DIR": str(migrations)}

    def make(queues=None, tasks=None, start=True, migrate=True, **top):
        cfg = {
            "database": pg_url,
            "state_dir": str(tmp_path / "state"),
            "queues": queues or {"celery": {"concurrency": 1}},
            "tasks": {
                "myapp.flaky": {"run": "builtin:celeriac.fail",
                                "queue": "celery", "max_retries": 2,
                                "retry_backoff": "100ms",
                                "autoretry_for": ["RuntimeError"]},
                "myapp.tempfail": {"run": [PYTHON, tempfail],
                                   "queue": "celery", "max_retries": 2,
                                   "retry_backoff": "100ms"},
            },
        }
        cfg["tasks"].update(tasks or {})
        cfg.update(top)
        d = celeriacd(config=cfg, start=False, env=env)
        if migrate:
            out = d.celeriac("db", "migrate")
            assert out.returncode == 0, out.stderr
        if start:
            d.start()
        return d
    return make


# --------------------------------------------------------------- migrations

def test_migrate_from_empty_and_again(celeriacd, pg_url):
    d = celeriacd(config={"database": pg_url}, start=False,
                  env={"CELERIAC_MIGRATIONS_DIR": str(MIGRATIONS)})
    files = sorted(p.name for p in MIGRATIONS.glob("[0-9]*_*.sql"))

    st = d.celeriac("db", "status")
    assert st.returncode == 1, st
    assert "pending  001_jobs.sql" in st.stdout

    first = d.celeriac("db", "migrate")
    assert first.returncode == 0, first.stderr
    for f in files:
        assert "applied %s" % f in first.stdout
    versions = [int(f.split("_")[0]) for f in files]
    assert [int(r[0]) for r in psql(
        pg_url, "SELECT version FROM schema_migrations ORDER BY 1")] == \
        versions

    again = d.celeriac("db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "up to date (version %d)" % versions[-1] in again.stdout
    assert int(one(pg_url, "SELECT count(*) FROM schema_migrations")) == \
        len(files)
    st = d.celeriac("db", "status")
    assert st.returncode == 0 and "pending" not in st.stdout, st

    # The schema: tables, the status check, the indexes the API needs.
    for t in ("jobs", "job_events", "health_checks", "daily_metrics"):
        assert one(pg_url, "SELECT to_regclass('%s') IS NOT NULL" % t) == "t"
    bad = subprocess.run(["psql", pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-c", "INSERT INTO jobs (task_id, task_name, "
                          "status) VALUES ('x', 'y', 'exploded')"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "jobs_status_check" in bad.stderr
    idx = {r[0]: r[1] for r in psql(
        pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE "
        "tablename IN ('jobs', 'job_events')")}
    defs = "\n".join(idx.values())
    assert "(status, created_at DESC)" in defs
    assert "(queue, created_at DESC)" in defs
    assert "UNIQUE INDEX jobs_task_id_key ON public.jobs USING btree " \
        "(task_id)" in defs
    assert "job_events USING btree (job_id, at" in defs


def test_migrate_concurrently_applies_once(celeriacd, pg_url, migrations):
    d = celeriacd(config={"database": pg_url}, start=False,
                  env={"CELERIAC_MIGRATIONS_DIR": str(migrations)})
    outs = [None] * 4

    def run(i):
        outs[i] = d.celeriac("db", "migrate")
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert sum("applied 001_jobs.sql" in o.stdout for o in outs) == 1
    assert psql(pg_url, "SELECT version FROM schema_migrations") == [["1"]]


def test_migrate_failure_rolls_back_that_file(celeriacd, pg_url, migrations):
    (migrations / "002_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\n\nSELECT no_such_function();\n")
    d = celeriacd(config={"database": pg_url}, start=False,
                  env={"CELERIAC_MIGRATIONS_DIR": str(migrations)})
    out = d.celeriac("db", "migrate")
    assert out.returncode == 1
    assert "002_broken.sql:3:" in out.stderr, out.stderr
    assert psql(pg_url, "SELECT version FROM schema_migrations") == [["1"]]
    assert one(pg_url, "SELECT to_regclass('half_done') IS NULL") == "t"


def test_migrate_without_database(celeriacd):
    d = celeriacd(config={"database": None}, start=False)
    out = d.celeriac("db", "migrate")
    assert out.returncode == 1 and "no database configured" in out.stderr


# -------------------------------------------------------------- transitions

def test_every_transition_is_recorded(store_daemon, pg_url, celery_app, r):
    d = store_daemon()
    app = celery_app

    ok = app.send_task("celeriac.echo", args=[1, "ü"], kwargs={"k": None},
                       queue="celery")
    assert ok.get(timeout=10) == {"args": [1, "ü"], "kwargs": {"k": None}}
    j = wait_job(pg_url, ok.id, "succeeded", events=2)
    assert statuses(j) == ["started", "succeeded"]
    assert j["task_name"] == "celeriac.echo" and j["queue"] == "celery"
    assert j["params"] == {"args": [1, "ü"], "kwargs": {"k": None}}
    assert j["result"] == {"args": [1, "ü"], "kwargs": {"k": None}}
    assert j["started_at"] and j["finished_at"] and j["retries"] == 0
    assert j["worker_pid"] in d.workers() and j["worker_host"]

    bad = app.send_task("celeriac.fail", args=["no luck"], queue="celery")
    with pytest.raises(Exception):
        bad.get(timeout=10)
    j = wait_job(pg_url, bad.id, "failed", events=2)
    assert statuses(j) == ["started", "failed"]
    assert j["error_type"] == "RuntimeError"
    assert j["error_message"] == "no luck"

    # Retried twice, then failed: each attempt's events, in order.
    for name in ("myapp.flaky", "myapp.tempfail"):
        res = app.send_task(name, args=["again"], queue="celery")
        with pytest.raises(Exception):
            res.get(timeout=15)
        j = wait_job(pg_url, res.id, "failed", events=6)
        assert statuses(j) == ["started", "retrying", "started", "retrying",
                               "started", "failed"], (name, j)
        assert [e["detail"]["retries"] for e in j["events"]] == \
            [0, 0, 1, 1, 2, 2]
        assert j["retries"] == 2
        assert j["events"][1]["detail"]["error_type"]

    # Revoked before it runs: parked with its countdown, never started.
    rv = app.send_task("celeriac.noop", queue="celery", countdown=2)
    poll(lambda: r.zcard("celeriac.eta"), 10, 0.05, what="the parked task")
    out = d.celeriac("revoke", rv.id)
    assert out.returncode == 0, out.stderr
    j = wait_job(pg_url, rv.id, "revoked", timeout=15)
    assert "started" not in statuses(j)
    assert statuses(j)[-1] == "revoked" and j["finished_at"]
    assert j["error_type"] == "TaskRevokedError"

    # Statuses are the known ones only, and every job has events.
    assert all(r[0] in STATUSES for r in psql(
        pg_url, "SELECT DISTINCT status FROM job_events"))
    assert one(pg_url, "SELECT count(*) FROM jobs j WHERE NOT EXISTS "
               "(SELECT 1 FROM job_events e WHERE e.job_id = j.id)") == "0"


def test_a_long_task_shows_as_started_while_it_runs(store_daemon, pg_url,
                                                   celery_app):
    """Quick tasks' events wait for a batch; a task not known to be quick
    (never run here, or slow last time) is recorded as started at once."""
    store_daemon()
    quick = [celery_app.send_task("celeriac.echo", args=[i], queue="celery")
             for i in range(20)]
    for res in quick:
        res.get(timeout=10)
    for _ in range(2):
        res = celery_app.send_task("celeriac.sleep", args=[1.5],
                                   queue="celery")
        wait_job(pg_url, res.id, "started", timeout=1.2)
        assert not res.ready(), "started must show while it runs"
        assert res.get(timeout=10) == 1.5
        wait_job(pg_url, res.id, "succeeded", events=2)
    for res in quick:
        wait_job(pg_url, res.id, "succeeded", events=2)


def test_plain_celery_client_task_gets_a_row(store_daemon, pg_url,
                                             celery_app):
    store_daemon()
    tid = str(uuid.uuid4())
    res = celery_app.send_task("celeriac.echo", args=[42], task_id=tid,
                               queue="celery")
    assert res.get(timeout=10)["args"] == [42]
    j = wait_job(pg_url, tid, "succeeded", events=2)
    assert j["params"]["args"] == [42]
    assert j["created_at"] <= j["started_at"] <= j["finished_at"]


def test_jobs_and_job_commands(store_daemon, pg_url, celery_app):
    d = store_daemon()
    ok = celery_app.send_task("celeriac.echo", args=[7], queue="celery")
    bad = celery_app.send_task("celeriac.fail", args=["nope"], queue="celery")
    ok.get(timeout=10)
    with pytest.raises(Exception):
        bad.get(timeout=10)
    wait_job(pg_url, bad.id, "failed", events=2)
    wait_job(pg_url, ok.id, "succeeded", events=2)

    out = d.celeriac("jobs")
    assert out.returncode == 0, out.stderr
    assert "STATUS" in out.stdout and ok.id in out.stdout and bad.id in \
        out.stdout
    out = d.celeriac("jobs", "--status", "failed", "--limit", "5")
    assert bad.id in out.stdout and ok.id not in out.stdout
    out = d.celeriac("jobs", "--queue", "nowhere")
    assert out.stdout.strip() == "no jobs"
    out = d.celeriac("jobs", "--status", "exploded")
    assert out.returncode == 2
    rows = json.loads(d.celeriac("jobs", "--json").stdout)
    assert {r["task_id"] for r in rows} >= {ok.id, bad.id}

    out = d.celeriac("job", bad.id)
    assert out.returncode == 0, out.stderr
    assert "RuntimeError: nope" in out.stdout
    assert "started" in out.stdout and "failed" in out.stdout
    jid = one(pg_url, "SELECT id FROM jobs WHERE task_id = '%s'" % ok.id)
    j = json.loads(d.celeriac("job", jid, "--json").stdout)
    assert j["task_id"] == ok.id and len(j["events"]) == 2
    out = d.celeriac("job", "does-not-exist")
    assert out.returncode == 1 and "no job" in out.stderr


def test_database_down_under_load(store_daemon, pg_url, celery_app, pg):
    """PostgreSQL stops for ~15 s while a few hundred tasks run: tasks
    keep running, and every transition is in the database once it is
    back."""
    d = store_daemon(queues={"celery": {"concurrency": 3}})
    app = celery_app
    sent = [app.send_task("celeriac.sleep", args=[0.01], queue="celery")
            for _ in range(50)]
    pg.stop()
    t0 = time.monotonic()
    try:
        # Tasks go on meanwhile: results arrive with the database down.
        while time.monotonic() - t0 < 12:
            sent += [app.send_task("celeriac.sleep", args=[0.01],
                                   queue="celery") for _ in range(25)]
            time.sleep(0.5)
        for res in sent[:-25]:
            assert res.get(timeout=20) == 0.01
        assert time.monotonic() - t0 < 20, "tasks were held up"
    finally:
        pg.start()
    for res in sent:
        res.get(timeout=20)
    ids = {r.id for r in sent}
    assert len(ids) >= 300

    def all_in():
        rows = psql(pg_url, "SELECT j.task_id, j.status, count(e.id) FROM "
                    "jobs j JOIN job_events e ON e.job_id = j.id GROUP BY "
                    "j.id")
        done = {r[0] for r in rows if r[1] == "succeeded" and r[2] == "2"}
        return ids <= done
    poll(all_in, 30, 0.5, what="every transition written after the outage")
    # Each exactly once: started, succeeded.
    assert int(one(pg_url, "SELECT count(*) FROM job_events e JOIN jobs j "
                   "ON j.id = e.job_id WHERE j.task_name = "
                   "'celeriac.sleep'")) == 2 * len(ids)
    d.assert_running()
    assert "job store" in d.log_text()


def test_spill_survives_a_restart(store_daemon, pg_url, celery_app, pg,
                                  tmp_path):
    """Events kept while the database is down outlive the daemon: the
    next run replays its spill files."""
    d = store_daemon()
    pg.stop()
    try:
        sent = [celery_app.send_task("celeriac.echo", args=[i],
                                     queue="celery") for i in range(40)]
        for res in sent:
            res.get(timeout=20)
        d.stop()
        spool = tmp_path / "state" / "spool"
        assert sum(p.stat().st_size for p in spool.glob("*.spool")) > 0
    finally:
        pg.start()
    d2 = store_daemon(migrate=False)
    for res in sent:
        wait_job(pg_url, res.id, "succeeded", timeout=30, events=2)
    poll(lambda: sum(p.stat().st_size for p in
                     (tmp_path / "state" / "spool").glob("*.spool")) == 0,
         10, 0.2, what="the spill files to be emptied")
    d2.assert_running()


# ------------------------------------------------------------- system tasks

def test_cleanup_removes_only_old_finished_jobs(store_daemon, pg_url,
                                                celery_app, r):
    store_daemon()
    ids = []
    for i in range(5):
        res = celery_app.send_task("celeriac.echo", args=[i], queue="celery")
        res.get(timeout=10)
        ids.append(res.id)
    for i in ids:
        wait_job(pg_url, i, "succeeded", events=2)
    # Age them: 10 days, 10 days, 2 days, fresh, fresh; and a job that
    # never finished, 30 days old.
    for i, days in zip(ids, (10, 10, 2)):
        psql(pg_url, "UPDATE jobs SET created_at = now() - interval "
             "'%d days', started_at = now() - interval '%d days', "
             "finished_at = now() - interval '%d days' WHERE task_id = '%s'"
             % (days, days, days, i))
    psql(pg_url, "INSERT INTO jobs (task_id, task_name, status, created_at, "
         "started_at) VALUES ('stuck', 'x', 'started', now() - interval "
         "'30 days', now() - interval '30 days')")
    assert all(r.exists("celery-task-meta-" + i) for i in ids)

    res = celery_app.send_task("celeriac.cleanup_jobs", queue="celery")
    assert res.get(timeout=20) == {"deleted": 2}
    left = {row[0] for row in psql(pg_url, "SELECT task_id FROM jobs")}
    assert not left & set(ids[:2])
    assert set(ids[2:]) | {"stuck"} <= left
    assert [r.exists("celery-task-meta-" + i) for i in ids] == \
        [0, 0, 1, 1, 1]
    # Their events went with them (ON DELETE CASCADE).
    assert one(pg_url, "SELECT count(*) FROM job_events e WHERE NOT EXISTS "
               "(SELECT 1 FROM jobs j WHERE j.id = e.job_id)") == "0"

    res = celery_app.send_task("celeriac.cleanup_jobs", args=["1d"],
                               queue="celery")
    assert res.get(timeout=20) == {"deleted": 1}
    assert not r.exists("celery-task-meta-" + ids[2])
    assert "stuck" in {row[0] for row in psql(pg_url,
                                              "SELECT task_id FROM jobs")}

    res = celery_app.send_task("celeriac.cleanup_jobs",
                               kwargs={"older_than": "soon"}, queue="celery")
    with pytest.raises(Exception) as e:
        res.get(timeout=10)
    assert type(e.value).__name__ == "ValueError"


def test_cleanup_in_batches(store_daemon, pg_url, celery_app):
    store_daemon()
    psql(pg_url, "INSERT INTO jobs (task_id, task_name, status, created_at, "
         "finished_at) SELECT 'old-' || i, 'x', 'succeeded', now() - "
         "interval '9 days', now() - interval '8 days' FROM "
         "generate_series(1, 2500) i")
    res = celery_app.send_task("celeriac.cleanup_jobs", args=["7d"],
                               queue="celery")
    assert res.get(timeout=30) == {"deleted": 2500}


def test_health_check(store_daemon, pg_url, celery_app, r):
    store_daemon(queues={"celery": {"concurrency": 1},
                         "idle": {"concurrency": 0}})
    waiting = celery_app.send_task("celeriac.noop", queue="idle")
    # The control child publishes who serves what once a second.
    poll(lambda: any('"state":"idle"' in (r.get(k) or "")
                     for k in r.keys("celeriac.status.*")), 10, 0.1,
         what="the host's status to show an idle worker")
    res = celery_app.send_task("celeriac.health_check", queue="celery")
    h = res.get(timeout=20)
    assert h["redis"]["ok"] and h["database"]["ok"]
    assert h["queues"]["celery"]["workers"] >= 1
    assert h["queues"]["celery"]["ok"] is True
    assert h["queues"]["idle"]["depth"] == 1
    assert h["queues"]["idle"]["oldest_task_id"] == waiting.id
    assert h["queues"]["idle"]["ok"] is False
    assert h["ok"] is False and any("idle" in p for p in h["problems"])
    assert h["hosts"] and h["hosts"][0]["heartbeat_age_s"] < 15
    stored = json.loads(r.get("celeriac.health"))
    assert stored["time"] == h["time"]
    assert 0 < r.ttl("celeriac.health") <= 900
    assert psql(pg_url, "SELECT ok FROM health_checks") == [["f"]]

    # Seen again later: it has waited at least that long.
    time.sleep(1.1)
    h2 = celery_app.send_task("celeriac.health_check",
                              queue="celery").get(timeout=20)
    assert h2["queues"]["idle"]["oldest_waiting_s"] >= 1.0
    assert int(one(pg_url, "SELECT count(*) FROM health_checks")) == 2


def test_health_check_database_down(store_daemon, celery_app, pg):
    store_daemon()
    pg.stop()
    try:
        h = celery_app.send_task("celeriac.health_check",
                                 queue="celery").get(timeout=20)
    finally:
        pg.start()
    assert h["redis"]["ok"] and not h["database"]["ok"]
    assert h["ok"] is False and "database unreachable" in h["problems"]


def test_daily_metrics(store_daemon, pg_url, celery_app):
    store_daemon()
    app = celery_app
    done = []
    for i in range(4):
        res = app.send_task("celeriac.echo", args=[i], queue="celery")
        res.get(timeout=10)
        done.append(res.id)
    bad = app.send_task("myapp.flaky", args=["x"], queue="celery")
    with pytest.raises(Exception):
        bad.get(timeout=15)
    for i in done:
        wait_job(pg_url, i, "succeeded", events=2)
    wait_job(pg_url, bad.id, "failed", events=6)
    # Move them to yesterday (UTC), with known run times 1..4 s.
    for n, i in enumerate(done + [bad.id], 1):
        psql(pg_url, "UPDATE jobs SET finished_at = date_trunc('day', "
             "now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval "
             "'12 hours', started_at = date_trunc('day', now() AT TIME "
             "ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 hours' - "
             "interval '%d seconds' WHERE task_id = '%s'" % (n, i))
    out = app.send_task("celeriac.daily_metrics", queue="celery").get(
        timeout=20)
    assert out["rows"] == 2
    m = {r[0]: r[1:] for r in psql(
        pg_url, "SELECT task_name, total, succeeded, failed, retried, "
        "retries, p50_seconds, max_seconds, day = (now() AT TIME ZONE "
        "'UTC')::date - 1 FROM daily_metrics")}
    assert m["celeriac.echo"][:5] == ["4", "4", "0", "0", "0"]
    assert float(m["celeriac.echo"][5]) == pytest.approx(2.5)
    assert float(m["celeriac.echo"][6]) == pytest.approx(4)
    assert m["myapp.flaky"][:5] == ["1", "0", "1", "1", "2"]
    assert m["celeriac.echo"][7] == "t"
    # Again: the same rows, updated, not doubled.
    app.send_task("celeriac.daily_metrics", queue="celery").get(timeout=20)
    assert one(pg_url, "SELECT count(*) FROM daily_metrics") == "2"
    assert app.send_task("celeriac.daily_metrics", args=["2000-01-01"],
                         queue="celery").get(timeout=20) == \
        {"day": "2000-01-01", "rows": 0}
    with pytest.raises(Exception) as e:
        app.send_task("celeriac.daily_metrics", args=["yesterday"],
                      queue="celery").get(timeout=20)
    assert type(e.value).__name__ == "ValueError"
