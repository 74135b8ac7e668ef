/*
 * report_xlsx.h - what the two workbook reports share (report_xlsx.c):
 * the workbook in constant-memory mode, its cell formats, the summary
 * sheet and typed-cell helpers.  report_analysis.c adds the charts.
 */
#ifndef CELERIAC_REPORT_XLSX_H
#define CELERIAC_REPORT_XLSX_H

#include <xlsxwriter.h>

#include "tasks/report.h"

struct xlsx {
	struct report_job	*job;
	lxw_workbook		*wb;
	lxw_format		*title, *head, *bold, *date, *month, *money;
	lxw_format		*pct, *tlabel, *tmoney, *tint, *tpct;
	struct report_totals	 t;
	struct report_branch	 br[REPORT_MAX_BRANCHES];
	int			 nbr;
	int			 summary_row;	/* next free row of the summary */
	lxw_worksheet		*summary;
};

/* Workbook at job->tmp_path with its formats, the portfolio figures read
 * and the summary sheet written.  -1 after task_fail. */
int		 xlsx_open(struct xlsx *, struct report_job *, const char *title);
/* Writes the file when rc is 0, else drops it; returns rc or -1. */
int		 xlsx_close(struct xlsx *, int rc);
lxw_worksheet	*xlsx_sheet(struct xlsx *, const char *name);
/* Header row 0 (bold, frozen) and column widths. */
void		 xlsx_header(lxw_worksheet *, struct xlsx *,
		    const char *const *titles, const double *widths, int n);
/* An ISO date ("2024-03-15") as a date cell; empty: blank cell. */
void		 xlsx_date(lxw_worksheet *, lxw_row_t, lxw_col_t, const char *,
		    lxw_format *);
/* A total row: label, then SUBTOTAL(9) of each money column (with its
 * value cached, so readers that do not compute formulas see it). */
void		 xlsx_total_row(struct xlsx *, lxw_worksheet *, lxw_row_t row,
		    lxw_row_t first, const int *cols, const double *sums, int n);
/* One more line of the summary sheet. */
void		 xlsx_summary_line(struct xlsx *, const char *label, double v,
		    lxw_format *);

#endif
