/*
 * pg.h - short-lived, blocking PostgreSQL connections for the CLI and the
 * system tasks (the workers' store has its own, non-blocking one).
 */
#ifndef CELERIAC_STORE_PG_H
#define CELERIAC_STORE_PG_H

#include <stddef.h>

#include <libpq-fe.h>

/*
 * Connect to url within timeout_s seconds, with statement_timeout_ms as
 * the session's statement timeout (0: none).  Returns the connection, or
 * NULL with the reason in err.
 */
PGconn		*store_pg_connect(const char *url, const char *app,
		    int timeout_s, int statement_timeout_ms, char *err,
		    size_t errlen);

/* The first line of the error of res (or of the connection if NULL). */
const char	*store_pg_error(PGconn *, const PGresult *, char *buf,
		    size_t len);

/* Run a command that returns no rows; 0, or -1 with the error in err. */
int		 store_pg_exec(PGconn *, const char *sql, char *err,
		    size_t errlen);

/*
 * Open libpq now (pqlazy.c; the daemon only: weak, NULL in programs that
 * link libpq).  0, or -1 logged.
 */
int		 pq_preload(void) __attribute__((weak));

#endif
