/*
 * revoke.c - the revoked-id set (see revoke.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "broker/redis.h"
#include "broker/revoke.h"

int
revset_add(struct revset *s, const char *id, double expires)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0) {
			s->expires[i] = expires;
			return 0;
		}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **ids = realloc(s->ids, cap * sizeof(*ids));
		if (ids == NULL)
			return -1;
		s->ids = ids;
		double *ex = realloc(s->expires, cap * sizeof(*ex));
		if (ex == NULL)
			return -1;
		s->expires = ex;
		s->cap = cap;
	}
	if ((s->ids[s->n] = strdup(id)) == NULL)
		return -1;
	s->expires[s->n++] = expires;
	return 0;
}

/* Linear, and expired ids are dropped on the way: the set stays small. */
int
revset_has(struct revset *s, const char *id, double now)
{
	size_t i = 0;

	while (i < s->n) {
		if (s->expires[i] < now) {
			free(s->ids[i]);
			s->ids[i] = s->ids[s->n - 1];
			s->expires[i] = s->expires[s->n - 1];
			s->n--;
			continue;
		}
		if (strcmp(s->ids[i], id) == 0)
			return 1;
		i++;
	}
	return 0;
}

void
revset_free(struct revset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->expires);
	memset(s, 0, sizeof(*s));
}

int
revoke_load(redisContext *c, struct revset *s, double now)
{
	redisReply	*r;
	size_t		 i;
	char		 ts[64];

	snprintf(ts, sizeof(ts), "%.3f", now);
	r = redis_command(c, "ZRANGEBYSCORE %s %s +inf WITHSCORES",
	    REVOKED_KEY, ts);
	if (r == NULL)
		return -1;
	for (i = 0; i + 1 < r->elements; i += 2)
		revset_add(s, r->element[i]->str, atof(r->element[i + 1]->str));
	freeReplyObject(r);
	return 0;
}

int
revoke_publish(redisContext *c, const char *id, int terminate,
    const char *signame, double now)
{
	json_object	*o;
	char		 score[64], old[64];
	int		 rc;

	snprintf(score, sizeof(score), "%.3f", now + REVOKE_TTL_S);
	snprintf(old, sizeof(old), "%.3f", now);
	o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("revoke"));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "terminate",
	    json_object_new_boolean(terminate));
	json_object_object_add(o, "signal", json_object_new_string(signame ?
	    signame : "SIGTERM"));
	redisAppendCommand(c, "ZREMRANGEBYSCORE %s -inf %s", REVOKED_KEY, old);
	redisAppendCommand(c, "ZADD %s %s %s", REVOKED_KEY, score, id);
	redisAppendCommand(c, "PUBLISH %s %s", CONTROL_CHANNEL,
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	rc = redis_read_replies(c, 3, NULL);
	json_object_put(o);
	return rc;
}

int
revoke_signal_number(const char *name)
{
	static const struct { const char *n; int s; } sigs[] = {
		{ "TERM", SIGTERM }, { "KILL", SIGKILL }, { "INT", SIGINT },
		{ "HUP", SIGHUP }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 },
	};
	size_t i;

	if (name == NULL)
		return SIGTERM;
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		if (strcasecmp(name, sigs[i].n) == 0)
			return sigs[i].s;
	if (atoi(name) > 0 && atoi(name) < 65)
		return atoi(name);
	return -1;
}

int
revoke_parse(const char *payload, char *id, size_t idlen, int *terminate,
    int *signo)
{
	json_object	*o, *v;
	int		 ok = 0;

	if ((o = json_tokener_parse(payload)) == NULL)
		return 0;
	if (json_object_object_get_ex(o, "op", &v) &&
	    strcmp(json_object_get_string(v), "revoke") == 0 &&
	    json_object_object_get_ex(o, "id", &v)) {
		snprintf(id, idlen, "%s", json_object_get_string(v));
		*terminate = json_object_object_get_ex(o, "terminate", &v) &&
		    json_object_get_boolean(v);
		*signo = json_object_object_get_ex(o, "signal", &v) ?
		    revoke_signal_number(json_object_get_string(v)) : SIGTERM;
		ok = 1;
	}
	json_object_put(o);
	return ok;
}
