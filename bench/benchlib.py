"""Helpers of bench/run: private services, the contenders (celeriacd, a
Celery prefork worker, RQ workers, the hiredis ceiling), the producer,
/proc accounting and statistics.  Run with /usr/bin/python3 (Debian's,
which has celery, redis and rq)."""

import datetime
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid

BENCHDIR = pathlib.Path(__file__).resolve().parent
SRCDIR = BENCHDIR.parent
PYTHON = "/usr/bin/python3"
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUEUE = "q"
RESULT_PREFIX = "celery-task-meta-"
STAGING = "bench.staging"

# The Celery worker's flags: the fastest documented set, and the defaults.
CELERY_FAST_FLAGS = ["--without-mingle", "--without-gossip",
                     "--without-heartbeat"]


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------- statistics

def median(xs):
    return statistics.median(xs) if xs else None


def percentile(xs, p):
    """Nearest-rank percentile of a list (p in 0..100)."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": median(xs), "min": min(xs), "max": max(xs),
            "n": len(xs), "values": xs}


# ------------------------------------------------------------------ /proc

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def proc_ppid(pid):
    try:
        return int(_stat_fields(pid)[1])
    except (OSError, ValueError):
        return None


def proc_cpu(pid, children=True):
    """utime+stime (+ cutime+cstime: reaped children) of pid, seconds."""
    try:
        f = _stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(f[11]) + int(f[12])
    if children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root):
    """Live descendants of root (not root itself)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            f = _stat_fields(pid)
        except OSError:
            continue
        if f[0] == "Z":
            continue
        kids.setdefault(int(f[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def tree_cpu(root):
    """CPU seconds of root (with its reaped children) and of its live
    descendants.  A descendant that is reaped between two samples moves
    from its own figure to its parent's cutime: the total stays right."""
    total = proc_cpu(root)
    for p in descendants(root):
        total += proc_cpu(p)
    return total


def proc_mem(pid):
    """(rss_kb, pss_kb) from /proc/PID/smaps_rollup, or None."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rss = pss = None
    for line in text.splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return (rss, pss)


# ------------------------------------------------------------------ misc

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_date_done(s):
    """Celery's naive-UTC isoformat date_done -> unix seconds."""
    if s is None:
        return None
    d = datetime.datetime.fromisoformat(s.rstrip("Z"))
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def process_age(pid):
    """Seconds since process pid started, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        # Fields after the command name; starttime is field 22.
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start / os.sysconf("SC_CLK_TCK")


def poll(fn, timeout, interval=0.005, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def yaml_dump(obj, indent=0):
    """Block YAML of nested dicts, JSON-quoted scalars (valid YAML)."""
    out = []
    pad = " " * indent
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append("%s%s:" % (pad, k))
            out.append(yaml_dump(v, indent + 2))
        elif isinstance(v, bool):
            out.append("%s%s: %s" % (pad, k, "true" if v else "false"))
        elif isinstance(v, int):
            out.append("%s%s: %d" % (pad, k, v))
        else:
            out.append("%s%s: %s" % (pad, k, json.dumps(str(v))))
    return "\n".join(x for x in out if x)


# ------------------------------------------------------------- services

class Services:
    """Private Redis (and PostgreSQL) through tests/services.sh."""

    def __init__(self, workdir, with_pg=False):
        self.dir = pathlib.Path(workdir) / "services"
        self.with_pg = with_pg
        self.env = {}

    def start(self):
        env = dict(os.environ)
        if not self.with_pg:
            env["SERVICES_NO_PG"] = "1"
        subprocess.run([str(SRCDIR / "tests" / "services.sh"), "start",
                        str(self.dir)], check=True, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for line in (self.dir / "env").read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v
        self.redis_url = self.env["REDIS_URL"]
        self.redis_port = int(self.env["REDIS_PORT"])
        self.redis_pid = int((self.dir / "redis" / "redis.pid").read_text())
        self.database_url = self.env.get("DATABASE_URL")
        self.pg_pid = None
        if self.database_url:
            base = self.dir / "pg"
            if (self.dir / "pg.path").exists():
                base = pathlib.Path((self.dir / "pg.path").read_text()
                                    .strip())
            try:
                self.pg_pid = int((base / "data" / "postmaster.pid")
                                  .read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return self

    def stop(self):
        subprocess.run([str(SRCDIR / "tests" / "services.sh"), "stop",
                        str(self.dir)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)

    def redis_cpu(self):
        return proc_cpu(self.redis_pid)

    def pg_cpu(self):
        """CPU of the PostgreSQL server: postmaster, backends, helpers."""
        return tree_cpu(self.pg_pid) if self.pg_pid else 0.0


# --------------------------------------------------------- Celery client

def make_celery_app(url):
    from celery import Celery
    app = Celery("celeriac-bench-client", broker=url, backend=url,
                 set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json",
                    accept_content=["json"], result_accept_content=["json"])
    return app


def close_celery_app(app):
    try:
        backend = app.backend
        for mapping in backend._pending_results:
            mapping.clear()
        consumer = backend.result_consumer
        consumer.stop()
        consumer._pubsub = None
    except Exception:
        pass
    try:
        app.close()
    except Exception:
        pass


def message_id(raw):
    return json.loads(raw)["headers"]["id"]


class Template:
    """Messages made once by a stock Celery client, in consumption order,
    re-loaded byte for byte before each run so that every contender
    consumes identical messages."""

    def __init__(self, raws):
        self.raws = raws
        self.ids = [message_id(x) for x in raws]

    def __len__(self):
        return len(self.raws)


def produce(app, r, specs):
    """specs: list of (task, args, options).  Sends them with send_task
    through one reused producer to the bench queue (no worker runs), then
    takes them out of Redis: a Template in consumption order."""
    r.delete(QUEUE)
    with app.producer_or_acquire() as producer:
        for task, args, options in specs:
            app.send_task(task, args=args, queue=QUEUE, producer=producer,
                          **options)
    raws = r.lrange(QUEUE, 0, -1)
    r.delete(QUEUE)
    if len(raws) != len(specs):
        raise RuntimeError("produced %d messages, found %d"
                           % (len(specs), len(raws)))
    # kombu LPUSHes and workers pop from the right: oldest last.
    return Template(list(reversed(raws)))


def load(r, tmpl, copies=1):
    """Put the template in the queue at once: stage all but the first
    message, RENAME the staging list onto the queue and RPUSH the first
    one (at the consuming end) in the same transaction, so that idle
    workers are woken (BRPOP and list keyspace events) and see the whole
    backlog.  With copies > 1 the middle of the template repeats (the
    first and last messages stay single)."""
    first, middle, last = tmpl.raws[0], tmpl.raws[1:-1], tmpl.raws[-1:]
    r.delete(STAGING)
    p = r.pipeline(transaction=False)
    n = 0
    for _ in range(copies):
        for i in range(0, len(middle), 1000):
            p.lpush(STAGING, *middle[i:i + 1000])
            n += 1
            if n % 20 == 0:
                p.execute()
    if last and len(tmpl.raws) > 1:
        p.lpush(STAGING, *last)
    p.execute()
    t = r.pipeline(transaction=True)
    if len(tmpl.raws) > 1:
        t.rename(STAGING, QUEUE)
    t.rpush(QUEUE, first)
    t.execute()
    return time.time()


def result_meta(r, task_id):
    v = r.get(RESULT_PREFIX + task_id)
    return json.loads(v) if v is not None else None


def date_done(r, task_id):
    m = result_meta(r, task_id)
    return parse_date_done(m.get("date_done")) if m else None


def count_results(r):
    n = 0
    for _ in r.scan_iter(match=RESULT_PREFIX + "*", count=10000):
        n += 1
    return n


# ------------------------------------------------------------ contenders

class Contender:
    label = "?"
    proc = None

    def __init__(self, ctx, concurrency):
        self.ctx = ctx
        self.concurrency = concurrency
        self.logf = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _popen(self, argv, env, logname):
        logpath = self.ctx.workdir / logname
        self.logf = open(logpath, "ab")
        self.log_path = logpath
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     env=env, cwd=str(self.ctx.workdir),
                                     start_new_session=True)

    def wait_ready(self, timeout=60):
        """A celeriac.noop round trip through the pool."""
        res = self.ctx.app.send_task("celeriac.noop", queue=QUEUE)
        deadline = time.monotonic() + timeout
        while not res.ready():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during start; see %s"
                                   % (self.label, self.proc.returncode,
                                      self.log_path))
            if time.monotonic() > deadline:
                raise TimeoutError("%s not ready after %ss; see %s"
                                   % (self.label, timeout, self.log_path))
            time.sleep(0.01)
        res.get(timeout=1)
        return self

    def stop(self, timeout=20):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.logf:
            self.logf.close()
            self.logf = None
        self.proc = None

    def cpu(self):
        return tree_cpu(self.proc.pid)

    def children(self):
        return [p for p in descendants(self.proc.pid)
                if proc_ppid(p) == self.proc.pid]

    def workers(self):
        return self.children()

    def memory(self):
        """{'master': (rss, pss), 'children': [(rss, pss)...]} in kB."""
        return {"master": proc_mem(self.proc.pid),
                "children": [m for m in (proc_mem(p)
                                         for p in sorted(self.workers()))
                             if m]}


class Celeriacd(Contender):
    label = "celeriac"

    def __init__(self, ctx, concurrency, queue_extra=None, top_extra=None):
        super().__init__(ctx, concurrency)
        q = {"concurrency": concurrency}
        q.update(queue_extra or {})
        cfg = {
            "broker": ctx.services.redis_url,
            "result_backend": ctx.services.redis_url,
            "hostname": "bench",
            "log": {"level": "info"},
            "crash_limit": 0,
            "shutdown_timeout": "5s",
        }
        cfg.update(top_extra or {})
        cfg["queues"] = {QUEUE: q}
        self.cfg = ctx.workdir / ("celeriac-%s.yml" % uuid.uuid4().hex[:8])
        self.cfg.write_text(yaml_dump(cfg) + "\n")
        self.argv = [str(ctx.builddir / "celeriacd"), "-c", str(self.cfg)]

    def start(self, ready=True):
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "DATABASE_URL", "ENVIRONMENT",
                            "CELERIAC_CONFIG")}
        self._popen(self.argv, env, "celeriacd.log")
        if ready:
            self.wait_ready()
        return self

    def workers(self):
        return [p for p in self.children()
                if "celeriacd: worker" in proc_cmdline(p)]

    def memory(self):
        m = super().memory()
        others = [p for p in self.children() if p not in self.workers()]
        m["other"] = [proc_mem(p) for p in others]
        return m


class CeleryWorker(Contender):
    label = "celery"

    def __init__(self, ctx, concurrency, fast_flags=True, track_started=False):
        super().__init__(ctx, concurrency)
        self.argv = [PYTHON, "-m", "celery", "-A", "celeryapp", "worker",
                     "-c", str(concurrency), "-Q", QUEUE]
        if fast_flags:
            self.argv += CELERY_FAST_FLAGS
        self.argv += ["-P", "prefork", "--loglevel=warning",
                      "-n", "bench@%h"]
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = str(BENCHDIR)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env["BENCH_REDIS_URL"] = ctx.services.redis_url
        self.env["BENCH_TRACK_STARTED"] = "1" if track_started else "0"

    def start(self, ready=True):
        self._popen(self.argv, self.env, "celery.log")
        if ready:
            self.wait_ready()
        return self


def rq_worker_argv(url, simple):
    argv = ["/usr/bin/rq", "worker", "--burst", "-u", url,
            "--logging_level", "WARNING"]
    if simple:
        argv += ["-w", "rq.worker.SimpleWorker"]
    return argv + [QUEUE]


def run_rq_workers(ctx, n, simple, timeout):
    """Start n burst-mode RQ workers on the (filled) queue, wait until they
    exit; returns CPU seconds of the workers and their work horses (from
    wait4), start-up included."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BENCHDIR)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    logf = open(ctx.workdir / "rq.log", "ab")
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen(
                rq_worker_argv(ctx.services.redis_url, simple),
                stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, env=env, cwd=str(ctx.workdir),
                start_new_session=True))
        cpu = 0.0
        deadline = time.monotonic() + timeout
        for p in procs:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid == p.pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    cpu += ru.ru_utime + ru.ru_stime
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("RQ workers did not finish")
                time.sleep(0.02)
        return cpu
    finally:
        for p in procs:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        logf.close()


def rq_job_times(r, ids):
    """(started_at, ended_at, status) of RQ jobs, as unix seconds."""
    p = r.pipeline(transaction=False)
    for i in ids:
        p.hmget("rq:job:" + i, "started_at", "ended_at", "status")
    out = []
    for s, e, st in p.execute():
        out.append((parse_date_done(s.decode()) if s else None,
                    parse_date_done(e.decode()) if e else None,
                    st.decode() if st else None))
    return out


def build_ceiling(workdir):
    exe = pathlib.Path(workdir) / "ceiling"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "hiredis"],
                           check=True, capture_output=True,
                           text=True).stdout.split()
    subprocess.run(["gcc", "-O2", "-o", str(exe),
                    str(BENCHDIR / "ceiling.c")] + flags, check=True)
    return exe


def run_ceiling(ctx, mode, conns):
    out = subprocess.run([str(ctx.ceiling), "127.0.0.1",
                          str(ctx.services.redis_port), QUEUE, mode,
                          str(conns)], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    return dict((k, float(v)) for k, v in
                (x.split("=") for x in out.split()))
