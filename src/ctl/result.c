/*
 * result.c - `celeriac result ID` and `celeriac dead ...`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "broker/result.h"
#include "broker/revoke.h"
#include "common/util.h"
#include "common/celeriac.h"
#include "ctl/ctl.h"

int
ctl_result(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	char		*meta;

	if (argc != 2) {
		fprintf(stderr, "usage: celeriac result TASK_ID\n");
		return 2;
	}
	if ((c = ctl_connect(cfg->result_backend ? cfg->result_backend :
	    cfg->broker)) == NULL)
		return 1;
	meta = result_get(c, argv[1]);
	redisFree(c);
	if (meta == NULL) {
		fprintf(stderr, "no result for %s\n", argv[1]);
		return 1;
	}
	printf("%s\n", meta);
	free(meta);
	return 0;
}

static void
dead_usage(void)
{
	fprintf(stderr, "usage: celeriac dead list\n"
	    "       celeriac dead retry ID|--all\n"
	    "       celeriac dead purge [--older-than DURATION]\n");
}

/*
 * Put a dead letter's message back on its queue.  Only task messages that
 * decode can go back; the entry leaves the list in the same transaction
 * (LREM of the exact entry text), so a retry never duplicates.
 */
static int
dead_retry_one(redisContext *c, const char *entry, size_t len)
{
	json_object	*e, *v;
	struct task_msg	 m;
	const char	*raw, *queue = NULL;
	char		 err[256], *list;
	int		 rc;

	if ((e = json_tokener_parse(entry)) == NULL)
		return -1;
	if (!json_object_object_get_ex(e, "message", &v) ||
	    (raw = json_object_get_string(v)) == NULL) {
		json_object_put(e);
		return -1;
	}
	if (msg_decode(raw, strlen(raw), &m, err, sizeof(err)) == -1) {
		fprintf(stderr, "celeriac: cannot retry: %s\n", err);
		json_object_put(e);
		return -1;
	}
	if (json_object_object_get_ex(e, "queue", &v) && v)
		queue = json_object_get_string(v);
	if (queue == NULL)
		queue = m.routing_key ? m.routing_key : "celery";
	list = msg_bucket_list(queue, m.priority);
	redisAppendCommand(c, "MULTI");
	redisAppendCommand(c, "LREM %s 1 %b", CELERIAC_DEAD_LETTERS, entry, len);
	redisAppendCommand(c, "LPUSH %s %s", list, raw);
	redisAppendCommand(c, "EXEC");
	rc = redis_read_replies(c, 4, NULL);
	free(list);
	if (rc == 0)
		printf("re-queued %s on %s\n", m.id, queue);
	msg_clear(&m);
	json_object_put(e);
	return rc;
}

static int
dead_entry_matches(const char *entry, const char *id, double older_than)
{
	json_object	*e, *v;
	int		 match = 0;

	if ((e = json_tokener_parse(entry)) == NULL)
		return id == NULL;
	if (id != NULL) {
		if ((json_object_object_get_ex(e, "id", &v) && v &&
		    strcmp(json_object_get_string(v), id) == 0) ||
		    (json_object_object_get_ex(e, "task_id", &v) && v &&
		    strcmp(json_object_get_string(v), id) == 0))
			match = 1;
	} else if (older_than > 0) {
		match = json_object_object_get_ex(e, "time", &v) &&
		    json_object_get_double(v) < older_than;
	} else
		match = 1;
	json_object_put(e);
	return match;
}

int
ctl_dead(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	redisReply	*r, *x;
	size_t		 i;
	const char	*id = NULL;
	double		 cutoff = 0;
	int64_t		 ms;
	int		 n = 0, all = 0, purge = 0, retry = 0;

	if (argc < 2) {
		dead_usage();
		return 2;
	}
	if (strcmp(argv[1], "retry") == 0 && argc == 3) {
		retry = 1;
		if (strcmp(argv[2], "--all") == 0)
			all = 1;
		else
			id = argv[2];
	} else if (strcmp(argv[1], "purge") == 0 && (argc == 2 ||
	    (argc == 4 && strcmp(argv[2], "--older-than") == 0))) {
		purge = 1;
		if (argc == 4) {
			if (cfg_parse_duration(argv[3], &ms) == -1) {
				fprintf(stderr, "celeriac: --older-than: "
				    "expected a duration like 7d, got %s\n",
				    argv[3]);
				return 2;
			}
			cutoff = now_unix() - ms / 1000.0;
		}
	} else if (strcmp(argv[1], "list") != 0 || argc != 2) {
		dead_usage();
		return 2;
	}
	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	r = redis_command(c, "LRANGE %s 0 -1", CELERIAC_DEAD_LETTERS);
	if (r == NULL) {
		redisFree(c);
		return 1;
	}
	for (i = 0; i < r->elements; i++) {
		const char *e = r->element[i]->str;
		size_t len = r->element[i]->len;
		if (!retry && !purge) {
			printf("%.*s\n", (int)len, e);
			continue;
		}
		if (retry && !all && !dead_entry_matches(e, id, 0))
			continue;
		if (purge && cutoff > 0 && !dead_entry_matches(e, NULL,
		    cutoff))
			continue;
		if (retry) {
			if (dead_retry_one(c, e, len) == 0)
				n++;
		} else {
			x = redis_command(c, "LREM %s 1 %b",
			    CELERIAC_DEAD_LETTERS, e, len);
			if (x && x->integer > 0)
				n++;
			if (x)
				freeReplyObject(x);
		}
	}
	freeReplyObject(r);
	redisFree(c);
	if (retry && n == 0) {
		fprintf(stderr, "celeriac: no dead letter %s could be retried\n",
		    id ? id : "");
		return 1;
	}
	if (purge)
		printf("purged %d dead letter%s\n", n, n == 1 ? "" : "s");
	return 0;
}

/* celeriac revoke ID [--terminate [--signal SIG]] */
int
ctl_revoke(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	const char	*id = NULL, *sig = "SIGTERM";
	int		 i, terminate = 0, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--terminate") == 0)
			terminate = 1;
		else if (strcmp(argv[i], "--signal") == 0 && i + 1 < argc)
			sig = argv[++i];
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else
			id = NULL, i = argc;
	}
	if (id == NULL || revoke_signal_number(sig) <= 0) {
		fprintf(stderr, "usage: celeriac revoke TASK_ID [--terminate "
		    "[--signal SIG]]\n");
		return 2;
	}
	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	rc = revoke_publish(c, id, terminate, sig, now_unix());
	redisFree(c);
	if (rc == -1) {
		fprintf(stderr, "celeriac: cannot record the revoke\n");
		return 1;
	}
	printf("revoked %s%s\n", id, terminate ? " (terminating)" : "");
	return 0;
}
