"""Fixtures for the integration tests: a private Redis, celeriacd runs, a
stock Celery client, and helpers to wait on conditions with a deadline.

Run with /usr/bin/python3 (the Debian one, which has celery):

    CELERIAC_BUILDDIR=/path/to/build /usr/bin/python3 -m pytest tests/integration

tests/run-all starts the services with tests/services.sh and exports
CELERIAC_SERVICES_DIR; without it the session starts its own (in a pytest
temp dir) and stops them at the end.  The session Redis is FLUSHALLed
before each test, so never point these tests at a Redis you care about.
"""

import json
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import redis as redis_mod

SRCDIR = pathlib.Path(__file__).resolve().parents[2]
BUILDDIR = pathlib.Path(os.environ.get("CELERIAC_BUILDDIR", SRCDIR / "_build"))
FIXTURES = SRCDIR / "tests" / "fixtures" / "celery"
PYTHON = "/usr/bin/python3"

# Variables celeriacd and celeriac read: never leak the caller's into a run.
_CONFIG_ENV = ("REDIS_URL", "DATABASE_URL", "ENVIRONMENT", "CELERIAC_CONFIG")


# ---------------------------------------------------------------- helpers

def poll(fn, timeout=10.0, interval=0.05, what=None):
    """Call fn() until it returns something truthy; return that value.
    Raise AssertionError when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what or getattr(fn, "__name__", fn)))
        time.sleep(interval)


def free_port():
    """A loopback TCP port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
    return env


def binary(name):
    path = BUILDDIR / name
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (CELERIAC_BUILDDIR=%s)" % (path, BUILDDIR))
    return str(path)


_PLAIN = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_./@+-]*\Z")
_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_./@+:-]*(?<!:)\Z")
_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z"
                     r"|0x[0-9a-fA-F]+\Z|0o?[0-7]+\Z|\.(inf|nan)\Z", re.I)
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def _yaml_scalar(v, block=False):
    """A scalar: plain when YAML reads it back as the same string,
    double-quoted (JSON escapes are valid YAML) otherwise."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    plain = _PLAIN_BLOCK if block else _PLAIN
    if (plain.match(s) and s.lower() not in _RESERVED
            and not _NUMBER.match(s)):
        return s
    return json.dumps(s, ensure_ascii=False)


def _yaml_flow(v):
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (_yaml_scalar(k), _yaml_flow(x))
                               for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    return _yaml_scalar(v)


def to_yaml(obj, indent=0):
    """Block-style YAML for a dict of dicts; leaves in flow style."""
    out = []
    pad = " " * indent
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            out.append("%s%s:" % (pad, _yaml_scalar(k)))
            out.append(to_yaml(v, indent + 2))
        else:
            leaf = (_yaml_flow(v) if isinstance(v, (dict, list, tuple))
                    else _yaml_scalar(v, block=True))
            out.append("%s%s: %s" % (pad, _yaml_scalar(k), leaf))
    return "\n".join(out)


def make_celery_app(url):
    from celery import Celery
    app = Celery("celeriac-tests", broker=url, backend=url,
                 set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_connection_max_retries=3,
        redis_socket_timeout=30,
    )
    return app


def close_celery_app(app):
    # Forget pending results, so AsyncResult.__del__ later (even at exit,
    # with Redis gone) has nothing to unsubscribe.
    try:
        backend = app.backend
        for mapping in backend._pending_results:
            mapping.clear()
        consumer = backend.result_consumer
        consumer.stop()
        consumer._pubsub = None
        consumer.subscribed_to = set()
    except Exception:
        pass
    try:
        app.close()
    except Exception:
        pass


def proc_stat(pid):
    """(ppid, pgrp, state) of pid from /proc, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), fields[0]


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def dead_letters(r):
    """The celeriac.dead entries, oldest first, parsed."""
    return [json.loads(x) for x in reversed(r.lrange("celeriac.dead", 0, -1))]


def queue_lists(name):
    """The Redis lists kombu uses for a queue's priority buckets."""
    return [name] + ["%s\x06\x16%d" % (name, p) for p in (3, 6, 9)]


# --------------------------------------------------------------- services

def _read_env(path):
    env = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """{'REDIS_URL': ..., 'DATABASE_URL': ..., ...} of private services."""
    given = os.environ.get("CELERIAC_SERVICES_DIR")
    if given:
        yield _read_env(pathlib.Path(given) / "env")
        return
    d = tmp_path_factory.mktemp("services")
    subprocess.run([str(SRCDIR / "tests" / "services.sh"), "start", str(d)],
                   check=True, stdin=subprocess.DEVNULL)
    try:
        yield _read_env(d / "env")
    finally:
        subprocess.run([str(SRCDIR / "tests" / "services.sh"), "stop", str(d)],
                       stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def redis_url(services):
    return services["REDIS_URL"]


@pytest.fixture
def r(redis_url):
    """A Redis client on the private server, FLUSHALLed for this test."""
    client = redis_mod.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def rb(redis_url, r):
    """Same server, bytes in and out."""
    client = redis_mod.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def celery_app(redis_url, r):
    app = make_celery_app(redis_url)
    yield app
    close_celery_app(app)


# -------------------------------------------------------------- celeriacd

class Celeriacd:
    """One celeriacd run with its own config file and log in a temp dir."""

    def __init__(self, tmp_path, redis_url, services, config=None,
                 config_path=None, args=(), env=None, name="celeriacd"):
        self.tmp = tmp_path
        self.redis_url = redis_url
        self.services = services
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = tmp_path / ("%s.log" % name)
        self.proc = None
        self.returncode = None
        self.expect_returncode = 0
        self._app = None
        self._logf = None
        if config_path is not None:
            self.cfg = pathlib.Path(config_path)
            self.config = self._read_yaml(self.cfg)
        else:
            self.config = {
                "broker": redis_url,
                "result_backend": redis_url,
                "shutdown_timeout": "5s",
                "log": {"level": "debug"},
                "queues": {"celery": {"concurrency": 1}},
            }
            for k, v in (config or {}).items():
                if v is None:
                    self.config.pop(k, None)
                else:
                    self.config[k] = v
            self.cfg = tmp_path / ("%s.yml" % name)
            self.cfg.write_text(to_yaml(self.config) + "\n")

    @staticmethod
    def _read_yaml(path):
        try:
            import yaml
        except ImportError:
            return {}
        with open(path) as f:
            return yaml.safe_load(f) or {}

    # -- process

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, wait=True, timeout=10):
        assert self.proc is None, "already started"
        self._logf = open(self.log_path, "ab")

        def child_setup():
            # crash() aborts a worker: no core files in the test dirs.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.proc = subprocess.Popen(
            [binary("celeriacd"), "-c", str(self.cfg)] + self.args,
            stdin=subprocess.DEVNULL, stdout=self._logf,
            stderr=subprocess.STDOUT, cwd=str(self.tmp),
            env=clean_env(self.env), preexec_fn=child_setup,
            start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self):
        if not self.running():
            self._death_seen = True
            raise AssertionError("celeriacd exited with %s; log:\n%s"
                                 % (self.proc.returncode if self.proc else None,
                                    self.log_tail()))

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=200):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, pattern, timeout=10):
        """Wait until the log matches the regex pattern; return the match."""
        rx = re.compile(pattern)

        def found():
            m = rx.search(self.log_text())
            if not m and self.proc is not None:
                self.assert_running()
            return m
        return poll(found, timeout, what="log line /%s/" % pattern)

    def queues(self):
        """{name: concurrency} of the configured queues."""
        out = {}
        for name, q in (self.config.get("queues") or {}).items():
            conc = (q or {}).get("concurrency", 1)
            out[name] = int(conc)
        return out

    @property
    def app(self):
        if self._app is None:
            self._app = make_celery_app(self.redis_url)
        return self._app

    def wait_ready(self, timeout=10):
        """Send celeriac.noop to every queue that has workers and wait until
        each succeeded (deadline timeout seconds in all)."""
        deadline = time.monotonic() + timeout
        results = [self.app.send_task("celeriac.noop", queue=q)
                   for q, n in self.queues().items() if n > 0]
        for res in results:
            def done(res=res):
                self.assert_running()
                return res.ready()
            poll(done, max(0.1, deadline - time.monotonic()),
                 what="celeriac.noop %s to succeed (celeriacd not ready)"
                 % res.id)
            assert res.get(timeout=1) is None
        return self

    def children(self):
        """Pids whose parent is the master."""
        assert self.proc is not None
        out = set()
        for pid in all_pids():
            st = proc_stat(pid)
            if st and st[0] == self.proc.pid and st[2] != "Z":
                out.add(pid)
        return out

    def workers(self):
        """Children that are workers (by their process title when they
        have one, otherwise every child)."""
        kids = self.children()
        titled = {p for p in kids if " worker" in proc_cmdline(p)}
        others = {p for p in kids
                  if re.search(r"\b(beat|http|control)\b", proc_cmdline(p))}
        return titled or (kids - others)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("celeriacd did not exit within %ss; log:\n%s"
                                 % (timeout, self.log_tail()))
        return self.returncode

    def _leftovers(self):
        """Processes of our session (workers) still alive."""
        pgid = self.proc.pid
        return [p for p in all_pids()
                if (st := proc_stat(p)) and st[1] == pgid and st[2] != "Z"]

    def stop(self, timeout=15):
        """SIGTERM, wait, SIGKILL; return the exit status and complain
        about workers that outlive the master."""
        if self.proc is None:
            return None
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append("celeriacd ignored SIGTERM for %ss" % timeout)
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        deadline = time.monotonic() + 3
        left = self._leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self._leftovers()
        if left:
            problems.append("processes outlived the master: %s"
                            % ", ".join("%d (%s)" % (p, proc_cmdline(p))
                                        for p in left))
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._logf:
            self._logf.close()
            self._logf = None
        if self._app is not None:
            close_celery_app(self._app)
            self._app = None
        if (self.expect_returncode is not None
                and self.returncode != self.expect_returncode
                and not getattr(self, "_death_seen", False)):
            problems.append("celeriacd exited with %s, expected %s"
                            % (self.returncode, self.expect_returncode))
        self.problems = problems
        return self.returncode

    # -- the CLI

    def celeriac(self, *args, timeout=30, env=None, input=None):
        """Run `celeriac -c CFG ARGS...`; returns the CompletedProcess
        (text stdout/stderr)."""
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(
            [binary("celeriac"), "-c", str(self.cfg)] + [str(a) for a in args],
            capture_output=True, text=True, timeout=timeout,
            env=clean_env(e), input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            cwd=str(self.tmp))

    def check(self, *extra, env=None):
        """Run `celeriacd -t -c CFG`; returns the CompletedProcess."""
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(
            [binary("celeriacd"), "-t", "-c", str(self.cfg)] + list(extra),
            capture_output=True, text=True, timeout=30,
            env=clean_env(e), stdin=subprocess.DEVNULL)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the logs of the test's celeriacd runs to a failure report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_celeriacd_runs", ()):
            rep.sections.append(("%s (pid %s)" % (d.log_path.name, d.pid),
                                 d.log_tail()))


@pytest.fixture
def celeriacd(request, tmp_path, redis_url, services, r):
    """Factory: celeriacd(config={...}, start=True, args=(), env={},
    config_path=None) -> Celeriacd, started and ready unless start=False.
    Config keys given replace the defaults (broker and result_backend on
    the private Redis, log level debug, one `celery` worker)."""
    made = request.node._celeriacd_runs = []

    def factory(config=None, start=True, args=(), env=None, config_path=None,
                ready_timeout=10, name=None):
        d = Celeriacd(tmp_path, redis_url, services, config=config,
                      config_path=config_path, args=args, env=env,
                      name=name or "celeriacd%s" % (len(made) or ""))
        made.append(d)
        if start:
            d.start(wait=True, timeout=ready_timeout)
        return d

    yield factory
    problems = []
    for d in made:
        d.stop()
        problems += getattr(d, "problems", [])
    if problems:
        pytest.fail("celeriacd teardown: " + "; ".join(problems),
                    pytrace=False)


@pytest.fixture
def write_script(tmp_path):
    """write_script(name, text) -> path of an executable file in tmp_path."""
    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        p.chmod(0o755)
        return str(p)
    return write


def new_id():
    return str(uuid.uuid4())


def pytest_configure(config):
    # kombu/celery 5.2 on Python 3.11: noise, not our business.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:SelectableGroups dict interface is deprecated:DeprecationWarning")


# ------------------------------------------- a Redis of one's own (appended)

class RedisServer:
    """A redis-server with persistence (appendonly), on a loopback port,
    that a test may stop and start again on the same port and directory:
    for Redis outages and the chaos test.  The session Redis has no
    persistence, so it cannot be restarted without losing data."""

    def __init__(self, d, fsync="always"):
        self.dir = pathlib.Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.fsync = fsync
        self.proc = None
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.restarts = 0

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes",
             "--appendfsync", self.fsync, "--dir", str(self.dir),
             "--protected-mode", "yes", "--daemonize", "no",
             "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s: %s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                c = redis_mod.Redis(host="127.0.0.1", port=self.port,
                                    socket_timeout=1)
                try:
                    return c.ping()
                finally:
                    c.close()
            except redis_mod.exceptions.RedisError:
                return False
        poll(answers, timeout, what="redis-server on port %d" % self.port)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, sig=signal.SIGTERM, down=0.0):
        """Stop (by sig), stay down `down` seconds (the outage), start."""
        self.stop(sig)
        if down:
            time.sleep(down)
        self.start()
        self.restarts += 1

    def client(self, **kw):
        return redis_mod.Redis(host="127.0.0.1", port=self.port,
                               decode_responses=True, **kw)

    def log_tail(self, n=20):
        try:
            lines = (self.dir / "redis.log").read_text(
                errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


@pytest.fixture
def redis_server(tmp_path):
    """Factory: redis_server(fsync="always") -> a started RedisServer with
    appendonly persistence, stopped at teardown."""
    made = []

    def factory(fsync="always"):
        s = RedisServer(tmp_path / ("redis%d" % len(made)), fsync=fsync)
        made.append(s)
        return s.start()
    yield factory
    for s in made:
        s.stop(signal.SIGKILL)


@pytest.fixture
def celeriacd_at(redis_server, celeriacd, request, tmp_path, services):
    """Factory like celeriacd, on another Redis: celeriacd_at(url,
    config={...}, start=True, ...).  Stopped by the celeriacd fixture's
    teardown, before the redis_server ones are."""
    celeriacd(start=False, name="unused")   # makes the runs list exist
    made = request.node._celeriacd_runs
    made.pop()

    def factory(url, config=None, start=True, args=(), env=None,
                ready_timeout=10, name=None):
        cfg = {"broker": url, "result_backend": url}
        cfg.update(config or {})
        d = Celeriacd(tmp_path, url, services, config=cfg, args=args,
                      env=env, name=name or "celeriacd%s" % (len(made) or ""))
        made.append(d)
        if start:
            d.start(wait=True, timeout=ready_timeout)
        return d
    return factory
