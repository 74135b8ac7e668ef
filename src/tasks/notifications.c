/*
 * notifications.c - the notifications.* tasks: webhooks (JSON POSTed with
 * libcurl, signed with HMAC-SHA256) and e-mail through an SMTP server.
 *
 * Failures that another attempt may cure (no answer, 5xx, a transient
 * SMTP reply) set ctx->retry: the worker then retries by the task's
 * max_retries and retry_backoff.  The others fail at once.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/message.h"
#include "common/util.h"
#include "tasks/notif.h"
#include "tasks/registry.h"

#define NOTIF_CONNECT_MS	10000
#define NOTIF_TIMEOUT_MS	30000
#define NOTIF_MAX_RCPT		50
#define NOTIF_ERRMOD		"celeriac.errors"

struct notif_io {
	char		*buf;		/* reply body (webhook) */
	size_t		 len, cap;
	const char	*out;		/* message to send (SMTP) */
	size_t		 outlen, outpos;
	volatile sig_atomic_t *stop;
};

static void
notif_global_init(void)
{
	static int done;

	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

static size_t
notif_write(char *data, size_t size, size_t n, void *arg)
{
	struct notif_io	*io = arg;
	size_t		 len = size * n, room;

	/* Keep the start of the answer only; read the rest and drop it. */
	room = io->cap - 1 - io->len;
	if (room > len)
		room = len;
	memcpy(io->buf + io->len, data, room);
	io->len += room;
	io->buf[io->len] = '\0';
	return len;
}

static size_t
notif_read(char *dst, size_t size, size_t n, void *arg)
{
	struct notif_io	*io = arg;
	size_t		 len = size * n;

	if (len > io->outlen - io->outpos)
		len = io->outlen - io->outpos;
	memcpy(dst, io->out + io->outpos, len);
	io->outpos += len;
	return len;
}

static int
notif_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct notif_io *io = arg;

	return io->stop != NULL && *io->stop;
}

/* Options every exchange gets: timeouts, no signals, the stop flag. */
static void
notif_common(CURL *h, struct notif_io *io, long timeout_ms, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < NOTIF_CONNECT_MS ? timeout_ms : NOTIF_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, notif_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, io);
}

/* A curl error as an outcome and a message. */
static int
notif_curl_error(CURLcode cc, const char *errbuf, char *err, size_t errlen,
    int *timeout)
{
	snprintf(err, errlen, "%s", errbuf[0] ? errbuf :
	    curl_easy_strerror(cc));
	switch (cc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return NOTIF_STOPPED;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_LOGIN_DENIED:
		return NOTIF_USAGE;
	case CURLE_OPERATION_TIMEDOUT:
		*timeout = 1;
		return NOTIF_NETWORK;
	default:
		return NOTIF_NETWORK;
	}
}

static void
notif_hmac_hex(const char *key, const char *body, char out[65])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0, i;

	HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body,
	    strlen(body), md, &mdlen);
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * i] = '\0';
}

int
notif_post_json(const char *url, const char *body, const char *secret,
    const char *delivery, long timeout_ms, volatile sig_atomic_t *stop,
    struct notif_reply *reply, char *err, size_t errlen)
{
	struct curl_slist	*hdrs = NULL, *l;
	struct notif_io		 io;
	char			 errbuf[CURL_ERROR_SIZE] = "", line[256];
	char			 hex[65];
	CURL			*h;
	CURLcode		 cc;
	int64_t			 t0 = mono_us();
	int			 rc;

	memset(reply, 0, sizeof(*reply));
	memset(&io, 0, sizeof(io));
	io.buf = reply->body;
	io.cap = sizeof(reply->body);
	io.stop = stop;
	if (secret == NULL)
		secret = getenv(NOTIF_ENV_SECRET);
	notif_global_init();
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot start libcurl");
		return NOTIF_USAGE;
	}
	l = hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip before larger bodies. */
	l = l ? curl_slist_append(hdrs, "Expect:") : NULL;
	l = l ? curl_slist_append(hdrs, "User-Agent: celeriac/" PACKAGE_VERSION) :
	    NULL;
	if (l && delivery != NULL) {
		snprintf(line, sizeof(line), "X-Celeriac-Delivery: %.200s",
		    delivery);
		l = curl_slist_append(hdrs, line);
	}
	if (l && secret != NULL && *secret != '\0') {
		notif_hmac_hex(secret, body, hex);
		snprintf(line, sizeof(line), "X-Celeriac-Signature: sha256=%s",
		    hex);
		l = curl_slist_append(hdrs, line);
		reply->signed_ = 1;
	}
	if (l == NULL) {
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(h);
		snprintf(err, errlen, "out of memory");
		return NOTIF_USAGE;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, notif_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &io);
	notif_common(h, &io, timeout_ms, errbuf);
	cc = curl_easy_perform(h);
	reply->secs = (mono_us() - t0) / 1e6;
	if (cc != CURLE_OK)
		rc = notif_curl_error(cc, errbuf, err, errlen,
		    &reply->timeout);
	else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->code);
		if (reply->code >= 200 && reply->code < 300)
			rc = NOTIF_OK;
		else if (reply->code >= 500 || reply->code == 408 ||
		    reply->code == 429)
			rc = NOTIF_SERVER;
		else
			rc = NOTIF_CLIENT;
		snprintf(err, errlen, "HTTP %ld from %s", reply->code, url);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}

/* Optional positive number of seconds, as milliseconds. */
static int
notif_timeout_arg(struct task_ctx *ctx, json_object *v, long *ms)
{
	double d;

	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return task_fail(ctx, "TypeError", "builtins",
		    "timeout must be a number of seconds");
	d = json_object_get_double(v);
	if (!(d > 0 && d <= 600))
		return task_fail(ctx, "ValueError", "builtins",
		    "timeout must be in (0, 600] seconds");
	*ms = (long)(d * 1000);
	return 0;
}

/* webhook(url, payload, secret=None, timeout=None) */
static int
notif_webhook(struct task_ctx *ctx)
{
	struct notif_reply	 reply;
	json_object		*res;
	const char		*url, *body, *secret = NULL;
	char			 err[512];
	long			 timeout_ms = NOTIF_TIMEOUT_MS;
	int			 rc;

	if (!json_object_is_type(ctx->param[0], json_type_string))
		return task_fail(ctx, "TypeError", "builtins",
		    "url must be a string");
	url = json_object_get_string(ctx->param[0]);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return task_fail(ctx, "ValueError", "builtins",
		    "webhook url must be http:// or https://");
	if (ctx->param[2] != NULL) {
		if (!json_object_is_type(ctx->param[2], json_type_string))
			return task_fail(ctx, "TypeError", "builtins",
			    "secret must be a string");
		secret = json_object_get_string(ctx->param[2]);
	}
	if (notif_timeout_arg(ctx, ctx->param[3], &timeout_ms) == -1)
		return -1;
	/* The body is the payload as JSON, whatever its type (None: null). */
	body = ctx->param[1] ? json_object_to_json_string_ext(ctx->param[1],
	    JSON_C_TO_STRING_PLAIN) : "null";
	rc = notif_post_json(url, body, secret, ctx->id, timeout_ms,
	    ctx->soft_timeout, &reply, err, sizeof(err));
	switch (rc) {
	case NOTIF_OK:
		break;
	case NOTIF_STOPPED:
		return task_fail(ctx, "SoftTimeLimitExceeded",
		    "billiard.exceptions", "soft time limit exceeded");
	case NOTIF_NETWORK:
		ctx->retry = 1;
		return task_fail(ctx, reply.timeout ? "TimeoutError" :
		    "ConnectionError", "builtins", "webhook %s: %s", url, err);
	case NOTIF_SERVER:
		ctx->retry = 1;
		return task_fail(ctx, "WebhookError", NOTIF_ERRMOD, "%s", err);
	case NOTIF_CLIENT:
		return task_fail(ctx, "WebhookError", NOTIF_ERRMOD, "%s", err);
	default:
		return task_fail(ctx, "ValueError", "builtins", "webhook %s: %s",
		    url, err);
	}
	res = json_object_new_object();
	json_object_object_add(res, "url", json_object_new_string(url));
	json_object_object_add(res, "status_code",
	    json_object_new_int((int)reply.code));
	json_object_object_add(res, "signed",
	    json_object_new_boolean(reply.signed_));
	json_object_object_add(res, "elapsed",
	    json_object_new_double((double)(int64_t)(reply.secs * 1000) /
	    1000));
	json_object_object_add(res, "response",
	    json_object_new_string(reply.body));
	return task_succeed(ctx, res);
}

/* An address we put in a header: one plain addr-spec, nothing to inject. */
static int
notif_address_ok(const char *a)
{
	const char *at = strchr(a, '@');

	return at != NULL && at != a && at[1] != '\0' &&
	    strchr(at + 1, '@') == NULL && strlen(a) < 254 &&
	    strpbrk(a, " \t\r\n<>,;:\"()[]\\") == NULL;
}

/* Appends to a growing string; -1 on OOM. */
static int
notif_cat(char **s, size_t *len, const char *add, size_t n)
{
	char *p;

	if ((p = realloc(*s, *len + n + 1)) == NULL)
		return -1;
	memcpy(p + *len, add, n);
	*len += n;
	p[*len] = '\0';
	*s = p;
	return 0;
}

static int
notif_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/*
 * The subject as RFC 2047 encoded words when it is not ASCII: base64 of
 * at most 45 bytes each (never splitting a UTF-8 sequence), so every
 * word stays within 75 characters.
 */
static int
notif_subject(char **msg, size_t *len, const char *subject)
{
	size_t	 n, total = strlen(subject), off = 0;
	char	*b64;
	int	 rc = 0;

	if (notif_cat(msg, len, "Subject: ", 9) == -1)
		return -1;
	if (notif_ascii(subject))
		return notif_cat(msg, len, subject, total) == -1 ||
		    notif_cat(msg, len, "\r\n", 2) == -1 ? -1 : 0;
	while (off < total && rc == 0) {
		n = total - off > 45 ? 45 : total - off;
		while (off + n < total &&
		    ((unsigned char)subject[off + n] & 0xC0) == 0x80)
			n--;
		if ((b64 = msg_base64_encode((const unsigned char *)subject +
		    off, n)) == NULL)
			return -1;
		rc = (off > 0 && notif_cat(msg, len, "\r\n ", 3) == -1) ||
		    notif_cat(msg, len, "=?UTF-8?B?", 10) == -1 ||
		    notif_cat(msg, len, b64, strlen(b64)) == -1 ||
		    notif_cat(msg, len, "?=", 2) == -1 ? -1 : 0;
		free(b64);
		off += n;
	}
	return rc == -1 ? -1 : notif_cat(msg, len, "\r\n", 2);
}

/* The message: headers, then the body in base64 (safe for any text). */
static char *
notif_message(const char *from, json_object *to, const char *subject,
    const char *body, const char *msgid, size_t *len)
{
	char		*msg = NULL, *b64, line[512], date[64];
	time_t		 now = time(NULL);
	struct tm	 tm;
	size_t		 i, blen, n;
	int		 bad = 0;

	*len = 0;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(line, sizeof(line), "Date: %s\r\nFrom: <%s>\r\nTo: ", date,
	    from);
	bad |= notif_cat(&msg, len, line, strlen(line));
	for (i = 0; i < json_object_array_length(to); i++) {
		snprintf(line, sizeof(line), "%s<%s>", i ? ",\r\n " : "",
		    json_object_get_string(json_object_array_get_idx(to, i)));
		bad |= notif_cat(&msg, len, line, strlen(line));
	}
	bad |= notif_cat(&msg, len, "\r\n", 2);
	bad |= notif_subject(&msg, len, subject);
	snprintf(line, sizeof(line), "Message-ID: <%.300s>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "X-Mailer: celeriac/" PACKAGE_VERSION "\r\n\r\n", msgid);
	bad |= notif_cat(&msg, len, line, strlen(line));
	blen = strlen(body);
	if ((b64 = msg_base64_encode((const unsigned char *)body, blen)) ==
	    NULL)
		bad = -1;
	else {
		n = strlen(b64);
		for (i = 0; i < n && !bad; i += 76) {
			bad |= notif_cat(&msg, len, b64 + i,
			    n - i > 76 ? 76 : n - i);
			bad |= notif_cat(&msg, len, "\r\n", 2);
		}
		free(b64);
	}
	if (bad) {
		free(msg);
		return NULL;
	}
	return msg;
}

/* email(to, subject, body, sender=None) */
static int
notif_email(struct task_ctx *ctx)
{
	struct curl_slist	*rcpt = NULL;
	struct notif_io		 io;
	json_object		*to, *res;
	const char		*url, *from, *subject, *body;
	char			 errbuf[CURL_ERROR_SIZE] = "", err[512];
	char			 from_buf[300], msgid[400], addr[320];
	char			*msg;
	size_t			 i, len;
	CURL			*h;
	CURLcode		 cc;
	long			 code = 0;
	int			 rc, timeout = 0;

	if ((url = getenv(NOTIF_ENV_SMTP_URL)) == NULL || *url == '\0')
		return task_fail(ctx, "ImproperlyConfigured", NOTIF_ERRMOD,
		    "no SMTP server: set " NOTIF_ENV_SMTP_URL " (e.g. "
		    "smtp://127.0.0.1:25) in celeriacd's environment");
	if (json_object_is_type(ctx->param[0], json_type_string)) {
		to = json_object_new_array();
		json_object_array_add(to, json_object_get(ctx->param[0]));
	} else if (json_object_is_type(ctx->param[0], json_type_array))
		to = json_object_get(ctx->param[0]);
	else
		return task_fail(ctx, "TypeError", "builtins",
		    "to must be an address or a list of addresses");
	len = json_object_array_length(to);
	for (i = 0; i < len; i++) {
		json_object *a = json_object_array_get_idx(to, i);
		if (!json_object_is_type(a, json_type_string) ||
		    !notif_address_ok(json_object_get_string(a))) {
			json_object_put(to);
			return task_fail(ctx, "ValueError", "builtins",
			    "invalid recipient address #%zu", i + 1);
		}
	}
	if (len == 0 || len > NOTIF_MAX_RCPT) {
		json_object_put(to);
		return task_fail(ctx, "ValueError", "builtins",
		    "1 to %d recipients", NOTIF_MAX_RCPT);
	}
	if (!json_object_is_type(ctx->param[1], json_type_string) ||
	    !json_object_is_type(ctx->param[2], json_type_string) ||
	    (ctx->param[3] != NULL &&
	    !json_object_is_type(ctx->param[3], json_type_string))) {
		json_object_put(to);
		return task_fail(ctx, "TypeError", "builtins",
		    "subject, body and sender must be strings");
	}
	subject = json_object_get_string(ctx->param[1]);
	body = json_object_get_string(ctx->param[2]);
	from = ctx->param[3] ? json_object_get_string(ctx->param[3]) :
	    getenv(NOTIF_ENV_SMTP_FROM);
	if (from == NULL || *from == '\0') {
		snprintf(from_buf, sizeof(from_buf), "celeriac@%s",
		    host_name());
		from = from_buf;
	}
	if (!notif_address_ok(from) || strpbrk(subject, "\r\n") != NULL) {
		json_object_put(to);
		return task_fail(ctx, "ValueError", "builtins", "invalid sender "
		    "address, or a line break in the subject");
	}
	snprintf(msgid, sizeof(msgid), "%s.celeriac@%s", ctx->id ? ctx->id :
	    "inline", strchr(from, '@') + 1);
	if ((msg = notif_message(from, to, subject, body, msgid, &len)) ==
	    NULL) {
		json_object_put(to);
		return task_fail(ctx, "MemoryError", "builtins",
		    "out of memory");
	}
	memset(&io, 0, sizeof(io));
	io.out = msg;
	io.outlen = len;
	io.stop = ctx->soft_timeout;
	notif_global_init();
	if ((h = curl_easy_init()) == NULL) {
		free(msg);
		json_object_put(to);
		return task_fail(ctx, "RuntimeError", "builtins",
		    "cannot start libcurl");
	}
	for (i = 0; i < json_object_array_length(to); i++) {
		struct curl_slist *l;
		snprintf(addr, sizeof(addr), "<%.300s>", json_object_get_string(
		    json_object_array_get_idx(to, i)));
		if ((l = curl_slist_append(rcpt, addr)) == NULL)
			break;
		rcpt = l;
	}
	snprintf(addr, sizeof(addr), "<%.300s>", from);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, notif_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &io);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	notif_common(h, &io, NOTIF_TIMEOUT_MS, errbuf);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
	free(msg);
	if (cc == CURLE_OK) {
		res = json_object_new_object();
		json_object_object_add(res, "to", to);
		json_object_object_add(res, "message_id",
		    json_object_new_string(msgid));
		json_object_object_add(res, "smtp_code",
		    json_object_new_int((int)code));
		json_object_object_add(res, "size",
		    json_object_new_int64((int64_t)len));
		return task_succeed(ctx, res);
	}
	json_object_put(to);
	rc = notif_curl_error(cc, errbuf, err, sizeof(err), &timeout);
	if (rc == NOTIF_STOPPED)
		return task_fail(ctx, "SoftTimeLimitExceeded",
		    "billiard.exceptions", "soft time limit exceeded");
	/* A 4xx SMTP reply is transient by definition; 5xx is final. */
	if (code >= 500 || rc == NOTIF_USAGE)
		return task_fail(ctx, "SMTPError", NOTIF_ERRMOD, "%s (SMTP %ld)",
		    err, code);
	ctx->retry = 1;
	if (code >= 400)
		return task_fail(ctx, "SMTPError", NOTIF_ERRMOD, "%s (SMTP %ld)",
		    err, code);
	return task_fail(ctx, timeout ? "TimeoutError" : "ConnectionError",
	    "builtins", "%s: %s", url, err);
}

static const struct task_param p_webhook[] = {
	{ "url", 1 }, { "payload", 1 }, { "secret", 0 }, { "timeout", 0 }
};
static const struct task_param p_email[] = {
	{ "to", 1 }, { "subject", 1 }, { "body", 1 }, { "sender", 0 }
};

const struct builtin_task task_notifications_table[] = {
	{ "notifications.webhook", notif_webhook, p_webhook, 4, 0,
	    "webhook(url, payload, secret=None, timeout=None): POST payload "
	    "as JSON, signed when a secret is set" },
	{ "notifications.email", notif_email, p_email, 4, 0,
	    "email(to, subject, body, sender=None) through $"
	    NOTIF_ENV_SMTP_URL },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
