/*
 * db.c - `celeriac db migrate|status`, `celeriac jobs` and `celeriac job`:
 * the job store from the command line.
 *
 * Entry points (for ctl.h and the command table of celeriac.c):
 *
 *	int ctl_db(struct config *, int argc, char **argv);
 *	int ctl_jobs(struct config *, int argc, char **argv);
 *	int ctl_job(struct config *, int argc, char **argv);
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/config.h"
#include "ctl/ctl.h"
#include "store/migrate.h"
#include "store/pg.h"


#define CTL_DB_TIMEOUT_S	10
#define CTL_STMT_TIMEOUT_MS	30000
#define TS(c)	"coalesce(to_char(" c " AT TIME ZONE 'UTC', " \
		"'YYYY-MM-DD HH24:MI:SS.MS'), '-')"

static const char *const statuses[] = { "pending", "queued", "started",
    "retrying", "succeeded", "failed", "revoked", NULL };

static PGconn *
connect_db(const struct config *cfg, int stmt_timeout_ms)
{
	PGconn	*c;
	char	 err[512];

	c = store_pg_connect(cfg->database, "celeriac", CTL_DB_TIMEOUT_S,
	    stmt_timeout_ms, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "celeriac: %s\n", err);
	return c;
}

/* Report a failed query; returns 1 (the exit status). */
static int
query_failed(PGconn *c, PGresult *res)
{
	char err[512];

	fprintf(stderr, "celeriac: %s\n", store_pg_error(c, res, err,
	    sizeof(err)));
	if (res && strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : "", "42P01") == 0)
		fprintf(stderr, "celeriac: run \"celeriac db migrate\" "
		    "first\n");
	PQclear(res);
	return 1;
}

int
ctl_db(struct config *cfg, int argc, char **argv)
{
	PGconn	*c;
	char	 err[1024];
	int	 n, status;

	if (argc != 2 || (strcmp(argv[1], "migrate") != 0 &&
	    strcmp(argv[1], "status") != 0)) {
		fprintf(stderr, "usage: celeriac db migrate | "
		    "celeriac db status\n");
		return 2;
	}
	status = strcmp(argv[1], "status") == 0;
	if ((c = connect_db(cfg, 0)) == NULL)
		return 1;
	n = migrate_run(c, migrate_dir(), status, stdout, err, sizeof(err));
	PQfinish(c);
	if (n == -1) {
		fprintf(stderr, "celeriac: migration failed: %s\n", err);
		return 1;
	}
	if (status && n > 0) {
		printf("%d migration%s pending: run \"celeriac db migrate\"\n",
		    n, n == 1 ? "" : "s");
		return 1;
	}
	return 0;
}

static int
valid_status(const char *s)
{
	int i;

	for (i = 0; statuses[i]; i++)
		if (strcmp(s, statuses[i]) == 0)
			return 1;
	return 0;
}

static int
jobs_usage(void)
{
	fprintf(stderr, "usage: celeriac jobs [--status S] [--queue Q] "
	    "[--limit N] [--json]\n");
	return 2;
}

int
ctl_jobs(struct config *cfg, int argc, char **argv)
{
	PGconn		*c;
	PGresult	*res;
	const char	*status = NULL, *queue = NULL, *params[3];
	char		 sql[1024], where[256] = "", limit[16];
	int		 i, n = 0, lim = 20, json = 0, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
			status = argv[++i];
		else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
			queue = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			lim = atoi(argv[++i]);
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			return jobs_usage();
	}
	if (status && !valid_status(status)) {
		fprintf(stderr, "celeriac: --status: one of pending, queued, "
		    "started, retrying, succeeded, failed, revoked\n");
		return 2;
	}
	if (lim < 1 || lim > 100000) {
		fprintf(stderr, "celeriac: --limit: 1 to 100000\n");
		return 2;
	}
	if (status) {
		params[n++] = status;
		strcat(where, " AND status = $1");
	}
	if (queue) {
		params[n++] = queue;
		strcat(where, n == 1 ? " AND queue = $1" : " AND queue = $2");
	}
	snprintf(limit, sizeof(limit), "%d", lim);
	params[n++] = limit;
	snprintf(sql, sizeof(sql), json ?
	    "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at "
	    "DESC, x.id DESC), '[]') FROM (SELECT * FROM jobs WHERE true%s "
	    "ORDER BY created_at DESC, id DESC LIMIT $%d) x" :
	    "SELECT id, status, retries, coalesce(queue, '-'), task_name, "
	    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
	    "coalesce(to_char(extract(epoch FROM finished_at - started_at), "
	    "'FM9999990.000'), '-'), task_id FROM jobs WHERE true%s "
	    "ORDER BY created_at DESC, id DESC LIMIT $%d", where, n);
	if ((c = connect_db(cfg, CTL_STMT_TIMEOUT_MS)) == NULL)
		return 1;
	res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = query_failed(c, res);
		PQfinish(c);
		return rc;
	}
	if (json)
		printf("%s\n", PQgetvalue(res, 0, 0));
	else if (PQntuples(res) == 0)
		printf("no jobs\n");
	else {
		printf("%8s  %-9s %3s  %-12s %-28s %-19s  %9s  %s\n", "ID",
		    "STATUS", "TRY", "QUEUE", "TASK", "CREATED (UTC)",
		    "DURATION", "TASK ID");
		for (i = 0; i < PQntuples(res); i++)
			printf("%8s  %-9s %3s  %-12s %-28s %-19s  %9s  %s\n",
			    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			    PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
			    PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
	}
	PQclear(res);
	PQfinish(c);
	return 0;
}

static const char job_sql[] =
    "SELECT id, task_id, task_name, coalesce(queue, '-'), "
    "coalesce(job_type, '-'), status, retries, coalesce(worker_host || "
    "coalesce(' pid ' || worker_pid, ''), '-'), " TS("created_at") ", "
    TS("queued_at") ", " TS("started_at") ", " TS("finished_at") ", "
    "coalesce(to_char(extract(epoch FROM finished_at - started_at), "
    "'FM9999990.000') || ' s', '-'), coalesce(params::text, '-'), "
    "coalesce(result::text, '-'), coalesce(error_type || ': ' || "
    "coalesce(error_message, ''), '-'), coalesce(file_path, '-') "
    "FROM jobs WHERE %s";

static const char *const job_labels[] = { "id", "task id", "task", "queue",
    "type", "status", "retries", "worker", "created", "queued", "started",
    "finished", "duration", "params", "result", "error", "file", NULL };

static int
print_job(PGconn *c, const char *id, int by_id)
{
	PGresult	*res, *ev;
	const char	*p[1];
	char		 sql[2048];
	int		 i;

	p[0] = id;
	snprintf(sql, sizeof(sql), job_sql, by_id ? "id = $1::bigint" :
	    "task_id = $1");
	res = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return query_failed(c, res);
	if (PQntuples(res) == 0) {
		fprintf(stderr, "celeriac: no job %s\n", id);
		PQclear(res);
		return 1;
	}
	for (i = 0; job_labels[i]; i++)
		printf("%-10s %s\n", job_labels[i], PQgetvalue(res, 0, i));
	p[0] = PQgetvalue(res, 0, 0);
	ev = PQexecParams(c, "SELECT " TS("at") ", status, coalesce("
	    "detail::text, '') FROM job_events WHERE job_id = $1::bigint "
	    "ORDER BY at, id", 1, NULL, p, NULL, NULL, 0);
	PQclear(res);
	if (PQresultStatus(ev) != PGRES_TUPLES_OK)
		return query_failed(c, ev);
	printf("events:\n");
	for (i = 0; i < PQntuples(ev); i++)
		printf("  %s  %-9s %s\n", PQgetvalue(ev, i, 0),
		    PQgetvalue(ev, i, 1), PQgetvalue(ev, i, 2));
	PQclear(ev);
	return 0;
}

static int
print_job_json(PGconn *c, const char *id, int by_id)
{
	PGresult	*res;
	const char	*p[1] = { id };
	char		 sql[1024];

	snprintf(sql, sizeof(sql), "SELECT to_jsonb(j) || jsonb_build_object("
	    "'events', coalesce((SELECT jsonb_agg(jsonb_build_object("
	    "'status', e.status, 'at', e.at, 'detail', e.detail) ORDER BY "
	    "e.at, e.id) FROM job_events e WHERE e.job_id = j.id), '[]')) "
	    "FROM jobs j WHERE %s", by_id ? "j.id = $1::bigint" :
	    "j.task_id = $1");
	res = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return query_failed(c, res);
	if (PQntuples(res) == 0) {
		fprintf(stderr, "celeriac: no job %s\n", id);
		PQclear(res);
		return 1;
	}
	printf("%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
ctl_job(struct config *cfg, int argc, char **argv)
{
	PGconn		*c;
	const char	*id = NULL, *p;
	int		 i, json = 0, by_id, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (id == NULL && argv[i][0] != '\0' &&
		    argv[i][0] != '-')
			id = argv[i];
		else
			id = NULL, i = argc;
	}
	if (id == NULL) {
		fprintf(stderr, "usage: celeriac job ID|TASK_ID [--json]\n");
		return 2;
	}
	/* A number is the job's id; anything else, Celery's task id. */
	for (p = id; *p >= '0' && *p <= '9'; p++)
		;
	by_id = *p == '\0' && p - id < 19;
	if ((c = connect_db(cfg, CTL_STMT_TIMEOUT_MS)) == NULL)
		return 1;
	rc = json ? print_job_json(c, id, by_id) : print_job(c, id, by_id);
	PQfinish(c);
	return rc;
}
