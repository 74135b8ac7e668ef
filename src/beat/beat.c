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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "beat/beat.h"
#include "beat/cron.h"
#include "beat/fire.h"
#include "beat/lease.h"
#include "beat/schedule.h"
#include "broker/redis.h"
#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"

#define BEAT_REDIS_TIMEOUT_MS	2000	/* a renewal must not hang past the TTL */
#define BEAT_RECONNECT_MAX_MS	5000
#define BEAT_RETRY_MS		1000	/* after a failed fire */

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
static volatile sig_atomic_t beat_reopen;
static int beat_wake[2] = { -1, -1 };

static void
beat_signal(int sig)
{
	int saved = errno;

	if (sig == SIGUSR1)
		beat_reopen = 1;	/* logrotate moved the file */
	else
		beat_stop = 1;
	(void)!write(beat_wake[1], "", 1);
	errno = saved;
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

static void
beat_backoff(struct beat *b)
{
	b->next_connect = mono_ms() + b->backoff_ms;
	b->backoff_ms = b->backoff_ms * 2 > BEAT_RECONNECT_MAX_MS ?
	    BEAT_RECONNECT_MAX_MS : b->backoff_ms * 2;
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
	beat_backoff(b);
}

static void
beat_connect(struct beat *b)
{
	struct timeval	 tv;
	char		 err[256];

	if ((b->c = redis_connect(&b->url, BEAT_REDIS_TIMEOUT_MS, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s; retrying", err);
		beat_backoff(b);
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
			log_warnx("lost the lease (token %" PRId64 "); "
			    "no longer firing", b->lease.token);
		else if (rc == -1)
			log_warnx("cannot renew the lease (token %" PRId64
			    "); not firing until it is renewed",
			    b->lease.token);
	} else if (lease_acquire(b->c, &b->lease, t) == 1) {
		log_notice("leader now (lease %s)", b->lease.value);
		b->synced = 0;
	}
	if (was != b->lease.held)
		beat_title(b);
}

/* Read every entry's last fire back from Redis into its cursor. */
static int
beat_sync(struct beat *b)
{
	redisReply	*r;
	int64_t		 now = now_unix_us() / 1000, ms;
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

static int
beat_entries_init(struct beat *b)
{
	char	 err[256];
	size_t	 i, nok = 0;

	b->n = b->cfg->nbeat;
	b->e = xcalloc(b->n ? b->n : 1, sizeof(*b->e));
	for (i = 0; i < b->n; i++) {
		if (beat_entry_init(&b->e[i], b->cfg, &b->cfg->beat[i], err,
		    sizeof(err)) == -1)
			log_errx("beat entry %s (line %d): %s; not scheduled",
			    b->cfg->beat[i].name, b->cfg->beat[i].line, err);
		else
			nok++;
	}
	return nok > 0 ? 0 : -1;
}

static void
beat_entries_free(struct beat *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		beat_entry_free(&b->e[i]);
	free(b->e);
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
	int64_t		 now = now_unix_us() / 1000, soonest = INT64_MAX;
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
			log_notice("%s: skipping missed fires %s .. %s "
			    "(skip_missed)", e->cfg->name, a, z);
			e->cursor_ms = d.fire_ms;
		} else if (d.action == BEAT_FIRE) {
			rc = beat_fire(b->c, &b->lease, e, &d, now);
			if (rc == BEAT_FIRE_LOST) {
				log_warnx("lease lost while firing %s "
				    "(token %" PRId64 "); no longer firing",
				    e->cfg->name, b->lease.token);
				b->lease.held = 0;
				b->lease.valid_until = 0;
				b->synced = 0;
				beat_title(b);
				return INT64_MAX;
			}
			if (rc == BEAT_FIRE_ALREADY) {
				cron_format(d.fire_ms, e->sched.tz, a,
				    sizeof(a));
				log_notice("%s: a fire at or after %s is "
				    "recorded already; re-reading the last "
				    "fires", e->cfg->name, a);
				b->synced = 0;
				return 0;
			}
			if (rc == BEAT_FIRE_ERROR) {
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
	child_signals(beat_signal);
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
		log_errx("%s", err);
		exit(EXIT_NORESPAWN);
	}
	if (beat_entries_init(&b) == -1) {
		log_errx("no valid entry to schedule");
		beat_entries_free(&b);
		exit(EXIT_NORESPAWN);
	}

	while (!beat_stop && getppid() == b.master) {
		if (beat_reopen) {
			beat_reopen = 0;
			log_reopen();
		}
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
			log_warnx("Redis connection lost; reconnecting");
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
		log_notice("stopping; lease released");
	}
	if (b.c != NULL)
		redisFree(b.c);
	beat_entries_free(&b);
	exit(EXIT_CLEAN);
}
