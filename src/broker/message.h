/*
 * message.h - Celery protocol-2 task messages on kombu's Redis transport,
 * JSON only, and the result-backend values Celery's AsyncResult reads.
 *
 * The wire layout is documented in doc/celery-wire.md of the shared docs
 * and tested against the captured fixtures in tests/unit/check_message.c.
 */
#ifndef CELERIAC_MESSAGE_H
#define CELERIAC_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define MSG_SEP			"\x06\x16"	/* kombu's priority-list separator */
#define MSG_NBUCKETS		4
#define MSG_ERRLEN		256

/* kombu's priority steps, in the order a consumer serves them. */
extern const int msg_priority_steps[MSG_NBUCKETS];	/* 0, 3, 6, 9 */

/*
 * A decoded task message.  The original envelope text is kept so that the
 * message can be re-queued or dead-lettered byte for byte.
 */
struct task_msg {
	char		*raw;		/* the envelope as received, owned */
	json_object	*envelope;	/* parsed envelope, owned */
	json_object	*headers;	/* borrowed from envelope */
	json_object	*args;		/* array, owned (from the decoded body) */
	json_object	*kwargs;	/* object, owned */
	json_object	*embed;		/* object or NULL, owned */
	const char	*id;		/* headers.id, borrowed */
	const char	*task;		/* headers.task, borrowed */
	const char	*root_id;	/* may be NULL */
	const char	*parent_id;	/* may be NULL */
	const char	*group;		/* may be NULL */
	const char	*argsrepr;	/* may be NULL */
	const char	*kwargsrepr;	/* may be NULL */
	const char	*exchange;	/* delivery_info.exchange, "" if absent */
	const char	*routing_key;	/* delivery_info.routing_key, may be NULL */
	const char	*delivery_tag;	/* may be NULL */
	int		 retries;
	int		 priority;	/* properties.priority clamped 0..9 */
	int		 ignore_result;
	int		 redelivered;
	double		 eta;		/* Unix seconds, 0 if none */
	double		 expires;	/* Unix seconds, 0 if none */
	double		 time_limit;	/* hard, seconds, 0 if none */
	double		 soft_time_limit; /* seconds, 0 if none */
};

/*
 * Decode one envelope (the bytes of a Redis list element).  Returns 0 and
 * fills m, or -1 with a one-line reason in err (malformed JSON, not JSON
 * content, missing task name or id, bad base64, body not a 3-array, ...).
 * Content types other than application/json are refused with a reason
 * that names the type ("content-type application/x-python-serialize
 * refused: only JSON is accepted"); the body is never deserialised then.
 * On -1, m is left freed/zeroed.
 */
int		 msg_decode(const char *raw, size_t len, struct task_msg *m,
		    char *err, size_t errlen);
void		 msg_clear(struct task_msg *);

/* Options to build a new task message (celeriac send, retries, beat). */
struct msg_new {
	const char	*task;
	const char	*id;		/* NULL: a fresh UUID4 */
	const char	*queue;		/* routing key */
	json_object	*args;		/* borrowed, NULL = [] */
	json_object	*kwargs;	/* borrowed, NULL = {} */
	int		 priority;	/* 0..9 */
	int		 retries;
	double		 eta;		/* Unix seconds, 0 = none */
	double		 expires;	/* Unix seconds, 0 = none */
	double		 time_limit;	/* 0 = null */
	double		 soft_time_limit; /* 0 = null */
	const char	*root_id;	/* NULL: own id */
	const char	*parent_id;	/* NULL: null */
	int		 ignore_result;
	const char	*origin;	/* "gen<pid>@<host>", NULL: computed */
};

/*
 * Build a protocol-2 envelope as a Celery 5 client would (base64 body,
 * fresh delivery_tag, argsrepr/kwargsrepr).  Returns a malloc'd string
 * the caller frees, or NULL.  When id is NULL the generated id is copied
 * into idbuf (37 bytes) if idbuf is not NULL.
 */
char		*msg_encode(const struct msg_new *, char *idbuf);

/*
 * Re-serialise a received message for a re-queue/restore: the same
 * envelope with headers.redelivered and properties.delivery_info.redelivered
 * set to true, as kombu does.  Caller frees.
 */
char		*msg_encode_redelivered(const struct task_msg *);

/*
 * The name of the Redis list for a queue and a message priority, as kombu
 * computes it: "q" for 0..2, "q\x06\x163" for 3..5, ... Returns a malloc'd
 * string.
 */
char		*msg_bucket_list(const char *queue, int priority);
/* The queue name of a bucket list name (strip SEP digit); malloc'd. */
char		*msg_queue_of_list(const char *list);

/*
 * Result-backend values (celery-task-meta-<id>), as Celery writes them:
 * {"status","result","traceback","children","date_done",["parent_id"],"task_id"}.
 * date_done is set for SUCCESS, FAILURE and REVOKED, null otherwise.
 * The returned string is malloc'd.
 */
char		*msg_result_success(const char *task_id, json_object *result,
		    const char *parent_id);
char		*msg_result_failure(const char *status, const char *task_id,
		    const char *exc_type, const char *exc_module,
		    json_object *exc_message, const char *traceback,
		    const char *parent_id);
char		*msg_result_state(const char *status, const char *task_id,
		    json_object *meta);

/* ISO 8601 as Celery writes headers; returns 0/-1. */
int		 msg_parse_iso8601(const char *, double *unix_seconds);
/* Naive UTC "2026-11-28T16:02:46.271794" for date_done; buf >= 32. */
void		 msg_format_date_done(double unix_seconds, char *buf, size_t len);
/* "2026-11-28T16:02:46.271794+00:00" for eta/expires; buf >= 40. */
void		 msg_format_iso8601(double unix_seconds, char *buf, size_t len);

/* Python-style repr() of a JSON value, for argsrepr and events. Caller frees. */
char		*msg_pyrepr(json_object *);

/* Base64 (standard alphabet, padded).  Caller frees; NULL on bad input. */
char		*msg_base64_encode(const unsigned char *, size_t);
/* Into a buffer of MSG_BASE64_LEN(len) bytes, no NUL; returns the length. */
#define MSG_BASE64_LEN(len)	(((len) + 2) / 3 * 4)
size_t		 msg_base64_encode_buf(char *, const unsigned char *, size_t);
unsigned char	*msg_base64_decode(const char *, size_t, size_t *outlen);

/* A fresh UUID4 string into buf (37 bytes). */
void		 msg_uuid4(char *buf);

#endif
