/*
 * conn.c - per-thread Redis and PostgreSQL connections of the http child,
 * and the small helpers every route uses (buffers, JSON replies,
 * query-string arguments).
 *
 * libhiredis and libpq connections are not thread-safe, so each thread
 * keeps its own in thread-specific data; the key's destructor closes
 * them when a pool thread ends (MHD_stop_daemon joins its threads).  A
 * server that is down is retried at most once a second per thread, so a
 * burst of requests never turns into a burst of connection attempts.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "broker/redis.h"
#include "common/log.h"
#include "common/util.h"
#include "http/http_int.h"

#define HTTP_RETRY_MS		1000
#define HTTP_REDIS_TIMEOUT_MS	2000

struct http_tls {
	redisContext	*redis[2];
	int64_t		 redis_retry[2];
	PGconn		*pg;
	int64_t		 pg_retry;
};

static pthread_key_t	 tls_key;
static struct redis_url	 urls[2];
static int		 same_backend;
static int		 urls_ok;

static void
tls_free(void *p)
{
	struct http_tls *t = p;

	if (t == NULL)
		return;
	if (t->redis[0])
		redisFree(t->redis[0]);
	if (t->redis[1])
		redisFree(t->redis[1]);
	if (t->pg)
		PQfinish(t->pg);
	free(t);
}

void
http_conn_init(void)
{
	char err[256];

	pthread_key_create(&tls_key, tls_free);
	urls_ok = redis_url_parse(http.cfg->broker, &urls[0], err,
	    sizeof(err)) == 0 && redis_url_parse(http.cfg->result_backend ?
	    http.cfg->result_backend : http.cfg->broker, &urls[1], err,
	    sizeof(err)) == 0;
	if (!urls_ok)
		log_warnx("http: %s", err);
	else
		same_backend = redis_url_same_server(&urls[0], &urls[1]);
}

/* The calling thread's connections (main thread, before exit). */
void
http_conn_release(void)
{
	tls_free(pthread_getspecific(tls_key));
	pthread_setspecific(tls_key, NULL);
}

static struct http_tls *
tls(void)
{
	struct http_tls *t = pthread_getspecific(tls_key);

	if (t == NULL && (t = calloc(1, sizeof(*t))) != NULL)
		pthread_setspecific(tls_key, t);
	return t;
}

/*
 * This thread's connection to the broker (or the result backend), or
 * NULL when it cannot be had now.
 */
redisContext *
http_redis(enum http_redis_which w)
{
	struct http_tls	*t = tls();
	struct timeval	 tv;
	char		 err[300];
	int64_t		 now;

	if (t == NULL || !urls_ok)
		return NULL;
	if (w == HTTP_BACKEND && same_backend)
		w = HTTP_BROKER;
	if (t->redis[w] && t->redis[w]->err) {
		redisFree(t->redis[w]);
		t->redis[w] = NULL;
	}
	if (t->redis[w])
		return t->redis[w];
	now = mono_ms();
	if (now < t->redis_retry[w])
		return NULL;
	t->redis[w] = redis_connect(&urls[w], HTTP_REDIS_TIMEOUT_MS, err,
	    sizeof(err));
	if (t->redis[w] == NULL) {
		t->redis_retry[w] = now + HTTP_RETRY_MS;
		log_debug("http: %s", err);
		return NULL;
	}
	/* A request must not wait on a stuck server for long. */
	tv.tv_sec = HTTP_REDIS_TIMEOUT_MS / 1000;
	tv.tv_usec = (HTTP_REDIS_TIMEOUT_MS % 1000) * 1000;
	redisSetTimeout(t->redis[w], tv);
	return t->redis[w];
}

void
http_redis_check(enum http_redis_which w)
{
	struct http_tls *t = tls();

	if (w == HTTP_BACKEND && same_backend)
		w = HTTP_BROKER;
	if (t && t->redis[w] && t->redis[w]->err) {
		redisFree(t->redis[w]);
		t->redis[w] = NULL;
	}
}

/*
 * This thread's database connection, or NULL (no database configured,
 * or it does not answer now).  Statements time out after 5 s and times
 * come back in UTC, so the JSON built by the queries reads the same
 * whatever the server's zone.
 */
PGconn *
http_pg(void)
{
	static const char *const keys[] = { "dbname", "connect_timeout",
	    "options", "application_name", "tcp_user_timeout", NULL };
	const char	*vals[6];
	struct http_tls	*t = tls();
	int64_t		 now;

	if (t == NULL || http.cfg->database == NULL)
		return NULL;
	if (t->pg && PQstatus(t->pg) != CONNECTION_OK) {
		PQfinish(t->pg);
		t->pg = NULL;
	}
	if (t->pg)
		return t->pg;
	now = mono_ms();
	if (now < t->pg_retry)
		return NULL;
	vals[0] = http.cfg->database;
	vals[1] = "2";
	vals[2] = "-c statement_timeout=5000 -c TimeZone=UTC";
	vals[3] = "celeriac-http";
	vals[4] = "5000";
	vals[5] = NULL;
	t->pg = PQconnectdbParams(keys, vals, 1);
	if (t->pg == NULL || PQstatus(t->pg) != CONNECTION_OK) {
		log_debug("http: database: %s", t->pg ?
		    PQerrorMessage(t->pg) : "out of memory");
		if (t->pg)
			PQfinish(t->pg);
		t->pg = NULL;
		t->pg_retry = now + HTTP_RETRY_MS;
		return NULL;
	}
	return t->pg;
}

PGresult *
http_pg_query(const char *sql, int n, const char *const *v, int *down)
{
	PGconn		*c;
	PGresult	*res;
	ExecStatusType	 st;

	if (down)
		*down = 0;
	if ((c = http_pg()) == NULL) {
		if (down)
			*down = 1;
		return NULL;
	}
	res = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	if (PQstatus(c) != CONNECTION_OK) {
		if (down)
			*down = 1;
		log_warnx("http: database connection lost");
	} else
		log_warnx("http: query failed: %s", PQerrorMessage(c));
	PQclear(res);
	return NULL;
}

void
http_buf_add(struct http_buf *b, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
http_buf_printf(struct http_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	 small[512], *big;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		http_buf_add(b, small, n);
		return;
	}
	if ((big = malloc(n + 1)) == NULL) {
		b->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, n + 1, fmt, ap);
	va_end(ap);
	http_buf_add(b, big, n);
	free(big);
}

void
http_buf_free(struct http_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* Takes the text (malloc'd) over. */
void
http_reply_text(struct http_resp *r, int status, const char *ctype,
    char *text, size_t len)
{
	free(r->body);
	r->status = status;
	r->ctype = ctype;
	r->body = text;
	r->len = len;
}

/* Takes o over. */
void
http_reply_json(struct http_resp *r, int status, json_object *o)
{
	const char	*s;
	char		*copy;

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	copy = strdup(s ? s : "null");
	json_object_put(o);
	if (copy == NULL) {
		r->status = 500;
		r->ctype = "application/json";
		r->static_body = "{\"error\":\"out of memory\"}";
		return;
	}
	http_reply_text(r, status, "application/json", copy, strlen(copy));
}

/* {"error": msg, "parameter": param} */
void
http_error(struct http_resp *r, int status, const char *msg,
    const char *param)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	if (param)
		json_object_object_add(o, "parameter",
		    json_object_new_string(param));
	http_reply_json(r, status, o);
}

const char *
http_arg(struct http_req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

/* A whole decimal integer within [min, max]: 0, or -1 (not a number) or
 * -2 (out of range). */
int
http_parse_int(const char *s, long long min, long long max, long long *out)
{
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || end == s)
		return -1;
	if (errno == ERANGE || v < min || v > max)
		return -2;
	*out = v;
	return 0;
}
