/*
 * envelope.c - kombu envelopes (see envelope.h and celery-wire.md 8.1,
 * 9.3: delivery_tag is read unconditionally by kombu, so every message
 * gets a fresh one).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/envelope.h"
#include "broker/message.h"

json_object *
kombu_envelope(json_object *body, json_object *headers, const char *exchange,
    const char *routing_key)
{
	json_object	*env, *p, *di;
	const char	*text;
	char		*b64, tag[40];

	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	b64 = msg_base64_encode((const unsigned char *)text, strlen(text));
	json_object_put(body);
	if (b64 == NULL) {
		json_object_put(headers);
		return NULL;
	}
	env = json_object_new_object();
	json_object_object_add(env, "body", json_object_new_string(b64));
	free(b64);
	json_object_object_add(env, "content-encoding",
	    json_object_new_string("utf-8"));
	json_object_object_add(env, "content-type",
	    json_object_new_string("application/json"));
	json_object_object_add(env, "headers", headers);
	p = json_object_new_object();
	json_object_object_add(p, "delivery_mode", json_object_new_int(1));
	di = json_object_new_object();
	json_object_object_add(di, "exchange", json_object_new_string(exchange));
	json_object_object_add(di, "routing_key",
	    json_object_new_string(routing_key));
	json_object_object_add(p, "delivery_info", di);
	json_object_object_add(p, "priority", json_object_new_int(0));
	json_object_object_add(p, "body_encoding",
	    json_object_new_string("base64"));
	msg_uuid4(tag);
	json_object_object_add(p, "delivery_tag", json_object_new_string(tag));
	json_object_object_add(env, "properties", p);
	return env;
}
