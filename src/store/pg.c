/*
 * pg.c - short-lived, blocking PostgreSQL connections: `celeriac db`,
 * `celeriac jobs` and the system tasks, which may wait (within bounds)
 * for the database where a worker's store may not.
 */
#include <stdio.h>
#include <string.h>

#include "store/pg.h"

static void
quiet(void *arg, const char *msg)
{
	/* NOTICEs ("... does not exist, skipping") are not for the user. */
}

PGconn *
store_pg_connect(const char *url, const char *app, int timeout_s,
    int statement_timeout_ms, char *err, size_t errlen)
{
	PGconn		*c;
	char		 tmo[16], opts[64];
	const char	*kw[] = { "connect_timeout", "application_name",
	    "options", "dbname", NULL };
	const char	*val[] = { tmo, app, opts, url, NULL };

	if (url == NULL || *url == '\0') {
		snprintf(err, errlen, "no database configured (database: in "
		    "the configuration, or DATABASE_URL)");
		return NULL;
	}
	snprintf(tmo, sizeof(tmo), "%d", timeout_s > 0 ? timeout_s : 10);
	snprintf(opts, sizeof(opts), "-c statement_timeout=%d",
	    statement_timeout_ms > 0 ? statement_timeout_ms : 0);
	/* The URL comes last: its own settings win over ours. */
	c = PQconnectdbParams(kw, val, 1);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		store_pg_error(c, NULL, err, errlen);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

const char *
store_pg_error(PGconn *c, const PGresult *res, char *buf, size_t len)
{
	const char *msg;

	msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
	if (msg == NULL || *msg == '\0')
		msg = c ? PQerrorMessage(c) : "unknown error";
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	snprintf(buf, len, "%s", msg);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

int
store_pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rc = 0;

	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		store_pg_error(c, res, err, errlen);
		rc = -1;
	}
	PQclear(res);
	return rc;
}
