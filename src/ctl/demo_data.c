/*
 * demo_data.c - `celeriac demo-data [--clients N] [--seed S] [--replace]`:
 * fill the insurance tables (share/migrations/010_insurance.sql) with
 * plausible French sample data (demo_gen.c), so the heavy reports have
 * something real to show.
 *
 *   int ctl_demo_data(struct config *, int argc, char **argv);
 *
 * The same seed and client count give the same data, row for row.  Rows
 * go in with COPY, one table per pass, in one transaction: a failed run
 * leaves the tables as they were.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/config.h"
#include "ctl/ctl.h"
#include "ctl/demo_gen.h"


#define DEMO_MAX_CLIENTS	2000000

struct demo_copy {
	PGconn		*conn;
	char		 buf[65536];
	size_t		 len;
	int		 err;
	int64_t		 rows;
};

/* A demo_sink line: into the COPY buffer, sent 64 KB at a time. */
static void
demo_copy_line(void *arg, const char *line, size_t len)
{
	struct demo_copy *cp = arg;

	if (cp->err)
		return;
	if (sizeof(cp->buf) - cp->len < len) {
		if (PQputCopyData(cp->conn, cp->buf, (int)cp->len) != 1)
			cp->err = 1;
		cp->len = 0;
	}
	memcpy(cp->buf + cp->len, line, len);
	cp->len += len;
	cp->rows++;
}

static int
demo_exec(PGconn *conn, const char *sql, ExecStatusType want)
{
	PGresult	*res = PQexec(conn, sql);
	int		 ok = PQresultStatus(res) == want;

	if (!ok)
		fprintf(stderr, "celeriac demo-data: %s: %s", sql,
		    PQerrorMessage(conn));
	PQclear(res);
	return ok ? 0 : -1;
}

static int
demo_copy_begin(struct demo_copy *cp, PGconn *conn, const char *sql)
{
	memset(cp, 0, sizeof(*cp));
	cp->conn = conn;
	return demo_exec(conn, sql, PGRES_COPY_IN);
}

static int
demo_copy_end(struct demo_copy *cp)
{
	PGresult	*res;
	int		 ok;

	if (!cp->err && cp->len > 0 &&
	    PQputCopyData(cp->conn, cp->buf, (int)cp->len) != 1)
		cp->err = 1;
	if (PQputCopyEnd(cp->conn, cp->err ? "demo-data failed" : NULL) != 1)
		cp->err = 1;
	res = PQgetResult(cp->conn);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK && !cp->err;
	if (!ok)
		fprintf(stderr, "celeriac demo-data: COPY: %s",
		    PQerrorMessage(cp->conn));
	PQclear(res);
	while ((res = PQgetResult(cp->conn)) != NULL)
		PQclear(res);
	return ok ? 0 : -1;
}

static int
demo_fill(PGconn *conn, uint64_t seed, int64_t nclients)
{
	static const char *const copies[] = {
		"COPY clients (id, client_no, last_name, first_name, "
		    "birth_date, email, phone, address, postal_code, city, "
		    "created_at) FROM STDIN",
		"COPY contracts (id, contract_no, client_id, branch, product, "
		    "start_date, end_date, annual_premium, status) FROM STDIN",
		"COPY premiums (contract_id, due_date, amount, paid_on, "
		    "status) FROM STDIN",
		"COPY claims (id, claim_no, contract_id, category, "
		    "occurred_on, reported_on, amount_claimed, amount_paid, "
		    "status, settled_on) FROM STDIN",
	};
	struct demo_copy	 cp;
	struct demo_sink	 sink = { demo_copy_line, &cp };
	struct demo_client	 c;
	int64_t			 i, next, nclaim = 1, counts[4];
	int			 j, pass;

	for (pass = 0; pass < 4; pass++) {
		if (demo_copy_begin(&cp, conn, copies[pass]) == -1)
			return -1;
		next = 1;
		for (i = 1; i <= nclients && !cp.err; i++) {
			demo_client(seed, i, &next, &c);
			if (pass == 0)
				demo_client_row(&sink, &c);
			for (j = 0; pass > 0 && j < c.ncontracts; j++) {
				if (pass == 1)
					demo_contract_row(&sink, &c, &c.c[j]);
				else if (pass == 2)
					demo_premium_rows(&sink, seed, &c.c[j]);
				else
					demo_claim_rows(&sink, seed, &c.c[j],
					    &nclaim);
			}
		}
		counts[pass] = cp.rows;
		if (demo_copy_end(&cp) == -1)
			return -1;
	}
	printf("demo-data: %" PRId64 " clients, %" PRId64 " contracts, %"
	    PRId64 " premium instalments, %" PRId64 " claims (seed %" PRIu64
	    ")\n", counts[0], counts[1], counts[2], counts[3], seed);
	return 0;
}

int
ctl_demo_data(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clients", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "replace", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const keys[] = { "dbname", "connect_timeout",
	    "application_name", NULL };
	const char	*vals[4];
	PGconn		*conn = NULL;
	PGresult	*res;
	char		*end;
	long long	 nclients = 1000;
	uint64_t	 seed = 42;
	int		 ch, replace = 0, rc = 1, has;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:s:r", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			nclients = strtoll(optarg, &end, 10);
			if (*end != '\0' || nclients < 1 ||
			    nclients > DEMO_MAX_CLIENTS) {
				fprintf(stderr, "celeriac demo-data: --clients "
				    "must be 1 to %d\n", DEMO_MAX_CLIENTS);
				return 2;
			}
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end != '\0' || *optarg == '-') {
				fprintf(stderr, "celeriac demo-data: --seed "
				    "must be a non-negative integer\n");
				return 2;
			}
			break;
		case 'r':
			replace = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	if (cfg->database == NULL) {
		fprintf(stderr, "celeriac demo-data: no database configured "
		    "(database: in the configuration, or DATABASE_URL)\n");
		return 1;
	}
	vals[0] = cfg->database;
	vals[1] = "10";
	vals[2] = "celeriac-demo-data";
	vals[3] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "celeriac demo-data: %s", PQerrorMessage(conn));
		goto out;
	}
	if (demo_exec(conn, "BEGIN", PGRES_COMMAND_OK) == -1)
		goto out;
	res = PQexec(conn, "SELECT to_regclass('claims') IS NOT NULL");
	has = PQresultStatus(res) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!has) {
		fprintf(stderr, "celeriac demo-data: the insurance tables are "
		    "missing: run \"celeriac db migrate\" first\n");
		goto out;
	}
	res = PQexec(conn, "SELECT EXISTS (SELECT 1 FROM clients)");
	has = PQresultStatus(res) != PGRES_TUPLES_OK ||
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (has && !replace) {
		fprintf(stderr, "celeriac demo-data: the clients table is not "
		    "empty; --replace deletes the insurance data first\n");
		goto out;
	}
	if (demo_exec(conn, "TRUNCATE claims, premiums, contracts, clients "
	    "RESTART IDENTITY", PGRES_COMMAND_OK) == -1 ||
	    demo_fill(conn, seed, nclients) == -1 ||
	    demo_exec(conn, "SELECT setval(pg_get_serial_sequence('clients', "
	    "'id'), coalesce(max(id), 0) + 1, false) FROM clients",
	    PGRES_TUPLES_OK) == -1 ||
	    demo_exec(conn, "SELECT setval(pg_get_serial_sequence('contracts', "
	    "'id'), coalesce(max(id), 0) + 1, false) FROM contracts",
	    PGRES_TUPLES_OK) == -1 ||
	    demo_exec(conn, "SELECT setval(pg_get_serial_sequence('claims', "
	    "'id'), coalesce(max(id), 0) + 1, false) FROM claims",
	    PGRES_TUPLES_OK) == -1 ||
	    demo_exec(conn, "ANALYZE clients, contracts, premiums, claims",
	    PGRES_COMMAND_OK) == -1 ||
	    demo_exec(conn, "COMMIT", PGRES_COMMAND_OK) == -1)
		goto out;
	rc = 0;
out:
	PQfinish(conn);
	return rc;
usage:
	fprintf(stderr, "usage: celeriac demo-data [--clients N] [--seed S] "
	    "[--replace]\n");
	return 2;
}
