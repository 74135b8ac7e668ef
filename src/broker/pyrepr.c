/*
 * pyrepr.c - Python 3 repr() of a JSON value, so that argsrepr,
 * kwargsrepr and event fields look exactly like a Python client's:
 * None/True/False, ints, floats in Python's shortest round-trip form,
 * 'single quoted' strings with Python's escapes, [lists] and {dicts}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"

/* A growing output buffer; a failed allocation poisons it. */
struct repr_buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
	int	 failed;
};

static void
rb_putn(struct repr_buf *rb, const char *s, size_t n)
{
	char	*ns;
	size_t	 ncap;

	if (rb->failed)
		return;
	if (rb->len + n + 1 > rb->cap) {
		ncap = rb->cap == 0 ? 64 : rb->cap;
		while (ncap < rb->len + n + 1) {
			if (ncap > SIZE_MAX / 2) {
				rb->failed = 1;
				return;
			}
			ncap *= 2;
		}
		if ((ns = realloc(rb->s, ncap)) == NULL) {
			rb->failed = 1;
			return;
		}
		rb->s = ns;
		rb->cap = ncap;
	}
	memcpy(rb->s + rb->len, s, n);
	rb->len += n;
	rb->s[rb->len] = '\0';
}

static void
rb_puts(struct repr_buf *rb, const char *s)
{
	rb_putn(rb, s, strlen(s));
}

/*
 * Python's repr(float): the shortest digit string that reads back as the
 * same double, in positional notation when the decimal exponent is in
 * [-4, 16), else as d.ddde+XX; positional values always show a ".0".
 */
static void
repr_double(struct repr_buf *rb, double v)
{
	char	 tmp[64], digits[32], *e;
	int	 prec, ndig, decpt, exp10, i;

	if (isnan(v)) {
		rb_puts(rb, "nan");
		return;
	}
	if (isinf(v)) {
		rb_puts(rb, v < 0 ? "-inf" : "inf");
		return;
	}
	if (v == 0.0) {
		rb_puts(rb, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp is "[-]d[.ddd]e[+-]XX"; the radix may be locale-specific. */
	ndig = 0;
	for (i = tmp[0] == '-' ? 1 : 0; tmp[i] != 'e' && tmp[i] != '\0'; i++)
		if (tmp[i] >= '0' && tmp[i] <= '9' &&
		    ndig < (int)sizeof(digits) - 1)
			digits[ndig++] = tmp[i];
	exp10 = (int)strtol(tmp + i + (tmp[i] == 'e'), &e, 10);
	while (ndig > 1 && digits[ndig - 1] == '0')
		ndig--;
	digits[ndig] = '\0';
	decpt = exp10 + 1;

	if (v < 0)
		rb_puts(rb, "-");
	if (decpt <= -4 || decpt > 16) {
		rb_putn(rb, digits, 1);
		if (ndig > 1) {
			rb_puts(rb, ".");
			rb_putn(rb, digits + 1, (size_t)ndig - 1);
		}
		snprintf(tmp, sizeof(tmp), "e%c%02d", exp10 < 0 ? '-' : '+',
		    abs(exp10));
		rb_puts(rb, tmp);
	} else if (decpt <= 0) {
		rb_puts(rb, "0.");
		for (i = decpt; i < 0; i++)
			rb_puts(rb, "0");
		rb_putn(rb, digits, (size_t)ndig);
	} else if (decpt < ndig) {
		rb_putn(rb, digits, (size_t)decpt);
		rb_puts(rb, ".");
		rb_putn(rb, digits + decpt, (size_t)(ndig - decpt));
	} else {
		rb_putn(rb, digits, (size_t)ndig);
		for (i = ndig; i < decpt; i++)
			rb_puts(rb, "0");
		rb_puts(rb, ".0");
	}
}

/*
 * Whether Python's str.isprintable() is false for code point c: the
 * categories Cc, Cf, Cs, Co, Zl, Zp and Zs other than the space, and
 * the noncharacters and the planes no Unicode version has used yet.
 * Other unassigned (Cn) code points are kept as they are: escaping them
 * would need the Unicode tables of the client's own Python version.
 */
static int
repr_unprintable(unsigned long c)
{
	static const unsigned long ranges[][2] = {
		{ 0x0000, 0x001f }, { 0x007f, 0x00a0 }, { 0x00ad, 0x00ad },
		{ 0x0600, 0x0605 }, { 0x061c, 0x061c }, { 0x06dd, 0x06dd },
		{ 0x070f, 0x070f }, { 0x0890, 0x0891 }, { 0x08e2, 0x08e2 },
		{ 0x1680, 0x1680 }, { 0x180e, 0x180e }, { 0x2000, 0x200f },
		{ 0x2028, 0x202f }, { 0x205f, 0x2064 }, { 0x2066, 0x206f },
		{ 0x3000, 0x3000 }, { 0xd800, 0xf8ff }, { 0xfdd0, 0xfdef },
		{ 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0x110bd, 0x110bd },
		{ 0x110cd, 0x110cd }, { 0x13430, 0x13438 },
		{ 0x1bca0, 0x1bca3 }, { 0x1d173, 0x1d17a },
		{ 0x323b0, 0xdffff }, { 0xe0000, 0xe00ff },
		{ 0xe01f0, 0x10ffff },
	};
	size_t	 i;

	if ((c & 0xfffe) == 0xfffe || c > 0x10ffff)
		return 1;
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (c >= ranges[i][0] && c <= ranges[i][1])
			return 1;
	return 0;
}

/*
 * Decode one UTF-8 sequence at s (n bytes left) into *cp; returns its
 * length, or 0 if the bytes are not valid UTF-8.  Encoded surrogates
 * are let through so that they are escaped as Python would.
 */
static size_t
utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t		 len, i;
	unsigned long	 c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff)
		return 0;
	*cp = c;
	return len;
}

/* Python's str.__repr__ (Objects/unicodeobject.c, unicode_repr). */
static void
repr_string(struct repr_buf *rb, const char *str, size_t n)
{
	const unsigned char	*s = (const unsigned char *)str;
	unsigned long		 c;
	size_t			 i, clen;
	char			 esc[16], quote;
	int			 squote = 0, dquote = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\'')
			squote = 1;
		else if (s[i] == '"')
			dquote = 1;
	}
	quote = squote && !dquote ? '"' : '\'';
	rb_putn(rb, &quote, 1);
	for (i = 0; i < n; i += clen) {
		if ((clen = utf8_decode(s + i, n - i, &c)) == 0) {
			/* Not UTF-8: show the byte; Python never gets here. */
			snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
			rb_puts(rb, esc);
			clen = 1;
			continue;
		}
		if (c == (unsigned char)quote || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			rb_putn(rb, esc, 2);
		} else if (c == '\t')
			rb_puts(rb, "\\t");
		else if (c == '\n')
			rb_puts(rb, "\\n");
		else if (c == '\r')
			rb_puts(rb, "\\r");
		else if (c < ' ' || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02lx", c);
			rb_puts(rb, esc);
		} else if (c < 0x7f || !repr_unprintable(c))
			rb_putn(rb, str + i, clen);
		else {
			if (c <= 0xff)
				snprintf(esc, sizeof(esc), "\\x%02lx", c);
			else if (c <= 0xffff)
				snprintf(esc, sizeof(esc), "\\u%04lx", c);
			else
				snprintf(esc, sizeof(esc), "\\U%08lx", c);
			rb_puts(rb, esc);
		}
	}
	rb_putn(rb, &quote, 1);
}

static void
repr_value(struct repr_buf *rb, json_object *o, int depth)
{
	struct json_object_iterator	 it, end;
	char				 num[32];
	size_t				 i, n;
	int64_t				 iv;
	int				 first;

	/* json-c refuses input nested deeper than this, but be sure. */
	if (depth > 1000) {
		rb_puts(rb, "...");
		return;
	}
	switch (json_object_get_type(o)) {
	case json_type_null:
		rb_puts(rb, "None");
		break;
	case json_type_boolean:
		rb_puts(rb, json_object_get_boolean(o) ? "True" : "False");
		break;
	case json_type_int:
		/* json-c keeps values above INT64_MAX as unsigned. */
		iv = json_object_get_int64(o);
		if (iv == INT64_MAX)
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)json_object_get_uint64(o));
		else
			snprintf(num, sizeof(num), "%lld", (long long)iv);
		rb_puts(rb, num);
		break;
	case json_type_double:
		repr_double(rb, json_object_get_double(o));
		break;
	case json_type_string:
		repr_string(rb, json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		rb_puts(rb, "[");
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			if (i > 0)
				rb_puts(rb, ", ");
			repr_value(rb, json_object_array_get_idx(o, i),
			    depth + 1);
		}
		rb_puts(rb, "]");
		break;
	case json_type_object:
		rb_puts(rb, "{");
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (first = 1; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it), first = 0) {
			if (!first)
				rb_puts(rb, ", ");
			repr_string(rb, json_object_iter_peek_name(&it),
			    strlen(json_object_iter_peek_name(&it)));
			rb_puts(rb, ": ");
			repr_value(rb, json_object_iter_peek_value(&it),
			    depth + 1);
		}
		rb_puts(rb, "}");
		break;
	}
}

char *
msg_pyrepr(json_object *o)
{
	struct repr_buf	 rb;

	memset(&rb, 0, sizeof(rb));
	repr_value(&rb, o, 0);
	if (rb.failed || rb.s == NULL) {
		free(rb.s);
		return NULL;
	}
	return rb.s;
}
