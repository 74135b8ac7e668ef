/*
 * report_data.c - the reports' reads from PostgreSQL.
 *
 * A report runs in one read-only REPEATABLE READ transaction, so the
 * figures of its summary and the rows of its listings come from the same
 * snapshot.  Listings are read through server-side cursors a batch at a
 * time: a 1,000-page report never holds more than one batch of rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/config.h"
#include "tasks/report.h"

#define CURSOR_BATCH	500

struct report_db {
	struct task_ctx	*ctx;
	PGconn		*conn;
	int		 in_xact;
};

struct report_cursor {
	struct report_db *db;
	char		 name[32];
	char		*sql;
	int		 wrap;
	PGresult	*res;		/* the current batch */
	int		 row;		/* current row in res */
	int		 nrows;
	int		 cycle;		/* 0 on the first pass */
	int64_t		 seen;		/* rows in this pass */
	int		 ended;
};

const char report_sql_contracts[] =
	"SELECT c.contract_no, cl.last_name || ' ' || cl.first_name, "
	    "cl.city, b.label, c.product, "
	    "to_char(c.start_date, 'YYYY-MM-DD'), "
	    "coalesce(to_char(c.end_date, 'YYYY-MM-DD'), ''), c.status, "
	    "c.annual_premium, c.branch "
	"FROM contracts c JOIN clients cl ON cl.id = c.client_id "
	    "JOIN insurance_branches b ON b.code = c.branch "
	"ORDER BY b.position, c.id";

const char report_sql_claims[] =
	"SELECT k.claim_no, c.contract_no, b.label, k.category, "
	    "to_char(k.occurred_on, 'YYYY-MM-DD'), "
	    "to_char(k.reported_on, 'YYYY-MM-DD'), k.status, "
	    "k.amount_claimed, k.amount_paid "
	"FROM claims k JOIN contracts c ON c.id = k.contract_id "
	    "JOIN insurance_branches b ON b.code = c.branch "
	"ORDER BY k.occurred_on, k.id";

/* The first line of a libpq message, without its newline. */
static void
db_message(char *buf, size_t len, const char *msg)
{
	size_t n;

	snprintf(buf, len, "%s", msg ? msg : "unknown error");
	n = strcspn(buf, "\n");
	buf[n] = '\0';
}

/*
 * Fail the task for a query that went wrong.  A lost connection is worth
 * a retry (the task's policy decides how many); a missing table means the
 * migrations were not run, which no retry fixes.
 */
static void
db_fail(struct report_db *db, PGresult *res, const char *what)
{
	const char	*state = res ? PQresultErrorField(res,
			    PG_DIAG_SQLSTATE) : NULL;
	char		 msg[512];

	/* The primary message alone: no "ERROR:  " prefix, no detail. */
	db_message(msg, sizeof(msg), res && PQresultErrorField(res,
	    PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(res,
	    PG_DIAG_MESSAGE_PRIMARY) : res ? PQresultErrorMessage(res) :
	    PQerrorMessage(db->conn));
	if (PQstatus(db->conn) != CONNECTION_OK ||
	    (state != NULL && strncmp(state, "08", 2) == 0)) {
		db->ctx->retry = 1;
		task_fail(db->ctx, "OperationalError", REPORT_ERRMOD,
		    "database connection lost during %s: %s", what, msg);
	} else if (state != NULL && strcmp(state, "42P01") == 0)
		task_fail(db->ctx, "ReportError", REPORT_ERRMOD,
		    "the insurance tables are missing (run \"celeriac db "
		    "migrate\"): %s", msg);
	else
		task_fail(db->ctx, "DatabaseError", REPORT_ERRMOD,
		    "%s failed: %s", what, msg);
}

static int
db_command(struct report_db *db, const char *sql, const char *what)
{
	PGresult	*res = PQexec(db->conn, sql);
	int		 ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		db_fail(db, res, what);
	PQclear(res);
	return ok ? 0 : -1;
}

struct report_db *
report_db_open(struct task_ctx *ctx)
{
	static const char *const keys[] = {
		"dbname", "connect_timeout", "application_name", NULL
	};
	const char		*vals[4];
	struct report_db	*db;
	PGresult		*res;
	char			 msg[512];

	if (ctx->cfg == NULL || ctx->cfg->database == NULL) {
		task_fail(ctx, "ImproperlyConfigured", REPORT_ERRMOD,
		    "reports read the insurance data from PostgreSQL: set "
		    "database: in the configuration (or DATABASE_URL)");
		return NULL;
	}
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		task_fail(ctx, "MemoryError", "builtins", "out of memory");
		return NULL;
	}
	db->ctx = ctx;
	vals[0] = ctx->cfg->database;
	vals[1] = "10";
	vals[2] = "celeriac-report";
	vals[3] = NULL;
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		db_message(msg, sizeof(msg), db->conn ?
		    PQerrorMessage(db->conn) : "out of memory");
		ctx->retry = 1;
		task_fail(ctx, "OperationalError", REPORT_ERRMOD,
		    "cannot connect to the database: %s", msg);
		report_db_close(db);
		return NULL;
	}
	/* One snapshot for the whole report. */
	if (db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
	    "BEGIN") == -1) {
		report_db_close(db);
		return NULL;
	}
	db->in_xact = 1;
	/*
	 * A report is a handful of aggregates and cursors over small rows:
	 * JIT compiling them costs more than it saves (half a second on a
	 * demo database).  Best effort: older servers lack the setting.
	 */
	res = PQexec(db->conn, "SET LOCAL jit = off");
	PQclear(res);
	return db;
}

void
report_db_close(struct report_db *db)
{
	PGresult *res;

	if (db == NULL)
		return;
	if (db->in_xact && PQstatus(db->conn) == CONNECTION_OK) {
		/* Read-only: nothing to keep, and ROLLBACK cannot fail. */
		res = PQexec(db->conn, "ROLLBACK");
		PQclear(res);
	}
	PQfinish(db->conn);
	free(db);
}

void *
report_db_query(struct report_db *db, const char *sql)
{
	PGresult *res = PQexec(db->conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(db, res, "query");
		PQclear(res);
		return NULL;
	}
	return res;
}

void
report_db_clear(void *res)
{
	PQclear(res);
}

int
report_db_ntuples(void *res)
{
	return PQntuples(res);
}

const char *
report_db_value(void *res, int row, int col)
{
	return PQgetvalue(res, row, col);
}

static int64_t
num_i(void *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double
num_d(void *res, int row, int col)
{
	return strtod(PQgetvalue(res, row, col), NULL);
}

int
report_db_totals(struct report_db *db, struct report_totals *t)
{
	void *res;

	res = report_db_query(db,
	    "SELECT (SELECT count(*) FROM clients), "
	    "(SELECT count(*) FROM contracts), "
	    "(SELECT count(*) FROM contracts WHERE status = 'active'), "
	    "(SELECT coalesce(sum(annual_premium), 0) FROM contracts), "
	    "(SELECT coalesce(sum(amount), 0) FROM premiums), "
	    "(SELECT count(*) FROM claims), "
	    "(SELECT coalesce(sum(amount_claimed), 0) FROM claims), "
	    "(SELECT coalesce(sum(amount_paid), 0) FROM claims)");
	if (res == NULL)
		return -1;
	memset(t, 0, sizeof(*t));
	t->clients = num_i(res, 0, 0);
	t->contracts = num_i(res, 0, 1);
	t->active = num_i(res, 0, 2);
	t->annual_premiums = num_d(res, 0, 3);
	t->premiums_called = num_d(res, 0, 4);
	t->claims = num_i(res, 0, 5);
	t->claimed = num_d(res, 0, 6);
	t->paid = num_d(res, 0, 7);
	PQclear(res);
	return 0;
}

int
report_db_branches(struct report_db *db, struct report_branch *b, int max,
    int *n)
{
	void	*res;
	int	 i;

	res = report_db_query(db,
	    "WITH c AS (SELECT branch, count(*) AS n, "
	    "count(*) FILTER (WHERE status = 'active') AS a, "
	    "sum(annual_premium) AS s FROM contracts GROUP BY branch), "
	    "p AS (SELECT pc.branch, sum(p.amount) AS s FROM premiums p "
	    "JOIN contracts pc ON pc.id = p.contract_id GROUP BY 1), "
	    "k AS (SELECT kc.branch, count(*) AS n, "
	    "sum(k.amount_claimed) AS c, sum(k.amount_paid) AS p "
	    "FROM claims k JOIN contracts kc ON kc.id = k.contract_id "
	    "GROUP BY 1) "
	    "SELECT b.code, b.label, coalesce(c.n, 0), coalesce(c.a, 0), "
	    "coalesce(c.s, 0), coalesce(p.s, 0), coalesce(k.n, 0), "
	    "coalesce(k.c, 0), coalesce(k.p, 0) FROM insurance_branches b "
	    "LEFT JOIN c ON c.branch = b.code LEFT JOIN p ON p.branch = b.code "
	    "LEFT JOIN k ON k.branch = b.code ORDER BY b.position");
	if (res == NULL)
		return -1;
	*n = PQntuples(res) < max ? PQntuples(res) : max;
	for (i = 0; i < *n; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		snprintf(b[i].code, sizeof(b[i].code), "%s",
		    PQgetvalue(res, i, 0));
		snprintf(b[i].label, sizeof(b[i].label), "%s",
		    PQgetvalue(res, i, 1));
		b[i].contracts = num_i(res, i, 2);
		b[i].active = num_i(res, i, 3);
		b[i].annual_premiums = num_d(res, i, 4);
		b[i].premiums_called = num_d(res, i, 5);
		b[i].claims = num_i(res, i, 6);
		b[i].claimed = num_d(res, i, 7);
		b[i].paid = num_d(res, i, 8);
	}
	PQclear(res);
	return 0;
}

static int
cursor_declare(struct report_cursor *c)
{
	char	*sql;
	int	 rc;

	if (asprintf(&sql, "DECLARE %s NO SCROLL CURSOR FOR %s", c->name,
	    c->sql) == -1) {
		task_fail(c->db->ctx, "MemoryError", "builtins",
		    "out of memory");
		return -1;
	}
	rc = db_command(c->db, sql, "DECLARE");
	free(sql);
	return rc;
}

struct report_cursor *
report_cursor_open(struct report_db *db, const char *name, const char *sql,
    int wrap)
{
	struct report_cursor *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->sql = strdup(sql)) == NULL) {
		free(c);
		task_fail(db->ctx, "MemoryError", "builtins", "out of memory");
		return NULL;
	}
	c->db = db;
	c->wrap = wrap;
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (cursor_declare(c) == -1) {
		free(c->sql);
		free(c);
		return NULL;
	}
	return c;
}

static int
cursor_fetch(struct report_cursor *c)
{
	char sql[64];

	PQclear(c->res);
	c->row = 0;
	c->nrows = 0;
	snprintf(sql, sizeof(sql), "FETCH %d FROM %s", CURSOR_BATCH, c->name);
	c->res = PQexec(c->db->conn, sql);
	if (PQresultStatus(c->res) != PGRES_TUPLES_OK) {
		db_fail(c->db, c->res, "FETCH");
		PQclear(c->res);
		c->res = NULL;
		return -1;
	}
	c->nrows = PQntuples(c->res);
	return 0;
}

int
report_cursor_next(struct report_cursor *c)
{
	char sql[64];

	if (c->ended)
		return 0;
	if (c->res != NULL && c->row + 1 < c->nrows) {
		c->row++;
		c->seen++;
		return 1;
	}
	if (cursor_fetch(c) == -1)
		return -1;
	if (c->nrows == 0) {
		/* An empty listing does not wrap: it would never end. */
		if (!c->wrap || c->seen == 0) {
			c->ended = 1;
			return 0;
		}
		snprintf(sql, sizeof(sql), "CLOSE %s", c->name);
		if (db_command(c->db, sql, "CLOSE") == -1 ||
		    cursor_declare(c) == -1 || cursor_fetch(c) == -1)
			return -1;
		c->cycle++;
		c->seen = 0;
		if (c->nrows == 0) {
			c->ended = 1;
			return 0;
		}
	}
	c->seen++;
	return 1;
}

const char *
report_cursor_get(struct report_cursor *c, int col)
{
	return PQgetvalue(c->res, c->row, col);
}

int
report_cursor_cycle(const struct report_cursor *c)
{
	return c->cycle;
}

void
report_cursor_close(struct report_cursor *c)
{
	char		 sql[64];
	PGresult	*res;

	if (c == NULL)
		return;
	PQclear(c->res);
	/* Only if the transaction is still usable; ROLLBACK drops it anyway. */
	if (PQtransactionStatus(c->db->conn) == PQTRANS_INTRANS) {
		snprintf(sql, sizeof(sql), "CLOSE %s", c->name);
		res = PQexec(c->db->conn, sql);
		PQclear(res);
	}
	free(c->sql);
	free(c);
}
