/*
 * report_xlsx.c - the "excel" heavy report (libxlsxwriter): a summary
 * sheet, the contracts and the claims as typed, filterable listings with
 * frozen headers and total rows, and a pivot by line of business; plus
 * the workbook helpers the analysis report shares.
 *
 * The workbook is built in libxlsxwriter's constant-memory mode: each
 * row goes to a scratch file (in reports_dir, not a tmpfs /tmp) as soon
 * as the next one starts, so memory does not grow with the listings.
 * `pages` counts blocks of REPORT_ROWS_PER_BLOCK rows of each listing;
 * a listing shorter than that simply ends (no rows are repeated in a
 * spreadsheet, whose totals must add up).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasks/report_xlsx.h"

#define XLSX_MONEY	"#,##0.00 \"€\""

static lxw_format *
xlsx_format(struct xlsx *x, const char *num, int bold, int border)
{
	lxw_format *f = workbook_add_format(x->wb);

	if (num != NULL)
		format_set_num_format(f, num);
	if (bold)
		format_set_bold(f);
	if (border)
		format_set_top(f, LXW_BORDER_THIN);
	return f;
}

int
xlsx_open(struct xlsx *x, struct report_job *job, const char *title)
{
	lxw_workbook_options	 opt;
	lxw_doc_properties	 props;
	char			 buf[200], date[40];
	time_t			 now = time(NULL);
	struct tm		 tm;

	memset(x, 0, sizeof(*x));
	x->job = job;
	if (report_db_totals(job->db, &x->t) == -1 ||
	    report_db_branches(job->db, x->br, REPORT_MAX_BRANCHES, &x->nbr) ==
	    -1)
		return -1;
	if (x->t.contracts == 0 && x->t.claims == 0)
		return task_fail(job->ctx, "ReportError", REPORT_ERRMOD,
		    "no insurance data to report on (load it, or run "
		    "\"celeriac demo-data\")");
	memset(&opt, 0, sizeof(opt));
	opt.constant_memory = LXW_TRUE;
	opt.tmpdir = (char *)job->tmp_dir;
	if ((x->wb = workbook_new_opt(job->tmp_path, &opt)) == NULL)
		return task_fail(job->ctx, "ReportError", REPORT_ERRMOD,
		    "cannot start the workbook");
	memset(&props, 0, sizeof(props));
	props.title = (char *)title;
	props.company = "MonAssurance";
	props.comments = "celeriac " PACKAGE_VERSION;
	workbook_set_properties(x->wb, &props);

	x->title = xlsx_format(x, NULL, 1, 0);
	format_set_font_size(x->title, 14);
	x->head = xlsx_format(x, NULL, 1, 0);
	format_set_bg_color(x->head, 0xD9E1F2);
	format_set_bottom(x->head, LXW_BORDER_THIN);
	x->bold = xlsx_format(x, NULL, 1, 0);
	x->date = xlsx_format(x, "dd/mm/yyyy", 0, 0);
	x->month = xlsx_format(x, "mmm yyyy", 0, 0);
	x->money = xlsx_format(x, XLSX_MONEY, 0, 0);
	x->pct = xlsx_format(x, "0.0%", 0, 0);
	x->tlabel = xlsx_format(x, NULL, 1, 1);
	x->tmoney = xlsx_format(x, XLSX_MONEY, 1, 1);
	x->tint = xlsx_format(x, "#,##0", 1, 1);
	x->tpct = xlsx_format(x, "0.0%", 1, 1);

	if ((x->summary = xlsx_sheet(x, "Synthèse")) == NULL)
		return -1;
	worksheet_set_column(x->summary, 0, 0, 42, NULL);
	worksheet_set_column(x->summary, 1, 1, 20, NULL);
	worksheet_write_string(x->summary, 0, 0, title, x->title);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%d/%m/%Y %H:%M", &tm);
	snprintf(buf, sizeof(buf), "Rapport %s, généré le %s", job->label,
	    date);
	worksheet_write_string(x->summary, 1, 0, buf, NULL);
	x->summary_row = 3;
	xlsx_summary_line(x, "Clients", (double)x->t.clients, NULL);
	xlsx_summary_line(x, "Contrats", (double)x->t.contracts, NULL);
	xlsx_summary_line(x, "Contrats actifs", (double)x->t.active, NULL);
	xlsx_summary_line(x, "Primes annuelles des contrats",
	    x->t.annual_premiums, x->money);
	xlsx_summary_line(x, "Primes émises", x->t.premiums_called, x->money);
	xlsx_summary_line(x, "Sinistres", (double)x->t.claims, NULL);
	xlsx_summary_line(x, "Montant déclaré", x->t.claimed, x->money);
	xlsx_summary_line(x, "Montant réglé", x->t.paid, x->money);
	xlsx_summary_line(x, "S/P (réglé / primes émises)",
	    x->t.premiums_called > 0 ? x->t.paid / x->t.premiums_called : 0,
	    x->pct);
	return 0;
}

void
xlsx_summary_line(struct xlsx *x, const char *label, double v, lxw_format *f)
{
	worksheet_write_string(x->summary, x->summary_row, 0, label, NULL);
	worksheet_write_number(x->summary, x->summary_row, 1, v, f);
	x->summary_row++;
}

int
xlsx_close(struct xlsx *x, int rc)
{
	lxw_error e;

	if (x->wb == NULL)
		return rc;
	if (rc != 0) {
		/* Nothing is written: drop the workbook and its scratch. */
		lxw_workbook_free(x->wb);
		x->wb = NULL;
		return rc;
	}
	e = workbook_close(x->wb);
	x->wb = NULL;
	if (e != LXW_NO_ERROR)
		return task_fail(x->job->ctx, "ReportError", REPORT_ERRMOD,
		    "cannot write the workbook: %s", lxw_strerror(e));
	return 0;
}

lxw_worksheet *
xlsx_sheet(struct xlsx *x, const char *name)
{
	lxw_worksheet *ws = workbook_add_worksheet(x->wb, name);

	if (ws == NULL)
		task_fail(x->job->ctx, "ReportError", REPORT_ERRMOD,
		    "cannot add sheet %s", name);
	else
		x->job->out_sheets++;
	return ws;
}

void
xlsx_header(lxw_worksheet *ws, struct xlsx *x, const char *const *titles,
    const double *widths, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		worksheet_set_column(ws, (lxw_col_t)i, (lxw_col_t)i, widths[i],
		    NULL);
		worksheet_write_string(ws, 0, (lxw_col_t)i, titles[i], x->head);
	}
	worksheet_freeze_panes(ws, 1, 0);
}

void
xlsx_date(lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *iso,
    lxw_format *f)
{
	lxw_datetime dt;

	memset(&dt, 0, sizeof(dt));
	if (sscanf(iso, "%d-%d-%d", &dt.year, &dt.month, &dt.day) == 3)
		worksheet_write_datetime(ws, r, c, &dt, f);
	else
		worksheet_write_blank(ws, r, c, f);
}

void
xlsx_total_row(struct xlsx *x, lxw_worksheet *ws, lxw_row_t row,
    lxw_row_t first, const int *cols, const double *sums, int n)
{
	char	formula[96], a[16], b[16];
	int	i;

	worksheet_write_string(ws, row, 0, "Total", x->tlabel);
	for (i = 0; i < n; i++) {
		lxw_rowcol_to_cell(a, first, (lxw_col_t)cols[i]);
		lxw_rowcol_to_cell(b, row > first ? row - 1 : first,
		    (lxw_col_t)cols[i]);
		/* 109: ignores rows the autofilter hides. */
		snprintf(formula, sizeof(formula), "=SUBTOTAL(109,%s:%s)", a,
		    b);
		/* Cents: a long sum of doubles drifts in the last digits. */
		worksheet_write_formula_num(ws, row, (lxw_col_t)cols[i],
		    formula, x->tmoney, round(sums[i] * 100) / 100);
	}
}

/* Rows of one listing, up to limit; sums of its money columns. */
struct xlsx_list {
	lxw_worksheet		*ws;
	struct report_cursor	*cur;
	const int		*kinds;		/* per column: see below */
	int			 ncols;
	lxw_row_t		 row;		/* next row */
	int			 done;
	double			 sums[2];
	int			 sumcols[2];
};

enum { XK_TEXT, XK_DATE, XK_MONEY, XK_STATUS };

static int
xlsx_rows(struct xlsx *x, struct xlsx_list *l, int n)
{
	const char	*v;
	double		 d;
	int		 c, rc, s;

	while (n-- > 0 && !l->done) {
		if ((rc = report_cursor_next(l->cur)) == -1)
			return -1;
		if (rc == 0) {
			l->done = 1;
			break;
		}
		for (c = 0, s = 0; c < l->ncols; c++) {
			v = report_cursor_get(l->cur, c);
			switch (l->kinds[c]) {
			case XK_DATE:
				xlsx_date(l->ws, l->row, (lxw_col_t)c, v,
				    x->date);
				break;
			case XK_MONEY:
				d = strtod(v, NULL);
				worksheet_write_number(l->ws, l->row,
				    (lxw_col_t)c, d, x->money);
				if (s < 2)
					l->sums[s++] += d;
				break;
			case XK_STATUS:
				worksheet_write_string(l->ws, l->row,
				    (lxw_col_t)c, report_status_label(v), NULL);
				break;
			default:
				worksheet_write_string(l->ws, l->row,
				    (lxw_col_t)c, v, NULL);
			}
		}
		l->row++;
		x->job->rows++;
	}
	return 0;
}

static void
xlsx_list_end(struct xlsx *x, struct xlsx_list *l, int nsums)
{
	lxw_row_t last = l->row > 1 ? l->row - 1 : 1;

	worksheet_autofilter(l->ws, 0, 0, last, (lxw_col_t)(l->ncols - 1));
	xlsx_total_row(x, l->ws, l->row, 1, l->sumcols, l->sums, nsums);
}

/* The pivot: one row per branch, claims split by status. */
static int
xlsx_branches(struct xlsx *x)
{
	static const char *const titles[] = { "Branche", "Contrats",
	    "Contrats actifs", "Primes annuelles", "Primes émises",
	    "Sinistres", "Montant déclaré", "Montant réglé", "S/P",
	    "Ouverts", "En instruction", "Réglés", "Refusés" };
	static const double widths[] = { 14, 10, 14, 18, 18, 10, 18, 18, 8,
	    10, 14, 10, 10 };
	static const char *const statuses[] = { "open", "in_review",
	    "settled", "rejected" };
	lxw_worksheet	*ws;
	void		*res;
	double		 tot[8] = { 0 }, vals[13];
	char		 formula[64], a[16], b[16];
	int		 i, j, r, n;

	if ((ws = xlsx_sheet(x, "Par branche")) == NULL)
		return -1;
	xlsx_header(ws, x, titles, widths, 13);
	if ((res = report_db_query(x->job->db,
	    "SELECT c.branch, k.status, count(*) FROM claims k "
	    "JOIN contracts c ON c.id = k.contract_id GROUP BY 1, 2")) == NULL)
		return -1;
	n = report_db_ntuples(res);
	for (i = 0; i < x->nbr; i++) {
		const struct report_branch *br = &x->br[i];
		lxw_row_t row = (lxw_row_t)i + 1;
		worksheet_write_string(ws, row, 0, br->label, NULL);
		worksheet_write_number(ws, row, 1, (double)br->contracts, NULL);
		worksheet_write_number(ws, row, 2, (double)br->active, NULL);
		worksheet_write_number(ws, row, 3, br->annual_premiums,
		    x->money);
		worksheet_write_number(ws, row, 4, br->premiums_called,
		    x->money);
		worksheet_write_number(ws, row, 5, (double)br->claims, NULL);
		worksheet_write_number(ws, row, 6, br->claimed, x->money);
		worksheet_write_number(ws, row, 7, br->paid, x->money);
		snprintf(formula, sizeof(formula), "=IF(E%u>0,H%u/E%u,0)",
		    row + 1, row + 1, row + 1);
		worksheet_write_formula_num(ws, row, 8, formula, x->pct,
		    br->premiums_called > 0 ? br->paid / br->premiums_called :
		    0);
		for (j = 0; j < 4; j++) {
			double cnt = 0;
			for (r = 0; r < n; r++)
				if (strcmp(report_db_value(res, r, 0),
				    br->code) == 0 && strcmp(report_db_value(
				    res, r, 1), statuses[j]) == 0)
					cnt = strtod(report_db_value(res, r, 2),
					    NULL);
			worksheet_write_number(ws, row, (lxw_col_t)(9 + j), cnt,
			    NULL);
			tot[4 + j] += cnt;
		}
		tot[0] += (double)br->contracts;
		tot[1] += (double)br->active;
		tot[2] += (double)br->claims;
	}
	report_db_clear(res);
	/* Before the total row: constant memory cannot go back to a row. */
	worksheet_autofilter(ws, 0, 0, (lxw_row_t)(x->nbr > 0 ? x->nbr : 1),
	    12);
	r = x->nbr + 1;
	/* The totals' cached values: SQL's, not sums of the rows above. */
	vals[1] = tot[0];
	vals[2] = tot[1];
	vals[3] = x->t.annual_premiums;
	vals[4] = x->t.premiums_called;
	vals[5] = tot[2];
	vals[6] = x->t.claimed;
	vals[7] = x->t.paid;
	for (j = 9; j <= 12; j++)
		vals[j] = tot[4 + j - 9];
	worksheet_write_string(ws, (lxw_row_t)r, 0, "Total", x->tlabel);
	for (j = 1; j <= 12; j++) {
		if (j == 8)
			continue;
		lxw_rowcol_to_cell(a, 1, (lxw_col_t)j);
		lxw_rowcol_to_cell(b, (lxw_row_t)x->nbr, (lxw_col_t)j);
		snprintf(formula, sizeof(formula), "=SUM(%s:%s)", a, b);
		worksheet_write_formula_num(ws, (lxw_row_t)r, (lxw_col_t)j,
		    formula, j == 3 || j == 4 || j == 6 || j == 7 ? x->tmoney :
		    x->tint, vals[j]);
	}
	snprintf(formula, sizeof(formula), "=IF(E%d>0,H%d/E%d,0)", r + 1,
	    r + 1, r + 1);
	worksheet_write_formula_num(ws, (lxw_row_t)r, 8, formula, x->tpct,
	    x->t.premiums_called > 0 ? x->t.paid / x->t.premiums_called : 0);
	return 0;
}

static int
xlsx_body(struct xlsx *x, struct xlsx_list *lc, struct xlsx_list *lk)
{
	static const char *const ctitles[] = { "N° contrat", "Client",
	    "Ville", "Branche", "Produit", "Début", "Fin", "Statut",
	    "Prime annuelle" };
	static const double cwidths[] = { 18, 26, 18, 12, 24, 12, 12, 11,
	    16 };
	static const int ckinds[] = { XK_TEXT, XK_TEXT, XK_TEXT, XK_TEXT,
	    XK_TEXT, XK_DATE, XK_DATE, XK_STATUS, XK_MONEY };
	static const char *const ktitles[] = { "N° sinistre", "N° contrat",
	    "Branche", "Catégorie", "Survenance", "Déclaration", "Statut",
	    "Montant déclaré", "Montant réglé" };
	static const double kwidths[] = { 18, 18, 12, 24, 12, 12, 14, 16,
	    16 };
	static const int kkinds[] = { XK_TEXT, XK_TEXT, XK_TEXT, XK_TEXT,
	    XK_DATE, XK_DATE, XK_STATUS, XK_MONEY, XK_MONEY };
	int	pages = x->job->pages, i;

	if ((lc->ws = xlsx_sheet(x, "Contrats")) == NULL ||
	    (lk->ws = xlsx_sheet(x, "Sinistres")) == NULL)
		return -1;
	xlsx_header(lc->ws, x, ctitles, cwidths, 9);
	xlsx_header(lk->ws, x, ktitles, kwidths, 9);
	lc->kinds = ckinds;
	lc->ncols = 9;
	lc->row = 1;
	lc->sumcols[0] = 8;
	lk->kinds = kkinds;
	lk->ncols = 9;
	lk->row = 1;
	lk->sumcols[0] = 7;
	lk->sumcols[1] = 8;
	if ((lc->cur = report_cursor_open(x->job->db, "report_contracts",
	    report_sql_contracts, 0)) == NULL ||
	    (lk->cur = report_cursor_open(x->job->db, "report_claims",
	    report_sql_claims, 0)) == NULL)
		return -1;
	for (i = 1; i <= pages; i++) {
		if (xlsx_rows(x, lc, REPORT_ROWS_PER_BLOCK) == -1 ||
		    xlsx_rows(x, lk, REPORT_ROWS_PER_BLOCK) == -1)
			return -1;
		if (lc->done && lk->done)
			i = pages;
		if (report_step(x->job, i, pages) == -1)
			return -1;
	}
	xlsx_list_end(x, lc, 1);
	xlsx_list_end(x, lk, 2);
	if (xlsx_branches(x) == -1)
		return -1;
	xlsx_summary_line(x, "Contrats listés", (double)(lc->row - 1), NULL);
	xlsx_summary_line(x, "Sinistres listés", (double)(lk->row - 1), NULL);
	return 0;
}

int
report_xlsx_write(struct report_job *job)
{
	struct xlsx	 x;
	struct xlsx_list lc, lk;
	int		 rc;

	memset(&lc, 0, sizeof(lc));
	memset(&lk, 0, sizeof(lk));
	rc = xlsx_open(&x, job, "MonAssurance — Rapport de portefeuille");
	if (rc == 0)
		rc = xlsx_body(&x, &lc, &lk);
	report_cursor_close(lc.cur);
	report_cursor_close(lk.cur);
	return xlsx_close(&x, rc);
}
