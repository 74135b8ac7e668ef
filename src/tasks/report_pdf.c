/*
 * report_pdf.c - the "pdf" heavy report (libharu): a title page with the
 * portfolio's figures, a table of contents, then the asked number of
 * content pages listing contracts (by branch) and claims (by date), each
 * page with its column headers, "n / N" and its subtotals and running
 * totals.
 *
 * The page count is what the caller asked for, whatever the size of the
 * portfolio: when a listing runs out before its pages do, it starts over
 * from its first row, under a visible "passage 2" mark.  Rows come from
 * server-side cursors; libharu keeps the pages themselves in memory
 * until the file is written, about 15 KB per content page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasks/report_pdf.h"

enum pdf_kind { PK_TEXT, PK_DATE, PK_MONEY, PK_STATUS };

struct pdf_col {
	const char	*title;
	float		 width;
	int		 src;		/* cursor column */
	enum pdf_kind	 kind;
};

/* One listing: contracts or claims. */
struct pdf_list {
	const char		*title;		/* section, as printed */
	const char		*noun;		/* "contrats" */
	const struct pdf_col	*cols;
	int			 ncols;
	int			 group_col;	/* a TOC entry when it changes */
	int			 group_year;	/* group by the date's year */
	int			 sum_col[2];	/* summed money columns, or -1 */
	struct report_cursor	*cur;
	int			 cycle;
	char			 group[32];
	int64_t			 count;
	double			 sum[2];
	HPDF_Outline		 outline;
};

static const struct pdf_col contract_cols[] = {
	{ "N° contrat", 72, RC_NO, PK_TEXT },
	{ "Client", 100, RC_CLIENT, PK_TEXT },
	{ "Ville", 70, RC_CITY, PK_TEXT },
	{ "Branche", 52, RC_BRANCH, PK_TEXT },
	{ "Produit", 78, RC_PRODUCT, PK_TEXT },
	{ "Début", 46, RC_START, PK_DATE },
	{ "Statut", 40, RC_STATUS, PK_STATUS },
	{ "Prime annuelle €", 57, RC_PREMIUM, PK_MONEY },
};

static const struct pdf_col claim_cols[] = {
	{ "N° sinistre", 72, RK_NO, PK_TEXT },
	{ "Contrat", 72, RK_CONTRACT, PK_TEXT },
	{ "Branche", 52, RK_BRANCH, PK_TEXT },
	{ "Catégorie", 88, RK_CATEGORY, PK_TEXT },
	{ "Survenance", 48, RK_OCCURRED, PK_DATE },
	{ "Statut", 61, RK_STATUS, PK_STATUS },
	{ "Déclaré €", 61, RK_CLAIMED, PK_MONEY },
	{ "Réglé €", 61, RK_PAID, PK_MONEY },
};

static void
pdf_error(HPDF_STATUS err, HPDF_STATUS detail, void *arg)
{
	struct pdf *p = arg;

	/* Keep the first: later ones are usually its consequences. */
	if (p->err == 0) {
		p->err = err;
		p->detail = detail;
	}
}


/* "2024-03-15" as "15/03/2024". */
static void
pdf_date(const char *iso, char *out, size_t len)
{
	if (strlen(iso) == 10)
		snprintf(out, len, "%.2s/%.2s/%.4s", iso + 8, iso + 5, iso);
	else
		snprintf(out, len, "%s", iso);
}

static void
pdf_header_row(struct pdf *p, HPDF_Page pg, const struct pdf_list *l,
    float y)
{
	float	x = PDF_LEFT;
	int	i;

	pdf_rect(pg, PDF_LEFT, y - 3, PDF_RIGHT - PDF_LEFT, PDF_ROW,
	    0.85f, 0.88f, 0.93f);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0.1f, 0.1f, 0.2f);
	for (i = 0; i < l->ncols; i++) {
		if (l->cols[i].kind == PK_MONEY)
			pdf_put(p, pg, p->bold, PDF_FS, x + l->cols[i].width -
			    3, y, 0, 1, l->cols[i].title);
		else
			pdf_put(p, pg, p->bold, PDF_FS, x + 2, y,
			    l->cols[i].width - 4, 0, l->cols[i].title);
		x += l->cols[i].width;
	}
	HPDF_Page_EndText(pg);
}

/* A full-width line of bold text in a tinted band (groups, restarts). */
static void
pdf_band(struct pdf *p, HPDF_Page pg, float y, const char *text)
{
	pdf_rect(pg, PDF_LEFT, y - 3, PDF_RIGHT - PDF_LEFT, PDF_ROW,
	    0.97f, 0.93f, 0.82f);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0.35f, 0.2f, 0);
	pdf_put(p, pg, p->bold, PDF_FS, PDF_LEFT + 2, y, 0, 0, text);
	HPDF_Page_EndText(pg);
}

static void
pdf_cells(struct pdf *p, HPDF_Page pg, struct pdf_list *l, float y, int zebra)
{
	const char	*v;
	char		 buf[64];
	float		 x = PDF_LEFT, w;
	int		 i;

	if (zebra)
		pdf_rect(pg, PDF_LEFT, y - 3, PDF_RIGHT - PDF_LEFT, PDF_ROW,
		    0.95f, 0.96f, 0.98f);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0, 0, 0);
	for (i = 0; i < l->ncols; i++) {
		v = report_cursor_get(l->cur, l->cols[i].src);
		w = l->cols[i].width;
		switch (l->cols[i].kind) {
		case PK_MONEY:
			report_fmt_money(buf, sizeof(buf), strtod(v, NULL),
			    "\xc2\xa0");
			pdf_put(p, pg, p->font, PDF_FS, x + w - 3, y, 0, 1, buf);
			break;
		case PK_DATE:
			pdf_date(v, buf, sizeof(buf));
			pdf_put(p, pg, p->font, PDF_FS, x + 2, y, w - 4, 0, buf);
			break;
		case PK_STATUS:
			pdf_put(p, pg, p->font, PDF_FS, x + 2, y, w - 4, 0,
			    report_status_label(v));
			break;
		default:
			pdf_put(p, pg, p->font, PDF_FS, x + 2, y, w - 4, 0, v);
		}
		x += w;
	}
	HPDF_Page_EndText(pg);
}

/*
 * Up to nrows rows of a listing from y down, with its header row; then
 * the page's subtotal and the running (or, on the last page, final)
 * total.  Returns -1 when reading failed.
 */
static int
pdf_table(struct pdf *p, HPDF_Page pg, struct pdf_list *l, float y, int nrows,
    int last)
{
	char		 text[256], a[48], b[48], group[32];
	const char	*g;
	int64_t		 count = 0;
	double		 sum[2] = { 0, 0 };
	int		 r = 0, rc, i;

	pdf_header_row(p, pg, l, y);
	y -= PDF_ROW;
	while (r < nrows) {
		if ((rc = report_cursor_next(l->cur)) == -1)
			return -1;
		if (rc == 0) {
			if (l->count == 0 && count == 0)
				pdf_band(p, pg, y, "Aucune donnée.");
			break;
		}
		if (report_cursor_cycle(l->cur) != l->cycle) {
			l->cycle = report_cursor_cycle(l->cur);
			l->group[0] = '\0';
			p->job->wrapped = 1;
			snprintf(text, sizeof(text), "Reprise de la liste depuis "
			    "le début (passage %d)", l->cycle + 1);
			pdf_band(p, pg, y, text);
			y -= PDF_ROW;
			if (++r == nrows)
				break;
		}
		g = report_cursor_get(l->cur, l->group_col);
		snprintf(group, sizeof(group), "%.*s", l->group_year ? 4 : 30,
		    g);
		if (strcmp(group, l->group) != 0) {
			snprintf(l->group, sizeof(l->group), "%s", group);
			snprintf(text, sizeof(text), "%s %s", l->group_year ?
			    "Année" : "Branche", l->group_year ? group :
			    report_cursor_get(l->cur, RC_BRANCH));
			if (l->cycle == 0)
				pdf_toc_add(p, pg, l->outline, 1, text, NULL);
			pdf_band(p, pg, y, text);
			y -= PDF_ROW;
			if (++r == nrows)
				break;
		}
		pdf_cells(p, pg, l, y, r % 2);
		for (i = 0; i < 2; i++)
			if (l->sum_col[i] >= 0)
				sum[i] += strtod(report_cursor_get(l->cur,
				    l->sum_col[i]), NULL);
		count++;
		y -= PDF_ROW;
		r++;
		p->job->rows++;
	}
	l->count += count;
	l->sum[0] += sum[0];
	l->sum[1] += sum[1];

	HPDF_Page_SetRGBStroke(pg, 0.16f, 0.29f, 0.48f);
	HPDF_Page_SetLineWidth(pg, 0.8f);
	HPDF_Page_MoveTo(pg, PDF_LEFT, y + PDF_ROW - 4);
	HPDF_Page_LineTo(pg, PDF_RIGHT, y + PDF_ROW - 4);
	HPDF_Page_Stroke(pg);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0, 0, 0);
	report_fmt_money(a, sizeof(a), sum[0], "\xc2\xa0");
	report_fmt_money(b, sizeof(b), sum[1], "\xc2\xa0");
	if (l->sum_col[1] >= 0)
		snprintf(text, sizeof(text), "Sous-total page : %lld %s, "
		    "déclarés %s €, réglés %s €", (long long)count, l->noun,
		    a, b);
	else
		snprintf(text, sizeof(text), "Sous-total page : %lld %s, "
		    "%s €", (long long)count, l->noun, a);
	pdf_put(p, pg, p->font, 8, PDF_LEFT, y - 2, 0, 0, text);
	report_fmt_money(a, sizeof(a), l->sum[0], "\xc2\xa0");
	report_fmt_money(b, sizeof(b), l->sum[1], "\xc2\xa0");
	if (l->sum_col[1] >= 0)
		snprintf(text, sizeof(text), "%s : %lld %s, déclarés %s €, "
		    "réglés %s €", last ? "Total listé" : "Cumul",
		    (long long)l->count, l->noun, a, b);
	else
		snprintf(text, sizeof(text), "%s : %lld %s, %s €", last ?
		    "Total listé" : "Cumul", (long long)l->count, l->noun, a);
	pdf_put(p, pg, p->bold, 8, PDF_LEFT, y - 13, 0, 0, text);
	HPDF_Page_EndText(pg);
	return 0;
}


static int
pdf_fail(struct pdf *p)
{
	return task_fail(p->job->ctx, "ReportError", REPORT_ERRMOD,
	    "PDF generation failed (libharu error 0x%04lX, detail %lu)",
	    (unsigned long)p->err, (unsigned long)p->detail);
}

static int
pdf_body(struct pdf *p, struct pdf_list *lc, struct pdf_list *lk)
{
	struct report_totals	 t;
	struct report_branch	 br[REPORT_MAX_BRANCHES];
	HPDF_Page		 pg, toc;
	int			 nbr, pages = p->job->pages, ncon, i;

	if (report_db_totals(p->job->db, &t) == -1 ||
	    report_db_branches(p->job->db, br, REPORT_MAX_BRANCHES, &nbr) == -1)
		return -1;
	if (t.contracts == 0 && t.claims == 0)
		return task_fail(p->job->ctx, "ReportError", REPORT_ERRMOD,
		    "no insurance data to report on (load it, or run "
		    "\"celeriac demo-data\")");
	if ((lc->cur = report_cursor_open(p->job->db, "report_contracts",
	    report_sql_contracts, 1)) == NULL ||
	    (lk->cur = report_cursor_open(p->job->db, "report_claims",
	    report_sql_claims, 1)) == NULL)
		return -1;
	pdf_toc_add(p, pdf_title(p, &t, br, nbr), p->root, 0,
	    "Synthèse du portefeuille", NULL);
	toc = pdf_page(p, "Table des matières");
	pdf_toc_add(p, toc, p->root, 0, "Table des matières", NULL);
	/* Contracts on the first half of the pages, claims on the rest. */
	ncon = pages == 1 ? 1 : (pages + 1) / 2;
	for (i = 1; i <= pages; i++) {
		if (pages == 1) {
			pg = pdf_page(p, "Contrats et sinistres");
			pdf_toc_add(p, pg, p->root, 0, lc->title, &lc->outline);
			if (pdf_table(p, pg, lc, PDF_TOP, PDF_ROWS_HALF, 1) == -1)
				return -1;
			pdf_toc_add(p, pg, p->root, 0, lk->title, &lk->outline);
			if (pdf_table(p, pg, lk, PDF_TOP - (PDF_ROWS_HALF + 4) *
			    PDF_ROW, PDF_ROWS_HALF, 1) == -1)
				return -1;
		} else if (i <= ncon) {
			pg = pdf_page(p, lc->title);
			if (i == 1)
				pdf_toc_add(p, pg, p->root, 0, lc->title,
				    &lc->outline);
			if (pdf_table(p, pg, lc, PDF_TOP, PDF_ROWS_FULL,
			    i == ncon) == -1)
				return -1;
		} else {
			pg = pdf_page(p, lk->title);
			if (i == ncon + 1)
				pdf_toc_add(p, pg, p->root, 0, lk->title,
				    &lk->outline);
			if (pdf_table(p, pg, lk, PDF_TOP, PDF_ROWS_FULL,
			    i == pages) == -1)
				return -1;
		}
		if (p->err != 0)
			return pdf_fail(p);
		if (report_step(p->job, i, pages) == -1)
			return -1;
	}
	pdf_fill_toc(p, toc);
	return 0;
}

int
report_pdf_write(struct report_job *job)
{
	struct pdf	 p;
	struct pdf_list	 lc, lk;
	time_t		 now = time(NULL);
	struct tm	 tm;
	int		 rc;

	memset(&p, 0, sizeof(p));
	memset(&lc, 0, sizeof(lc));
	memset(&lk, 0, sizeof(lk));
	p.job = job;
	p.npages = job->pages + 2;
	localtime_r(&now, &tm);
	strftime(p.date, sizeof(p.date), "%d/%m/%Y %H:%M", &tm);
	lc.title = "Contrats";
	lc.noun = "contrats";
	lc.cols = contract_cols;
	lc.ncols = sizeof(contract_cols) / sizeof(*contract_cols);
	lc.group_col = RC_BRANCH_CODE;
	lc.sum_col[0] = RC_PREMIUM;
	lc.sum_col[1] = -1;
	lk.title = "Sinistres";
	lk.noun = "sinistres";
	lk.cols = claim_cols;
	lk.ncols = sizeof(claim_cols) / sizeof(*claim_cols);
	lk.group_col = RK_OCCURRED;
	lk.group_year = 1;
	lk.sum_col[0] = RK_CLAIMED;
	lk.sum_col[1] = RK_PAID;

	if ((p.doc = HPDF_New(pdf_error, &p)) == NULL)
		return task_fail(job->ctx, "MemoryError", "builtins",
		    "cannot start libharu");
	HPDF_SetCompressionMode(p.doc, HPDF_COMP_ALL);
	HPDF_SetPageMode(p.doc, HPDF_PAGE_MODE_USE_OUTLINE);
	HPDF_SetInfoAttr(p.doc, HPDF_INFO_TITLE,
	    "MonAssurance - Rapport de portefeuille");
	HPDF_SetInfoAttr(p.doc, HPDF_INFO_CREATOR, "celeriac " PACKAGE_VERSION);
	p.font = HPDF_GetFont(p.doc, "Helvetica", "WinAnsiEncoding");
	p.bold = HPDF_GetFont(p.doc, "Helvetica-Bold", "WinAnsiEncoding");
	p.enc = HPDF_GetEncoder(p.doc, "WinAnsiEncoding");
	p.root = HPDF_CreateOutline(p.doc, NULL, "Rapport", p.enc);
	HPDF_Outline_SetOpened(p.root, HPDF_TRUE);

	rc = p.err != 0 ? pdf_fail(&p) : pdf_body(&p, &lc, &lk);
	report_cursor_close(lc.cur);
	report_cursor_close(lk.cur);
	if (rc == 0) {
		HPDF_SaveToFile(p.doc, job->tmp_path);
		if (p.err != 0)
			rc = pdf_fail(&p);
	}
	job->out_pages = p.pageno;
	HPDF_Free(p.doc);
	return rc;
}
