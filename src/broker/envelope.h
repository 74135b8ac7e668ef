/*
 * envelope.h - the kombu message envelope used by events and by
 * remote-control replies: a base64 JSON body, headers, and a transient
 * delivery to an exchange and routing key.
 */
#ifndef CELERIAC_ENVELOPE_H
#define CELERIAC_ENVELOPE_H

#include <json-c/json.h>

/* Remote control (pidbox): where clients bind their reply queues, which
 * nodes look up to reply (../shared/docs/celery-wire.md 9.3). */
#define PIDBOX_REPLY_BINDINGS	"_kombu.binding.reply.celery.pidbox"

/*
 * Wrap body (taken) with headers (taken).  Returns a new envelope the
 * caller puts, or NULL on allocation failure (both are freed then).
 */
json_object	*kombu_envelope(json_object *body, json_object *headers,
		    const char *exchange, const char *routing_key);

#endif
