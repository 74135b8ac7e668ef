/*
 * system.c - the housekeeping tasks beat runs on queue celery:
 * celeriac.cleanup_jobs, celeriac.health_check, celeriac.daily_metrics.
 *
 * They run inside a worker like any task, so they may wait on Redis and
 * PostgreSQL (within timeouts) where the worker's own job store may not;
 * each opens its own short-lived connections and closes them before
 * returning, leaving nothing behind in the worker.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "common/config.h"
#include "common/util.h"
#include "store/pg.h"
#include "tasks/registry.h"
#include "tasks/system.h"

#define SYS_STMT_TIMEOUT_MS	60000
#define CLEANUP_BATCH		1000

PGconn *
sys_pg(const struct config *cfg, int timeout_s, char *err, size_t errlen)
{
	return store_pg_connect(cfg->database, "celeriac system task",
	    timeout_s, SYS_STMT_TIMEOUT_MS, err, errlen);
}

redisContext *
sys_redis(const char *url, char *err, size_t errlen)
{
	struct redis_url u;

	if (redis_url_parse(url, &u, err, errlen) == -1)
		return NULL;
	return redis_connect(&u, SYS_REDIS_TIMEOUT_MS, err, errlen);
}

/*
 * The threshold: a human duration ("7d", "12h", "90m") or a number of
 * seconds.  Returns milliseconds, or -1.
 */
static int64_t
arg_duration(json_object *v, const char *dflt)
{
	int64_t ms;

	if (v == NULL || json_object_is_type(v, json_type_null))
		return cfg_parse_duration(dflt, &ms) == 0 ? ms : -1;
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) >= 0 ?
		    json_object_get_int64(v) * 1000 : -1;
	if (json_object_is_type(v, json_type_double))
		return json_object_get_double(v) >= 0 ?
		    (int64_t)(json_object_get_double(v) * 1000) : -1;
	if (json_object_is_type(v, json_type_string) &&
	    cfg_parse_duration(json_object_get_string(v), &ms) == 0)
		return ms;
	return -1;
}

/* Delete the result keys of the task ids in res (column 0). */
static int
delete_results(redisContext *r, const PGresult *res)
{
	const char	**argv;
	size_t		 *lens;
	char		**keys;
	int		  n = PQntuples(res), i, rc = -1;
	redisReply	 *rep;

	if (n == 0)
		return 0;
	argv = calloc(n + 1, sizeof(*argv));
	lens = calloc(n + 1, sizeof(*lens));
	keys = calloc(n, sizeof(*keys));
	if (argv == NULL || lens == NULL || keys == NULL)
		goto out;
	argv[0] = "DEL";
	lens[0] = 3;
	for (i = 0; i < n; i++) {
		if (asprintf(&keys[i], "celery-task-meta-%s",
		    PQgetvalue(res, i, 0)) == -1) {
			keys[i] = NULL;
			goto out;
		}
		argv[i + 1] = keys[i];
		lens[i + 1] = strlen(keys[i]);
	}
	if ((rep = redis_commandv(r, n + 1, argv, lens)) != NULL) {
		freeReplyObject(rep);
		rc = 0;
	}
out:
	for (i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
	free(lens);
	free(argv);
	return rc;
}

static int
sys_cleanup_jobs(struct task_ctx *ctx)
{
	PGconn		*c;
	PGresult	*res;
	redisContext	*r;
	char		 err[512], ms[32];
	const char	*p[1] = { ms };
	int64_t		 older;
	long long	 deleted = 0;
	int		 n, complete = 1;

	if ((older = arg_duration(ctx->param[0], "7d")) < 0)
		return task_fail(ctx, "ValueError", "builtins",
		    "cleanup_jobs() older_than must be a duration such as "
		    "\"7d\", \"12h\" or a number of seconds");
	if ((c = sys_pg(ctx->cfg, SYS_PG_TIMEOUT_S, err, sizeof(err))) == NULL)
		return task_fail(ctx, "OperationalError", "celeriac.errors",
		    "%s", err);
	if ((r = sys_redis(ctx->cfg->result_backend ?
	    ctx->cfg->result_backend : ctx->cfg->broker, err,
	    sizeof(err))) == NULL) {
		PQfinish(c);
		return task_fail(ctx, "ConnectionError", "redis.exceptions",
		    "%s", err);
	}
	snprintf(ms, sizeof(ms), "%lld", (long long)older);
	/*
	 * One transaction per batch: the result keys go before the commit,
	 * so a failure leaves rows whose keys may be gone (deleted again
	 * next time), never keys whose rows are gone.
	 */
	do {
		if (ctx->soft_timeout && *ctx->soft_timeout) {
			complete = 0;
			break;
		}
		if (store_pg_exec(c, "BEGIN", err, sizeof(err)) == -1)
			goto fail;
		res = PQexecParams(c, "DELETE FROM jobs WHERE id IN (SELECT id "
		    "FROM jobs WHERE finished_at < now() - $1::bigint * "
		    "interval '1 millisecond' AND status IN ('succeeded', "
		    "'failed', 'revoked') ORDER BY finished_at LIMIT 1000 "
		    "FOR UPDATE SKIP LOCKED) RETURNING task_id", 1, NULL, p,
		    NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			store_pg_error(c, res, err, sizeof(err));
			PQclear(res);
			goto fail;
		}
		n = PQntuples(res);
		if (delete_results(r, res) == -1) {
			snprintf(err, sizeof(err), "cannot delete result keys: "
			    "%s", r->err ? r->errstr : "Redis error");
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		if (store_pg_exec(c, "COMMIT", err, sizeof(err)) == -1)
			goto fail;
		deleted += n;
	} while (n == CLEANUP_BATCH);
	PQfinish(c);
	redisFree(r);
	{
		json_object *o = json_object_new_object();
		json_object_object_add(o, "deleted",
		    json_object_new_int64(deleted));
		if (!complete)
			json_object_object_add(o, "complete",
			    json_object_new_boolean(0));
		return task_succeed(ctx, o);
	}
fail:
	store_pg_exec(c, "ROLLBACK", ms, sizeof(ms));	/* err is kept */
	PQfinish(c);
	redisFree(r);
	return task_fail(ctx, "OperationalError", "celeriac.errors",
	    "cleanup_jobs stopped after %lld jobs: %s", deleted, err);
}

/* A YYYY-MM-DD the database will check further. */
static int
is_day(const char *s)
{
	int i;

	for (i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' :
		    !isdigit((unsigned char)s[i]))
			return 0;
	return s[10] == '\0';
}

static const char metrics_sql[] =
"INSERT INTO daily_metrics AS m (day, queue, task_name, total, succeeded,"
"    failed, revoked, retried, retries, p50_seconds, p95_seconds,"
"    max_seconds, computed_at)"
"  SELECT $1::date, coalesce(queue, ''), task_name, count(*),"
"      count(*) FILTER (WHERE status = 'succeeded'),"
"      count(*) FILTER (WHERE status = 'failed'),"
"      count(*) FILTER (WHERE status = 'revoked'),"
"      count(*) FILTER (WHERE retries > 0), sum(retries),"
"      percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),"
"      percentile_cont(0.95) WITHIN GROUP (ORDER BY secs),"
"      max(secs), now()"
"  FROM (SELECT queue, task_name, status, retries,"
"      extract(epoch FROM finished_at - started_at)::double precision"
"      AS secs FROM jobs"
"      WHERE finished_at >= $1::date::timestamp AT TIME ZONE 'UTC'"
"      AND finished_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'"
"      AND status IN ('succeeded', 'failed', 'revoked')) x"
"  GROUP BY 2, 3 "
"ON CONFLICT (day, queue, task_name) DO UPDATE SET"
"    total = EXCLUDED.total, succeeded = EXCLUDED.succeeded,"
"    failed = EXCLUDED.failed, revoked = EXCLUDED.revoked,"
"    retried = EXCLUDED.retried, retries = EXCLUDED.retries,"
"    p50_seconds = EXCLUDED.p50_seconds,"
"    p95_seconds = EXCLUDED.p95_seconds,"
"    max_seconds = EXCLUDED.max_seconds, computed_at = now()";

static int
sys_daily_metrics(struct task_ctx *ctx)
{
	json_object	*v = ctx->param[0], *o;
	PGconn		*c;
	PGresult	*res;
	char		 err[512], day[16];
	const char	*p[1] = { day };
	int		 rows;

	if (v != NULL && !json_object_is_type(v, json_type_null) &&
	    (!json_object_is_type(v, json_type_string) ||
	    !is_day(json_object_get_string(v))))
		return task_fail(ctx, "ValueError", "builtins",
		    "daily_metrics() day must be YYYY-MM-DD or None");
	if ((c = sys_pg(ctx->cfg, SYS_PG_TIMEOUT_S, err, sizeof(err))) == NULL)
		return task_fail(ctx, "OperationalError", "celeriac.errors",
		    "%s", err);
	/* The day before, in UTC, by the database's clock. */
	p[0] = v && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
	res = PQexecParams(c, "SELECT coalesce($1::date, (now() AT TIME ZONE "
	    "'UTC')::date - 1)::text", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		store_pg_error(c, res, err, sizeof(err));
		PQclear(res);
		PQfinish(c);
		return task_fail(ctx, "ValueError", "builtins", "%s", err);
	}
	snprintf(day, sizeof(day), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	p[0] = day;
	res = PQexecParams(c, metrics_sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		store_pg_error(c, res, err, sizeof(err));
		PQclear(res);
		PQfinish(c);
		return task_fail(ctx, "OperationalError", "celeriac.errors",
		    "%s", err);
	}
	rows = atoi(PQcmdTuples(res));
	PQclear(res);
	PQfinish(c);
	o = json_object_new_object();
	json_object_object_add(o, "day", json_object_new_string(day));
	json_object_object_add(o, "rows", json_object_new_int(rows));
	return task_succeed(ctx, o);
}

static const struct task_param p_older_than[] = { { "older_than", 0 } };
static const struct task_param p_day[] = { { "day", 0 } };

const struct builtin_task task_system_table[] = {
	{ "celeriac.cleanup_jobs", sys_cleanup_jobs, p_older_than, 1, 0,
	    "deletes finished jobs older than older_than (default 7d), "
	    "their events and result keys" },
	{ "celeriac.health_check", sys_health_check, NULL, 0, 0,
	    "checks Redis, PostgreSQL, queues and hosts; stores the outcome "
	    "in celeriac.health and health_checks" },
	{ "celeriac.daily_metrics", sys_daily_metrics, p_day, 1, 0,
	    "aggregates a UTC day (default yesterday) into daily_metrics" },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
