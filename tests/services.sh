#!/bin/bash
#
# services.sh - private Redis and PostgreSQL 15 for the tests and the demo.
#
#   tests/services.sh start DIR   start both, write DIR/env, wait until they answer
#   tests/services.sh stop DIR    stop both (idempotent)
#   tests/services.sh status DIR  exit 0 when both answer
#
# Everything lives in DIR: DIR/redis (data, log, pid), DIR/pg (cluster, log,
# unix socket).  Both listen on 127.0.0.1 only, on free ports.  DIR/env is
# shell-sourceable:
#
#   REDIS_PORT=...  REDIS_URL=redis://127.0.0.1:PORT/0
#   PG_PORT=...     DATABASE_URL=postgresql://celeriac@127.0.0.1:PORT/celeriac
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# "postgres" user and its programs run through runuser.  When that user
# cannot reach DIR (a 0700 parent such as /root), the cluster goes to a
# private directory under /tmp whose path is recorded in DIR/pg.path.
#
# Environment: SERVICES_NO_PG=1 starts Redis only (DATABASE_URL is then
# left out of DIR/env); SERVICES_TIMEOUT (seconds, default 30) is the
# deadline for each service to answer.
#
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
TIMEOUT=${SERVICES_TIMEOUT:-30}

die() { echo "services.sh: $*" >&2; exit 1; }
say() { echo "services.sh: $*" >&2; }

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

free_port() {
	"$PY" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# Run a PostgreSQL program as the cluster owner.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# wait_for DESCRIPTION COMMAND... : run COMMAND until it succeeds or the
# deadline passes.
wait_for() {
	local what=$1; shift
	local deadline=$((SECONDS + TIMEOUT))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "$what did not answer within ${TIMEOUT}s"
			return 1
		fi
		sleep 0.1
	done
}

pid_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null
}

start_redis() {
	local dir=$1 port tries=0
	mkdir -p "$dir/redis"
	while :; do
		port=$(free_port)
		rm -f "$dir/redis/redis.pid"
		redis-server --port "$port" --bind 127.0.0.1 \
			--save "" --appendonly no \
			--dir "$dir/redis" \
			--daemonize yes \
			--pidfile "$dir/redis/redis.pid" \
			--logfile "$dir/redis/redis.log" \
			--protected-mode yes >/dev/null
		if wait_for "redis-server on port $port" \
			redis-cli -h 127.0.0.1 -p "$port" ping; then
			break
		fi
		tries=$((tries + 1))
		if [ -f "$dir/redis/redis.pid" ]; then
			kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
		fi
		[ "$tries" -lt 3 ] || {
			tail -n 20 "$dir/redis/redis.log" >&2 || true
			die "could not start redis-server"
		}
	done
	# The pid file may appear a moment after the server answers.
	wait_for "redis pid file" test -s "$dir/redis/redis.pid"
	echo "$port" > "$dir/redis/port"
	REDIS_PORT=$port
}

# Where the cluster lives: DIR/pg, or a /tmp directory when the postgres
# user cannot reach DIR.
pg_base() {
	local dir=$1
	if [ -f "$dir/pg.path" ]; then
		cat "$dir/pg.path"
	else
		echo "$dir/pg"
	fi
}

start_pg() {
	local dir=$1 base port tries=0
	[ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found (apt-get install postgresql)"
	base=$dir/pg
	mkdir -p "$base"
	if [ "$(id -u)" = 0 ]; then
		chmod a+x "$dir"
		chown postgres: "$base"
		if ! runuser -u postgres -- test -w "$base"; then
			base=$(mktemp -d /tmp/celeriac-pg.XXXXXX)
			chmod 0755 "$base"
			chown postgres: "$base"
			echo "$base" > "$dir/pg.path"
		fi
	fi
	as_pg mkdir -p "$base/sock"
	as_pg "$PGBIN/initdb" -D "$base/data" -U postgres -A trust -E UTF8 \
		--locale=C --no-sync >"$base/initdb.log" 2>&1 ||
		{ cat "$base/initdb.log" >&2; die "initdb failed"; }
	while :; do
		port=$(free_port)
		if as_pg "$PGBIN/pg_ctl" -D "$base/data" -l "$base/postgres.log" \
			-w -t "$TIMEOUT" -s \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $base/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null 2>&1; then
			break
		fi
		tries=$((tries + 1))
		[ "$tries" -lt 3 ] || {
			tail -n 20 "$base/postgres.log" >&2 || true
			die "could not start PostgreSQL"
		}
	done
	wait_for "PostgreSQL on port $port" \
		"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port"
	as_pg "$PGBIN/psql" -q -X -v ON_ERROR_STOP=1 -h "$base/sock" -p "$port" \
		-U postgres -d postgres \
		-c "CREATE ROLE celeriac LOGIN" \
		-c "CREATE DATABASE celeriac OWNER celeriac" >/dev/null ||
		die "could not create the celeriac role and database"
	echo "$port" > "$base/port"
	PG_PORT=$port
}

cmd_start() {
	local dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/env" ]; then
		die "$dir/env exists: services already started there (stop them first)"
	fi
	# Stop whatever we started if we fail half-way.
	trap 'cmd_stop "$dir" >/dev/null 2>&1 || true' ERR
	start_redis "$dir"
	if [ "${SERVICES_NO_PG:-0}" != 1 ]; then
		start_pg "$dir"
	fi
	trap - ERR
	{
		echo "REDIS_PORT=$REDIS_PORT"
		echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
		if [ -n "${PG_PORT:-}" ]; then
			echo "PG_PORT=$PG_PORT"
			echo "PG_SOCKET_DIR=$(pg_base "$dir")/sock"
			echo "DATABASE_URL=postgresql://celeriac@127.0.0.1:$PG_PORT/celeriac"
		fi
	} > "$dir/env.tmp"
	mv "$dir/env.tmp" "$dir/env"
	say "redis on 127.0.0.1:$REDIS_PORT${PG_PORT:+, postgresql on 127.0.0.1:$PG_PORT}; env in $dir/env"
}

stop_redis() {
	local dir=$1 pid deadline
	[ -f "$dir/redis/redis.pid" ] || return 0
	pid=$(cat "$dir/redis/redis.pid" 2>/dev/null || true)
	if pid_alive "$pid" && grep -q redis "/proc/$pid/comm" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + TIMEOUT))
		while pid_alive "$pid"; do
			if [ "$SECONDS" -ge "$deadline" ]; then
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.05
		done
	fi
	rm -f "$dir/redis/redis.pid"
}

stop_pg() {
	local dir=$1 base
	base=$(pg_base "$dir")
	[ -d "$base/data" ] || return 0
	if [ -f "$base/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$base/data" -m fast -w -t "$TIMEOUT" -s \
			stop >/dev/null 2>&1 ||
			as_pg "$PGBIN/pg_ctl" -D "$base/data" -m immediate -w -s \
				stop >/dev/null 2>&1 || true
	fi
	# A cluster we had to put outside DIR is ours alone: remove it.
	if [ -f "$dir/pg.path" ] && [ "$base" != "$dir/pg" ]; then
		rm -rf "$base"
		rm -f "$dir/pg.path"
	fi
}

cmd_stop() {
	local dir=$1
	[ -d "$dir" ] || return 0
	stop_redis "$dir"
	stop_pg "$dir"
	rm -f "$dir/env"
}

cmd_status() {
	local dir=$1
	[ -f "$dir/env" ] || { echo "not started"; return 1; }
	# shellcheck disable=SC1091
	. "$dir/env"
	redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 ||
		{ echo "redis: down"; return 1; }
	if [ -n "${PG_PORT:-}" ]; then
		"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
			{ echo "postgresql: down"; return 1; }
	fi
	echo "up"
}

[ $# -eq 2 ] || usage
case $1 in
start)	cmd_start "$2" ;;
stop)	cmd_stop "$2" ;;
status)	cmd_status "$2" ;;
*)	usage ;;
esac
