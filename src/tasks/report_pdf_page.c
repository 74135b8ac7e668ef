/*
 * report_pdf_page.c - what the PDF report draws besides its listings:
 * the frame of every page (header band, "n / N" footer), the title page
 * with the portfolio's figures and a bar chart, and the table of
 * contents with its links and the matching bookmarks.
 *
 * Text comes in as UTF-8 and is drawn with the base-14 Helvetica fonts,
 * hence the conversion to their WinAnsi encoding.
 */
#include <stdio.h>
#include <string.h>

#include "tasks/report_pdf.h"

/*
 * UTF-8 to the WinAnsi (CP1252) encoding of the base-14 fonts: Latin-1
 * maps as is, the few CP1252 extras French needs are looked up, the rest
 * becomes '?'.
 */
void
pdf_text(const char *in, char *out, size_t len)
{
	const unsigned char	*s = (const unsigned char *)in;
	unsigned int		 cp;
	size_t			 o = 0;

	while (*s && o + 1 < len) {
		if (*s < 0x80)
			cp = *s++;
		else if ((*s & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
			cp = (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
			s += 2;
		} else if ((*s & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 &&
		    (s[2] & 0xC0) == 0x80) {
			cp = (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 |
			    (s[2] & 0x3Fu);
			s += 3;
		} else {
			cp = '?';
			s++;
			while ((*s & 0xC0) == 0x80)
				s++;
		}
		if (cp >= 0xA0 && cp <= 0xFF)
			;
		else if (cp == 0x20AC)
			cp = 0x80;		/* € */
		else if (cp == 0x2019)
			cp = 0x92;		/* ’ */
		else if (cp == 0x2026)
			cp = 0x85;		/* … */
		else if (cp == 0x0153)
			cp = 0x9C;		/* œ */
		else if (cp == 0x2014)
			cp = 0x97;		/* — */
		else if (cp >= 0x80)
			cp = '?';
		out[o++] = (char)cp;
	}
	out[o] = '\0';
}

/* Writes text (UTF-8) at x, y in font and size; right-aligned at x when
 * right is set, clipped to width (0 = no clip). */
void
pdf_put(struct pdf *p, HPDF_Page pg, HPDF_Font f, float size, float x,
    float y, float width, int right, const char *utf8)
{
	char		buf[512];
	HPDF_REAL	real;
	HPDF_UINT	n, len;

	pdf_text(utf8, buf, sizeof(buf) - 2);
	len = (HPDF_UINT)strlen(buf);
	if (width > 0 && len > 0) {
		n = HPDF_Font_MeasureText(f, (HPDF_BYTE *)buf, len, width,
		    size, 0, 0, HPDF_FALSE, &real);
		if (n < len) {
			n = HPDF_Font_MeasureText(f, (HPDF_BYTE *)buf, len,
			    width - size * 0.8f, size, 0, 0, HPDF_FALSE, &real);
			buf[n] = (char)0x85;
			buf[n + 1] = '\0';
		}
	}
	HPDF_Page_SetFontAndSize(pg, f, size);
	if (right)
		x -= HPDF_Page_TextWidth(pg, buf);
	HPDF_Page_TextOut(pg, x, y, buf);
}

void
pdf_rect(HPDF_Page pg, float x, float y, float w, float h, float r, float g,
    float b)
{
	HPDF_Page_SetRGBFill(pg, r, g, b);
	HPDF_Page_Rectangle(pg, x, y, w, h);
	HPDF_Page_Fill(pg);
}

/* Header band and footer ("n / N") of every page but the title. */
HPDF_Page
pdf_page(struct pdf *p, const char *section)
{
	HPDF_Page	pg = HPDF_AddPage(p->doc);
	char		buf[256];

	p->pageno++;
	HPDF_Page_SetSize(pg, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
	pdf_rect(pg, 0, PDF_H - 36, PDF_W, 36, 0.16f, 0.29f, 0.48f);
	HPDF_Page_SetRGBStroke(pg, 0.6f, 0.6f, 0.6f);
	HPDF_Page_SetLineWidth(pg, 0.5f);
	HPDF_Page_MoveTo(pg, PDF_LEFT, 42);
	HPDF_Page_LineTo(pg, PDF_RIGHT, 42);
	HPDF_Page_Stroke(pg);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 1, 1, 1);
	pdf_put(p, pg, p->bold, 11, PDF_LEFT, PDF_H - 23, 0, 0,
	    "MonAssurance — Rapport de portefeuille");
	pdf_put(p, pg, p->font, 10, PDF_RIGHT, PDF_H - 23, 0, 1, section);
	HPDF_Page_SetRGBFill(pg, 0.3f, 0.3f, 0.3f);
	snprintf(buf, sizeof(buf), "Rapport %s — %s", p->job->label, p->date);
	pdf_put(p, pg, p->font, 7, PDF_LEFT, 30, 300, 0, buf);
	snprintf(buf, sizeof(buf), "%d / %d", p->pageno, p->npages);
	pdf_put(p, pg, p->font, 8, PDF_RIGHT, 30, 0, 1, buf);
	HPDF_Page_EndText(pg);
	return pg;
}

void
pdf_toc_add(struct pdf *p, HPDF_Page pg, HPDF_Outline parent, int level,
    const char *title, HPDF_Outline *made)
{
	HPDF_Destination	 dst;
	HPDF_Outline		 o;
	char			 buf[128];
	struct pdf_toc		*t;

	dst = HPDF_Page_CreateDestination(pg);
	HPDF_Destination_SetXYZ(dst, 0, PDF_H, 1);
	pdf_text(title, buf, sizeof(buf));
	o = HPDF_CreateOutline(p->doc, parent, buf, p->enc);
	HPDF_Outline_SetDestination(o, dst);
	if (made != NULL)
		*made = o;
	if (p->ntoc == PDF_MAXTOC)
		return;
	t = &p->toc[p->ntoc++];
	snprintf(t->title, sizeof(t->title), "%s", title);
	t->level = level;
	t->page = p->pageno;
	t->pg = pg;
}
/* The title page: the portfolio in figures and a small bar chart. */
HPDF_Page
pdf_title(struct pdf *p, const struct report_totals *t,
    const struct report_branch *br, int nbr)
{
	static const char *const heads[] = { "Branche", "Contrats",
	    "Primes émises €", "Sinistres", "Réglé €", "S/P" };
	static const float hx[] = { 60, 200, 300, 380, 470, 535 };
	HPDF_Page	 pg = HPDF_AddPage(p->doc);
	char		 buf[160], m[48];
	double		 max = 1, h;
	float		 y;
	int		 i, j;

	p->pageno++;
	HPDF_Page_SetSize(pg, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
	pdf_rect(pg, 0, PDF_H - 200, PDF_W, 200, 0.16f, 0.29f, 0.48f);
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 1, 1, 1);
	pdf_put(p, pg, p->bold, 26, 60, PDF_H - 100, 0, 0, "MonAssurance");
	pdf_put(p, pg, p->font, 16, 60, PDF_H - 130, 0, 0,
	    "Rapport de portefeuille — contrats et sinistres");
	snprintf(buf, sizeof(buf), "Rapport %s, généré le %s", p->job->label,
	    p->date);
	pdf_put(p, pg, p->font, 10, 60, PDF_H - 160, 480, 0, buf);
	HPDF_Page_SetRGBFill(pg, 0, 0, 0);
	pdf_put(p, pg, p->bold, 13, 60, 590, 0, 0, "Synthèse du portefeuille");
	y = 565;
	snprintf(buf, sizeof(buf), "Clients : %lld    Contrats : %lld "
	    "(dont %lld actifs)", (long long)t->clients,
	    (long long)t->contracts, (long long)t->active);
	pdf_put(p, pg, p->font, 10, 60, y, 0, 0, buf);
	report_fmt_money(m, sizeof(m), t->premiums_called, "\xc2\xa0");
	snprintf(buf, sizeof(buf), "Primes émises : %s €", m);
	pdf_put(p, pg, p->font, 10, 60, y -= 16, 0, 0, buf);
	report_fmt_money(m, sizeof(m), t->paid, "\xc2\xa0");
	snprintf(buf, sizeof(buf), "Sinistres : %lld, réglés %s €    "
	    "S/P : %.1f %%", (long long)t->claims, m, t->premiums_called > 0 ?
	    100 * t->paid / t->premiums_called : 0.0);
	pdf_put(p, pg, p->font, 10, 60, y -= 16, 0, 0, buf);
	y -= 30;
	for (i = 0; i < 6; i++)
		pdf_put(p, pg, p->bold, 9, hx[i], y, 0, i > 0, heads[i]);
	for (i = 0; i < nbr; i++) {
		y -= 15;
		pdf_put(p, pg, p->font, 9, hx[0], y, 0, 0, br[i].label);
		snprintf(buf, sizeof(buf), "%lld", (long long)br[i].contracts);
		pdf_put(p, pg, p->font, 9, hx[1], y, 0, 1, buf);
		report_fmt_money(m, sizeof(m), br[i].premiums_called,
		    "\xc2\xa0");
		pdf_put(p, pg, p->font, 9, hx[2], y, 0, 1, m);
		snprintf(buf, sizeof(buf), "%lld", (long long)br[i].claims);
		pdf_put(p, pg, p->font, 9, hx[3], y, 0, 1, buf);
		report_fmt_money(m, sizeof(m), br[i].paid, "\xc2\xa0");
		pdf_put(p, pg, p->font, 9, hx[4], y, 0, 1, m);
		snprintf(buf, sizeof(buf), "%.1f %%", br[i].premiums_called >
		    0 ? 100 * br[i].paid / br[i].premiums_called : 0.0);
		pdf_put(p, pg, p->font, 9, hx[5], y, 0, 1, buf);
	}
	pdf_put(p, pg, p->bold, 11, 60, 250, 0, 0,
	    "Primes émises et sinistres réglés par branche");
	HPDF_Page_EndText(pg);

	/* Bars: premiums (blue) and claims paid (orange) per branch. */
	for (i = 0; i < nbr; i++)
		if (br[i].premiums_called > max)
			max = br[i].premiums_called;
	for (i = 0; i < nbr; i++)
		for (j = 0; j < 2; j++) {
			h = 150 * (j ? br[i].paid : br[i].premiums_called) /
			    max;
			pdf_rect(pg, 80 + i * 120 + j * 34, 70, 30, (float)h,
			    j ? 0.93f : 0.16f, j ? 0.55f : 0.29f,
			    j ? 0.13f : 0.48f);
		}
	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0, 0, 0);
	for (i = 0; i < nbr; i++)
		pdf_put(p, pg, p->font, 9, 80 + i * 120, 56, 0, 0,
		    br[i].label);
	HPDF_Page_EndText(pg);
	return pg;
}

/* The table of contents, written last: now the pages are known. */
void
pdf_fill_toc(struct pdf *p, HPDF_Page pg)
{
	HPDF_Destination	 dst;
	HPDF_Annotation		 a;
	HPDF_Rect		 r;
	char			 num[16];
	float			 y = PDF_TOP - 20, x;
	int			 i;

	HPDF_Page_BeginText(pg);
	HPDF_Page_SetRGBFill(pg, 0, 0, 0);
	pdf_put(p, pg, p->bold, 16, PDF_LEFT, PDF_TOP, 0, 0,
	    "Table des matières");
	for (i = 0; i < p->ntoc; i++) {
		y -= p->toc[i].level ? 16 : 24;
		x = PDF_LEFT + 20 * p->toc[i].level;
		pdf_put(p, pg, p->toc[i].level ? p->font : p->bold,
		    p->toc[i].level ? 10 : 12, x, y, 0, 0, p->toc[i].title);
		snprintf(num, sizeof(num), "%d", p->toc[i].page);
		pdf_put(p, pg, p->font, 10, PDF_RIGHT, y, 0, 1, num);
	}
	HPDF_Page_EndText(pg);
	y = PDF_TOP - 20;
	for (i = 0; i < p->ntoc; i++) {
		y -= p->toc[i].level ? 16 : 24;
		r.left = PDF_LEFT;
		r.right = PDF_RIGHT;
		r.bottom = y - 3;
		r.top = y + 11;
		dst = HPDF_Page_CreateDestination(p->toc[i].pg);
		HPDF_Destination_SetXYZ(dst, 0, PDF_H, 1);
		a = HPDF_Page_CreateLinkAnnot(pg, r, dst);
		HPDF_LinkAnnot_SetBorderStyle(a, 0, 0, 0);
	}
}
