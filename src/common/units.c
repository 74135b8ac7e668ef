/*
 * units.c - human units in the configuration: durations ("250ms", "30s",
 * "5m", "1h", "7d", bare seconds) and sizes ("64K", "512M", "1G", "2T",
 * bare bytes, with an optional "B" or "iB").
 *
 * Both parsers are strict: no sign, no blanks, no fractions, and a value
 * that does not fit in an int64_t is an error rather than a wrapped
 * number, because a limit silently turned negative would mean "unlimited".
 */
#include <stdint.h>
#include <string.h>

#include "common/config.h"

/*
 * Read the leading run of decimal digits of s into *n and return a pointer
 * past them, or NULL if there is no digit or the number overflows.
 */
static const char *
cfg_parse_digits(const char *s, int64_t *n)
{
	int64_t	 v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return NULL;
		v = v * 10 + (*p - '0');
	}
	if (p == s)
		return NULL;
	*n = v;
	return p;
}

static int
cfg_mul(int64_t n, int64_t unit, int64_t *out)
{
	if (n > INT64_MAX / unit)
		return -1;
	*out = n * unit;
	return 0;
}

int
cfg_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char	*suffix;
		int64_t		 ms;
	} units[] = {
		{ "",	1000 },		/* bare number: seconds */
		{ "ms",	1 },
		{ "s",	1000 },
		{ "m",	60 * 1000 },
		{ "h",	60 * 60 * 1000 },
		{ "d",	24 * 60 * 60 * 1000 },
	};
	const char *p;
	int64_t	 n;
	size_t	 i;

	if (s == NULL || (p = cfg_parse_digits(s, &n)) == NULL)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].suffix) == 0)
			return cfg_mul(n, units[i].ms, ms);
	return -1;
}

int
cfg_parse_size(const char *s, int64_t *bytes)
{
	static const char letters[] = "KMGT";
	const char *p, *l;
	int64_t	 n, unit = 1;
	char	 c;

	if (s == NULL || (p = cfg_parse_digits(s, &n)) == NULL)
		return -1;
	c = *p;
	if (c >= 'a' && c <= 'z')
		c -= 'a' - 'A';
	if (c != '\0' && (l = strchr(letters, c)) != NULL) {
		unit = (int64_t)1 << (10 * (l - letters + 1));
		p++;
		/* "1GiB" says the same thing as "1G"; "1iB" means nothing. */
		if (p[0] == 'i' && p[1] == 'B')
			p++;
	}
	if (*p == 'B')
		p++;
	if (*p != '\0')
		return -1;
	return cfg_mul(n, unit, bytes);
}
