/*
 * beat.c - `celeriac beat status`: the beat leader and each entry's last
 * and next fire.
 *
 *	int	ctl_beat(struct config *, int argc, char **argv);
 *
 * Everything comes from the broker (the lease key and the last-fire hash
 * the leader writes) and from the configuration: the next fire is
 * computed here the way the leader computes it, in the entry's zone.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "beat/cron.h"
#include "beat/lease.h"
#include "beat/schedule.h"
#include "broker/redis.h"
#include "common/config.h"
#include "common/util.h"
#include "ctl/ctl.h"


static int
ctl_beat_leader(redisContext *c)
{
	redisReply	*v, *t;
	char		 host[256];
	long		 pid;
	int64_t		 token;

	if ((v = redis_command(c, "GET %s", LEASE_KEY)) == NULL)
		return -1;
	if ((t = redis_command(c, "PTTL %s", LEASE_KEY)) == NULL) {
		freeReplyObject(v);
		return -1;
	}
	if (v->type != REDIS_REPLY_STRING)
		printf("leader: none (no beat holds the lease)\n");
	else if (lease_parse(v->str, host, sizeof(host), &pid, &token) == -1)
		printf("leader: unknown (lease value \"%s\")\n", v->str);
	else
		printf("leader: %s (pid %ld), token %" PRId64 ", lease TTL "
		    "%.1fs left\n", host, pid, token, t->type ==
		    REDIS_REPLY_INTEGER && t->integer > 0 ?
		    t->integer / 1000.0 : 0.0);
	freeReplyObject(v);
	freeReplyObject(t);
	return 0;
}

/* The entry's record, "never" or "fire time (token, task id, host)". */
static int64_t
ctl_beat_last(redisReply *h, const struct cfg_beat_entry *e, const char *tz,
    char *buf, size_t len)
{
	json_object	*o, *v;
	char		 when[48];
	int64_t		 ms = -1;
	size_t		 k;

	snprintf(buf, len, "never");
	for (k = 0; h != NULL && k + 1 < h->elements; k += 2) {
		if (strcmp(h->element[k]->str, e->name) != 0)
			continue;
		if ((o = json_tokener_parse(h->element[k + 1]->str)) == NULL)
			break;
		if (json_object_object_get_ex(o, "fire_time", &v))
			ms = (int64_t)llround(json_object_get_double(v) *
			    1000.0);
		if (ms >= 0) {
			cron_format(ms, tz, when, sizeof(when));
			snprintf(buf, len, "%s (token %s, task id %s, host %s)",
			    when,
			    json_object_object_get_ex(o, "token", &v) ?
			    json_object_get_string(v) : "?",
			    json_object_object_get_ex(o, "task_id", &v) ?
			    json_object_get_string(v) : "?",
			    json_object_object_get_ex(o, "host", &v) ?
			    json_object_get_string(v) : "?");
		}
		json_object_put(o);
		break;
	}
	return ms;
}

static void
ctl_beat_entry(const struct config *cfg, const struct cfg_beat_entry *e,
    redisReply *h, int64_t now)
{
	struct beat_sched	 s;
	struct beat_due		 d;
	char			 desc[160], last[400], err[256], a[48], z[48];
	const char		*tz = e->timezone ? e->timezone : "UTC";
	int64_t			 last_ms;

	beat_sched_describe(e, desc, sizeof(desc));
	printf("%s: %s, task %s, queue %s%s\n", e->name, desc, e->task,
	    beat_entry_queue(cfg, e), e->skip_missed ? ", skip_missed" : "");
	if (beat_sched_init(&s, e, err, sizeof(err)) == -1) {
		printf("  invalid: %s\n", err);
		return;
	}
	last_ms = ctl_beat_last(h, e, s.tz, last, sizeof(last));
	printf("  last fire: %s\n", last);
	/* As the leader sees it: from the last fire, or from now. */
	beat_sched_due(&s, last_ms >= 0 ? last_ms : now, now, e->skip_missed,
	    &d);
	switch (d.action) {
	case BEAT_WAIT:
		if (d.next_ms < 0)
			printf("  next fire: never\n");
		else {
			cron_format(d.next_ms, tz, a, sizeof(a));
			printf("  next fire: %s\n", a);
		}
		break;
	case BEAT_FIRE:
		cron_format(d.fire_ms, tz, a, sizeof(a));
		printf("  next fire: due now (scheduled %s%s)\n", a,
		    d.nmissed != 0 ? ", a catch-up of missed fires" : "");
		break;
	case BEAT_SKIP:
		cron_format(d.fire_ms, tz, a, sizeof(a));
		cron_format(d.next_ms, tz, z, sizeof(z));
		printf("  next fire: %s (missed fires up to %s are skipped)\n",
		    z, a);
		break;
	}
}

int
ctl_beat(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	redisReply	*h;
	int64_t		 now;
	size_t		 i;

	if (argc != 2 || strcmp(argv[1], "status") != 0) {
		fprintf(stderr, "usage: celeriac beat status\n");
		return 2;
	}
	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	if (ctl_beat_leader(c) == -1 ||
	    (h = redis_command(c, "HGETALL %s", BEAT_LAST_KEY)) == NULL) {
		redisFree(c);
		return 1;
	}
	now = now_unix_us() / 1000;
	if (cfg->nbeat == 0)
		printf("no beat entries in %s\n", cfg->path ? cfg->path :
		    "the configuration");
	for (i = 0; i < cfg->nbeat; i++)
		ctl_beat_entry(cfg, &cfg->beat[i], h, now);
	freeReplyObject(h);
	redisFree(c);
	return 0;
}
