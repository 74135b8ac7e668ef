/*
 * flush.c - the job store's connection: libpq driven without blocking.
 *
 * The connection is opened with PQconnectStartParams and driven by
 * PQconnectPoll, the batch statement prepared with PQsendPrepare and run
 * with PQsendQueryPrepared, and every wait is a poll(2) bounded by the
 * caller's deadline: a deadline already passed makes one step that cannot
 * block.  A statement still running when the deadline passes stays in
 * flight and is collected by the next call.  Failures back off from
 * 100 ms doubling to 5 s.
 *
 * The batch statement folds a batch of events, per task, into the jobs
 * row (created on first sight, e.g. for a task sent by a plain Celery
 * client) and appends one job_events row per event.  job_status_applies()
 * (001_jobs.sql) decides whether an event moves the status, so that
 * events arriving late (another process's, a replayed spill file) never
 * move a finished job back, and the outcome does not depend on the order
 * batches arrive in.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "common/util.h"
#include "store/store_int.h"

#define STORE_CONNECT_MS	3000
#define STORE_BACKOFF_MIN	100
#define STORE_BACKOFF_MAX	5000
#define STORE_STMT		"celeriac_store_batch"

#define APPLIES	"job_status_applies(j.status, j.retries, EXCLUDED.status, " \
		"EXCLUDED.retries)"
#define NEWRANK	"job_status_rank(EXCLUDED.status)"

static const char batch_sql[] =
"WITH e AS ("
"  SELECT e.*, job_status_rank(e.status) AS rk"
"  FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id text, task text,"
"      queue text, status text, retries integer, t double precision,"
"      host text, pid integer, params jsonb, result jsonb, etype text,"
"      emsg text)) WITH ORDINALITY AS e(id, task, queue, status, retries,"
"      t, host, pid, params, result, etype, emsg, n)"
/* Per task, the event that decides: its first finishing event, if any,
 * else the furthest along by (retries, rank), the later if equal. */
"), w AS ("
"  SELECT DISTINCT ON (id) * FROM e"
"  ORDER BY id, rk = 5 DESC, CASE WHEN rk = 5 THEN n END, retries DESC,"
"      rk DESC, n DESC"
"), a AS ("
"  SELECT id, (array_agg(task ORDER BY n))[1] AS task,"
"      (array_agg(queue ORDER BY n) FILTER (WHERE queue IS NOT NULL))[1]"
"      AS queue,"
"      (array_agg(params ORDER BY n) FILTER (WHERE params IS NOT NULL))[1]"
"      AS params,"
"      min(t) AS t0, max(retries) AS retries,"
"      min(t) FILTER (WHERE status = 'queued') AS qt,"
"      max(t) FILTER (WHERE status = 'started') AS st"
"  FROM e GROUP BY id"
"), up AS ("
"  INSERT INTO jobs AS j (task_id, task_name, queue, job_type, params,"
"      status, retries, worker_host, worker_pid, created_at, queued_at,"
"      started_at, finished_at, result, error_type, error_message,"
"      file_path)"
"  SELECT a.id, a.task, a.queue, a.task, a.params, w.status, a.retries,"
"      w.host, w.pid, to_timestamp(a.t0), to_timestamp(a.qt),"
"      to_timestamp(a.st), CASE WHEN w.rk = 5 THEN to_timestamp(w.t) END,"
"      CASE WHEN w.rk >= 4 THEN w.result END,"
"      CASE WHEN w.rk >= 4 THEN w.etype END,"
"      CASE WHEN w.rk >= 4 THEN w.emsg END,"
"      CASE WHEN w.rk >= 4 AND jsonb_typeof(w.result) = 'object'"
"          THEN w.result->>'path' END"
"  FROM a JOIN w USING (id)"
"  ORDER BY a.id"
"  ON CONFLICT (task_id) DO UPDATE SET"
"      status = CASE WHEN " APPLIES " THEN EXCLUDED.status"
"          ELSE j.status END,"
"      retries = greatest(j.retries, EXCLUDED.retries),"
"      queue = coalesce(j.queue, EXCLUDED.queue),"
"      params = coalesce(j.params, EXCLUDED.params),"
"      created_at = least(j.created_at, EXCLUDED.created_at),"
"      worker_host = CASE WHEN " APPLIES " THEN coalesce("
"          EXCLUDED.worker_host, j.worker_host) ELSE coalesce("
"          j.worker_host, EXCLUDED.worker_host) END,"
"      worker_pid = CASE WHEN " APPLIES " THEN coalesce("
"          EXCLUDED.worker_pid, j.worker_pid) ELSE coalesce("
"          j.worker_pid, EXCLUDED.worker_pid) END,"
"      queued_at = coalesce(j.queued_at, EXCLUDED.queued_at),"
"      started_at = CASE WHEN job_status_rank(j.status) = 5 THEN"
"          coalesce(j.started_at, EXCLUDED.started_at) ELSE"
"          greatest(j.started_at, EXCLUDED.started_at) END,"
"      finished_at = CASE WHEN " APPLIES " AND " NEWRANK " = 5 THEN"
"          EXCLUDED.finished_at ELSE j.finished_at END,"
"      result = CASE WHEN " APPLIES " AND " NEWRANK " >= 4 THEN"
"          EXCLUDED.result ELSE j.result END,"
"      error_type = CASE WHEN " APPLIES " AND " NEWRANK " >= 4 THEN"
"          EXCLUDED.error_type ELSE j.error_type END,"
"      error_message = CASE WHEN " APPLIES " AND " NEWRANK " >= 4 THEN"
"          EXCLUDED.error_message ELSE j.error_message END,"
"      file_path = coalesce(EXCLUDED.file_path, j.file_path)"
"  RETURNING j.id, j.task_id"
")"
"INSERT INTO job_events (job_id, status, at, detail)"
"  SELECT up.id, e.status, to_timestamp(e.t), jsonb_strip_nulls("
"      jsonb_build_object('retries', e.retries, 'host', e.host, 'pid',"
"      e.pid, 'error_type', e.etype, 'error_message', e.emsg))"
"  FROM e JOIN up ON up.task_id = e.id"
"  ORDER BY e.n "
"ON CONFLICT DO NOTHING";

static void
set_error(struct store *s, const char *msg)
{
	size_t n;

	/* libpq's messages: the first line says it. */
	snprintf(s->res_msg, sizeof(s->res_msg), "%s", msg && *msg ? msg :
	    "?");
	s->res_msg[strcspn(s->res_msg, "\n")] = '\0';
	n = strlen(s->res_msg);
	while (n > 0 && s->res_msg[n - 1] == ' ')
		s->res_msg[--n] = '\0';
}

/* Server notices go to our log, not to stderr. */
static void
store_notice(void *arg, const char *msg)
{
	log_debug("job store: %.*s", (int)strcspn(msg, "\n"), msg);
}

void
store_disconnect(struct store *s)
{
	if (s->conn != NULL)
		PQfinish(s->conn);
	s->conn = NULL;
	s->state = ST_DOWN;
	s->b.sent = 0;
}

/*
 * Something failed: log the first failure of an outage, back off, and
 * keep the events on disk meanwhile.
 */
static void
store_fail(struct store *s, int drop)
{
	s->stats.failures++;
	if (!s->failing) {
		log_warnx("job store: %s; keeping events and retrying",
		    s->res_msg);
		s->failing = 1;
	} else
		log_debug("job store: %s", s->res_msg);
	if (drop || s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
		store_disconnect(s);
	else
		s->state = ST_READY;
	s->b.sent = 0;
	s->next_try = mono_ms() + s->backoff;
	if ((s->backoff *= 2) > STORE_BACKOFF_MAX)
		s->backoff = STORE_BACKOFF_MAX;
	store_spill_memory(s, 0);
}

static int
store_connect(struct store *s)
{
	char		 app[160];
	const char	*kw[] = { "connect_timeout", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "tcp_user_timeout", "application_name", "options", "dbname",
	    NULL };
	const char	*val[] = { "3", "1", "30", "10", "3", "15000", app,
	    "-c statement_timeout=30000 -c plan_cache_mode=force_generic_plan",
	    s->url, NULL };

	/*
	 * Given last, the URL's own settings win over these defaults.  The
	 * batch statement's plan does not depend on its parameter: plan it
	 * once, not on every batch.
	 */
	snprintf(app, sizeof(app), "celeriac %s", s->who);
	s->stats.connects++;
	s->conn = PQconnectStartParams(kw, val, 1);
	if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD) {
		set_error(s, s->conn ? PQerrorMessage(s->conn) :
		    "out of memory");
		store_fail(s, 1);
		return -1;
	}
	PQsetNoticeProcessor(s->conn, store_notice, NULL);
	s->state = ST_CONNECTING;
	s->pq_events = POLLOUT;
	s->t_connect = mono_ms();
	return 0;
}

/* One step of the connection, once its socket is ready. */
static void
store_connect_step(struct store *s)
{
	switch (PQconnectPoll(s->conn)) {
	case PGRES_POLLING_READING:
		s->pq_events = POLLIN;
		return;
	case PGRES_POLLING_WRITING:
		s->pq_events = POLLOUT;
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		set_error(s, PQerrorMessage(s->conn));
		store_fail(s, 1);
		return;
	}
	if (PQsetnonblocking(s->conn, 1) == -1 ||
	    !PQsendPrepare(s->conn, STORE_STMT, batch_sql, 1, NULL)) {
		set_error(s, PQerrorMessage(s->conn));
		store_fail(s, 1);
		return;
	}
	s->res_ok = 1;
	s->state = ST_PREPARING;
}

static int
store_send(struct store *s)
{
	struct store_batch	*b = &s->b;
	const char		*param;
	size_t			 i, k;

	if (store_batch_fill(s) == -1) {
		set_error(s, "cannot read the events to write");
		store_fail(s, 0);
		return -1;
	}
	if (b->pos >= b->n)
		return 0;
	k = b->solo ? 1 : b->n - b->pos;
	s->param.len = 0;
	store_buf_addc(&s->param, '[');
	for (i = 0; i < k; i++) {
		if (i > 0)
			store_buf_addc(&s->param, ',');
		store_buf_addstr(&s->param, b->line[b->pos + i]);
	}
	store_buf_addc(&s->param, ']');
	if (s->param.err) {
		s->param.err = 0;
		set_error(s, "out of memory");
		store_fail(s, 0);
		return -1;
	}
	param = s->param.p;
	if (!PQsendQueryPrepared(s->conn, STORE_STMT, 1, &param, NULL, NULL,
	    0)) {
		set_error(s, PQerrorMessage(s->conn));
		store_fail(s, 1);
		return -1;
	}
	b->sent = k;
	s->res_ok = 1;
	s->state = ST_BUSY;
	return 0;
}

static int
sqlstate_class(const struct store *s, const char *cls)
{
	return strncmp(s->res_state, cls, 2) == 0;
}

/* The command in flight is complete: act on its outcome. */
static int
store_done(struct store *s)
{
	int preparing = s->state == ST_PREPARING;

	if (s->res_ok) {
		s->state = ST_READY;
		if (preparing)
			return 0;
		s->stats.written += s->b.sent;
		store_batch_advance(s, s->b.sent);
		if (s->failing) {
			log_notice("job store: writing again");
			s->failing = 0;
		}
		s->backoff = STORE_BACKOFF_MIN;
		return 0;
	}
	if (strcmp(s->res_state, "42P01") == 0 ||
	    strcmp(s->res_state, "42883") == 0 ||
	    strcmp(s->res_state, "42703") == 0) {
		/* Not migrated (yet): "celeriac db migrate" is the cure. */
		strncat(s->res_msg, " (run celeriac db migrate)",
		    sizeof(s->res_msg) - strlen(s->res_msg) - 1);
		store_fail(s, 1);
		return -1;
	}
	if (!preparing && PQstatus(s->conn) == CONNECTION_OK &&
	    (sqlstate_class(s, "22") || sqlstate_class(s, "23") ||
	    sqlstate_class(s, "54"))) {
		s->state = ST_READY;
		store_batch_refused(s, s->res_msg);
		return 0;
	}
	store_fail(s, preparing);
	return -1;
}

/*
 * Send what is buffered, read what arrived, and take the results.
 * Returns 0 when the command is complete (acted upon), 1 or 2 to wait for
 * the socket to be readable (2: or writable), -1 after a failure.
 */
static int
store_collect(struct store *s)
{
	PGresult	*res;
	const char	*st;
	int		 f;

	if ((f = PQflush(s->conn)) == -1 || !PQconsumeInput(s->conn)) {
		set_error(s, PQerrorMessage(s->conn));
		store_fail(s, 1);
		return -1;
	}
	while (!PQisBusy(s->conn)) {
		if ((res = PQgetResult(s->conn)) == NULL)
			return store_done(s);
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			break;
		default:
			if (s->res_ok) {
				s->res_ok = 0;
				st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				snprintf(s->res_state, sizeof(s->res_state),
				    "%s", st ? st : "");
				set_error(s, PQresultErrorMessage(res));
			}
			break;
		}
		PQclear(res);
	}
	return f == 1 ? 2 : 1;
}

void
store_pump(struct store *s, int64_t deadline, int force)
{
	struct pollfd	pfd;
	int64_t		now;
	int		rc;

	for (;;) {
		now = mono_ms();
		switch (s->state) {
		case ST_DOWN:
			if (!store_pending(s) || now < s->next_try)
				return;
			if (store_connect(s) == -1)
				return;
			continue;
		case ST_CONNECTING:
			if (now - s->t_connect > STORE_CONNECT_MS) {
				set_error(s, "cannot connect within 3 s");
				store_fail(s, 1);
				return;
			}
			pfd.events = s->pq_events;
			break;
		case ST_PREPARING:
		case ST_BUSY:
			if ((rc = store_collect(s)) == -1)
				return;
			if (rc == 0)
				continue;
			/* The input was just read: no need to poll for it. */
			if (now >= deadline)
				return;
			pfd.events = rc == 2 ? POLLIN | POLLOUT : POLLIN;
			break;
		case ST_READY:
		default:
			if (now < s->next_try || !store_want(s, force, now))
				return;
			if (store_send(s) == -1)
				return;
			continue;
		}
		if ((pfd.fd = PQsocket(s->conn)) < 0) {
			set_error(s, "connection has no socket");
			store_fail(s, 1);
			return;
		}
		rc = poll(&pfd, 1, now < deadline ? (int)(deadline - now) : 0);
		if (rc == -1 && errno != EINTR) {
			set_error(s, strerror(errno));
			store_fail(s, 1);
			return;
		}
		if (rc <= 0) {
			if (mono_ms() >= deadline)
				return;
			continue;
		}
		if (s->state == ST_CONNECTING)
			store_connect_step(s);
	}
}
