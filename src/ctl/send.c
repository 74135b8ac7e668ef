/*
 * send.c - `celeriac send`: publish a Celery task message, optionally
 * wait for its result the way AsyncResult.get() does (subscribe to the
 * result channel before publishing, then GET once).
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/publish.h"
#include "broker/redis.h"
#include "broker/result.h"
#include "common/util.h"
#include "ctl/ctl.h"

redisContext *
ctl_connect(const char *url)
{
	struct redis_url	 u;
	redisContext		*c;
	char			 err[256];

	if (redis_url_parse(url, &u, err, sizeof(err)) == -1 ||
	    (c = redis_connect(&u, 3000, err, sizeof(err))) == NULL) {
		fprintf(stderr, "celeriac: %s\n", err);
		return NULL;
	}
	return c;
}

json_object *
ctl_parse_json(const char *opt, const char *text, json_type want)
{
	json_object *o;

	o = json_tokener_parse(text);
	if (o == NULL || !json_object_is_type(o, want)) {
		fprintf(stderr, "celeriac: %s: expected a JSON %s, got %s\n",
		    opt, want == json_type_array ? "array" : "object", text);
		json_object_put(o);
		return NULL;
	}
	return o;
}

int
ctl_print_outcome(const char *meta)
{
	json_object	*o, *st, *res, *v;
	const char	*status;
	int		 rc = 1;

	if ((o = json_tokener_parse(meta)) == NULL) {
		fprintf(stderr, "celeriac: unreadable result: %s\n", meta);
		return 1;
	}
	json_object_object_get_ex(o, "status", &st);
	json_object_object_get_ex(o, "result", &res);
	status = st ? json_object_get_string(st) : "?";
	if (strcmp(status, "SUCCESS") == 0) {
		printf("%s\n", res ? json_object_to_json_string_ext(res,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) :
		    "null");
		rc = 0;
	} else {
		const char *type = "?", *msg = "";
		if (res && json_object_object_get_ex(res, "exc_type", &v))
			type = json_object_get_string(v);
		if (res && json_object_object_get_ex(res, "exc_message", &v)) {
			if (json_object_is_type(v, json_type_array) &&
			    json_object_array_length(v) == 1)
				v = json_object_array_get_idx(v, 0);
			msg = json_object_is_type(v, json_type_string) ?
			    json_object_get_string(v) :
			    json_object_to_json_string(v);
		}
		fprintf(stderr, "%s: %s\n", type, msg);
		if (strcmp(status, "FAILURE") != 0)
			fprintf(stderr, "(status %s)\n", status);
	}
	json_object_put(o);
	return rc;
}

static int
ready_state(const char *meta)
{
	return strstr(meta, "\"status\":\"SUCCESS\"") ||
	    strstr(meta, "\"status\":\"FAILURE\"") ||
	    strstr(meta, "\"status\":\"REVOKED\"") ||
	    strstr(meta, "\"status\": \"SUCCESS\"") ||
	    strstr(meta, "\"status\": \"FAILURE\"") ||
	    strstr(meta, "\"status\": \"REVOKED\"");
}

/* Wait on the subscription for a ready state; returns meta or NULL. */
static char *
wait_result(redisContext *sub, redisContext *c, const char *id,
    double timeout)
{
	int64_t		 deadline = mono_ms() + (int64_t)(timeout * 1000);
	char		*meta;
	void		*vr;
	redisReply	*r;
	struct pollfd	 pfd;

	if ((meta = result_get(c, id)) != NULL) {
		if (ready_state(meta))
			return meta;
		free(meta);
	}
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return NULL;
		pfd.fd = sub->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (redisBufferRead(sub) != REDIS_OK)
			return NULL;
		while (redisGetReplyFromReader(sub, &vr) == REDIS_OK &&
		    vr != NULL) {
			r = vr;
			if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
			    r->element[2]->type == REDIS_REPLY_STRING &&
			    ready_state(r->element[2]->str)) {
				meta = strdup(r->element[2]->str);
				freeReplyObject(r);
				return meta;
			}
			freeReplyObject(r);
		}
	}
}

int
ctl_send(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "args", required_argument, NULL, 'a' },
		{ "kwargs", required_argument, NULL, 'k' },
		{ "queue", required_argument, NULL, 'q' },
		{ "priority", required_argument, NULL, 'p' },
		{ "countdown", required_argument, NULL, 'C' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "id", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 }
	};
	struct msg_new		 mn;
	struct cfg_task		*ct;
	struct cfg_queue	*q;
	json_object		*args = NULL, *kwargs = NULL;
	redisContext		*c = NULL, *rb = NULL, *sub = NULL;
	char			 id[40], *env = NULL, *meta;
	const char		*queue = NULL;
	double			 timeout = 30, countdown = 0;
	int			 ch, wait = 0, priority = -1, rc = 1;
	void			*vr;

	memset(&mn, 0, sizeof(mn));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "a:k:q:p:C:wt:i:", opts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			if ((args = ctl_parse_json("--args", optarg,
			    json_type_array)) == NULL)
				goto out;
			break;
		case 'k':
			if ((kwargs = ctl_parse_json("--kwargs", optarg,
			    json_type_object)) == NULL)
				goto out;
			break;
		case 'q':	queue = optarg; break;
		case 'p':	priority = atoi(optarg); break;
		case 'C':	countdown = atof(optarg); break;
		case 'w':	wait = 1; break;
		case 't':	timeout = atof(optarg); break;
		case 'i':	mn.id = optarg; break;
		default:
			rc = 2;
			goto out;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: celeriac send TASK [--args JSON] "
		    "[--kwargs JSON] [--queue Q] [--priority N] "
		    "[--countdown S] [--wait [--timeout S]]\n");
		rc = 2;
		goto out;
	}
	mn.task = argv[optind];
	if (queue == NULL) {
		ct = cfg_task_find(cfg, mn.task);
		queue = ct ? ct->queue : "celery";
	}
	q = cfg_queue_find(cfg, queue);
	mn.queue = queue;
	mn.args = args;
	mn.kwargs = kwargs;
	mn.priority = priority >= 0 ? priority : (q ? q->priority : 0);
	if (countdown > 0)
		mn.eta = now_unix() + countdown;
	if ((c = ctl_connect(cfg->broker)) == NULL)
		goto out;
	rb = c;
	if (cfg->result_backend && strcmp(cfg->result_backend,
	    cfg->broker) != 0 && (rb = ctl_connect(cfg->result_backend)) ==
	    NULL)
		goto out;
	if ((env = msg_encode(&mn, id)) == NULL) {
		fprintf(stderr, "celeriac: cannot encode the message\n");
		goto out;
	}
	if (mn.id)
		snprintf(id, sizeof(id), "%s", mn.id);
	if (wait) {
		/* Subscribe before publishing, as Celery's client does. */
		if ((sub = ctl_connect(cfg->result_backend ?
		    cfg->result_backend : cfg->broker)) == NULL)
			goto out;
		vr = redisCommand(sub, "SUBSCRIBE " "celery-task-meta-%s", id);
		if (vr == NULL) {
			fprintf(stderr, "celeriac: subscribe failed\n");
			goto out;
		}
		freeReplyObject(vr);
	}
	if (publish_task(c, queue, mn.priority, env) == -1) {
		fprintf(stderr, "celeriac: cannot publish to %s\n", queue);
		goto out;
	}
	if (!wait) {
		printf("%s\n", id);
		rc = 0;
		goto out;
	}
	if ((meta = wait_result(sub, rb, id, timeout)) == NULL) {
		fprintf(stderr, "timeout waiting for %s\n", id);
		rc = 2;
		goto out;
	}
	rc = ctl_print_outcome(meta);
	free(meta);
out:
	free(env);
	json_object_put(args);
	json_object_put(kwargs);
	if (sub)
		redisFree(sub);
	if (rb && rb != c)
		redisFree(rb);
	if (c)
		redisFree(c);
	return rc;
}
