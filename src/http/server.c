/*
 * server.c - the http child (see http.h): libmicrohttpd set-up, request
 * bodies, limits, authentication and routing to api.c, metrics.c,
 * health.c and monitor.c.
 *
 * Each listener is a daemon with a small pool of polling threads; a
 * handler runs to completion in its thread and every wait it makes
 * (Redis, PostgreSQL) has a timeout, so no request can hang the child.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"
#include "http/http.h"
#include "http/http_int.h"
#include "store/store.h"

#define HTTP_POOL_THREADS	4
#define HTTP_MAX_CONNECTIONS	512
#define HTTP_CONN_TIMEOUT_S	30
#define HTTP_RL_SLOTS		1024	/* clients the limiter knows */

struct http_ctx http;

/* One request's body while it arrives. */
struct http_body {
	char		*data;
	size_t		 len, cap;
	int		 too_big;
};

/* Token bucket per client address. */
struct http_rl {
	unsigned char	 addr[16];
	double		 tokens;
	int64_t		 last_ms;
};

static struct http_rl	 rl_table[HTTP_RL_SLOTS];
static pthread_mutex_t	 rl_mu = PTHREAD_MUTEX_INITIALIZER;
static int		 wake[2] = { -1, -1 };

static volatile sig_atomic_t http_reopen;

static void
http_signal(int sig)
{
	int saved = errno;

	if (sig == SIGUSR1)
		http_reopen = 1;	/* logrotate moved the file */
	else
		http.stop = 1;
	(void)!write(wake[1], "", 1);
	errno = saved;
}

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("http: %s", msg);
}

/*
 * Does this client get one more request now?  A bucket of rate_limit
 * tokens per client refills at rate_limit per second; a client not seen
 * in a while loses its slot to a new one.
 */
static int
http_rate_ok(const struct sockaddr *sa)
{
	unsigned char	 key[16];
	uint32_t	 h = 2166136261u;
	struct http_rl	*e, *victim = NULL;
	int64_t		 now = mono_ms();
	double		 rate = http.cfg->http.rate_limit;
	int		 i, ok;

	if (rate <= 0 || sa == NULL)
		return 1;
	memset(key, 0, sizeof(key));
	if (sa->sa_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	pthread_mutex_lock(&rl_mu);
	for (i = 0; i < 8; i++) {
		e = &rl_table[(h + i) % HTTP_RL_SLOTS];
		if (e->last_ms != 0 && memcmp(e->addr, key, 16) == 0)
			break;
		if (victim == NULL || e->last_ms < victim->last_ms)
			victim = e;
		e = NULL;
	}
	if (e == NULL) {
		e = victim;
		memcpy(e->addr, key, 16);
		e->tokens = rate;
		e->last_ms = now;
	}
	e->tokens += (now - e->last_ms) * rate / 1000.0;
	if (e->tokens > rate)
		e->tokens = rate;
	e->last_ms = now;
	if ((ok = e->tokens >= 1.0))
		e->tokens -= 1.0;
	pthread_mutex_unlock(&rl_mu);
	return ok;
}

/* Constant time, so the token cannot be guessed byte by byte. */
static int
http_token_ok(const char *hdr)
{
	size_t	 n, tn, i;
	int	 diff;

	if (http.token == NULL || hdr == NULL ||
	    strncasecmp(hdr, "Bearer ", 7) != 0)
		return 0;
	hdr += 7;
	while (*hdr == ' ')
		hdr++;
	n = strlen(hdr);
	tn = strlen(http.token);
	diff = n != tn;
	for (i = 0; i < tn; i++)
		diff |= (unsigned char)http.token[i] ^
		    (unsigned char)(i < n ? hdr[i] : 0);
	return diff == 0;
}

static enum MHD_Result
http_send(struct MHD_Connection *c, struct http_resp *r)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 ret;
	char			 num[16];

	if (r->body)
		resp = MHD_create_response_from_buffer(r->len, r->body,
		    MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(r->static_body ?
		    (r->len ? r->len : strlen(r->static_body)) : 0,
		    (void *)(uintptr_t)r->static_body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(r->body);
		r->body = NULL;
		return MHD_NO;
	}
	r->body = NULL;
	MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype :
	    "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after > 0) {
		snprintf(num, sizeof(num), "%d", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", num);
	}
	if (r->www_auth)
		MHD_add_response_header(resp, "WWW-Authenticate",
		    "Bearer realm=\"celeriac\"");
	if (r->ctype && strncmp(r->ctype, "text/html", 9) == 0) {
		MHD_add_response_header(resp, "Content-Security-Policy",
		    "default-src 'self'; img-src 'self' data:; "
		    "frame-ancestors 'none'");
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	}
	ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
http_dispatch(struct http_req *q, struct http_resp *r)
{
	int l = q->listener;

	if ((l & HTTP_L_API) && strncmp(q->path, "/api/", 5) == 0)
		api_route(q, r);
	else if ((l & HTTP_L_API) && strcmp(q->path, "/reports/dummy") == 0)
		api_route(q, r);	/* the route of the RQ days */
	else if ((l & HTTP_L_API) && strcmp(q->path, "/metrics") == 0)
		metrics_route(q, r);
	else if (strcmp(q->path, "/health") == 0)
		health_route(q, r);
	else if (l & HTTP_L_MONITOR)
		monitor_route(q, r);
	else
		http_error(r, 404, "no such route", NULL);
}

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct http_body		*b = *con_cls;
	struct http_req			 q;
	struct http_resp		 r;
	const union MHD_ConnectionInfo	*ci;
	const char			*cl;
	char				*p;
	size_t				 cap;
	enum MHD_Result			 ret;

	memset(&r, 0, sizeof(r));
	if (b == NULL) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!http_rate_ok(ci ? ci->client_addr : NULL)) {
			http_error(&r, 429, "too many requests", NULL);
			r.retry_after = 1;
			return http_send(c, &r);
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    "Content-Length");
		if (cl && strtoull(cl, NULL, 10) >
		    (unsigned long long)http.cfg->http.max_body) {
			http_error(&r, 413, "request body too large", NULL);
			return http_send(c, &r);
		}
		if ((b = calloc(1, sizeof(*b))) == NULL)
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (b->too_big || b->len + *upload_size >
		    (size_t)http.cfg->http.max_body) {
			b->too_big = 1;
		} else {
			if (b->len + *upload_size + 1 > b->cap) {
				cap = b->len + *upload_size + 1;
				if (cap < 1024)
					cap = 1024;
				if ((p = realloc(b->data, cap)) == NULL)
					return MHD_NO;
				b->data = p;
				b->cap = cap;
			}
			memcpy(b->data + b->len, upload_data, *upload_size);
			b->len += *upload_size;
			b->data[b->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (b->too_big) {
		http_error(&r, 413, "request body too large", NULL);
		return http_send(c, &r);
	}
	memset(&q, 0, sizeof(q));
	q.method = strcmp(method, "HEAD") == 0 ? "GET" : method;
	q.path = url;
	q.body = b->data ? b->data : "";
	q.bodylen = b->len;
	q.listener = *(int *)cls;
	q.conn = c;
	q.authed = http_token_ok(MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, "Authorization"));
	/* Writes need the token when one is configured. */
	if (http.token && !q.authed && (strcmp(q.method, "POST") == 0 ||
	    strcmp(q.method, "DELETE") == 0 || strcmp(q.method, "PUT") == 0 ||
	    strcmp(q.method, "PATCH") == 0)) {
		http_error(&r, 401, "a valid bearer token is required",
		    "Authorization");
		r.www_auth = 1;
		return http_send(c, &r);
	}
	http_dispatch(&q, &r);
	if (r.status == 0)
		http_error(&r, 500, "no answer", NULL);
	ret = http_send(c, &r);
	free(r.body);
	return ret;
}

static void
http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_body *b = *con_cls;

	if (b) {
		free(b->data);
		free(b);
	}
	*con_cls = NULL;
}

/* "host:port", "[v6]:port" or ":port" (loopback). */
static int
http_parse_addr(const char *s, struct sockaddr_storage *ss, int *v6)
{
	struct sockaddr_in	*in = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)ss;
	char			 host[256];
	const char		*colon;
	long long		 port;
	size_t			 n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return -1;
		n = colon - s - 1;
		colon++;
		if (n >= sizeof(host))
			return -1;
		memcpy(host, s + 1, n);
		host[n] = '\0';
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		n = colon - s;
		if (n >= sizeof(host))
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	if (http_parse_int(colon + 1, 0, 65535, &port) == -1 ||
	    port < 0 || port > 65535)
		return -1;
	if (host[0] == '\0' || strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*v6 = 1;
		return 0;
	}
	return -1;
}

static struct MHD_Daemon *
http_listen(const char *addr, int *listener)
{
	struct sockaddr_storage	 ss;
	struct MHD_Daemon	*d;
	int			 v6;

	if (http_parse_addr(addr, &ss, &v6) == -1) {
		log_errx("http: bad listen address \"%s\" (want host:port)",
		    addr);
		return NULL;
	}
	d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
	    http_handler, listener,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)HTTP_POOL_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT_S,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
	    MHD_OPTION_END);
	if (d == NULL)
		log_errx("http: cannot listen on %s", addr);
	else
		log_info("http: listening on %s (%s)", addr,
		    *listener & HTTP_L_API ? (*listener & HTTP_L_MONITOR ?
		    "API and monitor" : "API") : "monitor");
	return d;
}

/* The token is read once, before any thread starts; NULL if unset. */
static int
http_read_token(const char *path)
{
	char	 buf[512];
	ssize_t	 n;
	int	 fd;

	if (path == NULL)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("http: token_file %s", path);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		log_errx("http: token_file %s is empty", path);
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 8) {
		log_errx("http: the token in %s is shorter than 8 characters",
		    path);
		return -1;
	}
	http.token = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return http.token ? 0 : -1;
}

void
http_main(const struct http_args *a)
{
	static int		 l_api = HTTP_L_API, l_mon = HTTP_L_MONITOR;
	static int		 l_both = HTTP_L_API | HTTP_L_MONITOR;
	struct sb_slot		*slot = &a->sb->slots[a->slot];
	struct MHD_Daemon	*api = NULL, *mon = NULL;
	sigset_t		 all, old;
	struct pollfd		 pfd;
	const char		*la, *lm;
	char			 buf[64];
	int			 rc = EXIT_CLEAN;

	log_set_ident("http");
	proctitle_set("celeriacd: http");
	memset(&http, 0, sizeof(http));
	http.cfg = a->cfg;
	http.sb = a->sb;
	http.has_db = a->cfg->database != NULL;
	/* 0.2 rather than 0.20000000000000001 in every JSON answer. */
	json_c_set_serialization_double_format("%.15g", JSON_C_OPTION_GLOBAL);
	pthread_mutex_init(&http.store_mu, NULL);

	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1)
		exit(EXIT_CRASH);
	child_signals(http_signal);

	if (http_read_token(a->cfg->http.token_file) == -1)
		exit(EXIT_NORESPAWN);
	http_conn_init();
	if (http.has_db)
		http.store = store_open(a->cfg, "http");

	/* Threads start with signals blocked: only this one takes them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	la = a->cfg->http.listen;
	lm = a->cfg->http.monitor;
	if (la && lm && strcmp(la, lm) == 0)
		api = http_listen(la, &l_both);
	else {
		if (la)
			api = http_listen(la, &l_api);
		if (lm)
			mon = http_listen(lm, &l_mon);
	}
	if ((la && api == NULL) || (lm && strcmp(lm, la ? la : "") != 0 &&
	    mon == NULL)) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		rc = EXIT_CRASH;	/* the port may be free again later */
		goto out;
	}
	http_sampler_start();
	http_resender_start();
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	slot->state = SB_IDLE;
	(void)!write(a->notify_fd, "h", 1);
	pfd.fd = wake[0];
	pfd.events = POLLIN;
	while (!http.stop && getppid() != 1) {
		(void)poll(&pfd, 1, 1000);
		if (http_reopen) {
			http_reopen = 0;
			log_reopen();
		}
		while (read(wake[0], buf, sizeof(buf)) > 0)
			;
	}
	slot->state = SB_STOPPING;
	http.stop = 1;
	http_resender_stop();
	http_sampler_stop();
out:
	if (api)
		MHD_stop_daemon(api);
	if (mon)
		MHD_stop_daemon(mon);
	if (http.store) {
		pthread_mutex_lock(&http.store_mu);
		store_close(http.store);
		http.store = NULL;
		pthread_mutex_unlock(&http.store_mu);
	}
	http_conn_release();
	if (http.token) {
		explicit_bzero(http.token, strlen(http.token));
		free(http.token);
	}
	exit(rc);
}
