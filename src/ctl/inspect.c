/*
 * inspect.c - `celeriac inspect` and `celeriac control`: Celery's remote
 * control client, on kombu's pidbox over Redis, so it talks to celeriac
 * hosts and Python Celery workers alike (../shared/docs/celery-wire.md
 * section 9).
 *
 * A request is one PUBLISH on /<db>.celery.pidbox; replies come back as
 * LPUSHes on a reply list of our own, which workers find through the
 * binding we add to _kombu.binding.reply.celery.pidbox first and remove
 * when done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/envelope.h"
#include "broker/message.h"
#include "broker/redis.h"
#include "common/util.h"
#include "ctl/ctl.h"

#define DEFAULT_TIMEOUT	1.0		/* seconds, as Celery's CLI */
#define EX_UNAVAILABLE	69		/* Celery's CLI when nobody replied */
#define MAX_DEST	64

struct request {
	const char	*what;		/* "inspect" or "control" */
	const char	*method;
	json_object	*args;		/* arguments object */
	const char	*dest[MAX_DEST];
	int		 ndest;
	double		 timeout;
	int		 json;
};

static int
usage(const char *what)
{
	if (strcmp(what, "inspect") == 0)
		fprintf(stderr, "usage: celeriac inspect COMMAND [ARG...] "
		    "[-d NODE[,NODE...]] [-t SECONDS] [--json]\n"
		    "commands: ping stats active reserved scheduled revoked "
		    "registered\n"
		    "          active_queues conf report clock "
		    "query_task ID...\n");
	else
		fprintf(stderr, "usage: celeriac control COMMAND [ARG...] "
		    "[-d NODE[,NODE...]] [-t SECONDS] [--json]\n"
		    "commands: revoke ID... | terminate SIGNAL ID... | "
		    "rate_limit TASK RATE\n"
		    "          time_limit TASK SOFT [HARD] | pool_grow [N] | "
		    "pool_shrink [N]\n"
		    "          add_consumer QUEUE [EXCHANGE [TYPE "
		    "[ROUTING_KEY]]] | cancel_consumer QUEUE\n"
		    "          shutdown | enable_events | disable_events | "
		    "heartbeat\n");
	return 2;
}

static json_object *
id_list(int argc, char **argv)
{
	json_object	*l = json_object_new_array();
	int		 i;

	for (i = 0; i < argc; i++)
		json_object_array_add(l, json_object_new_string(argv[i]));
	return l;
}

static int
number(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return end != s && *end == '\0' ? 0 : -1;
}

/*
 * The arguments object of a command from its positional words, as
 * Celery's CLI builds it.  Returns -1 (usage) for an unknown command or
 * missing words.
 */
static int
build_args(struct request *r, int argc, char **argv)
{
	static const char *const plain_inspect[] = {
		"ping", "stats", "active", "reserved", "scheduled", "revoked",
		"active_queues", "report", "clock", NULL
	};
	static const char *const plain_control[] = {
		"shutdown", "enable_events", "disable_events", "heartbeat",
		NULL
	};
	const char *const	*plain;
	const char		*m = r->method;
	json_object		*a = json_object_new_object();
	double			 x;
	int			 inspect = strcmp(r->what, "inspect") == 0, i;

	r->args = a;
	plain = inspect ? plain_inspect : plain_control;
	for (i = 0; plain[i] != NULL; i++)
		if (strcmp(m, plain[i]) == 0)
			return argc == 0 ? 0 : -1;
	if (inspect && strcmp(m, "registered") == 0 && argc == 0) {
		json_object_object_add(a, "taskinfoitems",
		    json_object_new_array());
		return 0;
	}
	if (inspect && strcmp(m, "conf") == 0 && argc == 0) {
		json_object_object_add(a, "with_defaults",
		    json_object_new_boolean(0));
		return 0;
	}
	if (inspect && strcmp(m, "query_task") == 0 && argc > 0) {
		json_object_object_add(a, "ids", id_list(argc, argv));
		return 0;
	}
	if (inspect)
		return -1;
	if (strcmp(m, "revoke") == 0 && argc > 0) {
		json_object_object_add(a, "task_id", id_list(argc, argv));
		return 0;
	}
	if (strcmp(m, "terminate") == 0 && argc > 1) {
		json_object_object_add(a, "signal",
		    json_object_new_string(argv[0]));
		json_object_object_add(a, "task_id",
		    id_list(argc - 1, argv + 1));
		return 0;
	}
	if (strcmp(m, "rate_limit") == 0 && argc == 2) {
		json_object_object_add(a, "task_name",
		    json_object_new_string(argv[0]));
		json_object_object_add(a, "rate_limit",
		    json_object_new_string(argv[1]));
		return 0;
	}
	if (strcmp(m, "time_limit") == 0 && (argc == 2 || argc == 3)) {
		json_object_object_add(a, "task_name",
		    json_object_new_string(argv[0]));
		for (i = 1; i < argc; i++) {
			if (number(argv[i], &x) == -1) {
				fprintf(stderr, "celeriac: time_limit: %s is "
				    "not a number of seconds\n", argv[i]);
				return -1;
			}
			json_object_object_add(a, i == 1 ? "soft" : "hard",
			    json_object_new_double(x));
		}
		return 0;
	}
	if ((strcmp(m, "pool_grow") == 0 || strcmp(m, "pool_shrink") == 0) &&
	    argc <= 1) {
		if (argc == 1 && (number(argv[0], &x) == -1 || x < 1 ||
		    x != (int)x)) {
			fprintf(stderr, "celeriac: %s: %s is not a positive "
			    "whole number\n", m, argv[0]);
			return -1;
		}
		json_object_object_add(a, "n",
		    json_object_new_int(argc == 1 ? (int)x : 1));
		return 0;
	}
	if (strcmp(m, "add_consumer") == 0 && argc >= 1 && argc <= 4) {
		static const char *const keys[] = {
			"queue", "exchange", "exchange_type", "routing_key"
		};
		for (i = 0; i < argc; i++)
			json_object_object_add(a, keys[i],
			    json_object_new_string(argv[i]));
		return 0;
	}
	if (strcmp(m, "cancel_consumer") == 0 && argc == 1) {
		json_object_object_add(a, "queue",
		    json_object_new_string(argv[0]));
		return 0;
	}
	return -1;
}

static int
parse(struct request *r, int argc, char **argv)
{
	char	*words[64], *d, *tok, *save;
	int	 i, n = 0;

	r->timeout = DEFAULT_TIMEOUT;
	for (i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "-d") == 0 ||
		    strcmp(argv[i], "--destination") == 0) && i + 1 < argc) {
			d = argv[++i];
			for (tok = strtok_r(d, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save))
				if (r->ndest < MAX_DEST)
					r->dest[r->ndest++] = tok;
		} else if ((strcmp(argv[i], "-t") == 0 ||
		    strcmp(argv[i], "--timeout") == 0) && i + 1 < argc) {
			if (number(argv[++i], &r->timeout) == -1 ||
			    r->timeout <= 0) {
				fprintf(stderr, "celeriac: -t: %s is not a "
				    "positive number of seconds\n", argv[i]);
				return -1;
			}
		} else if (strcmp(argv[i], "--json") == 0)
			r->json = 1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "celeriac: unknown option %s\n",
			    argv[i]);
			return -1;
		} else if (n < (int)(sizeof(words) / sizeof(*words)))
			words[n++] = argv[i];
	}
	return build_args(r, n, words);
}

static json_object *
request_envelope(const struct request *r, const char *oid,
    const char *ticket)
{
	json_object	*body, *dest, *reply, *h, *env, *p;
	int		 i;

	body = json_object_new_object();
	json_object_object_add(body, "method",
	    json_object_new_string(r->method));
	json_object_object_add(body, "arguments", json_object_get(r->args));
	dest = NULL;
	if (r->ndest > 0) {
		dest = json_object_new_array();
		for (i = 0; i < r->ndest; i++)
			json_object_array_add(dest,
			    json_object_new_string(r->dest[i]));
	}
	json_object_object_add(body, "destination", dest);
	json_object_object_add(body, "pattern", NULL);
	json_object_object_add(body, "matcher", NULL);
	json_object_object_add(body, "ticket", json_object_new_string(ticket));
	reply = json_object_new_object();
	json_object_object_add(reply, "exchange",
	    json_object_new_string("reply.celery.pidbox"));
	json_object_object_add(reply, "routing_key",
	    json_object_new_string(oid));
	json_object_object_add(body, "reply_to", reply);
	h = json_object_new_object();
	json_object_object_add(h, "clock", json_object_new_int(1));
	json_object_object_add(h, "expires",
	    json_object_new_double(now_unix() + r->timeout));
	if ((env = kombu_envelope(body, h, "celery.pidbox", "")) == NULL)
		return NULL;
	/* What Celery's client sends (events use 1). */
	if (json_object_object_get_ex(env, "properties", &p))
		json_object_object_add(p, "delivery_mode",
		    json_object_new_int(2));
	return env;
}

/*
 * The {"node": payload} body of a reply envelope meant for ticket, or
 * NULL (someone else's, or unreadable).
 */
static json_object *
reply_body(const char *text, size_t len, const char *ticket)
{
	json_object	*env, *h, *t, *b, *body = NULL;
	unsigned char	*raw;
	size_t		 rawlen;
	const char	*s;

	if ((env = json_tokener_parse(text)) == NULL)
		return NULL;
	(void)len;
	/* A reply without a ticket is anyone's, as kombu takes it. */
	if (json_object_object_get_ex(env, "headers", &h) &&
	    json_object_object_get_ex(h, "ticket", &t) && t != NULL &&
	    strcmp(json_object_get_string(t), ticket) != 0)
		goto out;
	if (!json_object_object_get_ex(env, "body", &b) ||
	    (s = json_object_get_string(b)) == NULL)
		goto out;
	if ((raw = msg_base64_decode(s, strlen(s), &rawlen)) == NULL)
		goto out;
	body = json_tokener_parse((const char *)raw);
	free(raw);
	if (body != NULL && !json_object_is_type(body, json_type_object)) {
		json_object_put(body);
		body = NULL;
	}
out:
	json_object_put(env);
	return body;
}

static int
heard_all(const struct request *r, json_object *replies)
{
	int i;

	if (r->ndest == 0)
		return 0;
	for (i = 0; i < r->ndest; i++)
		if (!json_object_object_get_ex(replies, r->dest[i], NULL))
			return 0;
	return 1;
}

/* Celery's CLI rendering of one node's reply. */
static void
print_reply(const char *node, json_object *v)
{
	json_object	*x;
	size_t		 i, n;

	if (json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "error", &x)) {
		printf("-> %s: ERROR\n    %s\n", node,
		    json_object_get_string(x));
		return;
	}
	printf("-> %s: OK\n", node);
	if (v == NULL)
		printf("    None\n");
	else if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		if (n == 0)
			printf("    - empty -\n");
		for (i = 0; i < n; i++) {
			x = json_object_array_get_idx(v, i);
			printf("    * %s\n", json_object_is_type(x,
			    json_type_string) ? json_object_get_string(x) :
			    json_object_to_json_string_ext(x,
			    JSON_C_TO_STRING_SPACED));
		}
	} else if (json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "ok", &x))
		printf("    %s\n", json_object_get_string(x));
	else if (json_object_is_type(v, json_type_string))
		printf("    %s\n", json_object_get_string(v));
	else
		printf("    %s\n", json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
}

static void
forget(redisContext *c, const char *member, char lists[][64])
{
	redisReply	*rr;
	int		 i;

	if ((rr = redis_command(c, "SREM %s %s", PIDBOX_REPLY_BINDINGS,
	    member)) != NULL)
		freeReplyObject(rr);
	for (i = 0; i < MSG_NBUCKETS; i++)
		if ((rr = redis_command(c, "DEL %s", lists[i])) != NULL)
			freeReplyObject(rr);
}

static int
broadcast(struct config *cfg, struct request *r)
{
	struct redis_url	 u;
	redisContext		*c;
	redisReply		*rr;
	json_object		*env, *replies, *body;
	char			 oid[40], ticket[40], member[300], chan[64];
	char			 lists[MSG_NBUCKETS][64], err[256];
	double			 deadline, left;
	int			 i, nodes = 0, rc;

	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	/* The database number, for the channel's name. */
	if (redis_url_parse(cfg->broker, &u, err, sizeof(err)) == -1) {
		redisFree(c);
		return 1;
	}
	msg_uuid4(oid);
	msg_uuid4(ticket);
	snprintf(lists[0], sizeof(lists[0]), "%s.reply.celery.pidbox", oid);
	for (i = 1; i < MSG_NBUCKETS; i++)
		snprintf(lists[i], sizeof(lists[i]),
		    "%s.reply.celery.pidbox" MSG_SEP "%d", oid,
		    msg_priority_steps[i]);
	snprintf(member, sizeof(member), "%s" MSG_SEP MSG_SEP "%s", oid,
	    lists[0]);
	snprintf(chan, sizeof(chan), "/%d.celery.pidbox", u.db);
	replies = json_object_new_object();
	rc = 1;
	if ((rr = redis_command(c, "SADD %s %s", PIDBOX_REPLY_BINDINGS,
	    member)) == NULL)
		goto out;
	freeReplyObject(rr);
	if ((env = request_envelope(r, oid, ticket)) == NULL)
		goto out;
	rr = redis_command(c, "PUBLISH %s %s", chan,
	    json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	if (rr == NULL)
		goto out;
	freeReplyObject(rr);

	deadline = now_unix() + r->timeout;
	while (!heard_all(r, replies) && (left = deadline - now_unix()) > 0) {
		rr = redis_command(c, "BRPOP %s %s %s %s %.3f", lists[0],
		    lists[1], lists[2], lists[3], left < 1 ? left : 1.0);
		if (rr == NULL)
			goto out;
		if (rr->type == REDIS_REPLY_ARRAY && rr->elements == 2 &&
		    (body = reply_body(rr->element[1]->str,
		    rr->element[1]->len, ticket)) != NULL) {
			json_object_object_foreach(body, node, v)
				json_object_object_add(replies, node,
				    json_object_get(v));
			json_object_put(body);
		}
		freeReplyObject(rr);
	}
	nodes = json_object_object_length(replies);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "celeriac: %s: %s\n", r->what,
		    c->errstr[0] ? c->errstr : "Redis refused the request");
	forget(c, member, lists);
	redisFree(c);
	if (rc == 0) {
		if (r->json)
			printf("%s\n", json_object_to_json_string_ext(replies,
			    JSON_C_TO_STRING_PLAIN));
		else {
			json_object_object_foreach(replies, node, v)
				print_reply(node, v);
		}
		if (nodes == 0) {
			fprintf(stderr, "Error: No nodes replied within time "
			    "constraint\n");
			rc = EX_UNAVAILABLE;
		} else if (!r->json)
			printf("\n%d node%s online.\n", nodes,
			    nodes == 1 ? "" : "s");
	}
	json_object_put(replies);
	return rc;
}

static int
remote(struct config *cfg, const char *what, int argc, char **argv)
{
	struct request	r;
	int		rc;

	memset(&r, 0, sizeof(r));
	r.what = what;
	if (argc < 2 || argv[1][0] == '-')
		return usage(what);
	r.method = argv[1];
	if (parse(&r, argc, argv) == -1) {
		json_object_put(r.args);
		return usage(what);
	}
	rc = broadcast(cfg, &r);
	json_object_put(r.args);
	return rc;
}

int
ctl_inspect(struct config *cfg, int argc, char **argv)
{
	return remote(cfg, "inspect", argc, argv);
}

int
ctl_control(struct config *cfg, int argc, char **argv)
{
	return remote(cfg, "control", argc, argv);
}
