#!/bin/bash
#
# test_package.sh - the Debian package, end to end: build the .deb from the
# "make dist" tarball, check it with lintian, install it with dpkg -i, run
# /etc/init.d/celeriac start|reload|stop against a private Redis, and purge.
#
#   tests/packaging/test_package.sh [--no-deps] [--deb FILE] [--keep]
#
#   --no-deps   do not apt-get the build and test dependencies
#   --deb FILE  test this .deb instead of building one
#   --keep      keep the scratch directory (printed at the end)
#
# Root only, on a throwaway machine: it installs packages, creates and
# deletes the celeriac user, and starts and stops the daemon through the
# init script.  A celeriac package installed beforehand is purged first.
# The last line printed is "N passed, M failed"; the exit status is
# non-zero when anything failed.
#
set -uo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
INIT=/etc/init.d/celeriac
CONF=/etc/celeriac/celeriac.yml
PIDFILE=/run/celeriac/celeriacd.pid
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# celeriac(1) must read the installed configuration, not run-all's Redis.
unset REDIS_URL DATABASE_URL ENVIRONMENT CELERIAC_CONFIG

# Besides the Build-Depends of debian/control (apt-get build-dep).
TOOLS="build-essential dpkg-dev debhelper fakeroot lintian autoconf automake
	libtool pkg-config redis-server groff-base man-db logrotate procps
	python3 curl systemd"

no_deps=0
keep=0
deb=
while [ $# -gt 0 ]; do
	case $1 in
	--no-deps)	no_deps=1 ;;
	--keep)		keep=1 ;;
	--deb)		[ $# -ge 2 ] || { echo "--deb needs a file" >&2; exit 2; }
			deb=$(realpath "$2"); shift ;;
	-h|--help)	sed -n '6,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	*)		echo "test_package.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

passed=0
failed=0
t0=$SECONDS
ok()   { passed=$((passed + 1)); echo "ok - $*"; }
nok()  { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: one test, passed when COMMAND succeeds.
check() {
	local what=$1; shift
	if "$@"; then ok "$what"; return 0; fi
	nok "$what"
	return 1
}
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - t0)); }
finish() {
	echo
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
# poll SECONDS COMMAND...: until COMMAND succeeds.
poll() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

if [ "$(id -u)" != 0 ]; then
	echo "test_package.sh: must run as root (it installs and purges the package)" >&2
	nok "running as root"
	finish
fi
if ! command -v dpkg >/dev/null; then
	nok "a Debian system (dpkg)"
	finish
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/celeriac-pkg.XXXXXX")
chmod 0755 "$WORK"
installed=0
cleanup() {
	if [ "$installed" = 1 ]; then
		"$INIT" stop >/dev/null 2>&1
		dpkg --purge celeriac >/dev/null 2>&1
	fi
	"$SRCDIR/tests/services.sh" stop "$WORK/svc" >/dev/null 2>&1
	if [ "$keep" = 1 ]; then
		echo "test_package.sh: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- dependencies ----
export DEBIAN_FRONTEND=noninteractive
if [ "$no_deps" = 0 ]; then
	step "build and test dependencies"
	missing=()
	for p in $TOOLS; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ] || ! dpkg-checkbuilddeps "$SRCDIR/debian/control" >/dev/null 2>&1; then
		echo "installing: ${missing[*]} and the Build-Depends"
		apt-get update -q >/dev/null &&
		apt-get install -y -q --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1 &&
		apt-get build-dep -y -q "$SRCDIR" >>"$WORK/apt.log" 2>&1
		check "apt-get install of the build and test dependencies" test $? = 0 ||
			tail -n 20 "$WORK/apt.log"
	fi
fi

if dpkg-query -W -f='${Status}\n' celeriac 2>/dev/null | grep -q installed ||
   [ -e "$INIT" ]; then
	echo "test_package.sh: purging the celeriac package installed before"
	"$INIT" stop >/dev/null 2>&1
	dpkg --purge celeriac >/dev/null 2>&1
fi

# ---- (1) build the .deb from the dist tarball ----
if [ -z "$deb" ]; then
	step "make dist"
	if [ ! -x "$SRCDIR/configure" ]; then
		(cd "$SRCDIR" && autoreconf -fi) >"$WORK/autoreconf.log" 2>&1
	fi
	mkdir -p "$WORK/dist"
	if [ -f "$SRCDIR/config.status" ]; then
		# Configured in place: no VPATH build from it.
		dist() { cd "$SRCDIR" && make dist &&
			mv celeriac-*.tar.gz "$WORK/dist/"; }
	else
		dist() { cd "$WORK/dist" && "$SRCDIR/configure" && make dist; }
	fi
	if (dist) >"$WORK/dist.log" 2>&1; then
		ok "make dist"
	else
		tail -n 30 "$WORK/dist.log"
		nok "make dist"
		finish
	fi
	tarball=$(ls "$WORK"/dist/celeriac-*.tar.gz | head -n 1)
	tar -C "$WORK" -xzf "$tarball"
	tree=$(ls -d "$WORK"/celeriac-*/ | head -n 1)
	check "the tarball carries debian/" test -x "$tree/debian/rules"

	step "dpkg-buildpackage -us -uc -b"
	if (cd "$tree" && DEB_BUILD_OPTIONS="parallel=$JOBS" \
	    dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
		ok "dpkg-buildpackage -us -uc -b"
	else
		tail -n 40 "$WORK/build.log"
		nok "dpkg-buildpackage -us -uc -b"
		finish
	fi
	grep -E '^[0-9]+ passed|^# (TOTAL|PASS|FAIL):' "$WORK/build.log" | sed 's/^/  make check: /'
	deb=$(ls "$WORK"/celeriac_*.deb | head -n 1)
fi
echo "package: $deb"
dpkg-deb -c "$deb" | awk '{print "  " $6}' | grep -v '/$'

# ---- (2) lintian ----
if command -v lintian >/dev/null; then
	step "lintian"
	lintian --tag-display-limit 0 --display-info "$deb" >"$WORK/lintian.log" 2>&1
	sed 's/^/  /' "$WORK/lintian.log"
	check "lintian: no errors" sh -c "! grep -q '^E: ' '$WORK/lintian.log'"
fi

# ---- (3) install ----
step "dpkg -i"
if dpkg -i "$deb" >"$WORK/dpkg.log" 2>&1 ||
   apt-get install -f -y -q >>"$WORK/dpkg.log" 2>&1; then
	installed=1
	ok "dpkg -i"
else
	cat "$WORK/dpkg.log"
	nok "dpkg -i"
	finish
fi
check "the celeriac system user exists" sh -c 'getent passwd celeriac >/dev/null'
check "/var/lib/celeriac belongs to celeriac" \
	test "$(stat -c %U /var/lib/celeriac 2>/dev/null)" = celeriac
check "/var/log/celeriac belongs to celeriac" \
	test "$(stat -c %U /var/log/celeriac 2>/dev/null)" = celeriac
check "$CONF is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' celeriac | grep -q ' $CONF '"
check "the init script is not enabled" \
	sh -c '! ls /etc/rc[2345].d/S*celeriac >/dev/null 2>&1'
check "the unit is not enabled" \
	test ! -e /etc/systemd/system/multi-user.target.wants/celeriac.service
# Zombies do not count: a container's pid 1 may not reap them.
running_as_celeriac() { [ -n "$(ps -u celeriac -o stat= 2>/dev/null | grep -v '^Z')" ]; }
check "nothing started on installation" eval '! running_as_celeriac'
check "the installed configuration passes celeriacd -t" \
	runuser -u celeriac -- celeriacd -t -c "$CONF"

# ---- (4) the init script against a private Redis ----
step "private Redis"
if ! SERVICES_NO_PG=1 "$SRCDIR/tests/services.sh" start "$WORK/svc"; then
	nok "private redis-server"
	finish
fi
# shellcheck disable=SC1091
. "$WORK/svc/env"
sed -i "s|^broker: .*|broker: redis://127.0.0.1:$REDIS_PORT/0|" "$CONF"
check "broker line edited" grep -q "^broker: redis://127.0.0.1:$REDIS_PORT/0" "$CONF"
# The http child on free loopback ports (the installed file says 8000 and
# 5555, which something else on this machine may hold).
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
HTTP_PORT=$(free_port)
if grep -q '^http:' "$CONF"; then
	sed -i -e "s|^  listen: .*|  listen: 127.0.0.1:$HTTP_PORT|" \
	    -e "s|^  monitor: .*|  monitor: 127.0.0.1:$(free_port)|" "$CONF"
else
	printf 'http:\n  listen: 127.0.0.1:%s\n' "$HTTP_PORT" >>"$CONF"
fi
# A log file rather than syslog, to see logrotate and SIGUSR1 at work.
LOG=/var/log/celeriac/celeriacd.log
printf 'log:\n  target: file\n  file: %s\n  level: info\n' "$LOG" >>"$CONF"

# From celeriac status --json: "master PID" and "QUEUE PID STATE" per
# worker, sorted; pids() leaves the states out.
workers() {
	celeriac status --json 2>/dev/null | "$PY" -c '
import json, sys
for line in sys.stdin:
    h = json.loads(line)
    print("master", h.get("master_pid"))
    for w in h.get("workers", []):
        print(w.get("queue"), w.get("pid"), w.get("state"))
' | sort
}
pids() { workers | awk '{print $1, $2}'; }
# settled N: every worker has a pid and is idle or busy, and N of them
# serve reports.  The control child publishes the status every few
# seconds, so a snapshot taken earlier may show workers still starting.
settled() {
	local w
	w=$(workers | grep -v '^master ')
	[ -n "$w" ] &&
	    [ -z "$(echo "$w" | awk '$2 <= 0 || ($3 != "idle" && $3 != "busy")')" ] &&
	    [ "$(echo "$w" | awk '$1 == "reports"' | wc -l)" = "$1" ]
}

step "$INIT start"
"$INIT" start
check "$INIT start exits 0" test $? = 0
check "the pidfile names a running celeriacd" \
	sh -c "test -s $PIDFILE && kill -0 \$(cat $PIDFILE)"
master=$(cat "$PIDFILE" 2>/dev/null)
check "the master runs as celeriac" \
	test "$(ps -o user= -p "${master:-1}" 2>/dev/null | tr -d ' ')" = celeriac
check "$INIT status: running" "$INIT" status
"$INIT" start >/dev/null 2>&1
check "a second start is a no-op (same master)" \
	test "$(cat "$PIDFILE" 2>/dev/null)" = "$master"
check "celeriac status shows every worker ready" poll 30 settled 2

step "celeriac send celeriac.echo --wait"
out=$(timeout 60 celeriac send celeriac.echo --args '[1]' --wait --timeout 30 2>&1)
rc=$?
echo "  $out"
check "celeriac send celeriac.echo --args '[1]' --wait" test "$rc" = 0

# A worker loads mod_tasks.so from the package's library directory.
step "celeriac send reports.generate_dummy_report --wait"
out=$(timeout 60 celeriac send reports.generate_dummy_report --args '[7]' \
	--wait --timeout 30 2>&1)
rc=$?
echo "  $out"
check "a task of mod_tasks.so succeeds" \
	sh -c 'test "$1" = 0 && printf "%s" "$2" | grep -q report_id' _ "$rc" "$out"

step "the http child's /metrics, for the Grafana dashboard"
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }
check "GET /metrics answers" poll 20 metrics
metrics >"$WORK/metrics.txt" 2>&1
for m in celeriac_up report_jobs_total report_jobs_duration_seconds_bucket \
    celeriac_queue_depth celeriac_workers celeriac_worker_restarts_total; do
	check "/metrics has $m" grep -q "^${m}[{ ]" "$WORK/metrics.txt"
done

step "logrotate -f (SIGUSR1, no copytruncate)"
check "celeriacd logs to $LOG" test -s "$LOG"
logrotate -f /etc/logrotate.d/celeriac
check "logrotate -f exits 0" test $? = 0
check "$LOG.1 is the old log" test -s "$LOG.1"
check "the new $LOG belongs to celeriac" \
	test "$(stat -c %U "$LOG" 2>/dev/null)" = celeriac
# Which processes still write to the rotated file (they would lose their
# lines at the next rotation).  Reported, not counted: it is each child's
# SIGUSR1 handler, not the packaging.
stale_writers() {
	local p links nl=$'\n'
	for p in $(ps -u celeriac -o pid= -o stat= | awk '$2 !~ /^Z/ {print $1}'); do
		links=$nl$(readlink /proc/"$p"/fd/* 2>/dev/null)$nl
		case $links in
		*"$nl$LOG.1$nl"*|*"$nl$LOG (deleted)$nl"*)
			ps -o args= -p "$p" ;;
		esac
	done
}
poll 5 eval '[ -z "$(stale_writers)" ]'
stale=$(stale_writers)
if [ -n "$stale" ]; then
	echo "  note: still writing to $LOG.1 after SIGUSR1:"
	printf '%s\n' "$stale" | sed 's/^/    /'
fi

step "reload with a concurrency change"
# reports: concurrency 2 -> 3
"$PY" - "$CONF" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
new, n = re.subn(r"(\n  reports:\n(?:    .*\n)*?    concurrency: )2\n", r"\g<1>3\n", text, count=1)
open(path, "w").write(new)
sys.exit(0 if n == 1 else 1)
EOF
check "reports concurrency edited to 3" test $? = 0
before=$(pids | grep -v '^reports ')
"$INIT" reload
check "$INIT reload exits 0" test $? = 0
check "celeriac status shows 3 reports workers" poll 30 settled 3
check "the master logs the reload to the new $LOG" \
	poll 10 grep -q 'reload done' "$LOG"
check "the master stays the same process" \
	test "$(cat "$PIDFILE" 2>/dev/null)" = "$master"
after=$(pids | grep -v '^reports ')
check "the other queues keep their workers" test "$before" = "$after" ||
	diff <(echo "$before") <(echo "$after") | sed 's/^/  /'

step "reload with a broken configuration"
cp "$CONF" "$WORK/good.yml"
sed -i 's/^    concurrency: 3$/    concurrency: lots/' "$CONF"
before=$(pids)
out=$("$INIT" reload 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/  /'
check "$INIT reload refuses a bad file (exit $rc)" test "$rc" != 0
check "and says so" sh -c "printf '%s' \"\$1\" | grep -q 'not reloading'" _ "$out"
check "and names the error" sh -c "printf '%s' \"\$1\" | grep -q 'concurrency'" _ "$out"
sleep 1
check "celeriacd still runs the old workers" test "$(pids)" = "$before"
out=$("$INIT" restart 2>&1)
check "$INIT restart refuses a bad file too" test $? != 0
check "and the daemon is still the same" \
	test "$(cat "$PIDFILE" 2>/dev/null)" = "$master"
cp "$WORK/good.yml" "$CONF"

step "$INIT stop"
"$INIT" stop
check "$INIT stop exits 0" test $? = 0
check "celeriacd and its children are gone" eval '! running_as_celeriac'
check "the pidfile is gone" test ! -e "$PIDFILE"
"$INIT" status >/dev/null 2>&1
check "$INIT status: 3 (not running)" test $? = 3
"$INIT" stop >/dev/null 2>&1
check "stop when stopped exits 0" test $? = 0

step "dpkg -i again (the upgrade path)"
dpkg -i "$deb" >"$WORK/dpkg2.log" 2>&1
check "reinstalling exits 0" test $? = 0 || cat "$WORK/dpkg2.log"
check "the edited conffile is kept" \
	grep -q "^broker: redis://127.0.0.1:$REDIS_PORT/0" "$CONF"
check "the user is kept" sh -c 'getent passwd celeriac >/dev/null'

# ---- (5) the other installed files ----
step "unit, logrotate, man pages, dashboard"
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify /lib/systemd/system/celeriac.service 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  /'
	check "systemd-analyze verify celeriac.service" test "$rc" = 0 -a -z "$out"
else
	echo "  (no systemd-analyze: unit not verified)"
fi
check "logrotate -d accepts the logrotate file" \
	sh -c 'logrotate -d /etc/logrotate.d/celeriac >/dev/null 2>&1'
for m in $(dpkg -L celeriac | grep '^/usr/share/man/.*\.gz$'); do
	out=$(zcat "$m" | LC_ALL=C.UTF-8 groff -ww -man -Tutf8 -z 2>&1)
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  /'
	check "groff -ww -man ${m##*/}: no warnings" test -z "$out"
done
dash=/usr/share/celeriac/grafana/celeriac-dashboard.json
check "the Grafana dashboard is valid JSON with a DS_PROMETHEUS input" \
	"$PY" - "$dash" "$WORK/dash-rules.yml" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
assert d["__inputs"][0]["name"] == "DS_PROMETHEUS"
assert d["schemaVersion"] >= 36
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
text = " ".join(exprs)
for m in ("report_jobs_total", "report_jobs_duration_seconds_bucket",
          "celeriac_queue_depth", "celeriac_workers",
          "celeriac_worker_restarts_total"):
    assert m in text, m
assert "histogram_quantile(0.95" in text
# The queries as recording rules, for promtool.
with open(sys.argv[2], "w") as f:
    f.write("groups:\n- name: dashboard\n  rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m")
        e = re.sub(r"\$\w+", ".*", e)
        f.write("  - record: dashboard:expr%d\n    expr: %s\n" % (i, json.dumps(e)))
EOF
if command -v promtool >/dev/null && [ -s "$WORK/dash-rules.yml" ]; then
	check "promtool accepts every dashboard query" \
		sh -c "promtool check rules '$WORK/dash-rules.yml' >'$WORK/promtool.log' 2>&1" ||
		cat "$WORK/promtool.log"
fi

# ---- (6) purge ----
step "dpkg --purge celeriac"
dpkg --purge celeriac >"$WORK/purge.log" 2>&1
check "dpkg --purge celeriac" test $? = 0 || cat "$WORK/purge.log"
installed=0
check "the celeriac user is gone" sh -c '! getent passwd celeriac >/dev/null'
check "the celeriac group is gone" sh -c '! getent group celeriac >/dev/null'
for d in /var/lib/celeriac /var/log/celeriac /etc/celeriac "$INIT" \
    /etc/default/celeriac /etc/logrotate.d/celeriac; do
	check "$d is gone" test ! -e "$d"
done
check "no rc.d links are left" sh -c '! ls /etc/rc?.d/*celeriac >/dev/null 2>&1'

echo
echo "package stage took $((SECONDS - t0))s"
finish
