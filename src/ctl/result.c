/*
 * result.c - `celeriac result ID` and `celeriac dead ...`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
ctl_dead(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	redisReply	*r;
	size_t		 i;

	if (argc < 2 || strcmp(argv[1], "list") != 0) {
		fprintf(stderr, "usage: celeriac dead list\n");
		return 2;
	}
	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	r = redis_command(c, "LRANGE %s 0 -1", CELERIAC_DEAD_LETTERS);
	if (r == NULL) {
		redisFree(c);
		return 1;
	}
	for (i = 0; i < r->elements; i++)
		printf("%.*s\n", (int)r->element[i]->len, r->element[i]->str);
	freeReplyObject(r);
	redisFree(c);
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
