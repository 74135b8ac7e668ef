/*
 * beat.c - the beat child: periodic tasks, fired once per cluster.
 *
 * Every host runs one; the one holding the lease (lease.h) fires.  A fire
 * is one Lua script that checks the lease still holds our token, checks
 * the entry's last recorded fire is older than this one, records the fire
 * in BEAT_LAST_KEY and pushes the Celery message: a fire is recorded
 * exactly when its message is queued, a stale leader fires nothing, and
 * two leaders cannot both fire the same scheduled time.
 *
 * Each entry keeps a cursor, the scheduled time of its last fire.  It is
 * read back from Redis whenever this beat becomes leader (and after any
 * error), so a restarted or newly elected beat never repeats a fire; an
 * entry never fired counts from the moment its leader first saw it.
 * After downtime the due fires fold into one catch-up fire, or are
 * skipped with skip_missed (schedule.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "beat/beat.h"
#include "beat/cron.h"
#include "beat/lease.h"
#include "beat/schedule.h"
#include "broker/message.h"
#include "broker/redis.h"
#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"

#define BEAT_REDIS_TIMEOUT_MS	2000	/* a renewal must not hang past the TTL */
#define BEAT_RECONNECT_MAX_MS	5000
#define BEAT_RETRY_MS		1000	/* after a failed fire */

/*
 * KEYS: lease, last-fire hash, kombu binding set, queue list, history.
 * ARGV: lease value, entry, fire time (s), record, binding member,
 * envelope, history record, last history index.  Returns 1 fired, 0 lease lost, -1 this
 * fire (or a later one) is already recorded.
 */
static const char beat_fire_lua[] =
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"local old = redis.call('HGET', KEYS[2], ARGV[2])\n"
	"if old then\n"
	"  local ok, o = pcall(cjson.decode, old)\n"
	"  if ok and type(o) == 'table' and tonumber(o['fire_time']) and\n"
	"      tonumber(o['fire_time']) >= tonumber(ARGV[3]) - 0.0005 then\n"
	"    return -1\n"
	"  end\n"
	"end\n"
	"redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])\n"
	"redis.call('SADD', KEYS[3], ARGV[5])\n"
	"redis.call('LPUSH', KEYS[4], ARGV[6])\n"
	"redis.call('LPUSH', KEYS[5], ARGV[7])\n"
	"redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[8]))\n"
	"return 1\n";

struct beat_entry {
	const struct cfg_beat_entry *cfg;
	struct beat_sched	 sched;
	int			 ok;		/* valid schedule and arguments */
	int			 have_cursor;
	int64_t			 cursor_ms;	/* scheduled time of the last fire */
	const char		*queue;
	int			 priority;
	int			 ignore_result;
	json_object		*args;
	json_object		*kwargs;
};

struct beat {
	const struct config	*cfg;
	struct sb_slot		*slot;
	int			 notify_fd;
	pid_t			 master;
	struct redis_url	 url;
	redisContext		*c;
	struct lease		 lease;
	struct beat_entry	*e;
	size_t			 n;
	int			 synced;	/* cursors read since leading/error */
	int			 ready;		/* slot marked idle */
	int64_t			 next_lease;	/* monotonic ms */
	int64_t			 next_connect;
	int64_t			 backoff_ms;
	int64_t			 retry_at;	/* monotonic ms, after a failed fire */
};

static volatile sig_atomic_t beat_stop;
static int beat_wake[2] = { -1, -1 };

static void
beat_signal(int sig)
{
	int saved = errno;

	(void)sig;
	beat_stop = 1;
	(void)!write(beat_wake[1], "", 1);
	errno = saved;
}

static int64_t
beat_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
beat_title(struct beat *b)
{
	if (b->lease.held)
		proctitle_set("celeriacd: beat (leader, token %" PRId64 ")",
		    b->lease.token);
	else
		proctitle_set("celeriacd: beat (follower)");
}

static int
beat_entries_init(struct beat *b)
{
	const struct cfg_task	*t;
	const struct cfg_queue	*q;
	struct beat_entry	*e;
	char			 err[256];
	size_t			 i, nok = 0;

	b->n = b->cfg->nbeat;
	b->e = xcalloc(b->n ? b->n : 1, sizeof(*b->e));
	for (i = 0; i < b->n; i++) {
		e = &b->e[i];
		e->cfg = &b->cfg->beat[i];
		if (beat_sched_init(&e->sched, e->cfg, err, sizeof(err)) == -1) {
			log_errx("beat entry %s (line %d): %s; not scheduled",
			    e->cfg->name, e->cfg->line, err);
			continue;
		}
		e->args = json_tokener_parse(e->cfg->args_json ?
		    e->cfg->args_json : "[]");
		e->kwargs = json_tokener_parse(e->cfg->kwargs_json ?
		    e->cfg->kwargs_json : "{}");
		if (!json_object_is_type(e->args, json_type_array) ||
		    !json_object_is_type(e->kwargs, json_type_object)) {
			log_errx("beat entry %s (line %d): bad args or kwargs; "
			    "not scheduled", e->cfg->name, e->cfg->line);
			continue;
		}
		/* Routed like any task: the entry's queue, the task's, celery. */
		t = cfg_task_find(b->cfg, e->cfg->task);
		e->queue = beat_entry_queue(b->cfg, e->cfg);
		q = cfg_queue_find(b->cfg, e->queue);
		e->priority = q ? q->priority : 0;
		e->ignore_result = t ? t->ignore_result : 0;
		e->ok = 1;
		nok++;
	}
	return nok > 0 ? 0 : -1;
}

static void
beat_entries_free(struct beat *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		json_object_put(b->e[i].args);
		json_object_put(b->e[i].kwargs);
	}
	free(b->e);
}

static void
beat_disconnect(struct beat *b)
{
	if (b->c != NULL)
		redisFree(b->c);
	b->c = NULL;
	/* Whatever we last sent may or may not have happened. */
	b->lease.valid_until = 0;
	b->synced = 0;
	b->next_connect = mono_ms() + b->backoff_ms;
	b->backoff_ms = b->backoff_ms * 2 > BEAT_RECONNECT_MAX_MS ?
	    BEAT_RECONNECT_MAX_MS : b->backoff_ms * 2;
}

static void
beat_connect(struct beat *b)
{
	struct timeval	 tv;
	char		 err[256];

	if ((b->c = redis_connect(&b->url, BEAT_REDIS_TIMEOUT_MS, err,
	    sizeof(err))) == NULL) {
		log_warnx("beat: %s; retrying", err);
		b->next_connect = mono_ms() + b->backoff_ms;
		b->backoff_ms = b->backoff_ms * 2 > BEAT_RECONNECT_MAX_MS ?
		    BEAT_RECONNECT_MAX_MS : b->backoff_ms * 2;
		return;
	}
	tv.tv_sec = BEAT_REDIS_TIMEOUT_MS / 1000;
	tv.tv_usec = BEAT_REDIS_TIMEOUT_MS % 1000 * 1000;
	redisSetTimeout(b->c, tv);
	b->backoff_ms = 250;
	b->next_lease = 0;
	if (!b->ready) {
		b->ready = 1;
		b->slot->state = SB_IDLE;
		(void)!write(b->notify_fd, "b", 1);
	}
}

/* Renew the lease we hold, or try to take it. */
static void
beat_lease_tick(struct beat *b)
{
	int64_t	 t = mono_ms();
	int	 was = b->lease.held, rc;

	if (was) {
		rc = lease_renew(b->c, &b->lease, t);
		if (rc == 0)
			log_warnx("beat: lost the lease (token %" PRId64 "); "
			    "no longer firing", b->lease.token);
		else if (rc == -1)
			log_warnx("beat: cannot renew the lease (token %" PRId64
			    "); not firing until it is renewed",
			    b->lease.token);
	} else if (lease_acquire(b->c, &b->lease, t) == 1) {
		log_notice("beat: leader now (token %" PRId64 ")",
		    b->lease.token);
		b->synced = 0;
	}
	if (was != b->lease.held)
		beat_title(b);
}

static int64_t
beat_record_ms(const char *json)
{
	json_object	*o, *v;
	int64_t		 ms = -1;

	if ((o = json_tokener_parse(json)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "fire_time", &v))
		ms = (int64_t)llround(json_object_get_double(v) * 1000.0);
	json_object_put(o);
	return ms;
}

/* Read every entry's last fire back from Redis into its cursor. */
static int
beat_sync(struct beat *b)
{
	redisReply	*r;
	int64_t		 now = beat_now_ms(), ms;
	size_t		 i, k;

	if ((r = redis_command(b->c, "HGETALL %s", BEAT_LAST_KEY)) == NULL)
		return -1;
	for (i = 0; i < b->n; i++) {
		struct beat_entry *e = &b->e[i];
		for (k = 0; k + 1 < r->elements; k += 2) {
			if (strcmp(r->element[k]->str, e->cfg->name) != 0)
				continue;
			ms = beat_record_ms(r->element[k + 1]->str);
			if (ms >= 0 && (!e->have_cursor || ms > e->cursor_ms)) {
				e->cursor_ms = ms;
				e->have_cursor = 1;
			}
		}
		if (!e->have_cursor) {
			e->cursor_ms = now;
			e->have_cursor = 1;
		}
	}
	freeReplyObject(r);
	b->synced = 1;
	return 0;
}

/* Returns 1 fired, 0 lease lost, -1 error, -2 already recorded. */
static int
beat_fire(struct beat *b, struct beat_entry *e, const struct beat_due *d,
    int64_t now)
{
	struct msg_new	 m;
	json_object	*rec;
	redisReply	*r;
	char		 id[37] = "", when[48], ft[32], sent[32];
	char		 binding[300], member[300];
	char		*env = NULL, *list = NULL, *rec_s = NULL, *hist_s = NULL;
	char		 trim[16];
	const char	*argv[16];
	size_t		 len[16];
	int		 i, rc = -1;

	memset(&m, 0, sizeof(m));
	m.task = e->cfg->task;
	m.queue = e->queue;
	m.args = e->args;
	m.kwargs = e->kwargs;
	m.priority = e->priority;
	m.ignore_result = e->ignore_result;
	if ((env = msg_encode(&m, id)) == NULL ||
	    (list = msg_bucket_list(e->queue, e->priority)) == NULL) {
		log_warnx("beat: %s: cannot build the message", e->cfg->name);
		goto out;
	}
	snprintf(trim, sizeof(trim), "%d", BEAT_HISTORY_LEN - 1);
	snprintf(ft, sizeof(ft), "%" PRId64 ".%03d", d->fire_ms / 1000,
	    (int)(d->fire_ms % 1000));
	cron_format(d->fire_ms, e->sched.tz, when, sizeof(when));
	rec = json_object_new_object();
	json_object_object_add(rec, "fire_time",
	    json_object_new_double_s((double)d->fire_ms / 1000.0, ft));
	json_object_object_add(rec, "scheduled", json_object_new_string(when));
	json_object_object_add(rec, "token",
	    json_object_new_int64(b->lease.token));
	json_object_object_add(rec, "task_id", json_object_new_string(id));
	json_object_object_add(rec, "host",
	    json_object_new_string(b->lease.host));
	snprintf(sent, sizeof(sent), "%" PRId64 ".%03d", now / 1000,
	    (int)(now % 1000));
	json_object_object_add(rec, "sent_at",
	    json_object_new_double_s((double)now / 1000.0, sent));
	rec_s = xstrdup(json_object_to_json_string_ext(rec,
	    JSON_C_TO_STRING_PLAIN));
	json_object_object_add(rec, "entry",
	    json_object_new_string(e->cfg->name));
	hist_s = xstrdup(json_object_to_json_string_ext(rec,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(rec);
	/* Declare and bind the queue, as publish_task() and Celery do. */
	snprintf(binding, sizeof(binding), "_kombu.binding.%s", e->queue);
	snprintf(member, sizeof(member), "%s" MSG_SEP MSG_SEP "%s", e->queue,
	    e->queue);

	argv[0] = "EVAL";
	argv[1] = beat_fire_lua;
	argv[2] = "5";
	argv[3] = LEASE_KEY;
	argv[4] = BEAT_LAST_KEY;
	argv[5] = binding;
	argv[6] = list;
	argv[7] = BEAT_HISTORY_KEY;
	argv[8] = b->lease.value;
	argv[9] = e->cfg->name;
	argv[10] = ft;
	argv[11] = rec_s;
	argv[12] = member;
	argv[13] = env;
	argv[14] = hist_s;
	argv[15] = trim;
	for (i = 0; i < 16; i++)
		len[i] = strlen(argv[i]);
	r = redis_commandv(b->c, 16, argv, len);
	if (r == NULL)
		goto out;
	rc = r->type != REDIS_REPLY_INTEGER ? -1 : r->integer == 1 ? 1 :
	    r->integer == 0 ? 0 : -2;
	freeReplyObject(r);
	if (rc != 1)
		goto out;
	if (d->nmissed != 0) {
		char first[48], count[32] = "many";

		cron_format(d->first_ms, e->sched.tz, first, sizeof(first));
		if (d->nmissed > 0)
			snprintf(count, sizeof(count), "%" PRId64,
			    d->nmissed);
		log_notice("beat: %s: catch-up: %s missed fire(s) since %s "
		    "run once, as the one scheduled %s", e->cfg->name, count,
		    first, when);
	}
	log_info("beat: fired %s: task %s id %s queue %s scheduled %s lag "
	    "%" PRId64 " ms token %" PRId64, e->cfg->name, e->cfg->task, id,
	    e->queue, when, now - d->fire_ms, b->lease.token);
out:
	free(env);
	free(list);
	free(rec_s);
	free(hist_s);
	return rc;
}

/*
 * Fire what is due.  Returns the milliseconds until the next fire
 * (INT64_MAX when none), or 0 to run again at once.
 */
static int64_t
beat_run_due(struct beat *b)
{
	struct beat_due	 d;
	struct beat_entry *e;
	int64_t		 now = beat_now_ms(), soonest = INT64_MAX;
	char		 a[48], z[48];
	size_t		 i;
	int		 rc;

	for (i = 0; i < b->n; i++) {
		e = &b->e[i];
		if (!e->ok)
			continue;
		beat_sched_due(&e->sched, e->cursor_ms, now,
		    e->cfg->skip_missed, &d);
		if (d.action == BEAT_SKIP) {
			cron_format(d.first_ms, e->sched.tz, a, sizeof(a));
			cron_format(d.fire_ms, e->sched.tz, z, sizeof(z));
			log_notice("beat: %s: skipping missed fires %s .. %s "
			    "(skip_missed)", e->cfg->name, a, z);
			e->cursor_ms = d.fire_ms;
		} else if (d.action == BEAT_FIRE) {
			rc = beat_fire(b, e, &d, now);
			if (rc == 0) {
				log_warnx("beat: lease lost while firing %s "
				    "(token %" PRId64 "); no longer firing",
				    e->cfg->name, b->lease.token);
				b->lease.held = 0;
				b->lease.valid_until = 0;
				b->synced = 0;
				beat_title(b);
				return INT64_MAX;
			}
			if (rc == -2) {
				log_notice("beat: %s: fire of %" PRId64 " ms "
				    "already recorded; re-reading the last "
				    "fires", e->cfg->name, d.fire_ms);
				b->synced = 0;
				return 0;
			}
			if (rc == -1) {
				b->synced = 0;
				b->retry_at = mono_ms() + BEAT_RETRY_MS;
				return BEAT_RETRY_MS;
			}
			e->cursor_ms = d.fire_ms;
		}
		if (d.next_ms >= 0 && d.next_ms - now < soonest)
			soonest = d.next_ms - now;
	}
	return soonest < 0 ? 0 : soonest;
}

static void
beat_setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = beat_signal;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

void
beat_main(const struct beat_args *a)
{
	struct beat	 b;
	struct pollfd	 pfd;
	int64_t		 now, wait, fire_wait;
	char		 err[256], buf[64];

	memset(&b, 0, sizeof(b));
	b.cfg = a->cfg;
	b.slot = &a->sb->slots[a->slot];
	b.notify_fd = a->notify_fd;
	b.master = getppid();
	b.backoff_ms = 250;
	log_set_ident("beat");
	lease_init(&b.lease, a->cfg->hostname ? a->cfg->hostname :
	    host_name());
	beat_title(&b);
	if (pipe2(beat_wake, O_CLOEXEC | O_NONBLOCK) == -1)
		exit(EXIT_CRASH);
	beat_setup_signals();
	if (redis_url_parse(a->cfg->broker, &b.url, err, sizeof(err)) == -1) {
		log_errx("beat: %s", err);
		exit(EXIT_NORESPAWN);
	}
	if (beat_entries_init(&b) == -1) {
		log_errx("beat: no valid entry to schedule");
		beat_entries_free(&b);
		exit(EXIT_NORESPAWN);
	}

	while (!beat_stop && getppid() == b.master) {
		now = mono_ms();
		if (b.c == NULL && now >= b.next_connect)
			beat_connect(&b);
		if (b.c != NULL && now >= b.next_lease) {
			beat_lease_tick(&b);
			b.next_lease = now + LEASE_RENEW_MS;
		}
		fire_wait = INT64_MAX;
		if (b.c != NULL && !b.c->err &&
		    lease_valid(&b.lease, mono_ms()) &&
		    mono_ms() >= b.retry_at) {
			if (!b.synced)
				beat_sync(&b);
			if (b.synced)
				fire_wait = beat_run_due(&b);
		}
		if (b.c != NULL && b.c->err) {
			log_warnx("beat: Redis connection lost; reconnecting");
			beat_disconnect(&b);
		}
		/* Sleep until the next fire or lease renewal. */
		now = mono_ms();
		wait = (b.c != NULL ? b.next_lease : b.next_connect) - now;
		if (b.retry_at > now && b.retry_at - now < wait)
			wait = b.retry_at - now;
		if (fire_wait < wait)
			wait = fire_wait;
		if (wait < 0)
			wait = 0;
		pfd.fd = beat_wake[0];
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, (int)wait);
		while (read(beat_wake[0], buf, sizeof(buf)) > 0)
			;
	}
	b.slot->state = SB_STOPPING;
	if (b.lease.held && b.c != NULL) {
		lease_release(b.c, &b.lease);
		log_notice("beat: stopping; lease released");
	}
	if (b.c != NULL)
		redisFree(b.c);
	beat_entries_free(&b);
	exit(EXIT_CLEAN);
}
