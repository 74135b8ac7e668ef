/*
 * demo_gen.c - the sample insurance data of `celeriac demo-data`: French
 * clients with their cities, contracts in the four lines of business
 * with premiums, monthly instalments and claims by category, as COPY
 * text rows.
 *
 * Everything is a function of the seed: the generator is xoshiro256**
 * (never rand(), whose sequence differs between libcs), the calendar is
 * fixed (contracts from 2021, instalments and claims over 2023-2024,
 * "today" being 2024-12-31), and each client and contract draws from its
 * own stream, so each table can be generated in its own pass with
 * nothing kept in memory.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl/demo_gen.h"

#define DEMO_NBRANCH		4

struct demo_rng {
	uint64_t s[4];
};

static const char *const demo_first[] = {
	"Marie", "Jean", "Camille", "Nicolas", "Léa", "Thomas", "Chloé",
	"Julien", "Manon", "Antoine", "Inès", "Mathieu", "Sarah", "Hugo",
	"Émilie", "Louis", "Pauline", "Maxime", "Julie", "Alexandre", "Laura",
	"Pierre", "Céline", "François", "Anaïs", "Guillaume", "Claire",
	"Sébastien", "Nathalie", "Olivier", "Isabelle", "Philippe", "Hélène",
	"Yannick", "Sophie", "Benoît", "Élodie", "Romain", "Margaux", "Loïc",
	"Françoise", "Michel", "Amélie", "Jérôme", "Zoé", "Arthur", "Noémie",
	"Gaël", "Océane", "Théo",
};
static const char *const demo_last[] = {
	"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard",
	"Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèbvre",
	"Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
	"Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert",
	"Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure",
	"Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas",
	"Perrin", "Morin", "Mathieu", "Clément", "Gauthier", "Dumont",
	"Lopez", "Fontaine", "Chevalier", "Robin", "Masson", "Sanchez",
	"Gérard", "Nguyen", "Boyer", "Denis", "Lemaire", "Duval", "Joly",
	"Gautier", "Roger", "Roche", "Roy", "Noël", "Meyer", "Lucas",
	"Meunier", "Jean", "Pérez", "Marchand", "Dufour", "Blanchard",
	"Giraud", "Barbier", "Brun", "Le Gall", "Le Goff", "Kerguelen",
};
static const struct {
	const char *name, *postcode;
	int weight;
} demo_cities[] = {
	{ "Paris", "75011", 30 }, { "Marseille", "13008", 14 },
	{ "Lyon", "69003", 12 }, { "Toulouse", "31000", 9 },
	{ "Nice", "06000", 7 }, { "Nantes", "44000", 7 },
	{ "Montpellier", "34000", 6 }, { "Strasbourg", "67000", 6 },
	{ "Bordeaux", "33000", 6 }, { "Lille", "59000", 5 },
	{ "Rennes", "35000", 5 }, { "Reims", "51100", 4 },
	{ "Toulon", "83000", 4 }, { "Saint-Étienne", "42000", 4 },
	{ "Le Havre", "76600", 4 }, { "Grenoble", "38000", 4 },
	{ "Dijon", "21000", 3 }, { "Angers", "49000", 3 },
	{ "Nîmes", "30000", 3 }, { "Clermont-Ferrand", "63000", 3 },
	{ "Aix-en-Provence", "13100", 3 }, { "Brest", "29200", 3 },
	{ "Tours", "37000", 3 }, { "Amiens", "80000", 2 },
	{ "Limoges", "87000", 2 }, { "Annecy", "74000", 2 },
	{ "Perpignan", "66000", 2 }, { "Metz", "57000", 2 },
	{ "Besançon", "25000", 2 }, { "Orléans", "45000", 2 },
	{ "Rouen", "76000", 2 }, { "Caen", "14000", 2 },
	{ "Nancy", "54000", 2 }, { "Pau", "64000", 1 },
	{ "La Rochelle", "17000", 1 }, { "Quimper", "29000", 1 },
	{ "Vannes", "56000", 1 }, { "Colmar", "68000", 1 },
	{ "Chambéry", "73000", 1 }, { "Ajaccio", "20000", 1 },
};
static const char *const demo_streets[] = {
	"rue de la République", "avenue Jean Jaurès", "rue Victor Hugo",
	"boulevard Gambetta", "rue Pasteur", "place de l'Église",
	"rue du Général de Gaulle", "avenue de la Gare", "rue des Écoles",
	"chemin des Vignes", "rue Jules Ferry", "allée des Tilleuls",
	"rue de la Paix", "impasse des Lilas", "quai de la Loire",
	"rue Émile Zola", "avenue Foch", "rue du Moulin",
};

/* Lines of business: codes as in insurance_branches. */
static const struct {
	const char	*code, *prefix;
	int		 weight;
	double		 freq;			/* claims per year */
	const char	*product[3];
	double		 premium[3];		/* typical annual premium */
	const char	*cat[6];
	double		 catw[6], catmean[6];	/* weight, mean amount */
} demo_branches[DEMO_NBRANCH] = {
	{ "auto", "AUT", 35, 0.22,
	    { "Tiers", "Tiers étendu", "Tous risques" }, { 350, 550, 850 },
	    { "collision", "bris de glace", "vol", "incendie",
	    "catastrophe naturelle", "responsabilité civile" },
	    { 45, 30, 10, 3, 5, 7 }, { 2500, 450, 6000, 9000, 3500, 4000 } },
	{ "habitation", "HAB", 30, 0.07,
	    { "Locataire", "Propriétaire occupant",
	    "Propriétaire non occupant" }, { 180, 380, 260 },
	    { "dégât des eaux", "vol / cambriolage", "incendie",
	    "bris de glace", "catastrophe naturelle",
	    "responsabilité civile" },
	    { 45, 20, 8, 12, 7, 8 }, { 1800, 3200, 15000, 400, 6000, 1500 } },
	{ "sante", "SAN", 20, 2.5,
	    { "Essentiel", "Confort", "Premium" }, { 700, 1200, 1900 },
	    { "consultation", "pharmacie", "optique", "dentaire",
	    "hospitalisation", NULL },
	    { 50, 20, 12, 12, 6, 0 }, { 45, 60, 320, 450, 2800, 0 } },
	{ "prevoyance", "PRE", 15, 0.02,
	    { "Obsèques", "Décès", "Incapacité-invalidité" },
	    { 240, 420, 780 },
	    { "incapacité de travail", "invalidité", "décès", NULL, NULL,
	    NULL },
	    { 60, 25, 15, 0, 0, 0 }, { 4500, 25000, 40000, 0, 0, 0 } },
};

/* ---- random numbers ---- */

static uint64_t
demo_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* An independent stream per (seed, object, purpose). */
static void
demo_rng_init(struct demo_rng *r, uint64_t seed, uint64_t id, uint64_t kind)
{
	uint64_t x = seed ^ (id * 0xD1342543DE82EF95ULL) ^ (kind << 56);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = demo_splitmix(&x);
}

static uint64_t
demo_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
demo_next(struct demo_rng *r)
{
	uint64_t *s = r->s, out = demo_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = demo_rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1). */
static double
demo_u(struct demo_rng *r)
{
	return (double)(demo_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [lo, hi]. */
static int
demo_int(struct demo_rng *r, int lo, int hi)
{
	return lo + (int)(demo_u(r) * (hi - lo + 1));
}

/* Index drawn by weight. */
static int
demo_pick(struct demo_rng *r, const double *w, int n)
{
	double	total = 0, x;
	int	i;

	for (i = 0; i < n; i++)
		total += w[i];
	x = demo_u(r) * total;
	for (i = 0; i < n - 1; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

/* Log-normal around 1 (median), spread sigma: amounts are skewed. */
static double
demo_lognormal(struct demo_rng *r, double sigma)
{
	double u1 = demo_u(r), u2 = demo_u(r);

	if (u1 < 1e-12)
		u1 = 1e-12;
	return exp(sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

static int
demo_poisson(struct demo_rng *r, double lambda)
{
	double	l = exp(-lambda), p = 1;
	int	k = 0;

	do {
		k++;
		p *= demo_u(r);
	} while (p > l && k < 100);
	return k - 1;
}

static double
demo_cents(double v)
{
	return round(v * 100) / 100;
}

/* ---- calendar (days since 1970-01-01, proleptic Gregorian) ---- */

static int
demo_days(int y, int m, int d)
{
	int era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
demo_ymd(int z, int *y, int *m, int *d)
{
	int era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp + (mp < 10 ? 3 : -9);
	*y = yoe + era * 400 + (*m <= 2);
}

static const char *
demo_date(int z, char *buf)
{
	int y, m, d;

	demo_ymd(z, &y, &m, &d);
	snprintf(buf, 16, "%04u-%02u-%02u", (unsigned)y % 10000u,
	    (unsigned)m % 100u, (unsigned)d % 100u);
	return buf;
}

/* ---- generation ---- */

/* Lower-case ASCII of a name, for e-mail addresses. */
static void
demo_ascii(const char *in, char *out, size_t len)
{
	static const char *const from[] = { "é", "è", "ê", "ë", "à", "â",
	    "î", "ï", "ô", "ö", "ù", "û", "ü", "ç", "É", "Î" };
	static const char to[] = "eeeeaaiioouuuceI";
	size_t	o = 0, i;

	while (*in && o + 1 < len) {
		for (i = 0; i < sizeof(from) / sizeof(*from); i++)
			if (strncmp(in, from[i], strlen(from[i])) == 0)
				break;
		if (i < sizeof(from) / sizeof(*from)) {
			out[o++] = (char)(to[i] | 0x20);
			in += strlen(from[i]);
		} else if (*in == ' ' || *in == '\'') {
			in++;
		} else {
			out[o++] = (char)(*in >= 'A' && *in <= 'Z' ?
			    *in + 32 : *in);
			in++;
		}
	}
	out[o] = '\0';
}

void
demo_client(uint64_t seed, int64_t id, int64_t *next_contract,
    struct demo_client *c)
{
	static const int asof = 20088;		/* 2024-12-31 */
	struct demo_rng		 r;
	struct demo_contract	*k;
	double			 cw[sizeof(demo_cities) / sizeof(*demo_cities)];
	double			 bw[DEMO_NBRANCH];
	char			 a[48], b[48];
	size_t			 i;
	int			 n, j;

	demo_rng_init(&r, seed, (uint64_t)id, 'C');
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->first = demo_first[demo_int(&r, 0,
	    sizeof(demo_first) / sizeof(*demo_first) - 1)];
	c->last = demo_last[demo_int(&r, 0,
	    sizeof(demo_last) / sizeof(*demo_last) - 1)];
	for (i = 0; i < sizeof(cw) / sizeof(*cw); i++)
		cw[i] = demo_cities[i].weight;
	i = (size_t)demo_pick(&r, cw, (int)(sizeof(cw) / sizeof(*cw)));
	c->city = demo_cities[i].name;
	c->postcode = demo_cities[i].postcode;
	c->street = demo_streets[demo_int(&r, 0,
	    sizeof(demo_streets) / sizeof(*demo_streets) - 1)];
	c->number = demo_int(&r, 1, 148);
	c->birth = demo_days(1940, 1, 1) + demo_int(&r, 0, 66 * 365);
	demo_ascii(c->first, a, sizeof(a));
	demo_ascii(c->last, b, sizeof(b));
	snprintf(c->email, sizeof(c->email), "%s.%s%d@example.%s", a, b,
	    demo_int(&r, 1, 99), demo_u(&r) < 0.5 ? "com" : "org");
	snprintf(c->phone, sizeof(c->phone), "0%d %02d %02d %02d %02d",
	    demo_u(&r) < 0.7 ? 6 : demo_int(&r, 1, 5), demo_int(&r, 0, 99),
	    demo_int(&r, 0, 99), demo_int(&r, 0, 99), demo_int(&r, 0, 99));

	/* 1 to 4 contracts, in different branches. */
	n = 1 + (demo_u(&r) < 0.45) + (demo_u(&r) < 0.15) +
	    (demo_u(&r) < 0.05);
	for (j = 0; j < DEMO_NBRANCH; j++)
		bw[j] = demo_branches[j].weight;
	c->since = asof;
	for (j = 0; j < n; j++) {
		k = &c->c[c->ncontracts++];
		k->id = (*next_contract)++;
		k->branch = demo_pick(&r, bw, DEMO_NBRANCH);
		bw[k->branch] = 0;
		k->product = demo_int(&r, 0, 2);
		/* From 2021-01-01 to 2024-10-01. */
		k->start = demo_days(2021, 1, 1) + demo_int(&r, 0, 1369);
		k->premium = demo_cents(demo_branches[k->branch].premium[
		    k->product] * demo_lognormal(&r, 0.25));
		k->end = -1;
		k->status = 0;
		if (demo_u(&r) < 0.10) {
			int lo = k->start + 90 > demo_days(2023, 1, 1) ?
			    k->start + 90 : demo_days(2023, 1, 1);
			if (lo < asof) {
				k->status = 2;		/* terminated */
				k->end = demo_int(&r, lo, asof);
			}
		} else if (demo_u(&r) < 0.04)
			k->status = 1;			/* suspended */
		if (k->start - 30 < c->since)
			c->since = k->start - demo_int(&r, 0, 30);
	}
}

static const char *const demo_status[] = { "active", "suspended",
    "terminated" };

static void
demo_put(struct demo_sink *s, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Rows are short; a longer one would be a bug, not data. */
	if (n > 0 && (size_t)n < sizeof(line))
		s->line(s->arg, line, (size_t)n);
}

void
demo_client_row(struct demo_sink *s, const struct demo_client *c)
{
	char d1[16], d2[16];

	demo_put(s, "%" PRId64 "\tCL-%06" PRId64 "\t%s\t%s\t%s\t%s\t%s\t%d %s\t"
	    "%s\t%s\t%s 09:00:00+01\n", c->id, c->id, c->last, c->first,
	    demo_date(c->birth, d1), c->email, c->phone, c->number, c->street,
	    c->postcode, c->city, demo_date(c->since, d2));
}

void
demo_contract_row(struct demo_sink *s, const struct demo_client *c,
    const struct demo_contract *k)
{
	char d1[16], d2[16];

	demo_put(s, "%" PRId64 "\t%s-%.4s-%06" PRId64 "\t%" PRId64 "\t%s\t%s\t"
	    "%s\t%s\t%.2f\t%s\n", k->id, demo_branches[k->branch].prefix,
	    demo_date(k->start, d1), k->id, c->id,
	    demo_branches[k->branch].code,
	    demo_branches[k->branch].product[k->product], d1, k->end >= 0 ?
	    demo_date(k->end, d2) : "\\N", k->premium,
	    demo_status[k->status]);
}

/* Premiums: monthly instalments over 2023-2024 while the contract runs. */
void
demo_premium_rows(struct demo_sink *cp, uint64_t seed,
    const struct demo_contract *k)
{
	struct demo_rng	r;
	char		d1[16], d2[16];
	double		amount = demo_cents(k->premium / 12), u;
	int		y, m, due, last = demo_days(2024, 12, 1);

	demo_rng_init(&r, seed, (uint64_t)k->id, 'P');
	for (y = 2023, m = 1; (due = demo_days(y, m, 1)) <= last;
	    m = m == 12 ? 1 : m + 1, y += m == 1) {
		if (due < k->start - 27 || (k->end >= 0 && due > k->end))
			continue;
		u = demo_u(&r);
		if (due == last && u < 0.3)
			demo_put(cp, "%" PRId64 "\t%s\t%.2f\t\\N\tdue\n", k->id,
			    demo_date(due, d1), amount);
		else if (u < 0.03 || (k->status == 1 && due > last - 90))
			demo_put(cp, "%" PRId64 "\t%s\t%.2f\t\\N\tlate\n",
			    k->id, demo_date(due, d1), amount);
		else
			demo_put(cp, "%" PRId64 "\t%s\t%.2f\t%s\tpaid\n", k->id,
			    demo_date(due, d1), amount,
			    demo_date(due + demo_int(&r, 0, 20), d2));
	}
}

/* Claims over 2023-2024, by the branch's frequency and categories. */
void
demo_claim_rows(struct demo_sink *cp, uint64_t seed,
    const struct demo_contract *k, int64_t *next_claim)
{
	static const int asof = 20088;		/* 2024-12-31 */
	struct demo_rng	 r;
	const char	*status;
	char		 d1[16], d2[16], settled[16];
	int		 lo = demo_days(2023, 1, 1), hi = asof, n, i, cat;
	int		 occ, rep, age, ncat;
	double		 claimed, paid, u;

	if (k->start > lo)
		lo = k->start;
	if (k->end >= 0 && k->end < hi)
		hi = k->end;
	if (hi <= lo)
		return;
	demo_rng_init(&r, seed, (uint64_t)k->id, 'K');
	n = demo_poisson(&r, demo_branches[k->branch].freq * (hi - lo) /
	    365.0);
	for (ncat = 0; ncat < 6 && demo_branches[k->branch].cat[ncat];
	    ncat++)
		;
	for (i = 0; i < n; i++) {
		cat = demo_pick(&r, demo_branches[k->branch].catw, ncat);
		occ = demo_int(&r, lo, hi);
		rep = occ + demo_int(&r, 0, 20);
		if (rep > asof)
			rep = asof;
		age = asof - rep;
		claimed = demo_cents(demo_branches[k->branch].catmean[cat] *
		    demo_lognormal(&r, 0.6));
		if (claimed < 10)
			claimed = 10;
		paid = 0;
		strcpy(settled, "\\N");
		u = demo_u(&r);
		if ((age > 120 && u < 0.85) || (age > 30 && u < 0.55)) {
			status = "settled";
			paid = demo_cents(claimed * (0.6 + 0.4 * demo_u(&r)));
			demo_date(rep + demo_int(&r, 5, age < 90 ? age : 90),
			    settled);
		} else if ((age > 120 && u < 0.95) || (age > 30 && u < 0.63))
			status = "rejected";
		else if (age > 120 || u < 0.8)
			status = "in_review";
		else
			status = "open";
		demo_put(cp, "%" PRId64 "\tSIN-%.4s-%06" PRId64 "\t%" PRId64
		    "\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\n", *next_claim,
		    demo_date(occ, d1), *next_claim, k->id,
		    demo_branches[k->branch].cat[cat], d1, demo_date(rep, d2),
		    claimed, paid, status, settled);
		(*next_claim)++;
	}
}
