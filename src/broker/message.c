/*
 * message.c - Celery protocol-2 task messages as kombu's Redis transport
 * stores them (a JSON envelope with a base64 JSON body), and the values
 * Celery's Redis result backend stores.  See celery-wire.md, sections 2,
 * 3, 4 and 7, and the captures in tests/fixtures/celery.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "broker/message.h"
#include "common/util.h"

/* kombu's JSON serializer output flags: compact, '/' left alone. */
#define MSG_JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Envelopes nest a few levels; task arguments may nest deeper. */
#define MSG_ENVELOPE_DEPTH	32
#define MSG_BODY_DEPTH		128

/* Celery cuts argsrepr/kwargsrepr at this many characters. */
#define MSG_REPR_MAX		1024

const int msg_priority_steps[MSG_NBUCKETS] = { 0, 3, 6, 9 };

static void	msg_seterr(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static void
msg_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * A peer-supplied name for an error message: cut short and with control
 * and non-ASCII bytes replaced, so that a reason is one printable line.
 */
static void
msg_safename(const char *s, char *buf, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++) {
		c = (unsigned char)s[i];
		buf[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	buf[i] = '\0';
	if (s[i] != '\0' && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* Value of 4 hex digits at s, or -1. */
static long
msg_hex4(const char *s)
{
	long	 v = 0;
	int	 i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (s[i] >= '0' && s[i] <= '9')
			v |= s[i] - '0';
		else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
			v |= (s[i] | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * json-c turns an escaped surrogate pair whose code point lies in
 * U+xD800..U+xDFFF (U+2D800.., CJK extension F, say) into U+FFFD: it
 * tests the decoded value with a 16-bit surrogate mask (json-c PR 893).
 * Python escapes every non-ASCII character, so rewrite each pair inside
 * strings as raw UTF-8, which json-c keeps as it is.  Returns a malloc'd
 * copy (never longer), or NULL when there is no pair to rewrite.
 */
static char *
msg_unpair(const char *s, size_t len, size_t *outlen)
{
	char		*out = NULL, *o = NULL;
	size_t		 i = 0;
	long		 hi, lo, cp;
	int		 instr = 0;

	while (i < len) {
		if (!instr || s[i] != '\\') {
			if (s[i] == '"')
				instr = !instr;
			if (out != NULL)
				*o++ = s[i];
			i++;
			continue;
		}
		if (i + 12 <= len && s[i + 1] == 'u' && s[i + 6] == '\\' &&
		    s[i + 7] == 'u' && (hi = msg_hex4(s + i + 2)) >= 0xd800 &&
		    hi <= 0xdbff && (lo = msg_hex4(s + i + 8)) >= 0xdc00 &&
		    lo <= 0xdfff) {
			if (out == NULL) {
				if ((out = malloc(len + 1)) == NULL)
					return NULL;
				memcpy(out, s, i);
				o = out + i;
			}
			cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
			*o++ = (char)(0xf0 | cp >> 18);
			*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
			*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
			i += 12;
			continue;
		}
		/* Any other escape: copy it whole, so "\\" is not reread. */
		if (out != NULL) {
			*o++ = s[i];
			if (i + 1 < len)
				*o++ = s[i + 1];
		}
		i += 2;
	}
	if (out != NULL) {
		*o = '\0';
		*outlen = (size_t)(o - out);
	}
	return out;
}

/*
 * Parse exactly one JSON text of len bytes (trailing whitespace allowed).
 * A JSON null parses to NULL too, so *ok tells success apart; on failure
 * *why says what was wrong.
 */
static json_object *
msg_parse_json(const char *s, size_t len, int depth, int *ok,
    const char **why)
{
	json_tokener		*tok;
	json_object		*o;
	enum json_tokener_error	 jerr;
	size_t			 end;
	char			*fixed;

	*ok = 0;
	*why = "out of memory";
	if (len > INT_MAX) {
		*why = "too large";
		return NULL;
	}
	if ((fixed = msg_unpair(s, len, &len)) != NULL)
		s = fixed;
	if ((tok = json_tokener_new_ex(depth)) == NULL) {
		free(fixed);
		return NULL;
	}
	o = json_tokener_parse_ex(tok, s, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && o == NULL) {
		/* A bare literal ("null", "12") ends only at end of input. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr == json_tokener_success) {
		while (end < len && (s[end] == ' ' || s[end] == '\t' ||
		    s[end] == '\n' || s[end] == '\r'))
			end++;
		if (end == len)
			*ok = 1;
		else
			*why = "trailing data after the JSON value";
	} else if (jerr == json_tokener_continue)
		*why = "unexpected end of data";
	else
		*why = json_tokener_error_desc(jerr);
	json_tokener_free(tok);
	free(fixed);
	if (!*ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Python truthiness of a bool or number member; absent/other is false. */
static int
msg_getbool(json_object *o, const char *key)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) != 0;
	case json_type_double:
		return json_object_get_double(v) != 0.0;
	default:
		return 0;
	}
}

/* A number as seconds, 0 for null, non-numbers and non-positive values. */
static double
msg_seconds(json_object *v)
{
	double	 d;

	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return 0.0;
	d = json_object_get_double(v);
	return isfinite(d) && d > 0 ? d : 0.0;
}

/* headers.eta / headers.expires: null, absent, or an ISO 8601 string. */
static int
msg_gettime(json_object *headers, const char *key, double *out,
    char *err, size_t errlen)
{
	json_object	*v;

	*out = 0.0;
	if (!json_object_object_get_ex(headers, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    msg_parse_iso8601(json_object_get_string(v), out) == -1) {
		/* Running a task early or after its expiry is worse. */
		msg_seterr(err, errlen,
		    "headers.%s is not an ISO 8601 date-time", key);
		return -1;
	}
	return 0;
}

/* Envelope checks up to (not including) the body; see msg_decode. */
static int
msg_check_envelope(struct task_msg *m, char *err, size_t errlen)
{
	const char	*ctype, *cenc;
	char		 name[64];

	if ((ctype = json_str(m->envelope, "content-type")) == NULL) {
		msg_seterr(err, errlen, "content-type missing: only "
		    "application/json is accepted");
		return -1;
	}
	if (strcmp(ctype, "application/json") != 0) {
		/* Never deserialise pickle and the like: refuse unread. */
		msg_safename(ctype, name, sizeof(name));
		msg_seterr(err, errlen, "content-type %s refused: only "
		    "application/json is accepted", name);
		return -1;
	}
	cenc = json_str(m->envelope, "content-encoding");
	if (cenc != NULL && strcasecmp(cenc, "utf-8") != 0 &&
	    strcasecmp(cenc, "utf8") != 0) {
		msg_safename(cenc, name, sizeof(name));
		msg_seterr(err, errlen, "content-encoding %s refused: only "
		    "utf-8 is accepted", name);
		return -1;
	}
	if (!json_object_object_get_ex(m->envelope, "headers", &m->headers) ||
	    !json_object_is_type(m->headers, json_type_object)) {
		m->headers = NULL;
		msg_seterr(err, errlen, "headers missing: not a Celery "
		    "protocol 2 message");
		return -1;
	}
	m->task = json_str(m->headers, "task");
	if (m->task == NULL || *m->task == '\0') {
		msg_seterr(err, errlen, "headers.task missing: not a Celery "
		    "protocol 2 message");
		return -1;
	}
	m->id = json_str(m->headers, "id");
	if (m->id == NULL || *m->id == '\0') {
		msg_seterr(err, errlen, "headers.id missing: not a Celery "
		    "protocol 2 message");
		return -1;
	}
	return 0;
}

/* Decode and split the body into args, kwargs and embed. */
static int
msg_decode_body(struct task_msg *m, json_object *props, char *err,
    size_t errlen)
{
	json_object	*body, *benc, *a, *k, *e;
	unsigned char	*dec = NULL;
	const char	*payload, *why, *encname;
	size_t		 plen;
	char		 name[64];
	int		 ok;

	if (!json_object_object_get_ex(m->envelope, "body", &body) ||
	    !json_object_is_type(body, json_type_string)) {
		msg_seterr(err, errlen, "body missing or not a string");
		return -1;
	}
	payload = json_object_get_string(body);
	plen = (size_t)json_object_get_string_len(body);
	benc = NULL;
	if (props != NULL)
		json_object_object_get_ex(props, "body_encoding", &benc);
	if (benc != NULL) {
		if (!json_object_is_type(benc, json_type_string)) {
			msg_seterr(err, errlen,
			    "properties.body_encoding is not a string");
			return -1;
		}
		encname = json_object_get_string(benc);
		if (strcmp(encname, "base64") != 0) {
			msg_safename(encname, name, sizeof(name));
			msg_seterr(err, errlen, "body_encoding %s refused: "
			    "only base64 is accepted", name);
			return -1;
		}
		if ((dec = msg_base64_decode(payload, plen, &plen)) == NULL) {
			msg_seterr(err, errlen, "body is not valid base64");
			return -1;
		}
		payload = (const char *)dec;
	}
	body = msg_parse_json(payload, plen, MSG_BODY_DEPTH, &ok, &why);
	free(dec);
	if (!ok) {
		msg_seterr(err, errlen, "body is not valid JSON: %s", why);
		return -1;
	}
	if (!json_object_is_type(body, json_type_array) ||
	    json_object_array_length(body) != 3) {
		json_object_put(body);
		msg_seterr(err, errlen,
		    "body is not a [args, kwargs, embed] array");
		return -1;
	}
	a = json_object_array_get_idx(body, 0);
	k = json_object_array_get_idx(body, 1);
	e = json_object_array_get_idx(body, 2);
	why = NULL;
	if (!json_object_is_type(a, json_type_array))
		why = "body args is not an array";
	else if (!json_object_is_type(k, json_type_object))
		why = "body kwargs is not an object";
	else if (e != NULL && !json_object_is_type(e, json_type_object))
		why = "body embed is not an object or null";
	if (why != NULL) {
		json_object_put(body);
		msg_seterr(err, errlen, "%s", why);
		return -1;
	}
	m->args = json_object_get(a);
	m->kwargs = json_object_get(k);
	m->embed = json_object_get(e);
	json_object_put(body);
	return 0;
}

int
msg_decode(const char *raw, size_t len, struct task_msg *m, char *err,
    size_t errlen)
{
	json_object	*props = NULL, *dinfo = NULL, *tl, *v;
	const char	*why, *s;
	int64_t		 pri;
	int		 ok;

	if (m == NULL)
		return -1;
	memset(m, 0, sizeof(*m));
	msg_seterr(err, errlen, "%s", "");
	if (raw == NULL) {
		msg_seterr(err, errlen, "malformed JSON envelope: no data");
		return -1;
	}
	if ((m->raw = malloc(len + 1)) == NULL) {
		msg_seterr(err, errlen, "out of memory");
		return -1;
	}
	memcpy(m->raw, raw, len);
	m->raw[len] = '\0';

	m->envelope = msg_parse_json(raw, len, MSG_ENVELOPE_DEPTH, &ok, &why);
	if (!ok) {
		msg_seterr(err, errlen, "malformed JSON envelope: %s", why);
		goto fail;
	}
	if (!json_object_is_type(m->envelope, json_type_object)) {
		msg_seterr(err, errlen,
		    "malformed JSON envelope: not a JSON object");
		goto fail;
	}
	if (msg_check_envelope(m, err, errlen) == -1)
		goto fail;
	if (json_object_object_get_ex(m->envelope, "properties", &props) &&
	    !json_object_is_type(props, json_type_object))
		props = NULL;
	if (msg_decode_body(m, props, err, errlen) == -1)
		goto fail;

	if (msg_gettime(m->headers, "eta", &m->eta, err, errlen) == -1 ||
	    msg_gettime(m->headers, "expires", &m->expires, err,
	    errlen) == -1)
		goto fail;
	m->root_id = json_str(m->headers, "root_id");
	m->parent_id = json_str(m->headers, "parent_id");
	m->group = json_str(m->headers, "group");
	m->argsrepr = json_str(m->headers, "argsrepr");
	m->kwargsrepr = json_str(m->headers, "kwargsrepr");
	m->ignore_result = msg_getbool(m->headers, "ignore_result");
	if (json_object_object_get_ex(m->headers, "retries", &v) &&
	    json_object_is_type(v, json_type_int)) {
		pri = json_object_get_int64(v);
		m->retries = pri < 0 ? 0 : pri > INT_MAX ? INT_MAX : (int)pri;
	}
	if (json_object_object_get_ex(m->headers, "timelimit", &tl) &&
	    json_object_is_type(tl, json_type_array)) {
		m->time_limit = msg_seconds(json_object_array_get_idx(tl, 0));
		m->soft_time_limit =
		    msg_seconds(json_object_array_get_idx(tl, 1));
	}

	m->exchange = "";
	if (props != NULL) {
		if (json_object_object_get_ex(props, "priority", &v) &&
		    json_object_is_type(v, json_type_int)) {
			pri = json_object_get_int64(v);
			m->priority = pri < 0 ? 0 : pri > 9 ? 9 : (int)pri;
		}
		m->delivery_tag = json_str(props, "delivery_tag");
		if (json_object_object_get_ex(props, "delivery_info",
		    &dinfo) && json_object_is_type(dinfo, json_type_object)) {
			if ((s = json_str(dinfo, "exchange")) != NULL)
				m->exchange = s;
			m->routing_key = json_str(dinfo, "routing_key");
		} else
			dinfo = NULL;
	}
	m->redelivered = msg_getbool(m->headers, "redelivered") ||
	    (dinfo != NULL && msg_getbool(dinfo, "redelivered"));
	return 0;

fail:
	msg_clear(m);
	return -1;
}

void
msg_clear(struct task_msg *m)
{
	if (m == NULL)
		return;
	free(m->raw);
	json_object_put(m->envelope);
	json_object_put(m->args);
	json_object_put(m->kwargs);
	json_object_put(m->embed);
	memset(m, 0, sizeof(*m));
}

/*
 * Building JSON: json-c constructors return NULL on allocation failure,
 * which is also how json-c spells JSON null.  A build notes failures in
 * a flag so that one check at the end covers every step.
 */
struct msg_build {
	int	 failed;
};

/* Add v (owned; NULL means JSON null) as key of o. */
static void
mb_add(struct msg_build *b, json_object *o, const char *key, json_object *v)
{
	if (o == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		b->failed = 1;
	}
}

/* A fresh value that must not be NULL (a string, number, container). */
static json_object *
mb_new(struct msg_build *b, json_object *v)
{
	if (v == NULL)
		b->failed = 1;
	return v;
}

/* A string, or JSON null when s is NULL. */
static void
mb_addstr(struct msg_build *b, json_object *o, const char *key,
    const char *s)
{
	mb_add(b, o, key, s == NULL ? NULL :
	    mb_new(b, json_object_new_string(s)));
}

/* A number of seconds: an int when integral, as Python would send it. */
static json_object *
mb_seconds(struct msg_build *b, double d)
{
	if (!(d > 0) || !isfinite(d))
		return NULL;
	if (d == floor(d) && d < 9e15)
		return mb_new(b, json_object_new_int64((int64_t)d));
	return mb_new(b, json_object_new_double(d));
}

/* Serialise o into a malloc'd string and drop o; NULL if the build failed. */
static char *
mb_finish(struct msg_build *b, json_object *o)
{
	const char	*s;
	char		*out = NULL;

	if (!b->failed && o != NULL &&
	    (s = json_object_to_json_string_ext(o, MSG_JSON_FLAGS)) != NULL)
		out = strdup(s);
	json_object_put(o);
	return out;
}

/*
 * argsrepr/kwargsrepr: Celery caps them (saferepr with maxlen 1024) so
 * that huge arguments are not carried twice; cut after MSG_REPR_MAX
 * characters and mark the cut with "...".
 */
static char *
msg_repr_capped(json_object *o)
{
	char	*s, *cut;
	size_t	 i, nchars;

	if ((s = msg_pyrepr(o)) == NULL)
		return NULL;
	for (i = 0, nchars = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (nchars++ == MSG_REPR_MAX) {
			/* i is the first byte of a character: cut there. */
			if ((cut = malloc(i + 4)) != NULL) {
				memcpy(cut, s, i);
				memcpy(cut + i, "...", 4);
			}
			free(s);
			return cut;
		}
	}
	return s;
}

/* "gen<pid>@<hostname>", as Celery names a sending process. */
static void
msg_origin(char *buf, size_t len)
{
	char	 host[256];

	if (gethostname(host, sizeof(host)) == -1)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "gen%ld@%s", (long)getpid(), host);
}

/* Append v (owned) to the array a. */
static void
mb_append(struct msg_build *b, json_object *a, json_object *v)
{
	if (a == NULL || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		b->failed = 1;
	}
}

/* The body [args, kwargs, embed], base64-encoded. */
static char *
msg_encode_body(struct msg_build *b, json_object *args, json_object *kwargs)
{
	json_object	*body, *embed;
	const char	*s;
	char		*out = NULL;

	body = mb_new(b, json_object_new_array());
	embed = mb_new(b, json_object_new_object());
	mb_add(b, embed, "callbacks", NULL);
	mb_add(b, embed, "errbacks", NULL);
	mb_add(b, embed, "chain", NULL);
	mb_add(b, embed, "chord", NULL);
	mb_append(b, body, json_object_get(args));
	mb_append(b, body, json_object_get(kwargs));
	mb_append(b, body, embed);
	if (!b->failed &&
	    (s = json_object_to_json_string_ext(body, MSG_JSON_FLAGS)) != NULL)
		out = msg_base64_encode((const unsigned char *)s, strlen(s));
	json_object_put(body);
	if (out == NULL)
		b->failed = 1;
	return out;
}

char *
msg_encode(const struct msg_new *n, char *idbuf)
{
	struct msg_build b = { 0 };
	json_object	*env, *hdr, *props, *dinfo, *tl, *args, *kwargs;
	char		*body, *argsrepr, *kwargsrepr, *out;
	char		 idgen[37], reply_to[37], tag[37], origin[300], when[40];
	const char	*id, *queue;
	int		 pri;

	if (n == NULL || n->task == NULL)
		return NULL;
	args = n->args != NULL ? json_object_get(n->args) :
	    json_object_new_array();
	kwargs = n->kwargs != NULL ? json_object_get(n->kwargs) :
	    json_object_new_object();
	if (!json_object_is_type(args, json_type_array) ||
	    !json_object_is_type(kwargs, json_type_object)) {
		json_object_put(args);
		json_object_put(kwargs);
		return NULL;
	}
	/* Celery accepts any string as a task id, not only UUIDs. */
	if (n->id != NULL)
		id = n->id;
	else {
		msg_uuid4(idgen);
		id = idgen;
		if (idbuf != NULL)
			memcpy(idbuf, idgen, sizeof(idgen));
	}
	msg_uuid4(reply_to);
	msg_uuid4(tag);
	if (n->origin != NULL)
		snprintf(origin, sizeof(origin), "%s", n->origin);
	else
		msg_origin(origin, sizeof(origin));
	queue = n->queue != NULL ? n->queue : "celery";
	pri = n->priority < 0 ? 0 : n->priority > 9 ? 9 : n->priority;

	body = msg_encode_body(&b, args, kwargs);
	argsrepr = msg_repr_capped(args);
	kwargsrepr = msg_repr_capped(kwargs);
	if (argsrepr == NULL || kwargsrepr == NULL)
		b.failed = 1;

	env = mb_new(&b, json_object_new_object());
	mb_addstr(&b, env, "body", body != NULL ? body : "");
	mb_addstr(&b, env, "content-encoding", "utf-8");
	mb_addstr(&b, env, "content-type", "application/json");

	hdr = mb_new(&b, json_object_new_object());
	mb_addstr(&b, hdr, "lang", "py");
	mb_addstr(&b, hdr, "task", n->task);
	mb_addstr(&b, hdr, "id", id);
	mb_add(&b, hdr, "shadow", NULL);
	msg_format_iso8601(n->eta, when, sizeof(when));
	mb_addstr(&b, hdr, "eta", n->eta != 0 ? when : NULL);
	msg_format_iso8601(n->expires, when, sizeof(when));
	mb_addstr(&b, hdr, "expires", n->expires != 0 ? when : NULL);
	mb_add(&b, hdr, "group", NULL);
	mb_add(&b, hdr, "group_index", NULL);
	mb_add(&b, hdr, "retries",
	    mb_new(&b, json_object_new_int(n->retries < 0 ? 0 : n->retries)));
	tl = mb_new(&b, json_object_new_array());
	mb_append(&b, tl, mb_seconds(&b, n->time_limit));
	mb_append(&b, tl, mb_seconds(&b, n->soft_time_limit));
	mb_add(&b, hdr, "timelimit", tl);
	mb_addstr(&b, hdr, "root_id", n->root_id != NULL ? n->root_id : id);
	mb_addstr(&b, hdr, "parent_id", n->parent_id);
	mb_addstr(&b, hdr, "argsrepr", argsrepr != NULL ? argsrepr : "");
	mb_addstr(&b, hdr, "kwargsrepr", kwargsrepr != NULL ? kwargsrepr : "");
	mb_addstr(&b, hdr, "origin", origin);
	mb_add(&b, hdr, "ignore_result",
	    mb_new(&b, json_object_new_boolean(n->ignore_result != 0)));
	mb_add(&b, env, "headers", hdr);

	props = mb_new(&b, json_object_new_object());
	mb_addstr(&b, props, "correlation_id", id);
	mb_addstr(&b, props, "reply_to", reply_to);
	mb_add(&b, props, "delivery_mode", mb_new(&b, json_object_new_int(2)));
	dinfo = mb_new(&b, json_object_new_object());
	mb_addstr(&b, dinfo, "exchange", "");
	mb_addstr(&b, dinfo, "routing_key", queue);
	mb_add(&b, props, "delivery_info", dinfo);
	mb_add(&b, props, "priority", mb_new(&b, json_object_new_int(pri)));
	mb_addstr(&b, props, "body_encoding", "base64");
	mb_addstr(&b, props, "delivery_tag", tag);
	mb_add(&b, env, "properties", props);

	out = mb_finish(&b, env);
	free(body);
	free(argsrepr);
	free(kwargsrepr);
	json_object_put(args);
	json_object_put(kwargs);
	return out;
}

char *
msg_encode_redelivered(const struct task_msg *m)
{
	struct msg_build b = { 0 };
	json_object	*env = NULL, *hdr, *props, *dinfo;

	if (m == NULL || m->envelope == NULL ||
	    json_object_deep_copy(m->envelope, &env, NULL) != 0)
		return NULL;
	/* Existing keys keep their place; new ones go last, as in kombu. */
	if (json_object_object_get_ex(env, "headers", &hdr) &&
	    json_object_is_type(hdr, json_type_object))
		mb_add(&b, hdr, "redelivered",
		    mb_new(&b, json_object_new_boolean(1)));
	if (!json_object_object_get_ex(env, "properties", &props) ||
	    !json_object_is_type(props, json_type_object)) {
		props = mb_new(&b, json_object_new_object());
		mb_add(&b, env, "properties", props);
	}
	/* A failed add has dropped the container: do not touch it. */
	if (b.failed)
		return mb_finish(&b, env);
	if (!json_object_object_get_ex(props, "delivery_info", &dinfo) ||
	    !json_object_is_type(dinfo, json_type_object)) {
		dinfo = mb_new(&b, json_object_new_object());
		mb_add(&b, props, "delivery_info", dinfo);
	}
	if (!b.failed)
		mb_add(&b, dinfo, "redelivered",
		    mb_new(&b, json_object_new_boolean(1)));
	return mb_finish(&b, env);
}

char *
msg_bucket_list(const char *queue, int priority)
{
	char	*s;
	size_t	 len;
	int	 i, step;

	if (queue == NULL)
		return NULL;
	priority = priority < 0 ? 0 : priority > 9 ? 9 : priority;
	/* The bucket is the largest step not above the priority. */
	step = msg_priority_steps[0];
	for (i = 0; i < MSG_NBUCKETS; i++)
		if (msg_priority_steps[i] <= priority)
			step = msg_priority_steps[i];
	if (step == 0)
		return strdup(queue);
	len = strlen(queue) + sizeof(MSG_SEP) + 2;
	if ((s = malloc(len)) == NULL)
		return NULL;
	snprintf(s, len, "%s%s%d", queue, MSG_SEP, step);
	return s;
}

char *
msg_queue_of_list(const char *list)
{
	const char	*p;
	size_t		 len, seplen = sizeof(MSG_SEP) - 1;

	if (list == NULL)
		return NULL;
	len = strlen(list);
	/* Strip a trailing SEP followed by one or more digits. */
	for (p = list + len; p > list && p[-1] >= '0' && p[-1] <= '9'; p--)
		;
	if (p < list + len && (size_t)(p - list) >= seplen &&
	    memcmp(p - seplen, MSG_SEP, seplen) == 0)
		return strndup(list, (size_t)(p - list) - seplen);
	return strdup(list);
}

/* Celery's READY_STATES: the states that carry a date_done. */
static int
msg_ready_state(const char *status)
{
	return strcmp(status, "SUCCESS") == 0 ||
	    strcmp(status, "FAILURE") == 0 || strcmp(status, "REVOKED") == 0;
}

/*
 * The common result value: status, result (owned), traceback, children,
 * date_done, [parent_id], task_id; in the order Celery writes them.
 */
static char *
msg_result(const char *status, const char *task_id, json_object *result,
    const char *traceback, const char *parent_id)
{
	struct msg_build b = { 0 };
	struct timespec	 ts;
	json_object	*o;
	char		 when[40];

	if (status == NULL || task_id == NULL) {
		json_object_put(result);
		return NULL;
	}
	o = mb_new(&b, json_object_new_object());
	mb_addstr(&b, o, "status", status);
	mb_add(&b, o, "result", result);
	mb_addstr(&b, o, "traceback", traceback);
	mb_add(&b, o, "children", mb_new(&b, json_object_new_array()));
	if (msg_ready_state(status)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		msg_format_date_done(ts.tv_sec + ts.tv_nsec / 1e9, when,
		    sizeof(when));
		mb_addstr(&b, o, "date_done", when);
	} else
		mb_add(&b, o, "date_done", NULL);
	if (parent_id != NULL)
		mb_addstr(&b, o, "parent_id", parent_id);
	mb_addstr(&b, o, "task_id", task_id);
	return mb_finish(&b, o);
}

char *
msg_result_success(const char *task_id, json_object *result,
    const char *parent_id)
{
	return msg_result("SUCCESS", task_id, json_object_get(result), NULL,
	    parent_id);
}

char *
msg_result_failure(const char *status, const char *task_id,
    const char *exc_type, const char *exc_module, json_object *exc_message,
    const char *traceback, const char *parent_id)
{
	struct msg_build b = { 0 };
	json_object	*exc;

	exc = mb_new(&b, json_object_new_object());
	mb_addstr(&b, exc, "exc_type", exc_type != NULL ? exc_type :
	    "Exception");
	mb_add(&b, exc, "exc_message", exc_message != NULL ?
	    json_object_get(exc_message) :
	    mb_new(&b, json_object_new_array()));
	mb_addstr(&b, exc, "exc_module", exc_module);
	if (b.failed) {
		json_object_put(exc);
		return NULL;
	}
	return msg_result(status, task_id, exc, traceback, parent_id);
}

char *
msg_result_state(const char *status, const char *task_id, json_object *meta)
{
	return msg_result(status, task_id, json_object_get(meta), NULL, NULL);
}

void
msg_uuid4(char *buf)
{
	uuid_t	 u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, buf);
}
