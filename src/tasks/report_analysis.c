/*
 * report_analysis.c - the "analysis" heavy report: a workbook whose
 * sheets hold the figures and native Excel charts of the loss ratio by
 * month, the claims by category and the distribution of premiums, then
 * a detailed claims listing sized by `pages` (blocks of rows, as in the
 * excel report).
 *
 * The aggregates are computed by PostgreSQL (small results); only the
 * listing is streamed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/report_xlsx.h"

#define AN_BUCKET	250	/* euros per premium band */
#define AN_NBUCKETS	11	/* the last band is open-ended */

static lxw_chart *
an_chart(struct xlsx *x, uint8_t type, const char *title, const char *xname,
    const char *yname)
{
	lxw_chart *c = workbook_add_chart(x->wb, type);

	if (c == NULL)
		return NULL;
	chart_title_set_name(c, title);
	if (xname != NULL && c->x_axis != NULL)
		chart_axis_set_name(c->x_axis, xname);
	if (yname != NULL && c->y_axis != NULL)
		chart_axis_set_name(c->y_axis, yname);
	chart_legend_set_position(c, LXW_CHART_LEGEND_BOTTOM);
	return c;
}

static void
an_series(lxw_chart *c, const char *sheet, const char *name, lxw_row_t r0,
    lxw_row_t r1, lxw_col_t catc0, lxw_col_t catc1, lxw_col_t valc)
{
	lxw_chart_series *s = chart_add_series(c, NULL, NULL);

	chart_series_set_categories(s, sheet, r0, catc0, r1, catc1);
	chart_series_set_values(s, sheet, r0, valc, r1, valc);
	chart_series_set_name(s, name);
}

static int
an_fail_chart(struct xlsx *x)
{
	return task_fail(x->job->ctx, "ReportError", REPORT_ERRMOD,
	    "cannot add a chart");
}

/* Premiums called and claims by month of occurrence; the loss ratio. */
static int
an_monthly(struct xlsx *x)
{
	static const char sheet[] = "Sinistralité mensuelle";
	static const char *const titles[] = { "Mois", "Primes émises",
	    "Sinistres", "Montant déclaré", "Montant réglé", "S/P" };
	static const double widths[] = { 12, 18, 10, 18, 18, 9 };
	lxw_worksheet	*ws;
	lxw_chart	*c1, *c2;
	void		*res;
	char		 formula[64];
	double		 prem, paid;
	int		 i, n;
	lxw_row_t	 r;

	if ((ws = xlsx_sheet(x, sheet)) == NULL)
		return -1;
	xlsx_header(ws, x, titles, widths, 6);
	if ((res = report_db_query(x->job->db,
	    "WITH m AS (SELECT date_trunc('month', due_date)::date AS month, "
	    "sum(amount) AS premiums FROM premiums GROUP BY 1), "
	    "k AS (SELECT date_trunc('month', occurred_on)::date AS month, "
	    "count(*) AS n, sum(amount_claimed) AS claimed, "
	    "sum(amount_paid) AS paid FROM claims GROUP BY 1) "
	    "SELECT to_char(coalesce(m.month, k.month), 'YYYY-MM-DD'), "
	    "coalesce(m.premiums, 0), coalesce(k.n, 0), "
	    "coalesce(k.claimed, 0), coalesce(k.paid, 0) "
	    "FROM m FULL JOIN k ON k.month = m.month ORDER BY 1")) == NULL)
		return -1;
	n = report_db_ntuples(res);
	for (i = 0; i < n; i++) {
		r = (lxw_row_t)i + 1;
		xlsx_date(ws, r, 0, report_db_value(res, i, 0), x->month);
		prem = strtod(report_db_value(res, i, 1), NULL);
		paid = strtod(report_db_value(res, i, 4), NULL);
		worksheet_write_number(ws, r, 1, prem, x->money);
		worksheet_write_number(ws, r, 2,
		    strtod(report_db_value(res, i, 2), NULL), NULL);
		worksheet_write_number(ws, r, 3,
		    strtod(report_db_value(res, i, 3), NULL), x->money);
		worksheet_write_number(ws, r, 4, paid, x->money);
		snprintf(formula, sizeof(formula), "=IF(B%u>0,E%u/B%u,0)",
		    r + 1, r + 1, r + 1);
		worksheet_write_formula_num(ws, r, 5, formula, x->pct,
		    prem > 0 ? paid / prem : 0);
	}
	report_db_clear(res);
	if (n == 0)
		return 0;
	if ((c1 = an_chart(x, LXW_CHART_LINE, "S/P par mois", "Mois",
	    "Sinistres réglés / primes émises")) == NULL ||
	    (c2 = an_chart(x, LXW_CHART_COLUMN, "Primes et sinistres par mois",
	    "Mois", "€")) == NULL)
		return an_fail_chart(x);
	an_series(c1, sheet, "S/P", 1, (lxw_row_t)n, 0, 0, 5);
	chart_axis_set_num_format(c1->y_axis, "0%");
	an_series(c2, sheet, "Primes émises", 1, (lxw_row_t)n, 0, 0, 1);
	an_series(c2, sheet, "Montant réglé", 1, (lxw_row_t)n, 0, 0, 4);
	worksheet_insert_chart(ws, 1, 7, c1);
	worksheet_insert_chart(ws, 17, 7, c2);
	return 0;
}

/* Claims by branch and category, and the amount paid by branch. */
static int
an_categories(struct xlsx *x)
{
	static const char sheet[] = "Sinistres par catégorie";
	static const char *const titles[] = { "Branche", "Catégorie",
	    "Nombre", "Montant déclaré", "Montant réglé", "Coût moyen" };
	static const double widths[] = { 14, 26, 10, 18, 18, 14 };
	lxw_worksheet	*ws;
	lxw_chart	*c1, *c2;
	void		*res;
	double		 cnt, paid;
	int		 i, n;
	lxw_row_t	 r;

	if ((ws = xlsx_sheet(x, sheet)) == NULL)
		return -1;
	xlsx_header(ws, x, titles, widths, 6);
	worksheet_set_column(ws, 7, 7, 14, NULL);
	worksheet_set_column(ws, 8, 8, 18, NULL);
	if ((res = report_db_query(x->job->db,
	    "SELECT b.label, k.category, count(*), sum(k.amount_claimed), "
	    "sum(k.amount_paid) FROM claims k "
	    "JOIN contracts c ON c.id = k.contract_id "
	    "JOIN insurance_branches b ON b.code = c.branch "
	    "GROUP BY b.position, b.label, k.category "
	    "ORDER BY b.position, count(*) DESC, k.category")) == NULL)
		return -1;
	n = report_db_ntuples(res);
	for (i = 0; i < n || i < x->nbr; i++) {
		r = (lxw_row_t)i + 1;
		if (i < n) {
			cnt = strtod(report_db_value(res, i, 2), NULL);
			paid = strtod(report_db_value(res, i, 4), NULL);
			worksheet_write_string(ws, r, 0,
			    report_db_value(res, i, 0), NULL);
			worksheet_write_string(ws, r, 1,
			    report_db_value(res, i, 1), NULL);
			worksheet_write_number(ws, r, 2, cnt, NULL);
			worksheet_write_number(ws, r, 3,
			    strtod(report_db_value(res, i, 3), NULL), x->money);
			worksheet_write_number(ws, r, 4, paid, x->money);
			worksheet_write_number(ws, r, 5, cnt > 0 ? paid / cnt :
			    0, x->money);
		}
		/* The pie's data, beside the table (same rows: constant
		 * memory writes each row once). */
		if (i < x->nbr) {
			worksheet_write_string(ws, r, 7, x->br[i].label, NULL);
			worksheet_write_number(ws, r, 8, x->br[i].paid,
			    x->money);
		}
	}
	report_db_clear(res);
	if (n == 0)
		return 0;
	if ((c1 = an_chart(x, LXW_CHART_BAR, "Sinistres par catégorie", NULL,
	    "Nombre")) == NULL ||
	    (c2 = an_chart(x, LXW_CHART_PIE, "Montant réglé par branche",
	    NULL, NULL)) == NULL)
		return an_fail_chart(x);
	an_series(c1, sheet, "Nombre de sinistres", 1, (lxw_row_t)n, 0, 1, 2);
	an_series(c2, sheet, "Montant réglé", 1, (lxw_row_t)x->nbr, 7, 7, 8);
	worksheet_insert_chart(ws, (lxw_row_t)(x->nbr + 3), 7, c2);
	worksheet_insert_chart(ws, (lxw_row_t)n + 3, 0, c1);
	return 0;
}

/* How many contracts fall in each premium band, per branch. */
static int
an_distribution(struct xlsx *x)
{
	static const char sheet[] = "Distribution des primes";
	int64_t		 m[AN_NBUCKETS][REPORT_MAX_BRANCHES];
	lxw_worksheet	*ws;
	lxw_chart	*c;
	void		*res;
	char		 label[48];
	int		 i, j, n, bkt;

	if ((ws = xlsx_sheet(x, sheet)) == NULL)
		return -1;
	memset(m, 0, sizeof(m));
	if ((res = report_db_query(x->job->db,
	    "SELECT least(floor(annual_premium / 250)::int, 10), branch, "
	    "count(*) FROM contracts GROUP BY 1, 2")) == NULL)
		return -1;
	n = report_db_ntuples(res);
	for (i = 0; i < n; i++) {
		bkt = atoi(report_db_value(res, i, 0));
		for (j = 0; j < x->nbr; j++)
			if (strcmp(x->br[j].code, report_db_value(res, i, 1)) ==
			    0 && bkt >= 0 && bkt < AN_NBUCKETS)
				m[bkt][j] = strtoll(report_db_value(res, i, 2),
				    NULL, 10);
	}
	report_db_clear(res);
	worksheet_set_column(ws, 0, 0, 18, NULL);
	worksheet_write_string(ws, 0, 0, "Prime annuelle", x->head);
	for (j = 0; j < x->nbr; j++) {
		worksheet_set_column(ws, (lxw_col_t)j + 1, (lxw_col_t)j + 1,
		    13, NULL);
		worksheet_write_string(ws, 0, (lxw_col_t)j + 1, x->br[j].label,
		    x->head);
	}
	worksheet_freeze_panes(ws, 1, 0);
	for (i = 0; i < AN_NBUCKETS; i++) {
		if (i == AN_NBUCKETS - 1)
			snprintf(label, sizeof(label), "%d € et plus",
			    i * AN_BUCKET);
		else
			snprintf(label, sizeof(label), "%d – %d €",
			    i * AN_BUCKET, (i + 1) * AN_BUCKET);
		worksheet_write_string(ws, (lxw_row_t)i + 1, 0, label, NULL);
		for (j = 0; j < x->nbr; j++)
			worksheet_write_number(ws, (lxw_row_t)i + 1,
			    (lxw_col_t)j + 1, (double)m[i][j], NULL);
	}
	if ((c = an_chart(x, LXW_CHART_COLUMN_STACKED,
	    "Distribution des primes annuelles", "Prime annuelle",
	    "Contrats")) == NULL)
		return an_fail_chart(x);
	for (j = 0; j < x->nbr; j++)
		an_series(c, sheet, x->br[j].label, 1, AN_NBUCKETS, 0, 0,
		    (lxw_col_t)j + 1);
	worksheet_insert_chart(ws, AN_NBUCKETS + 3, 0, c);
	return 0;
}

/* The claims listing: `pages` blocks of rows at most. */
static int
an_detail(struct xlsx *x, struct report_cursor **curp)
{
	static const char *const titles[] = { "N° sinistre", "N° contrat",
	    "Branche", "Catégorie", "Survenance", "Déclaration", "Statut",
	    "Montant déclaré", "Montant réglé" };
	static const double widths[] = { 18, 18, 12, 24, 12, 12, 14, 16, 16 };
	static const int sumcols[] = { 7, 8 };
	lxw_worksheet	*ws;
	const char	*v;
	double		 sums[2] = { 0, 0 };
	lxw_row_t	 row = 1;
	int		 i, k, c, rc = 1, pages = x->job->pages;

	if ((ws = xlsx_sheet(x, "Détail")) == NULL)
		return -1;
	xlsx_header(ws, x, titles, widths, 9);
	if ((*curp = report_cursor_open(x->job->db, "report_claims",
	    report_sql_claims, 0)) == NULL)
		return -1;
	for (i = 1; i <= pages; i++) {
		for (k = 0; k < REPORT_ROWS_PER_BLOCK && rc == 1; k++) {
			if ((rc = report_cursor_next(*curp)) == -1)
				return -1;
			if (rc == 0)
				break;
			for (c = 0; c < RK_NCOLS; c++) {
				v = report_cursor_get(*curp, c);
				if (c == RK_OCCURRED || c == RK_REPORTED)
					xlsx_date(ws, row, (lxw_col_t)c, v,
					    x->date);
				else if (c == RK_CLAIMED || c == RK_PAID) {
					worksheet_write_number(ws, row,
					    (lxw_col_t)c, strtod(v, NULL),
					    x->money);
					sums[c - RK_CLAIMED] += strtod(v, NULL);
				} else
					worksheet_write_string(ws, row,
					    (lxw_col_t)c, c == RK_STATUS ?
					    report_status_label(v) : v, NULL);
			}
			row++;
			x->job->rows++;
		}
		if (rc == 0)
			i = pages;
		if (report_step(x->job, i, pages) == -1)
			return -1;
	}
	worksheet_autofilter(ws, 0, 0, row > 1 ? row - 1 : 1, RK_NCOLS - 1);
	xlsx_total_row(x, ws, row, 1, sumcols, sums, 2);
	xlsx_summary_line(x, "Sinistres listés", (double)(row - 1), NULL);
	return 0;
}

int
report_analysis_write(struct report_job *job)
{
	struct xlsx		 x;
	struct report_cursor	*cur = NULL;
	int			 rc;

	rc = xlsx_open(&x, job, "MonAssurance — Analyse de la sinistralité");
	if (rc == 0)
		rc = an_monthly(&x);
	if (rc == 0)
		rc = an_categories(&x);
	if (rc == 0)
		rc = an_distribution(&x);
	if (rc == 0)
		rc = an_detail(&x, &cur);
	report_cursor_close(cur);
	return xlsx_close(&x, rc);
}
