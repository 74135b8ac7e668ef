/*
 * retry.c - retry envelopes and the back-off schedule (see retry.h).
 */
#include <string.h>

#include <json-c/json.h>

#include "broker/retry.h"

char *
msg_encode_retry(const struct task_msg *m, double eta)
{
	json_object	*env = NULL, *h, *p, *di;
	char		 iso[48], tag[40];
	char		*out;

	if (json_object_deep_copy(m->envelope, &env, NULL) != 0)
		return NULL;
	if (!json_object_object_get_ex(env, "headers", &h) ||
	    !json_object_object_get_ex(env, "properties", &p)) {
		json_object_put(env);
		return NULL;
	}
	msg_format_iso8601(eta, iso, sizeof(iso));
	json_object_object_add(h, "retries", json_object_new_int(m->retries +
	    1));
	json_object_object_add(h, "eta", json_object_new_string(iso));
	/* Celery's quirk, kept for its tools: the retry's parent is itself. */
	json_object_object_add(h, "parent_id", json_object_new_string(m->id));
	json_object_object_del(h, "redelivered");
	msg_uuid4(tag);
	json_object_object_add(p, "delivery_tag", json_object_new_string(tag));
	if (json_object_object_get_ex(p, "delivery_info", &di))
		json_object_object_del(di, "redelivered");
	out = strdup(json_object_to_json_string_ext(env,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(env);
	return out;
}

int64_t
retry_delay_ms(int retries, int64_t backoff_ms, int64_t max_ms,
    int64_t default_ms, double r)
{
	int64_t d;

	if (backoff_ms <= 0)
		return default_ms;
	d = backoff_ms;
	while (retries-- > 0 && d < max_ms)
		d *= 2;
	if (max_ms > 0 && d > max_ms)
		d = max_ms;
	return (int64_t)(d * r);
}
