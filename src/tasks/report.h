/*
 * report.h - what the heavy report writers share: the job being built,
 * the PostgreSQL reads (report_data.c) and the writers themselves
 * (report_pdf.c, report_xlsx.c).  reports.c is the task around them:
 * arguments, file naming, checksum, rename and callback.
 *
 * Every function that can fail reports the failure on the task context
 * (task_fail) and returns -1 or NULL, so the caller only unwinds.
 */
#ifndef CELERIAC_REPORT_H
#define CELERIAC_REPORT_H

#include <stdint.h>

#include "tasks/task.h"

#define REPORT_ROWS_PER_BLOCK	50	/* spreadsheet rows per "page" */
#define REPORT_MAX_PAGES	5000	/* libharu holds ~26 KB a page */
#define REPORT_MAX_BRANCHES	8
#define REPORT_ERRMOD		"celeriac.errors"

enum report_type {
	REPORT_PDF = 0,
	REPORT_EXCEL,
	REPORT_ANALYSIS
};

struct report_db;
struct report_cursor;

/* One report being generated. */
struct report_job {
	struct task_ctx	*ctx;
	enum report_type type;
	int		 pages;		/* content pages (PDF) or row blocks */
	double		 budget;	/* processing_time, seconds */
	const char	*label;		/* "job 42" or "task <id>", for titles */
	const char	*tmp_path;	/* where the writer writes */
	const char	*tmp_dir;	/* scratch space of libxlsxwriter */
	struct report_db *db;
	int64_t		 t0_us;
	int		 last_step;	/* last progress reported */

	/* Filled by the writer for the result. */
	int		 out_pages;	/* PDF: pages in the file */
	int		 out_sheets;	/* workbooks: sheets */
	int64_t		 rows;		/* data rows written */
	int		 wrapped;	/* listings started over (PDF) */
};

/* Portfolio figures, over all the data. */
struct report_totals {
	int64_t		 clients;
	int64_t		 contracts;
	int64_t		 active;
	double		 annual_premiums;	/* sum of contracts */
	double		 premiums_called;	/* sum of instalments */
	int64_t		 claims;
	double		 claimed;
	double		 paid;
};

/* The same per line of business, in report order. */
struct report_branch {
	char		 code[24];
	char		 label[48];
	int64_t		 contracts;
	int64_t		 active;
	double		 annual_premiums;
	double		 premiums_called;
	int64_t		 claims;
	double		 claimed;
	double		 paid;
};

/* report_data.c */
struct report_db *report_db_open(struct task_ctx *);
void		 report_db_close(struct report_db *);
int		 report_db_totals(struct report_db *, struct report_totals *);
int		 report_db_branches(struct report_db *, struct report_branch *,
		    int max, int *n);
/* A small query whose whole result is wanted; NULL after task_fail. */
void		*report_db_query(struct report_db *, const char *sql);
void		 report_db_clear(void *res);
int		 report_db_ntuples(void *res);
const char	*report_db_value(void *res, int row, int col);

/*
 * A server-side cursor over sql, fetched a batch at a time.  With wrap,
 * the listing starts over at its end (as many times as needed) instead
 * of ending; report_cursor_cycle() then tells which pass a row is from.
 */
struct report_cursor *report_cursor_open(struct report_db *,
		    const char *name, const char *sql, int wrap);
/* 1: a row is current, 0: the end, -1: failed (task_fail done). */
int		 report_cursor_next(struct report_cursor *);
const char	*report_cursor_get(struct report_cursor *, int col);
int		 report_cursor_cycle(const struct report_cursor *);
void		 report_cursor_close(struct report_cursor *);

/* The SQL of the two listings; column order is fixed (see report_data.c). */
extern const char report_sql_contracts[];
extern const char report_sql_claims[];
enum {
	RC_NO, RC_CLIENT, RC_CITY, RC_BRANCH, RC_PRODUCT, RC_START, RC_END,
	RC_STATUS, RC_PREMIUM, RC_BRANCH_CODE, RC_NCOLS
};
enum {
	RK_NO, RK_CONTRACT, RK_BRANCH, RK_CATEGORY, RK_OCCURRED, RK_REPORTED,
	RK_STATUS, RK_CLAIMED, RK_PAID, RK_NCOLS
};

/* reports.c */
/* Progress and the soft limit, checked between pages: -1 to stop. */
int		 report_step(struct report_job *, int current, int total);
/* "1 234 567,89" (sep between thousands, "," as decimal point). */
void		 report_fmt_money(char *buf, size_t len, double v,
		    const char *sep);
const char	*report_status_label(const char *status);
const char	*report_type_name(enum report_type);

/* report_pdf.c, report_xlsx.c: write the file at job->tmp_path. */
int		 report_pdf_write(struct report_job *);
int		 report_xlsx_write(struct report_job *);
int		 report_analysis_write(struct report_job *);

#endif
