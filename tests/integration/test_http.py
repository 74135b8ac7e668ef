"""The http child: the job API, /metrics, /health and the monitor, over
real HTTP against a running celeriacd with real Redis and PostgreSQL.

Each test runs celeriacd with an `http:` section on free loopback ports
and a private database of this module (the migrations of
share/migrations applied with psql), emptied before each test.  The
heavy report is an external program here (it sleeps processing_time
seconds), so a job can be caught while it runs.

promtool (Debian package prometheus) and chromium (Debian package
chromium) are needed by two tests each; without them those tests are
skipped with the package to install.
"""

import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

import pytest

from conftest import SRCDIR, free_port, poll

ARTIFACTS = SRCDIR / "tests" / "integration" / "artifacts"
MIGRATIONS = SRCDIR / "share" / "migrations"
ALERTS = SRCDIR / "etc" / "prometheus" / "celeriac-alerts.yml"
TOKEN = "s3cret-token-for-tests"

SLOW_REPORT = """#!/bin/sh
# The heavy report of the tests: sleeps kwargs.processing_time seconds.
secs=$(/usr/bin/python3 -c 'import json, sys
print(json.load(sys.stdin)["kwargs"].get("processing_time", 1))')
sleep "$secs"
echo '{"file": "report.pdf"}'
"""


# ------------------------------------------------------------------ helpers

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:300])


class Http:
    """urllib on one of celeriacd's listeners."""

    def __init__(self, port, token=None):
        self.base = "http://127.0.0.1:%d" % port
        self.token = token

    def req(self, method, path, body=None, params=None, token=None,
            headers=None, timeout=10):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        h = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str)
                else json.dumps(body).encode())
            h.setdefault("Content-Type", "application/json")
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        rq = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(rq, timeout=timeout) as resp:
                return Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, **kw):
        return self.req("POST", path, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


def psql(url, sql):
    """Run sql with psql; the rows as lists of strings."""
    out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t",
                          "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("psql: %s" % out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def assert_error(a, status, parameter=None):
    assert a.status == status, a
    assert a.headers["Content-Type"].startswith("application/json"), a
    assert isinstance(a.json, dict) and a.json.get("error"), a
    if parameter:
        assert a.json.get("parameter") == parameter, a


def celery_state(r, task_id):
    raw = r.get("celery-task-meta-" + task_id)
    return json.loads(raw) if raw else None


def wait_result(r, task_id, status="SUCCESS", timeout=20):
    def done():
        m = celery_state(r, task_id)
        return m if m and m["status"] == status else None
    return poll(done, timeout, 0.1, what="task %s to be %s" % (task_id,
                                                               status))


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def http_db_url(services):
    """A private database with the job schema, for this module."""
    url = services.get("DATABASE_URL")
    if not url:
        pytest.skip("no PostgreSQL in this run (DATABASE_URL unset)")
    if not shutil.which("psql"):
        pytest.skip("psql is missing: apt-get install postgresql-client")
    u = urllib.parse.urlsplit(url)
    name = "celeriac_http_%s" % uuid.uuid4().hex[:8]
    admin = "postgresql://postgres@%s/postgres" % u.netloc.split("@")[-1]
    psql(admin, "CREATE DATABASE %s OWNER %s" % (name, u.username))
    db = urllib.parse.urlunsplit(u._replace(path="/" + name))
    for f in sorted(MIGRATIONS.glob("*.sql")):
        out = subprocess.run(["psql", db, "-X", "-q", "-1", "-v",
                              "ON_ERROR_STOP=1", "-f", str(f)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, "%s: %s" % (f.name, out.stderr)
    yield db
    psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture
def db(http_db_url):
    psql(http_db_url, "TRUNCATE jobs, job_events RESTART IDENTITY CASCADE")
    return http_db_url


@pytest.fixture
def run_http(celeriacd, tmp_path, write_script):
    """run_http(db=url|None, token=False, queues=..., tasks=..., http=...,
    **top) -> (daemon, api Http, monitor Http), started and answering."""
    slow = write_script("slow_report.sh", SLOW_REPORT)

    def start(db=None, token=False, queues=None, tasks=None, http=None,
              redis_url=None, factory=None, **top):
        api_port, mon_port = free_port(), free_port()
        h = {"listen": "127.0.0.1:%d" % api_port,
             "monitor": "127.0.0.1:%d" % mon_port}
        if token:
            tf = tmp_path / "token"
            tf.write_text(TOKEN + "\n")
            tf.chmod(0o600)
            h["token_file"] = str(tf)
        h.update(http or {})
        cfg = {
            "state_dir": str(tmp_path / "state"),
            "http": h,
            "queues": queues or {"reports": {"concurrency": 2, "priority": 5},
                                 "celery": {"concurrency": 1}},
            "tasks": tasks or {
                "reports.generate_dummy_report": {
                    "run": "builtin:reports.dummy", "queue": "reports"},
                "reports.generate_heavy_report": {
                    "run": [slow], "queue": "reports"},
            },
        }
        if db:
            cfg["database"] = db
        cfg.update(top)
        (tmp_path / "state").mkdir(exist_ok=True)
        if factory is not None:
            d = factory(redis_url, config=cfg)
        else:
            d = celeriacd(config=cfg)
        api = Http(api_port, TOKEN if token else None)
        mon = Http(mon_port, TOKEN if token else None)

        def answers():
            d.assert_running()
            try:
                return api.get("/health", timeout=2).status in (200, 503)
            except OSError:
                return False
        poll(answers, 10, 0.05, what="the http child to listen")
        return d, api, mon
    return start


# ---------------------------------------------------------------- job API

def test_dummy_report_creates_a_job_and_runs(run_http, db, r):
    d, api, _ = run_http(db=db)

    a = api.post("/api/v1/reports/dummy", params={"report_id": "rep-1"})
    assert a.status == 200, a
    j = a.json
    assert j["status"] == "queued" and j["queue"] == "reports"
    assert j["broker"] == "ok" and j["database"] == "ok"
    assert isinstance(j["job_id"], int) and len(j["task_id"]) == 36
    assert wait_result(r, j["task_id"])["result"] == {"report_id": "rep-1"}

    # The id may come in a JSON body; without one a fresh id is made.
    b = api.post("/api/v1/reports/dummy", body={"report_id": "rep-2"})
    assert b.status == 200 and b.json["report_id"] == "rep-2", b
    c = api.post("/api/v1/reports/dummy")
    assert c.status == 200 and c.json["report_id"], c
    # The route of the RQ days answers the same.
    old = api.post("/reports/dummy", params={"report_id": "rep-3"})
    assert old.status == 200 and old.json["report_id"] == "rep-3", old
    for x in (b, c, old):
        wait_result(r, x.json["task_id"])

    detail = api.get("/api/v1/reports/jobs/%d" % j["job_id"])
    assert detail.status == 200, detail
    dj = detail.json
    assert dj["task_id"] == j["task_id"]
    assert dj["task_name"] == "reports.generate_dummy_report"
    assert dj["job_type"] == "dummy"
    assert dj["params"] == {"args": ["rep-1"],
                            "kwargs": {"job_id": j["job_id"]}}
    assert [e["status"] for e in dj["events"]][:2] == ["pending", "queued"]
    # The same job by its task id.
    assert api.get("/api/v1/reports/jobs/" + j["task_id"]).json[
        "job_id"] == j["job_id"]


def test_job_status_follows_the_worker(run_http, db, r):
    d, api, _ = run_http(db=db)
    j = api.post("/api/v1/reports/dummy", params={"report_id": "x"}).json
    wait_result(r, j["task_id"])
    time.sleep(1.5)
    st = api.get("/api/v1/reports/jobs/%d" % j["job_id"]).json
    if st["status"] == "queued":
        pytest.skip("the workers do not record job status in the store "
                    "yet (store_record in the worker)")

    def succeeded():
        x = api.get("/api/v1/reports/jobs/%d" % j["job_id"]).json
        return x if x["status"] == "succeeded" else None
    x = poll(succeeded, 10, 0.1, what="the job row to be succeeded")
    assert x["result"] == {"report_id": "x"}
    assert x["finished_at"] and x["started_at"]
    assert "succeeded" in [e["status"] for e in x["events"]]
    done = api.get("/api/v1/reports/jobs", params={"status": "completed"})
    assert j["job_id"] in [y["job_id"] for y in done.json["jobs"]]


def test_heavy_report_parameters(run_http, db, r):
    d, api, _ = run_http(db=db)
    a = api.post("/api/v1/reports/heavy", params={
        "report_type": "excel", "pages": 3, "processing_time": 1})
    assert a.status == 200, a
    assert (a.json["report_type"], a.json["pages"],
            a.json["processing_time"]) == ("excel", 3, 1)
    dj = api.get("/api/v1/reports/jobs/%d" % a.json["job_id"]).json
    assert dj["job_type"] == "heavy"
    assert dj["task_name"] == "reports.generate_heavy_report"
    assert dj["params"]["kwargs"] == {"report_type": "excel", "pages": 3,
                                      "processing_time": 1,
                                      "job_id": a.json["job_id"]}
    assert wait_result(r, a.json["task_id"])["result"] == {
        "file": "report.pdf"}
    # Defaults: pdf, 10 pages, 5 s (the design note's test posts only
    # the type).
    b = api.post("/api/v1/reports/heavy", params={"report_type": "pdf",
                                                  "processing_time": 1})
    assert b.status == 200 and b.json["pages"] == 10, b
    # JSON body too.
    c = api.post("/api/v1/reports/heavy", body={"report_type": "analysis",
                                                "pages": 2,
                                                "processing_time": 1})
    assert c.status == 200 and c.json["report_type"] == "analysis", c


def test_validation_errors_name_the_parameter(run_http, db):
    d, api, _ = run_http(db=db, http={"max_body": "1K"})
    heavy = "/api/v1/reports/heavy"
    assert_error(api.post(heavy, params={"report_type": "docx"}), 422,
                 "report_type")
    assert_error(api.post(heavy, params={"pages": "abc"}), 400, "pages")
    assert_error(api.post(heavy, params={"pages": "0"}), 422, "pages")
    assert_error(api.post(heavy, params={"pages": "1001"}), 422, "pages")
    assert_error(api.post(heavy, params={"pages": "2.5"}), 400, "pages")
    assert_error(api.post(heavy, params={"processing_time": "3601"}), 422,
                 "processing_time")
    assert_error(api.post(heavy, params={"processing_time": "-1"}), 422,
                 "processing_time")
    assert_error(api.post(heavy, body={"pages": [1]}), 400, "pages")
    assert_error(api.post(heavy, body="{not json"), 400, "body")
    assert_error(api.post("/api/v1/reports/dummy", body="[1, 2]"), 400,
                 "body")
    assert_error(api.post("/api/v1/reports/dummy",
                          params={"report_id": "x" * 300}), 422, "report_id")
    jobs = "/api/v1/reports/jobs"
    assert_error(api.get(jobs, params={"status": "done"}), 422, "status")
    assert_error(api.get(jobs, params={"limit": "0"}), 422, "limit")
    assert_error(api.get(jobs, params={"limit": "101"}), 422, "limit")
    assert_error(api.get(jobs, params={"limit": "ten"}), 400, "limit")
    assert_error(api.get(jobs, params={"offset": "-1"}), 422, "offset")
    assert_error(api.get(jobs + "/999999"), 404, "job_id")
    assert_error(api.get(jobs + "/bad%20id"), 400, "job_id")
    assert_error(api.delete(jobs + "/999999"), 404, "job_id")
    assert_error(api.get("/api/v1/nothing"), 404)
    assert_error(api.get("/nothing"), 404)
    a = api.get("/api/v1/reports/dummy")
    assert_error(a, 405)
    assert a.headers["Allow"] == "POST"
    assert_error(api.req("PUT", jobs), 405)
    # The body limit (1K here).
    assert_error(api.post("/api/v1/reports/dummy",
                          body={"report_id": "y" * 4000}), 413)
    # Nothing of this created a job (the store may record wait_ready's
    # celeriac.noop tasks).
    assert psql(db, "SELECT count(*) FROM jobs WHERE task_name LIKE "
                "'reports.%'") == [["0"]]
    d.assert_running()


def test_jobs_list_filters_and_pages(run_http, db, r):
    d, api, _ = run_http(db=db, queues={
        "reports": {"concurrency": 1}, "paused": {"concurrency": 0}},
        tasks={"reports.generate_dummy_report": {
            "run": "builtin:reports.dummy", "queue": "reports"},
            "reports.generate_heavy_report": {
            "run": "builtin:celeriac.noop", "queue": "paused"}})
    ids = [api.post("/api/v1/reports/dummy",
                    params={"report_id": "r%d" % i}).json for i in range(5)]
    heavy = api.post("/api/v1/reports/heavy",
                     params={"processing_time": 1}).json
    for j in ids:
        wait_result(r, j["task_id"])
    mine = [x["job_id"] for x in ids + [heavy]]
    a = api.get("/api/v1/reports/jobs", params={"limit": 100})
    assert a.status == 200, a
    # The store also records the tasks it sees that no API call made
    # (wait_ready's celeriac.noop): only ours are looked at.
    listed = [j["job_id"] for j in a.json["jobs"]
              if j["task_name"].startswith("reports.")]
    assert listed == sorted(mine, reverse=True)
    assert a.json["total"] == int(psql(db, "SELECT count(*) FROM jobs")[0][0])
    assert a.json["limit"] == 100 and a.json["offset"] == 0
    assert a.json["total_capped"] is False
    assert len(api.get("/api/v1/reports/jobs").json["jobs"]) == min(
        20, a.json["total"])
    page = api.get("/api/v1/reports/jobs", params={"limit": 2,
                                                   "offset": 2}).json
    assert [j["job_id"] for j in page["jobs"]] == [
        j["job_id"] for j in a.json["jobs"][2:4]]
    paused = api.get("/api/v1/reports/jobs", params={"queue": "paused"}).json
    assert [j["job_id"] for j in paused["jobs"]] == [heavy["job_id"]]
    q = api.get("/api/v1/reports/jobs", params={"status": "queued",
                                                "queue": "paused"}).json
    assert q["total"] == 1 and q["jobs"][0]["status"] == "queued"
    # "completed" is the design note's word for succeeded.
    done = api.get("/api/v1/reports/jobs", params={"status": "completed"})
    assert done.status == 200 and done.json["status"] == "succeeded"
    assert all(j["status"] == "succeeded" for j in done.json["jobs"])


def test_cancel_a_queued_job(run_http, db, r):
    d, api, _ = run_http(db=db, queues={
        "reports": {"concurrency": 1}, "paused": {"concurrency": 0}},
        tasks={"reports.generate_heavy_report": {
            "run": "builtin:celeriac.noop", "queue": "paused"}})
    j = api.post("/api/v1/reports/heavy",
                 params={"processing_time": 1}).json
    assert j["status"] == "queued" and j["queue"] == "paused"
    a = api.delete("/api/v1/reports/jobs/%d" % j["job_id"])
    assert a.status == 200, a
    assert a.json["status"] == "revoked"
    assert a.json["previous_status"] == "queued"
    dj = api.get("/api/v1/reports/jobs/%d" % j["job_id"]).json
    assert dj["status"] == "revoked" and dj["finished_at"]
    ev = dj["events"][-1]
    assert ev["status"] == "revoked" and ev["detail"]["by"] == "api"
    # Workers learn the revoke from the broker, like celery revoke's.
    assert r.zscore("celeriac.revoked", j["task_id"]) is not None
    assert_error(api.delete("/api/v1/reports/jobs/%d" % j["job_id"]), 409,
                 "job_id")


def test_cancel_a_running_job(run_http, db, r):
    d, api, mon = run_http(db=db, queues={"reports": {"concurrency": 1}})
    j = api.post("/api/v1/reports/heavy",
                 params={"processing_time": 60}).json

    def running():
        t = mon.get("/monitor/api/tasks", params={"view": "running"}).json
        return [x for x in t["tasks"] if x["task_id"] == j["task_id"]]
    poll(running, 10, 0.1, what="the heavy report to run")
    a = api.delete("/api/v1/reports/jobs/%d" % j["job_id"])
    assert a.status == 200 and a.json["status"] == "revoked", a
    # The worker running it is terminated (and replaced).
    poll(lambda: not running(), 15, 0.1, what="the task to stop")
    m = poll(lambda: celery_state(r, j["task_id"]), 10, 0.1,
             what="a result for the revoked task")
    assert m["status"] != "SUCCESS"

    def worker_back():
        h = api.get("/health")
        return h.status == 200
    poll(worker_back, 15, 0.2, what="a live reports worker again")
    time.sleep(1)
    dj = api.get("/api/v1/reports/jobs/%d" % j["job_id"]).json
    assert dj["status"] == "revoked", dj
    assert_error(api.delete("/api/v1/reports/jobs/%d" % j["job_id"]), 409)


def test_redis_down_jobs_wait_in_the_database(run_http, db, redis_server,
                                              celeriacd_at):
    rs = redis_server()
    d, api, _ = run_http(db=db, redis_url=rs.url, factory=celeriacd_at,
                         queues={"reports": {"concurrency": 1}})
    rs.stop()
    a = api.post("/api/v1/reports/dummy", params={"report_id": "offline"})
    assert a.status == 200, a
    assert a.json["status"] == "pending" and a.json["broker"] == "unavailable"
    assert isinstance(a.json["job_id"], int)
    dj = api.get("/api/v1/reports/jobs/%d" % a.json["job_id"]).json
    assert dj["status"] == "pending"
    h = api.get("/health")
    assert h.status == 503 and "broker" in h.json["failing"], h
    rs.start()

    def sent():
        x = api.get("/api/v1/reports/jobs/%d" % a.json["job_id"]).json
        return x if x["status"] != "pending" else None
    x = poll(sent, 15, 0.2, what="the pending job to be sent")
    assert [e["status"] for e in x["events"]][:2] == ["pending", "queued"]
    c = rs.client()
    try:
        m = wait_result(c, a.json["task_id"], timeout=30)
    finally:
        c.close()
    assert m["result"] == {"report_id": "offline"}


class TcpProxy:
    """A loopback TCP forwarder to target_port that can be switched on
    late: a database that is down, then back."""

    def __init__(self, target_port):
        self.port = free_port()
        self.target = target_port
        self.sock = None
        self.conns = []

    def start(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.sock:
            self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def test_database_down_message_sent_row_written_later(run_http, db, r):
    u = urllib.parse.urlsplit(db)
    proxy = TcpProxy(u.port)
    via = urllib.parse.urlunsplit(u._replace(
        netloc="%s@127.0.0.1:%d" % (u.username, proxy.port)))
    d, api, _ = run_http(db=via)
    try:
        a = api.post("/api/v1/reports/dummy", params={"report_id": "no-db"})
        assert a.status == 200, a
        assert a.json["status"] == "queued"
        assert a.json["database"] == "unavailable"
        assert a.json["job_id"] is None
        assert wait_result(r, a.json["task_id"])["result"] == {
            "report_id": "no-db"}
        assert_error(api.get("/api/v1/reports/jobs"), 503)
        h = api.get("/health")
        assert h.status == 503 and h.json["failing"] == ["database"], h
        # The database comes back: the spooled row is written.
        proxy.start()

        def written():
            x = api.get("/api/v1/reports/jobs/" + a.json["task_id"])
            return x.json if x.status == 200 else None
        x = poll(written, 20, 0.2, what="the spooled job row")
        assert x["params"]["args"] == ["no-db"]
        assert x["task_name"] == "reports.generate_dummy_report"
        poll(lambda: api.get("/health").status == 200, 10, 0.2,
             what="/health to recover")
    finally:
        d.stop()
        proxy.stop()


def test_no_database_and_no_broker_refuses(run_http):
    d, api, _ = run_http(db=None)
    a = api.post("/api/v1/reports/dummy")
    assert a.status == 200 and a.json["database"] == "not configured", a
    assert_error(api.get("/api/v1/reports/jobs"), 503)


def test_queues_status(run_http, db, r, celery_app):
    d, api, _ = run_http(db=db, queues={
        "reports": {"concurrency": 2, "priority": 5},
        "paused": {"concurrency": 0}},
        tasks={"reports.generate_dummy_report": {
            "run": "builtin:reports.dummy", "queue": "reports"},
            "reports.generate_heavy_report": {
            "run": "builtin:celeriac.noop", "queue": "paused"}})
    api.post("/api/v1/reports/heavy", params={"processing_time": 1})
    for prio in (0, 3, 9, 9):
        celery_app.send_task("celeriac.noop", queue="paused", priority=prio)
    j = api.post("/api/v1/reports/dummy").json
    wait_result(r, j["task_id"])
    time.sleep(6)       # one sampler period: ages and rates
    a = api.get("/api/v1/reports/queues/status")
    assert a.status == 200 and a.json["broker"] == "ok", a
    qs = {q["name"]: q for q in a.json["queues"]}
    p = qs["paused"]
    assert p["depth"] == {"0": 2, "3": 1, "6": 0, "9": 2}
    assert p["messages"] == 5
    assert p["workers"]["idle"] + p["workers"]["busy"] == 0
    assert p["oldest_message_age_seconds"] >= 5
    assert p["oldest_message_age_exact"] is True
    rep = qs["reports"]
    assert rep["concurrency"] == 2 and rep["priority"] == 5
    assert rep["workers"]["idle"] + rep["workers"]["busy"] == 2
    assert rep["messages"] == 0 and rep["oldest_message_age_seconds"] == 0
    assert rep["totals"]["succeeded"] >= 2     # noop of wait_ready + dummy
    assert rep["rates"]["processed_per_second"] > 0
    assert a.json["scheduled"] == 0


# ------------------------------------------------------------- auth, limits

def test_bearer_token_guards_writes(run_http, db, r):
    d, api, mon = run_http(db=db, token=True)
    anon = Http(int(api.base.rsplit(":", 1)[1]))
    a = anon.post("/api/v1/reports/dummy")
    assert_error(a, 401, "Authorization")
    assert a.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(anon.post("/api/v1/reports/dummy", token="wrong-token"), 401)
    assert anon.get("/api/v1/reports/jobs").status == 200
    ok = api.post("/api/v1/reports/dummy", params={"report_id": "t"})
    assert ok.status == 200, ok
    assert_error(anon.delete("/api/v1/reports/jobs/%d" % ok.json["job_id"]),
                 401)
    wait_result(r, ok.json["task_id"])
    # The monitor's buttons need it too.
    manon = Http(int(mon.base.rsplit(":", 1)[1]))
    assert_error(manon.post("/monitor/api/tasks/%s/retry"
                            % ok.json["task_id"]), 401)
    again = mon.post("/monitor/api/tasks/%s/retry" % ok.json["task_id"])
    assert again.status == 200, again
    assert again.json["task_id"] != ok.json["task_id"]
    assert wait_result(r, again.json["task_id"])["result"] == {
        "report_id": "t"}


def test_monitor_actions_are_off_without_a_token(run_http, db):
    d, api, mon = run_http(db=db)
    assert_error(mon.post("/monitor/api/tasks/%s/revoke" % uuid.uuid4()),
                 403)
    assert mon.get("/monitor/api/overview").json["auth"] is False


def test_rate_limit(run_http):
    d, api, _ = run_http(http={"rate_limit": 5})
    codes = [api.get("/api/v1/reports/queues/status") for _ in range(40)]
    limited = [a for a in codes if a.status == 429]
    assert limited, [a.status for a in codes]
    assert_error(limited[0], 429)
    assert limited[0].headers["Retry-After"] == "1"
    time.sleep(1.2)
    assert api.get("/health").status in (200, 503)


def test_garbage_and_load_do_not_hurt(run_http, db):
    d, api, mon = run_http(db=db)
    port = int(api.base.rsplit(":", 1)[1])
    for junk in (b"\x00\xff garbage\r\n\r\n", b"GET /" + b"a" * 70000 +
                 b" HTTP/1.1\r\n\r\n", b"POST /api/v1/reports/dummy HTTP/1.1"
                 b"\r\nContent-Length: 99999999999\r\n\r\n", b"GET"):
        # The server may answer 400/413/414 or close at once: both fine.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)
            except OSError:
                pass
    errors = []

    def hammer(k):
        try:
            for i in range(15):
                path = ("/metrics", "/health", "/api/v1/reports/jobs",
                        "/api/v1/reports/queues/status")[(k + i) % 4]
                a = api.get(path)
                if a.status not in (200, 503):
                    errors.append((path, a.status))
            mon.get("/monitor/api/overview")
        except Exception as e:  # noqa: BLE001 - report any failure
            errors.append(repr(e))
    ts = [threading.Thread(target=hammer, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:5]
    assert api.get("/health").status == 200
    d.assert_running()


# ------------------------------------------------------------ /metrics

def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics_match_the_tasks_run(run_http, db, r, celery_app):
    d, api, _ = run_http(db=db)
    jobs = [api.post("/api/v1/reports/dummy").json for _ in range(4)]
    fails = [celery_app.send_task("celeriac.fail", args=["boom"],
                                  queue="reports") for _ in range(2)]
    for j in jobs:
        wait_result(r, j["task_id"])
    for f in fails:
        wait_result(r, f.id, "FAILURE")
    time.sleep(0.3)
    a = api.get("/metrics")
    assert a.status == 200
    assert a.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(a.text)
    lbl = 'job_type="reports.generate_dummy_report",%squeue="reports"'
    assert m["report_jobs_total{%s}" % (lbl % 'status="succeeded",')] == 4
    assert m["report_jobs_total{%s}" % (lbl % 'status="failed",')] == 0
    assert m["report_jobs_duration_seconds_count{%s}" % (lbl % "")] == 4
    assert m['report_jobs_duration_seconds_bucket{%s,le="+Inf"}'
             % (lbl % "")] == 4
    assert m['report_jobs_total{job_type="celeriac.fail",status="failed",'
             'queue="reports"}'] == 2
    # wait_ready's celeriac.noop, one per queue.
    assert m['report_jobs_total{job_type="celeriac.noop",status="succeeded",'
             'queue="celery"}'] == 1
    assert m["report_jobs_active{%s}" % (lbl % "")] == 0
    assert m["report_jobs_retries_total{%s}" % (lbl % "")] == 0
    assert m['celeriac_workers{queue="reports",state="idle"}'] == 2
    assert m['celeriac_workers{queue="celery",state="idle"}'] == 1
    assert m['celeriac_queue_depth{queue="reports",priority="0"}'] == 0
    assert m['celeriac_queue_parked{queue="reports"}'] == 0
    for reason in ("clean", "recycle", "cannot_run", "killed", "crash"):
        assert m['celeriac_worker_restarts_total{queue="reports",'
                 'reason="%s"}' % reason] == 0
    assert m['celeriac_time_limit_kills_total{queue="reports"}'] == 0
    assert m["celeriac_dead_letters"] == 0
    assert m["celeriac_broker_up"] == 1 and m["celeriac_database_up"] == 1
    assert m["celeriac_up"] == 1
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool missing (apt-get install prometheus)")
    out = subprocess.run([promtool, "check", "metrics"], input=a.text,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_metrics_beat_and_broken_broker_keys(run_http, r):
    d, api, _ = run_http(beat={"tick": {"task": "celeriac.noop",
                                        "every": "1s"}})

    def fired():
        m = parse_metrics(api.get("/metrics").text)
        return m.get('celeriac_beat_last_fire_timestamp_seconds'
                     '{entry="tick"}') and m
    m = poll(fired, 10, 0.2, what="a beat fire in /metrics")
    assert abs(m['celeriac_beat_last_fire_timestamp_seconds{entry="tick"}']
               - time.time()) < 5
    assert 0 <= m['celeriac_beat_last_fire_lag_seconds{entry="tick"}'] < 5
    # A key of ours with the wrong type must not break the scrape.
    r.delete("celeriac.dead")
    r.set("celeriac.dead", "not a list")
    a = api.get("/metrics")
    assert a.status == 200 and "celeriac_up 1" in a.text
    m = parse_metrics(a.text)
    assert m["celeriac_broker_up"] == 1 and "celeriac_dead_letters" not in m
    assert m['celeriac_queue_depth{queue="reports",priority="0"}'] == 0
    r.delete("celeriac.dead")
    assert parse_metrics(api.get("/metrics").text)["celeriac_dead_letters"] \
        == 0


def test_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool missing (apt-get install prometheus)")
    out = subprocess.run([promtool, "check", "rules", str(ALERTS)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    names = {"CeleriacQueueBacklog", "CeleriacQueueParked",
             "CeleriacNoLiveWorkers", "CeleriacHighFailureRatio",
             "CeleriacBeatSilent"}
    assert all(n in ALERTS.read_text() for n in names)


ALERT_TESTS = """
rule_files: [%s]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'celeriac_up{instance="h:8000",job="celeriac"}'
        values: '1x40'
      - series: 'celeriac_queue_depth{instance="h:8000",queue="reports",priority="0"}'
        values: '500x40'
      - series: 'celeriac_queue_parked{instance="h:8000",queue="reports"}'
        values: '0 0 1x38'
      - series: 'celeriac_workers{instance="h:8000",queue="reports",state="idle"}'
        values: '0x40'
      - series: 'celeriac_workers{instance="h:8000",queue="reports",state="busy"}'
        values: '0x40'
      - series: 'celeriac_queue_concurrency{instance="h:8000",queue="reports"}'
        values: '2x40'
      - series: 'report_jobs_total{instance="h:8000",job_type="t",queue="reports",status="failed"}'
        values: '0+6x40'
      - series: 'report_jobs_total{instance="h:8000",job_type="t",queue="reports",status="succeeded"}'
        values: '0+4x40'
      - series: 'celeriac_beat_last_fire_timestamp_seconds{instance="h:8000",entry="health-check"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: CeleriacQueueBacklog
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:8000", queue: reports}
      - eval_time: 30m
        alertname: CeleriacQueueParked
        exp_alerts:
          - exp_labels: {severity: critical, instance: "h:8000", queue: reports}
      - eval_time: 30m
        alertname: CeleriacNoLiveWorkers
        exp_alerts:
          - exp_labels: {severity: critical, instance: "h:8000", queue: reports}
      - eval_time: 30m
        alertname: CeleriacHighFailureRatio
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:8000", queue: reports, job_type: t}
      - eval_time: 30m
        alertname: CeleriacBeatSilent
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:8000"}
      - eval_time: 30m
        alertname: CeleriacDown
        exp_alerts: []
"""


def test_alert_rules_fire(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool missing (apt-get install prometheus)")
    yaml = pytest.importorskip("yaml")
    # The expressions and labels are tested; the annotation templates
    # only by check rules above (promtool compares annotations exactly).
    rules = yaml.safe_load(ALERTS.read_text())
    for g in rules["groups"]:
        for rule in g["rules"]:
            rule.pop("annotations", None)
    bare = tmp_path / "alerts.yml"
    bare.write_text(yaml.safe_dump(rules))
    t = tmp_path / "alerts_test.yml"
    t.write_text(ALERT_TESTS % json.dumps(str(bare)))
    out = subprocess.run([promtool, "test", "rules", str(t)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------- /health

def test_health_names_a_queue_without_live_worker(run_http, db, celery_app):
    d, api, _ = run_http(db=db, crash_limit=1, queues={
        "reports": {"concurrency": 1}, "fragile": {"concurrency": 1}})
    a = api.get("/health")
    assert a.status == 200, a
    assert a.json["status"] == "ok"
    c = a.json["components"]
    assert c["broker"]["status"] == "ok" and c["database"]["status"] == "ok"
    assert c["queues"]["fragile"] == {"status": "ok", "live": 1,
                                      "configured": 1}
    celery_app.send_task("celeriac.crash", queue="fragile")

    def failing():
        h = api.get("/health")
        return h if h.status == 503 else None
    h = poll(failing, 15, 0.1, what="/health to fail")
    assert h.json["status"] == "fail"
    assert "queue fragile" in h.json["failing"]
    assert "queue reports" not in h.json["failing"]
    d.expect_returncode = None


# ------------------------------------------------------------- monitor

def test_monitor_api(run_http, db, r):
    d, api, mon = run_http(db=db)
    j = api.post("/api/v1/reports/dummy", params={"report_id": "m"}).json
    wait_result(r, j["task_id"])
    o = mon.get("/monitor/api/overview").json
    assert {w["queue"] for w in o["workers"]} == {"reports", "celery"}
    assert all(w["pid"] > 0 for w in o["workers"])
    assert {p["role"] for p in o["processes"]} >= {"control", "http"}
    assert o["database"] is True and o["broker"] == "ok"
    t = mon.get("/monitor/api/tasks", params={"view": "recent"}).json
    assert t["source"] == "database"
    assert j["task_id"] in [x["task_id"] for x in t["tasks"]]
    s = mon.get("/monitor/api/tasks", params={"view": "recent",
                                              "q": j["task_id"][:8]}).json
    assert [x["task_id"] for x in s["tasks"]] == [j["task_id"]]
    s = mon.get("/monitor/api/tasks", params={"q": "GENERATE_DUMMY"}).json
    assert j["task_id"] in [x["task_id"] for x in s["tasks"]]
    det = mon.get("/monitor/api/tasks/" + j["task_id"]).json
    assert det["job_id"] == j["job_id"] and det["params"]["args"] == ["m"]
    assert_error(mon.get("/monitor/api/tasks", params={"view": "x"}), 422,
                 "view")
    assert_error(mon.get("/monitor/api/tasks/" + str(uuid.uuid4())), 404)
    ser = mon.get("/monitor/api/series").json
    assert ser["interval"] > 0 and ser["queues"]
    assert ser["samples"] and "depth" in ser["samples"][-1]
    page = mon.get("/")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "Content-Security-Policy" in page.headers
    assert mon.get("/monitor.js").status == 200
    assert mon.get("/monitor.css").status == 200
    # The API listener does not serve the monitor, and the reverse.
    assert api.get("/monitor/api/overview").status == 404
    assert mon.get("/api/v1/reports/jobs").status == 404


def test_monitor_without_database_reads_results(run_http, r):
    d, api, mon = run_http(db=None)
    j = api.post("/api/v1/reports/dummy", params={"report_id": "nodb"}).json
    wait_result(r, j["task_id"])
    t = mon.get("/monitor/api/tasks", params={"view": "recent"}).json
    assert t["source"] == "results"
    assert j["task_id"] in [x["task_id"] for x in t["tasks"]]
    det = mon.get("/monitor/api/tasks/" + j["task_id"]).json
    assert det["meta"]["status"] == "SUCCESS"


def png_is_not_blank(path):
    """Decode the PNG (stdlib only) and check it has some variety."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width = struct.unpack(">I", chunk[:4])[0]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    sample = raw[::97]
    return width > 0 and len(set(sample)) > 16


def chromium(url, tmp_path, *args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("chromium is missing: apt-get install chromium")
        pytest.skip("chromium missing (apt-get install chromium)")
    prof = tmp_path / ("chrome-%s" % uuid.uuid4().hex[:6])
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=%s" % prof,
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
           "--window-size=1366,900"] + list(args) + [url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    shutil.rmtree(prof, ignore_errors=True)
    return out


def test_monitor_page_in_chromium(run_http, db, r, tmp_path):
    d, api, mon = run_http(db=db)
    j = api.post("/api/v1/reports/dummy", params={"report_id": "shot"}).json
    api.post("/api/v1/reports/heavy", params={"processing_time": 1})
    wait_result(r, j["task_id"])
    time.sleep(6)       # two samples for the graphs
    o = mon.get("/monitor/api/overview").json
    pids = [str(w["pid"]) for w in o["workers"]]

    out = chromium(mon.base + "/", tmp_path, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines()
               if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    dom = out.stdout
    assert any(">%s<" % p in dom for p in pids), "no worker pid on the page"
    assert j["task_id"] in dom, "the finished task is not listed"
    assert "succeeded" in dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "monitor.png"
    if shot.exists():
        shot.unlink()
    out = chromium(mon.base + "/", tmp_path, "--screenshot=%s" % shot)
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines()
               if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert png_is_not_blank(shot), "the screenshot is blank"
