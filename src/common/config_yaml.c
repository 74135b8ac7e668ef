/*
 * config_yaml.c - reading the configuration's YAML document against the
 * tables of config.c: loading the file, reporting errors as
 * "file:line:column: key.path: what was expected", decoding scalars and
 * walking mappings key by key.
 *
 * The document is read with libyaml's document API, whose nodes carry
 * their position.  Aliases are refused before that, in a pass over the
 * event stream: the document API shares an aliased node silently, which
 * would let "a billion laughs" or a self-referencing list reach the JSON
 * conversion of beat arguments, and would lose the alias's position.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/config.h"
#include "common/config_yaml.h"

#define CFG_MAXFILE	(16 * 1024 * 1024)	/* a config, not a data set */
#define CFG_MAXDEPTH	64			/* nesting of beat arguments */

struct cfg_buf {
	char		*s;
	size_t		 len, cap;
	int		 oom;
};

static int	cfg_json_node(struct cfg_ctx *, yaml_node_t *, struct cfg_buf *,
		    int);

/*
 * Errors.
 */

/* Keep the message on one line whatever the file or environment held. */
static void
cfg_error_clean(struct cfg_ctx *ctx)
{
	char	*p;

	for (p = ctx->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int
cfg_error(struct cfg_ctx *ctx, const yaml_mark_t *m, const char *fmt, ...)
{
	char	 msg[CFG_ERRLEN];
	va_list	 ap;

	if (ctx->failed++ || ctx->err == NULL || ctx->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ctx->err, ctx->errlen, "%s:%zu:%zu: %s%s%s", ctx->file,
	    m->line + 1, m->column + 1, ctx->path,
	    ctx->pathlen > 0 ? ": " : "", msg);
	cfg_error_clean(ctx);
	return -1;
}

int
cfg_error_nopos(struct cfg_ctx *ctx, const char *fmt, ...)
{
	va_list	 ap;

	if (ctx->failed++ || ctx->err == NULL || ctx->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ctx->err, ctx->errlen, fmt, ap);
	va_end(ap);
	cfg_error_clean(ctx);
	return -1;
}

/* How a value looks in an error message: quoted text or its kind. */
static void
cfg_describe(const yaml_node_t *n, char *buf, size_t len)
{
	const unsigned char *s;
	size_t	 i, o;

	if (n->type == YAML_MAPPING_NODE) {
		snprintf(buf, len, "%s", cfg_map_len(n) ? "a mapping" :
		    "an empty mapping");
		return;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		snprintf(buf, len, "a list");
		return;
	}
	if (cfg_is_null(n)) {
		snprintf(buf, len, "nothing");
		return;
	}
	s = n->data.scalar.value;
	o = 0;
	buf[o++] = '"';
	for (i = 0; i < n->data.scalar.length && o + 8 < len; i++) {
		/* Cut long values, but not inside a UTF-8 sequence. */
		if (i >= 48 && (s[i] & 0xc0) != 0x80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (s[i] == '"' || s[i] == '\\')
			buf[o++] = '\\';
		buf[o++] = s[i] < 0x20 ? ' ' : (char)s[i];
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

int
cfg_expected(struct cfg_ctx *ctx, yaml_node_t *n, const char *fmt, ...)
{
	char	 what[CFG_ERRLEN / 2], got[64];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cfg_describe(n, got, sizeof(got));
	return cfg_error(ctx, &n->start_mark, "expected %s, got %s", what,
	    got);
}

/*
 * The dotted key path.  A push returns the length to pop back to, so a
 * caller can restore it however deep the callee went.
 */
size_t
cfg_path_push(struct cfg_ctx *ctx, const char *seg)
{
	size_t	 old = ctx->pathlen;
	int	 r;

	r = snprintf(ctx->path + old, sizeof(ctx->path) - old, "%s%s",
	    old > 0 && seg[0] != '[' ? "." : "", seg);
	if (r < 0 || (size_t)r >= sizeof(ctx->path) - old)
		ctx->pathlen = sizeof(ctx->path) - 1;
	else
		ctx->pathlen = old + (size_t)r;
	return old;
}

void
cfg_path_pop(struct cfg_ctx *ctx, size_t old)
{
	ctx->pathlen = old;
	ctx->path[old] = '\0';
}

/*
 * Loading.
 */

static int
cfg_read_file(struct cfg_ctx *ctx, unsigned char **bufp, size_t *lenp)
{
	unsigned char *buf = NULL, *nbuf;
	size_t	 len = 0, cap = 0, n;
	FILE	*fp;

	if ((fp = fopen(ctx->file, "rb")) == NULL)
		return cfg_error_nopos(ctx, "%s: cannot open: %s", ctx->file,
		    strerror(errno));
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > CFG_MAXFILE ||
			    (nbuf = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(fp);
				return cfg_error_nopos(ctx, "%s: cannot "
				    "read: %s", ctx->file, cap > CFG_MAXFILE ?
				    "file too large" : strerror(ENOMEM));
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		free(buf);
		fclose(fp);
		return cfg_error_nopos(ctx, "%s: cannot read: %s", ctx->file,
		    strerror(errno));
	}
	fclose(fp);
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int
cfg_yaml_syntax(struct cfg_ctx *ctx, const yaml_parser_t *p,
    const unsigned char *buf, size_t len)
{
	yaml_mark_t m = p->problem_mark;
	size_t	 i;

	if (p->error == YAML_MEMORY_ERROR)
		return cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
	if (p->error == YAML_READER_ERROR) {
		/* The reader knows only the byte offset; find the line. */
		memset(&m, 0, sizeof(m));
		for (i = 0; i < p->problem_offset && i < len; i++) {
			if (buf[i] == '\n') {
				m.line++;
				m.column = 0;
			} else if ((buf[i] & 0xc0) != 0x80)
				m.column++;
		}
	}
	if (p->context != NULL)
		return cfg_error(ctx, &m, "YAML syntax error: %s (%s)",
		    p->problem, p->context);
	return cfg_error(ctx, &m, "YAML syntax error: %s",
	    p->problem ? p->problem : "unknown error");
}

/* The event pass: syntax errors, aliases and extra documents. */
static int
cfg_yaml_prescan(struct cfg_ctx *ctx, const unsigned char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int	 docs = 0, done = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
	yaml_parser_set_input_string(&p, buf, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = cfg_yaml_syntax(ctx, &p, buf, len);
			break;
		}
		if (ev.type == YAML_ALIAS_EVENT)
			rc = cfg_error(ctx, &ev.start_mark, "YAML alias *%s "
			    "is not supported; write the value out",
			    ev.data.alias.anchor);
		else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			rc = cfg_error(ctx, &ev.start_mark, "a second YAML "
			    "document; expected only one");
		else if (ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

int
cfg_yaml_open(struct cfg_ctx *ctx)
{
	yaml_parser_t p;
	unsigned char *buf = NULL;
	size_t	 len = 0;
	int	 rc = 0;

	if (cfg_read_file(ctx, &buf, &len) == -1)
		return -1;
	if (cfg_yaml_prescan(ctx, buf, len) == -1) {
		free(buf);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		free(buf);
		return cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
	}
	yaml_parser_set_input_string(&p, buf, len);
	if (yaml_parser_load(&p, &ctx->doc))
		ctx->have_doc = 1;
	else
		rc = cfg_yaml_syntax(ctx, &p, buf, len);
	yaml_parser_delete(&p);
	free(buf);
	return rc;
}

void
cfg_yaml_close(struct cfg_ctx *ctx)
{
	if (ctx->have_doc)
		yaml_document_delete(&ctx->doc);
	ctx->have_doc = 0;
}

/*
 * Scalars.
 */

yaml_node_t *
cfg_node(struct cfg_ctx *ctx, int id)
{
	return yaml_document_get_node(&ctx->doc, id);
}

int
cfg_is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t	 i;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp((const char *)n->data.scalar.value, nulls[i]) == 0)
			return 1;
	return 0;
}

/* The text of a scalar that is not null, or NULL after an error. */
const char *
cfg_scalar(struct cfg_ctx *ctx, yaml_node_t *n, const char *what)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || cfg_is_null(n)) {
		cfg_expected(ctx, n, "%s", what);
		return NULL;
	}
	s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		cfg_error(ctx, &n->start_mark, "expected %s without NUL "
		    "characters", what);
		return NULL;
	}
	return s;
}

int
cfg_bool_word(const char *s)
{
	static const char *const words[] = {
		"false", "true", "no", "yes", "off", "on"
	};
	size_t	 i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			return (int)(i % 2);
	return -1;
}

int
cfg_get_bool(struct cfg_ctx *ctx, yaml_node_t *n, int *v)
{
	const char *what = "true or false (or yes/no, on/off)";
	const char *s;
	int	 b;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	if ((b = cfg_bool_word(s)) == -1)
		return cfg_expected(ctx, n, "%s", what);
	*v = b;
	return 0;
}

/* One of a NULL-terminated list of words; *idx is its index. */
int
cfg_get_word(struct cfg_ctx *ctx, yaml_node_t *n, const char *const *words,
    const char *what, int *idx)
{
	const char *s;
	int	 i;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	for (i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0) {
			*idx = i;
			return 0;
		}
	return cfg_expected(ctx, n, "%s", what);
}

static int
cfg_get_int(struct cfg_ctx *ctx, yaml_node_t *n, int64_t min, int64_t max,
    int64_t *v)
{
	char	 what[96];
	const char *s, *p;
	int64_t	 x = 0;
	int	 neg;

	if (max == INT_MAX || max == INT64_MAX)
		snprintf(what, sizeof(what), "an integer >= %" PRId64, min);
	else
		snprintf(what, sizeof(what), "an integer from %" PRId64
		    " to %" PRId64, min, max);
	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	neg = s[0] == '-';
	p = s + neg;
	if (*p == '\0')
		return cfg_expected(ctx, n, "%s", what);
	/* Accumulate negatively so INT64_MIN fits; overflow is garbage. */
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || x < (INT64_MIN + (*p - '0')) / 10)
			return cfg_expected(ctx, n, "%s", what);
		x = x * 10 - (*p - '0');
	}
	if (!neg) {
		if (x == INT64_MIN)
			return cfg_expected(ctx, n, "%s", what);
		x = -x;
	}
	if (x < min || x > max)
		return cfg_expected(ctx, n, "%s", what);
	*v = x;
	return 0;
}

static int
cfg_get_duration(struct cfg_ctx *ctx, yaml_node_t *n, int64_t min,
    int64_t *v)
{
	const char *what = "a duration such as 250ms, 30s, 5m, 1h or 7d";
	const char *s;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	if (cfg_parse_duration(s, v) == -1)
		return cfg_expected(ctx, n, "%s", what);
	if (*v < min)
		return cfg_expected(ctx, n, "a duration greater than 0");
	return 0;
}

static int
cfg_get_size(struct cfg_ctx *ctx, yaml_node_t *n, int64_t min, int64_t *v)
{
	const char *what = "a size such as 64K, 512M, 1G or 2T";
	const char *s;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	if (cfg_parse_size(s, v) == -1)
		return cfg_expected(ctx, n, "%s", what);
	if (*v < min)
		return cfg_expected(ctx, n, "a size greater than 0");
	return 0;
}

char *
cfg_strdup(struct cfg_ctx *ctx, const char *s)
{
	char	*d;

	if ((d = strdup(s)) == NULL)
		cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
	return d;
}

void *
cfg_calloc(struct cfg_ctx *ctx, size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n ? n : 1, size)) == NULL)
		cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
	return p;
}

char *
cfg_get_str(struct cfg_ctx *ctx, yaml_node_t *n)
{
	const char *s;

	if ((s = cfg_scalar(ctx, n, "a string")) == NULL)
		return NULL;
	if (*s == '\0') {
		cfg_expected(ctx, n, "a non-empty string");
		return NULL;
	}
	return cfg_strdup(ctx, s);
}

/*
 * Mappings.
 */

size_t
cfg_map_len(const yaml_node_t *n)
{
	if (n->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(n->data.mapping.pairs.top -
	    n->data.mapping.pairs.start);
}

const char *
cfg_pair_name(struct cfg_ctx *ctx, yaml_node_t *map, size_t i)
{
	yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
	yaml_node_t *k, *o;
	const char *name;
	size_t	 j, old;

	k = cfg_node(ctx, pairs[i].key);
	if ((name = cfg_scalar(ctx, k, "a name")) == NULL)
		return NULL;
	if (*name == '\0') {
		cfg_expected(ctx, k, "a name");
		return NULL;
	}
	for (j = 0; j < i; j++) {
		o = cfg_node(ctx, pairs[j].key);
		if (o->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)o->data.scalar.value, name) == 0) {
			old = cfg_path_push(ctx, name);
			cfg_error(ctx, &k->start_mark, "duplicate key; first "
			    "given on line %zu", o->start_mark.line + 1);
			cfg_path_pop(ctx, old);
			return NULL;
		}
	}
	return name;
}

static int
cfg_unknown(struct cfg_ctx *ctx, yaml_node_t *k, const struct cfg_key *keys)
{
	char	 list[CFG_ERRLEN / 2];
	size_t	 i, o = 0;

	list[0] = '\0';
	for (i = 0; keys[i].name != NULL && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    i > 0 ? ", " : "", keys[i].name);
	return cfg_error(ctx, &k->start_mark, "unknown key; expected one "
	    "of %s", list);
}

/* Read one value into obj as its key says. */
static int
cfg_set(struct cfg_ctx *ctx, const struct cfg_key *k, yaml_node_t *key,
    yaml_node_t *v, void *obj)
{
	char	*dst = (char *)obj + k->off, *s;
	int64_t	 x = 0;
	int	 b = 0;

	switch (k->kind) {
	case CFG_K_STR:
		if ((s = cfg_get_str(ctx, v)) == NULL)
			return -1;
		free(*(char **)dst);
		*(char **)dst = s;
		return 0;
	case CFG_K_BOOL:
		if (cfg_get_bool(ctx, v, &b) == -1)
			return -1;
		*(int *)dst = b;
		return 0;
	case CFG_K_INT:
	case CFG_K_INT64:
		if (cfg_get_int(ctx, v, k->min, k->max, &x) == -1)
			return -1;
		if (k->kind == CFG_K_INT)
			*(int *)dst = (int)x;
		else
			*(int64_t *)dst = x;
		return 0;
	case CFG_K_DURATION:
	case CFG_K_SECONDS:
		if (cfg_get_duration(ctx, v, k->min, &x) == -1)
			return -1;
		/* Round up: a 1500ms CPU limit must not become 1s. */
		if (k->kind == CFG_K_SECONDS)
			x = x / 1000 + (x % 1000 != 0);
		*(int64_t *)dst = x;
		return 0;
	case CFG_K_SIZE:
		if (cfg_get_size(ctx, v, k->min, &x) == -1)
			return -1;
		*(int64_t *)dst = x;
		return 0;
	case CFG_K_MAP:
		return cfg_walk(ctx, v, &key->start_mark, k->sub, dst, NULL);
	case CFG_K_FN:
		return k->fn(ctx, v, obj);
	}
	return -1;
}

int
cfg_walk(struct cfg_ctx *ctx, yaml_node_t *map, const yaml_mark_t *where,
    const struct cfg_key *keys, void *obj, yaml_node_pair_t **found)
{
	yaml_node_pair_t *seen[CFG_MAXKEYS], *pair;
	const char *name;
	size_t	 i, k, old, n;
	int	 rc;

	/* "key:" with nothing after it reads as an empty mapping. */
	if (map->type != YAML_MAPPING_NODE && !cfg_is_null(map))
		return cfg_expected(ctx, map, "a mapping");
	memset(seen, 0, sizeof(seen));
	n = cfg_map_len(map);
	for (i = 0; i < n; i++) {
		pair = map->data.mapping.pairs.start + i;
		if ((name = cfg_pair_name(ctx, map, i)) == NULL)
			return -1;
		for (k = 0; keys[k].name != NULL; k++)
			if (strcmp(keys[k].name, name) == 0)
				break;
		old = cfg_path_push(ctx, name);
		if (keys[k].name == NULL)
			rc = cfg_unknown(ctx, cfg_node(ctx, pair->key), keys);
		else {
			seen[k] = pair;
			rc = cfg_set(ctx, &keys[k], cfg_node(ctx, pair->key),
			    cfg_node(ctx, pair->value), obj);
		}
		cfg_path_pop(ctx, old);
		if (rc == -1)
			return -1;
	}
	for (k = 0; keys[k].name != NULL; k++) {
		if ((keys[k].flags & CFG_KEY_REQUIRED) && seen[k] == NULL) {
			old = cfg_path_push(ctx, keys[k].name);
			cfg_error(ctx, where, "required key is missing");
			cfg_path_pop(ctx, old);
			return -1;
		}
	}
	if (found != NULL)
		memcpy(found, seen, sizeof(seen));
	return 0;
}

/*
 * JSON.  Beat arguments are sent in Celery messages as JSON, and a Python
 * user expects them typed as yaml.safe_load would type them (YAML 1.1):
 * plain 10 is a number, "10" a string, yes a boolean, ~ null.
 */

static void
cfg_buf_add(struct cfg_buf *b, const char *s, size_t len)
{
	char	*n;
	size_t	 cap;

	if (b->oom)
		return;
	if (b->len + len + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->len + len + 1)
			cap *= 2;
		if ((n = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = n;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

static void
cfg_buf_str(struct cfg_buf *b, const char *s)
{
	cfg_buf_add(b, s, strlen(s));
}

static void
cfg_json_string(struct cfg_buf *b, const unsigned char *s, size_t len)
{
	static const char shorts[] = "\b\t\n\f\r";
	const char *p;
	char	 esc[8];
	size_t	 i;

	cfg_buf_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			cfg_buf_add(b, esc, 2);
		} else if (s[i] < 0x20) {
			/* Short escapes where JSON has them, as Python's. */
			if ((p = strchr(shorts, s[i])) != NULL && s[i] != 0)
				snprintf(esc, sizeof(esc), "\\%c",
				    "btnfr"[p - shorts]);
			else
				snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			cfg_buf_str(b, esc);
		} else
			cfg_buf_add(b, (const char *)s + i, 1);
	}
	cfg_buf_add(b, "\"", 1);
}

/* The digit value of c, or 99 if it is not a hexadecimal digit. */
static int
cfg_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/*
 * A YAML 1.1 int as JSON: [-+]? then 0b binary, 0x hex, 0 octal or
 * decimal, with "_" allowed between digits.  Sexagesimal (1:30) is left
 * a string on purpose: times of day would silently become numbers.
 */
static int
cfg_json_int(const char *text, struct cfg_buf *b)
{
	char	 out[32];
	const char *p = text, *digits;
	uint64_t u = 0;
	int	 neg = 0, base = 10, d, ndigits = 0, big = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'b')) {
		base = p[1] == 'x' ? 16 : 2;
		p += 2;
	} else if (p[0] == '0' && p[1] != '\0') {
		base = 8;
		p++;
	} else if (p[0] == '_')
		return -1;
	for (digits = p; *p != '\0'; p++) {
		if (*p == '_')
			continue;
		if ((d = cfg_digit(*p)) >= base)
			return -1;
		ndigits++;
		if (u > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			big = 1;
		u = u * (uint64_t)base + (uint64_t)d;
	}
	if (ndigits == 0 || (big && base != 10))
		return -1;
	if (neg && (u > 0 || big))
		cfg_buf_add(b, "-", 1);
	if (big) {
		/* Too big for 64 bits, but JSON and Python carry it. */
		for (p = digits; *p != '\0'; p++)
			if (*p != '_')
				cfg_buf_add(b, p, 1);
		return 0;
	}
	snprintf(out, sizeof(out), "%" PRIu64, u);
	cfg_buf_str(b, out);
	return 0;
}

/*
 * A YAML 1.1 float: [-+]? digits "." digits, or "." digits, with an
 * optional signed exponent ("1.5", "-2.", ".5", "6.02e+23").  Infinities
 * and NaN have no JSON spelling and stay strings.
 */
static int
cfg_json_float(const char *text, struct cfg_buf *b)
{
	char	 s[128], out[40];
	const char *p = text;
	size_t	 o = 0;
	double	 d;
	int	 prec, intdigits = 0, fracdigits = 0;

	if (*p == '-' || *p == '+')
		p++;
	if (*p != '.' && (*p < '0' || *p > '9'))
		return -1;
	for (; (*p >= '0' && *p <= '9') || *p == '_'; p++)
		intdigits++;
	if (*p++ != '.')
		return -1;
	if (intdigits == 0 && (p[0] < '0' || p[0] > '9' || text[0] != '.'))
		return -1;
	for (; (*p >= '0' && *p <= '9') || *p == '_'; p++)
		fracdigits++;
	if ((*p == 'e' || *p == 'E') && (p[1] == '-' || p[1] == '+') &&
	    p[2] >= '0' && p[2] <= '9')
		for (p += 2; *p >= '0' && *p <= '9'; p++)
			;
	if (*p != '\0' || strlen(text) >= sizeof(s))
		return -1;
	for (p = text; *p != '\0'; p++)
		if (*p != '_')
			s[o++] = *p;
	s[o] = '\0';
	errno = 0;
	d = strtod(s, NULL);
	if (errno == ERANGE && (d > 1 || d < -1))
		return -1;
	/* The shortest text that reads back as the same double. */
	for (prec = 15; prec < 17; prec++) {
		snprintf(out, sizeof(out), "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	snprintf(out, sizeof(out), "%.*g", prec, d);
	cfg_buf_str(b, out);
	if (strpbrk(out, ".e") == NULL)
		cfg_buf_str(b, ".0");
	return 0;
}

/* PyYAML spells its booleans yes, Yes or YES: one case, or capitalised. */
static int
cfg_json_bool(const char *s)
{
	const char *p;
	int	 lower = 0, upper = 0;

	for (p = s + 1; *p != '\0'; p++) {
		lower |= *p >= 'a' && *p <= 'z';
		upper |= *p >= 'A' && *p <= 'Z';
	}
	if (lower && upper)
		return -1;
	if (upper && !(s[0] >= 'A' && s[0] <= 'Z'))
		return -1;
	return cfg_bool_word(s);
}

static void
cfg_json_scalar(yaml_node_t *n, struct cfg_buf *b)
{
	const char *s = (const char *)n->data.scalar.value;
	int	 v;

	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (cfg_is_null(n)) {
			cfg_buf_str(b, "null");
			return;
		}
		if ((v = cfg_json_bool(s)) != -1) {
			cfg_buf_str(b, v ? "true" : "false");
			return;
		}
		if (cfg_json_int(s, b) == 0 || cfg_json_float(s, b) == 0)
			return;
	}
	cfg_json_string(b, n->data.scalar.value, n->data.scalar.length);
}

static int
cfg_json_node(struct cfg_ctx *ctx, yaml_node_t *n, struct cfg_buf *b,
    int depth)
{
	yaml_node_item_t *it;
	yaml_node_t *k;
	char	 idx[32];
	size_t	 i, old;
	int	 rc = 0;

	if (depth > CFG_MAXDEPTH)
		return cfg_error(ctx, &n->start_mark, "nested too deeply");
	switch (n->type) {
	case YAML_SCALAR_NODE:
		cfg_json_scalar(n, b);
		break;
	case YAML_SEQUENCE_NODE:
		cfg_buf_add(b, "[", 1);
		for (it = n->data.sequence.items.start, i = 0;
		    rc == 0 && it < n->data.sequence.items.top; it++, i++) {
			if (i > 0)
				cfg_buf_add(b, ",", 1);
			snprintf(idx, sizeof(idx), "[%zu]", i);
			old = cfg_path_push(ctx, idx);
			rc = cfg_json_node(ctx, cfg_node(ctx, *it), b,
			    depth + 1);
			cfg_path_pop(ctx, old);
		}
		cfg_buf_add(b, "]", 1);
		break;
	case YAML_MAPPING_NODE:
		cfg_buf_add(b, "{", 1);
		for (i = 0; rc == 0 && i < cfg_map_len(n); i++) {
			if (cfg_pair_name(ctx, n, i) == NULL)
				return -1;
			if (i > 0)
				cfg_buf_add(b, ",", 1);
			k = cfg_node(ctx, n->data.mapping.pairs.start[i].key);
			cfg_json_string(b, k->data.scalar.value,
			    k->data.scalar.length);
			cfg_buf_add(b, ":", 1);
			old = cfg_path_push(ctx,
			    (const char *)k->data.scalar.value);
			rc = cfg_json_node(ctx, cfg_node(ctx,
			    n->data.mapping.pairs.start[i].value), b,
			    depth + 1);
			cfg_path_pop(ctx, old);
		}
		cfg_buf_add(b, "}", 1);
		break;
	default:
		rc = cfg_error(ctx, &n->start_mark, "unexpected YAML node");
		break;
	}
	return rc;
}

char *
cfg_json(struct cfg_ctx *ctx, yaml_node_t *n)
{
	struct cfg_buf b;

	memset(&b, 0, sizeof(b));
	if (cfg_json_node(ctx, n, &b, 0) == -1 || b.oom) {
		if (b.oom)
			cfg_error_nopos(ctx, "%s: out of memory", ctx->file);
		free(b.s);
		return NULL;
	}
	return b.s;
}
