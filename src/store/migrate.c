/*
 * migrate.c - apply the schema migrations.
 *
 * schema_migrations records what was applied; it is created here, not by
 * a migration, so that the first file is recorded like the others.  Each
 * file runs in its own transaction together with its record, so a file
 * either is applied and recorded or left as it was.  A session advisory
 * lock serialises concurrent runs (two hosts deploying at once): the
 * second waits, then finds nothing left to do.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/migrate.h"
#include "store/pg.h"

#ifndef DATADIR
#define DATADIR		"/usr/local/share"
#endif

/* pg_advisory_lock(int, int): "cele", "migr". */
#define MIGRATE_LOCK	"1667591269, 1835624306"

const char *
migrate_dir(void)
{
	const char *d = getenv("CELERIAC_MIGRATIONS_DIR");

	return d && *d ? d : DATADIR "/celeriac/migrations";
}

static int
by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

void
migrate_free(struct migration *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].path);
	}
	free(m);
}

int
migrate_list(const char *dir, struct migration **out, size_t *nout,
    char *err, size_t errlen)
{
	DIR			*d;
	struct dirent		*de;
	struct migration	*m = NULL, *nm;
	size_t			 n = 0, i, len;
	const char		*p;
	long			 v;

	*out = NULL;
	*nout = 0;
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		for (p = de->d_name; isdigit((unsigned char)*p); p++)
			;
		if (p == de->d_name || *p != '_' || len < 5 ||
		    strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		v = strtol(de->d_name, NULL, 10);
		if (v <= 0 || v > INT_MAX)
			continue;
		if ((nm = reallocarray(m, n + 1, sizeof(*m))) == NULL)
			goto oom;
		m = nm;
		m[n].version = (int)v;
		m[n].name = strdup(de->d_name);
		if (asprintf(&m[n].path, "%s/%s", dir, de->d_name) == -1)
			m[n].path = NULL;
		n++;
		if (m[n - 1].name == NULL || m[n - 1].path == NULL)
			goto oom;
	}
	closedir(d);
	qsort(m, n, sizeof(*m), by_version);
	for (i = 1; i < n; i++)
		if (m[i].version == m[i - 1].version) {
			snprintf(err, errlen, "%s and %s have the same number",
			    m[i - 1].name, m[i].name);
			migrate_free(m, n);
			return -1;
		}
	*out = m;
	*nout = n;
	return 0;
oom:
	closedir(d);
	migrate_free(m, n);
	snprintf(err, errlen, "out of memory");
	return -1;
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf = NULL;
	long	 len;

	if ((f = fopen(path, "r")) == NULL ||
	    fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc(len + 1)) == NULL ||
	    fread(buf, 1, len, f) != (size_t)len) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		if (f)
			fclose(f);
		return NULL;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* The line of the character position PostgreSQL reports (1-based). */
static int
line_of(const char *text, const char *pos)
{
	long	n = pos ? strtol(pos, NULL, 10) : 0;
	int	line = 1;

	for (; *text && n > 1; text++) {
		if (((unsigned char)*text & 0xc0) != 0x80)
			n--;
		if (*text == '\n')
			line++;
	}
	return line;
}

static int
apply(PGconn *c, const struct migration *m, char *err, size_t errlen)
{
	PGresult	*res;
	char		*sql, msg[512], ver[16];
	const char	*params[2];
	int		 rc = -1;

	if ((sql = read_file(m->path, err, errlen)) == NULL)
		return -1;
	if (store_pg_exec(c, "BEGIN", msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s", msg);
		free(sql);
		return -1;
	}
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s:%d: %s", m->name, line_of(sql,
		    PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)),
		    store_pg_error(c, res, msg, sizeof(msg)));
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	snprintf(ver, sizeof(ver), "%d", m->version);
	params[0] = ver;
	params[1] = m->name;
	res = PQexecParams(c, "INSERT INTO schema_migrations (version, name) "
	    "VALUES ($1, $2)", 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s: %s", m->name, store_pg_error(c, res,
		    msg, sizeof(msg)));
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	if (store_pg_exec(c, "COMMIT", msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: %s", m->name, msg);
		goto rollback;
	}
	rc = 0;
	goto out;
rollback:
	store_pg_exec(c, "ROLLBACK", msg, sizeof(msg));
out:
	free(sql);
	return rc;
}

static int
applied(PGconn *c, int version, const PGresult *res)
{
	int i;

	for (i = 0; i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == version)
			return 1;
	return 0;
}

int
migrate_run(PGconn *c, const char *dir, int dry_run, FILE *out, char *err,
    size_t errlen)
{
	struct migration	*m;
	PGresult		*res = NULL;
	size_t			 n, i;
	int			 count = 0, last = 0;
	char			 msg[512];

	if (migrate_list(dir, &m, &n, err, errlen) == -1)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "%s: no migrations (NNN_name.sql)", dir);
		migrate_free(m, n);
		return -1;
	}
	if (store_pg_exec(c, "SET client_min_messages = warning", msg,
	    sizeof(msg)) == -1 ||
	    store_pg_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", msg,
	    sizeof(msg)) == -1 ||
	    store_pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version integer PRIMARY KEY, name text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", msg,
	    sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s", msg);
		count = -1;
		goto out;
	}
	res = PQexec(c, "SELECT version FROM schema_migrations");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", store_pg_error(c, res, msg,
		    sizeof(msg)));
		count = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (applied(c, m[i].version, res)) {
			last = m[i].version;
			if (dry_run && out)
				fprintf(out, "applied  %s\n", m[i].name);
			continue;
		}
		if (dry_run) {
			if (out)
				fprintf(out, "pending  %s\n", m[i].name);
			count++;
			continue;
		}
		if (apply(c, &m[i], err, errlen) == -1) {
			count = -1;
			goto out;
		}
		last = m[i].version;
		if (out)
			fprintf(out, "applied %s\n", m[i].name);
		count++;
	}
	if (out && !dry_run && count == 0)
		fprintf(out, "database schema is up to date (version %d)\n",
		    last);
out:
	PQclear(res);
	store_pg_exec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", msg,
	    sizeof(msg));
	migrate_free(m, n);
	return count;
}
