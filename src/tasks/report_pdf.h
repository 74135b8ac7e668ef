/*
 * report_pdf.h - the PDF report's shared state and page helpers:
 * report_pdf.c lays out the listings, report_pdf_page.c draws what is
 * not a listing (page frame, title page, table of contents).
 */
#ifndef CELERIAC_REPORT_PDF_H
#define CELERIAC_REPORT_PDF_H

#include <hpdf.h>

#include "tasks/report.h"

#define PDF_W		595.276f
#define PDF_H		841.89f
#define PDF_LEFT	40.0f
#define PDF_RIGHT	555.0f
#define PDF_TOP		780.0f
#define PDF_ROW		13.0f
#define PDF_FS		7.5f
#define PDF_ROWS_FULL	48	/* table rows of a content page */
#define PDF_ROWS_HALF	22	/* each table of a one-page report */
#define PDF_MAXTOC	24

struct pdf_toc {
	char		 title[64];
	int		 level;
	int		 page;
	HPDF_Page	 pg;
};

struct pdf {
	struct report_job	*job;
	HPDF_Doc		 doc;
	HPDF_Font		 font, bold;
	HPDF_Encoder		 enc;
	HPDF_STATUS		 err, detail;
	int			 npages, pageno;
	char			 date[40];
	struct pdf_toc		 toc[PDF_MAXTOC];
	int			 ntoc;
	HPDF_Outline		 root;
};

/* UTF-8 to WinAnsi (CP1252), for the base-14 fonts. */
void		 pdf_text(const char *in, char *out, size_t len);
/* Text (UTF-8) at x, y; right-aligned at x when right is set, clipped
 * to width (0 = no clip).  Inside BeginText/EndText. */
void		 pdf_put(struct pdf *, HPDF_Page, HPDF_Font, float size, float x,
		    float y, float width, int right, const char *utf8);
void		 pdf_rect(HPDF_Page, float x, float y, float w, float h,
		    float r, float g, float b);
/* A new page with its header band and "n / N" footer. */
HPDF_Page	 pdf_page(struct pdf *, const char *section);
/* A table of contents entry and bookmark for the current page. */
void		 pdf_toc_add(struct pdf *, HPDF_Page, HPDF_Outline parent,
		    int level, const char *title, HPDF_Outline *made);
HPDF_Page	 pdf_title(struct pdf *, const struct report_totals *,
		    const struct report_branch *, int nbr);
void		 pdf_fill_toc(struct pdf *, HPDF_Page);

#endif
