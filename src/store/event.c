/*
 * event.c - the text form of a job store event.
 *
 * An event is one line of JSON from the moment it is recorded: the queue
 * in memory, the spill file and the batch sent to PostgreSQL all hold
 * the same bytes, so spilling and replaying convert nothing.  PostgreSQL's
 * jsonb refuses what JSON allows in places (invalid UTF-8, \u0000, lone
 * surrogates): the line is made acceptable here, once, so that one bad
 * event cannot hold up the events queued behind it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/util.h"
#include "store/store_int.h"

static const char *const status_names[] = { "pending", "queued", "started",
    "retrying", "succeeded", "failed", "revoked" };

const char *
store_status_name(enum store_status st)
{
	return (unsigned)st < sizeof(status_names) / sizeof(*status_names) ?
	    status_names[st] : "?";
}

void
store_buf_add(struct store_buf *b, const void *p, size_t n)
{
	size_t	 cap;
	char	*np;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
store_buf_addc(struct store_buf *b, char c)
{
	store_buf_add(b, &c, 1);
}

void
store_buf_addstr(struct store_buf *b, const char *s)
{
	store_buf_add(b, s, strlen(s));
}

void
store_buf_free(struct store_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), 0 if it is
 * not one (overlong forms and surrogates are not).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t	need, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need + 1;
}

void
store_buf_json_str(struct store_buf *b, const char *str, size_t max)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 n = strlen(str), i, k;
	char			 esc[8];

	if (n > max) {
		/* Cut on a character boundary. */
		n = max;
		while (n > 0 && (s[n] & 0xc0) == 0x80)
			n--;
	}
	store_buf_addc(b, '"');
	for (i = 0; i < n; i += k) {
		k = 1;
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			store_buf_add(b, esc, 2);
		} else if (s[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			store_buf_add(b, esc, 6);
		} else if (s[i] < 0x80)
			store_buf_addc(b, (char)s[i]);
		else if ((k = utf8_len(s + i, n - i)) > 0)
			store_buf_add(b, s + i, k);
		else {
			store_buf_add(b, "\xef\xbf\xbd", 3);
			k = 1;
		}
	}
	store_buf_addc(b, '"');
}

static int
hex4(const char *p, unsigned *v)
{
	unsigned	x = 0;
	int		i;

	for (i = 0; i < 4; i++) {
		x <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			x |= p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			x |= p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			x |= p[i] - 'A' + 10;
		else
			return -1;
	}
	*v = x;
	return 0;
}

/*
 * Append JSON text given by the caller, made acceptable to jsonb: bytes
 * that are not UTF-8 become U+FFFD, so do the escapes \u0000 and lone
 * surrogates (each is replaced by one of the same length), and raw line
 * ends (whitespace outside strings) become spaces, keeping one event on
 * one line.
 */
static void
add_json_text(struct store_buf *b, const char *text)
{
	const unsigned char	*s = (const unsigned char *)text;
	size_t			 n = strlen(text), i = 0, k, start;
	unsigned		 u, lo;

	if (n > STORE_JSON_MAX) {
		char tmp[96];
		snprintf(tmp, sizeof(tmp), "{\"truncated\":true,\"bytes\":%zu}",
		    n);
		store_buf_addstr(b, tmp);
		return;
	}
	start = b->len;
	while (i < n) {
		if (s[i] == '\\' && i + 1 < n) {
			if (s[i + 1] == 'u' && i + 6 <= n &&
			    hex4(text + i + 2, &u) == 0) {
				if (u >= 0xd800 && u <= 0xdbff && i + 12 <= n &&
				    s[i + 6] == '\\' && s[i + 7] == 'u' &&
				    hex4(text + i + 8, &lo) == 0 &&
				    lo >= 0xdc00 && lo <= 0xdfff) {
					store_buf_add(b, s + i, 12);
					i += 12;
				} else if (u == 0 ||
				    (u >= 0xd800 && u <= 0xdfff)) {
					store_buf_add(b, "\\ufffd", 6);
					i += 6;
				} else {
					store_buf_add(b, s + i, 6);
					i += 6;
				}
			} else {
				store_buf_add(b, s + i, 2);
				i += 2;
			}
		} else if (s[i] == '\n' || s[i] == '\r') {
			store_buf_addc(b, ' ');
			i++;
		} else if (s[i] < 0x80) {
			store_buf_addc(b, (char)s[i]);
			i++;
		} else if ((k = utf8_len(s + i, n - i)) > 0) {
			store_buf_add(b, s + i, k);
			i += k;
		} else {
			store_buf_add(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	if (b->len == start)
		store_buf_addstr(b, "null");
}

static void
add_key_str(struct store_buf *b, const char *key, const char *v, size_t max)
{
	if (v == NULL)
		return;
	store_buf_addc(b, ',');
	store_buf_addstr(b, key);
	store_buf_json_str(b, v, max);
}

char *
store_event_line(const struct store_event *e)
{
	struct store_buf	b;
	char			num[96];

	if (e->task_id == NULL || *e->task_id == '\0')
		return NULL;
	memset(&b, 0, sizeof(b));
	store_buf_addstr(&b, "{\"id\":");
	store_buf_json_str(&b, e->task_id, STORE_NAME_MAX);
	add_key_str(&b, "\"task\":", e->task_name ? e->task_name : "",
	    STORE_NAME_MAX);
	add_key_str(&b, "\"queue\":", e->queue, STORE_NAME_MAX);
	snprintf(num, sizeof(num), ",\"status\":\"%s\",\"retries\":%d,"
	    "\"t\":%.6f", store_status_name(e->status),
	    e->retries > 0 ? e->retries : 0,
	    e->time > 0 ? e->time : now_unix());
	store_buf_addstr(&b, num);
	add_key_str(&b, "\"host\":", e->host, STORE_NAME_MAX);
	if (e->pid > 0) {
		snprintf(num, sizeof(num), ",\"pid\":%d", e->pid);
		store_buf_addstr(&b, num);
	}
	if (e->params_json != NULL) {
		store_buf_addstr(&b, ",\"params\":");
		add_json_text(&b, e->params_json);
	}
	if (e->result_json != NULL) {
		store_buf_addstr(&b, ",\"result\":");
		add_json_text(&b, e->result_json);
	}
	add_key_str(&b, "\"etype\":", e->error_type, STORE_NAME_MAX);
	add_key_str(&b, "\"emsg\":", e->error_message, STORE_TEXT_MAX);
	store_buf_addc(&b, '}');
	if (b.err) {
		store_buf_free(&b);
		return NULL;
	}
	return b.p;
}

char *
store_event_degrade(const char *line)
{
	struct store_event	 e;
	json_object		*o, *v;
	const char		*st;
	char			*out;
	size_t			 i;

	if ((o = json_tokener_parse(line)) == NULL)
		return NULL;
	memset(&e, 0, sizeof(e));
	e.task_id = json_str(o, "id");
	e.task_name = json_str(o, "task");
	e.queue = json_str(o, "queue");
	e.host = json_str(o, "host");
	e.pid = (int)json_int(o, "pid");
	e.retries = (int)json_int(o, "retries");
	e.time = json_object_object_get_ex(o, "t", &v) ?
	    json_object_get_double(v) : 0;
	st = json_str(o, "status");
	for (i = 0; st != NULL && i < sizeof(status_names) /
	    sizeof(*status_names); i++)
		if (strcmp(st, status_names[i]) == 0)
			break;
	e.status = (enum store_status)i;
	e.error_type = json_str(o, "etype");
	if (e.error_type != NULL || json_str(o, "emsg") != NULL)
		e.error_message = "(not storable; see the result backend)";
	out = e.time > 0 && st != NULL && i < sizeof(status_names) /
	    sizeof(*status_names) ? store_event_line(&e) : NULL;
	json_object_put(o);
	return out;
}

static char *
json_text(json_object *o)
{
	const char *t;

	t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	return t ? strdup(t) : NULL;
}

void
store_record_task(struct store *s, enum store_status st, const char *task_id,
    const char *task_name, const char *queue, int retries, json_object *args,
    json_object *kwargs, json_object *result, const char *exc_type,
    json_object *exc_message)
{
	struct store_event	 e;
	json_object		*p = NULL, *one;
	char			*params = NULL, *res = NULL, *emsg = NULL;

	if (s == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.task_id = task_id;
	e.task_name = task_name;
	e.queue = queue;
	e.status = st;
	e.retries = retries;
	e.time = now_unix();
	e.host = s->host;
	e.pid = (int)getpid();
	if (args != NULL || kwargs != NULL) {
		p = json_object_new_object();
		json_object_object_add(p, "args", args ? json_object_get(args) :
		    json_object_new_array());
		json_object_object_add(p, "kwargs", kwargs ?
		    json_object_get(kwargs) : json_object_new_object());
		e.params_json = params = json_text(p);
		json_object_put(p);
	}
	if (st == STORE_SUCCEEDED)
		e.result_json = res = json_text(result);
	if (exc_type != NULL && *exc_type != '\0') {
		e.error_type = exc_type;
		/* Celery's exc_message is the exception's args. */
		one = json_object_is_type(exc_message, json_type_array) &&
		    json_object_array_length(exc_message) == 1 ?
		    json_object_array_get_idx(exc_message, 0) : exc_message;
		if (json_object_is_type(one, json_type_string))
			e.error_message = json_object_get_string(one);
		else if (one != NULL)
			e.error_message = emsg = json_text(one);
	}
	store_record(s, &e);
	free(params);
	free(res);
	free(emsg);
}
