/*
 * migrate.h - the job store's schema: numbered SQL files applied in
 * order, each once, each in its own transaction.
 */
#ifndef CELERIAC_MIGRATE_H
#define CELERIAC_MIGRATE_H

#include <stdio.h>

#include <libpq-fe.h>

struct migration {
	int	 version;		/* the file's number */
	char	*name;			/* "001_jobs.sql" */
	char	*path;
};

/* $CELERIAC_MIGRATIONS_DIR, else DATADIR/celeriac/migrations. */
const char	*migrate_dir(void);

/*
 * The files NNN_name.sql of dir, by version.  Returns 0, or -1 with the
 * reason in err (unreadable directory, two files with one number).
 */
int		 migrate_list(const char *dir, struct migration **, size_t *n,
		    char *err, size_t errlen);
void		 migrate_free(struct migration *, size_t n);

/*
 * Apply the migrations of dir not yet recorded in schema_migrations,
 * under an advisory lock so that concurrent runs apply each once.  With
 * dry_run, only report.  A line per file goes to out.  Returns how many
 * were (or would be) applied, or -1 with the reason in err.
 */
int		 migrate_run(PGconn *, const char *dir, int dry_run, FILE *out,
		    char *err, size_t errlen);

#endif
