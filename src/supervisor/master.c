/*
 * master.c - the supervisor's main loop (see master.h).
 *
 * Modelled on nginx's master and PostgreSQL's postmaster: signal handlers
 * only set flags; this loop reaps, respawns with back-off, kills children
 * over their hard time limit, and shuts down.  It sleeps in poll() on the
 * signal self-pipe and on a pipe children write to when their state
 * changes, with a timeout set by the nearest deadline, so an idle master
 * uses no CPU and a time limit is enforced within a few milliseconds.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "supervisor/child.h"
#include "supervisor/master.h"
#include "supervisor/notify.h"
#include "supervisor/reload.h"
#include "tasks/registry.h"
#include "beat/schedule.h"
#include "supervisor/signal.h"
#include "store/pg.h"

struct qcrash {
	char			 queue[SB_QUEUELEN];
	int64_t			 times[PARK_HISTORY];
	int			 next;
};

struct master {
	struct qcrash		 crashes[SB_MAXSLOTS];
	struct config		*cfg;
	const struct master_opts *opts;
	struct scoreboard	*sb;
	struct mslot		 slots[SB_MAXSLOTS];
	int			 notify[2];
	int			 stopping;	/* warm shutdown under way */
	int			 cold;
	int64_t			 stop_deadline;
	int			 announced;	/* "ready" was logged */
	uint32_t		 pool_seq;	/* last pool request applied */
	int			 ready_fd;
};

int
master_filter_queues(struct config *cfg, const char *spec, char *err,
    size_t errlen)
{
	char		*copy, *tok, *save, *eq, *end;
	size_t		 i;
	long		 n;
	struct cfg_queue *q;
	int		*keep;

	keep = xcalloc(cfg->nqueues, sizeof(*keep));
	copy = xstrdup(spec);
	for (tok = strtok_r(copy, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(tok, '=')) != NULL)
			*eq++ = '\0';
		if ((q = cfg_queue_find(cfg, tok)) == NULL) {
			snprintf(err, errlen, "--queues: queue \"%s\" is not "
			    "defined in %s", tok, cfg->path);
			goto fail;
		}
		if (eq) {
			n = strtol(eq, &end, 10);
			if (*eq == '\0' || *end != '\0' || n < 0 || n > 256) {
				snprintf(err, errlen, "--queues: bad "
				    "concurrency \"%s\" for %s", eq, tok);
				goto fail;
			}
			q->concurrency = (int)n;
		}
		keep[q - cfg->queues] = 1;
	}
	for (i = 0; i < cfg->nqueues; i++)
		if (!keep[i])
			cfg->queues[i].concurrency = 0;
	free(copy);
	free(keep);
	return 0;
fail:
	free(copy);
	free(keep);
	return -1;
}

/*
 * What several children of this configuration will use is opened here,
 * once, before fork(): they then share its relocated pages instead of
 * each relocating a copy of its own (libpq and its libraries cost a
 * worker 1.3 MB of private memory that way).  Without a database and
 * without report, document or notification tasks, nothing is opened and
 * the master and workers map six libraries.  The http server, used by one
 * child, is opened by that child.
 */
static void
preload(const struct config *cfg)
{
	size_t i;

	if (cfg->database != NULL && pq_preload != NULL)
		(void)pq_preload();
	for (i = 0; i < cfg->ntasks; i++)
		if (cfg->tasks[i].run_kind == CFG_RUN_BUILTIN)
			(void)task_registry_find(cfg->tasks[i].builtin);
}

/*
 * Checks the configuration cannot do alone because they need the task
 * registry: every builtin: name must exist.
 */
static int
check_builtins(const struct config *cfg, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < cfg->ntasks; i++) {
		const struct cfg_task *t = &cfg->tasks[i];
		if (t->run_kind == CFG_RUN_BUILTIN &&
		    !task_registry_known(t->builtin)) {
			snprintf(err, errlen, "%s:%d:%d: tasks.%s.run: unknown "
			    "built-in task \"builtin:%s\"", cfg->path,
			    t->run_line, t->run_col, t->name, t->builtin);
			return -1;
		}
	}
	return 0;
}

/* Beat entries: cron expressions and time zones must be usable. */
static int
check_beat(const struct config *cfg, char *err, size_t errlen)
{
	struct beat_sched	 bs;
	char			 why[256];
	size_t			 i;

	for (i = 0; i < cfg->nbeat; i++) {
		const struct cfg_beat_entry *e = &cfg->beat[i];
		if (beat_sched_init(&bs, e, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d:1: beat.%s: %s", cfg->path,
			    e->line, e->name, why);
			return -1;
		}
	}
	return 0;
}

struct config *
master_load_config(const char *path, const char *queues, char *err,
    size_t errlen)
{
	struct config *cfg;

	if ((cfg = cfg_load(path, err, errlen)) == NULL)
		return NULL;
	if (check_builtins(cfg, err, errlen) == -1 ||
	    check_beat(cfg, err, errlen) == -1 ||
	    (queues && master_filter_queues(cfg, queues, err, errlen) == -1)) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

static int
slot_alloc(struct master *m, int role, const struct cfg_queue *q, int index)
{
	int i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->used = 1;
		s->role = role;
		snprintf(s->queue, sizeof(s->queue), "%s", q ? q->name :
		    role == SB_ROLE_BEAT ? "beat" : role == SB_ROLE_HTTP ?
		    "http" : "control");
		s->index = index;
		s->q = q;
		memset(&m->sb->slots[i], 0, sizeof(m->sb->slots[i]));
		snprintf(m->sb->slots[i].queue, SB_QUEUELEN, "%s", q ? q->name :
		    "");
		m->sb->slots[i].role = role;
		m->sb->slots[i].index = index;
		m->sb->slots[i].configured = 1;
		if ((uint32_t)i + 1 > m->sb->high)
			m->sb->high = i + 1;
		return i;
	}
	log_warnx("no free slot for %s#%d (at most %d children)",
	    q ? q->name : "control", index, SB_MAXSLOTS);
	return -1;
}

static void
slots_from_config(struct master *m)
{
	size_t	i;
	int	k;

	if (m->opts->roles & MASTER_ROLE_CONTROL)
		slot_alloc(m, SB_ROLE_CONTROL, NULL, 0);
	if ((m->opts->roles & MASTER_ROLE_BEAT) && m->cfg->nbeat > 0)
		slot_alloc(m, SB_ROLE_BEAT, NULL, 0);
	if ((m->opts->roles & MASTER_ROLE_HTTP) &&
	    (m->cfg->http.listen || m->cfg->http.monitor))
		slot_alloc(m, SB_ROLE_HTTP, NULL, 0);
	if (!(m->opts->roles & MASTER_ROLE_WORKERS))
		return;
	for (i = 0; i < m->cfg->nqueues; i++)
		for (k = 0; k < m->cfg->queues[i].concurrency; k++)
			slot_alloc(m, SB_ROLE_WORKER, &m->cfg->queues[i], k);
}

static int
live_children(struct master *m)
{
	int i, n = 0;

	for (i = 0; i < SB_MAXSLOTS; i++)
		if (m->slots[i].used && m->slots[i].pid > 0)
			n++;
	return n;
}

static void
signal_all(struct master *m, int sig, int kill_reason)
{
	int i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		if (!s->used || s->pid <= 0)
			continue;
		if (kill_reason != SB_KILL_NONE)
			m->sb->slots[i].kill_reason = kill_reason;
		/* The whole group: an external program's children too. */
		if (sig == SIGKILL)
			killpg(s->pid, sig);
		else
			kill(s->pid, sig);
	}
}

/* Count a crash against the queue; park the queue on a crash loop. */
static void
note_crash(struct master *m, const char *queue, int64_t now)
{
	struct qcrash	*qc = NULL;
	int		 i, limit;
	int64_t		 window = PARK_WINDOW_MS;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		if (strcmp(m->crashes[i].queue, queue) == 0) {
			qc = &m->crashes[i];
			break;
		}
		if (qc == NULL && m->crashes[i].queue[0] == '\0')
			qc = &m->crashes[i];
	}
	if (qc == NULL)
		return;
	if (qc->queue[0] == '\0')
		snprintf(qc->queue, sizeof(qc->queue), "%s", queue);
	qc->times[qc->next++ % PARK_HISTORY] = now;
	limit = m->cfg->crash_limit;
	if (m->cfg->crash_window_ms > 0)
		window = m->cfg->crash_window_ms;
	if (!policy_should_park(qc->times, PARK_HISTORY, now, limit, window))
		return;
	log_errx("queue %s parked: %d crashes within %lld s; its workers are "
	    "not respawned until a reload (other queues run on)", queue, limit,
	    (long long)(window / 1000));
	memset(qc->times, 0, sizeof(qc->times));
	for (i = 0; i < SB_MAXSLOTS; i++)
		if (m->slots[i].used && m->slots[i].role == SB_ROLE_WORKER &&
		    strcmp(m->slots[i].queue, queue) == 0) {
			m->slots[i].parked = 1;
			m->sb->slots[i].parked = 1;
		}
}

static const char *
exit_text(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (SIG%s)", WTERMSIG(status),
		    sigabbrev_np(WTERMSIG(status)) ?
		    sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	return buf;
}

static void
reap(struct master *m)
{
	pid_t			 pid;
	int			 status, i, reason;
	int64_t			 now, at;
	enum child_exit_kind	 kind;
	char			 buf[64];

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		now = mono_ms();
		for (i = 0; i < SB_MAXSLOTS; i++)
			if (m->slots[i].used && m->slots[i].pid == pid)
				break;
		if (i == SB_MAXSLOTS)
			continue;	/* a grandchild we inherited */
		struct mslot *s = &m->slots[i];
		struct sb_slot *sl = &m->sb->slots[i];
		reason = sl->kill_reason;
		/*
		 * A child that reached idle or busy was ready, even if it
		 * died before this loop saw it so (a crash right after its
		 * first fetch): its crash is not a start-up failure.
		 */
		if (s->ready_ms == 0 &&
		    (sl->state == SB_IDLE || sl->state == SB_BUSY))
			s->ready_ms = now;
		sl->last_status = status;
		sl->last_kill = reason;
		sl->kill_reason = SB_KILL_NONE;
		sl->pid = 0;
		sl->state = SB_FREE;
		sl->restarts++;
		s->pid = 0;
		kind = policy_classify_exit(status, reason);
		/* The two enums list the same kinds in the same order. */
		sl->exits[kind]++;
		if (reason > SB_KILL_NONE && reason < SB_NKILLS)
			sl->kills[reason]++;
		if (s->restart && !m->stopping) {
			/* A new generation takes the slot over at once. */
			log_info("worker %s#%d (pid %d) replaced after reload",
			    s->queue, s->index, (int)pid);
			s->restart = 0;
			s->crashes = 0;
			s->next_spawn_ms = now;
			s->ready_ms = 0;
			continue;
		}
		if (m->stopping || s->draining) {
			log_debug("worker %s#%d (pid %d) %s", s->queue,
			    s->index, (int)pid, exit_text(status, buf,
			    sizeof(buf)));
			if (s->draining)
				s->used = 0;
			continue;
		}
		at = policy_next_spawn(s, kind, now);
		switch (kind) {
		case CHILD_EXIT_RECYCLE:
			log_info("worker %s#%d (pid %d) recycled", s->queue,
			    s->index, (int)pid);
			break;
		case CHILD_EXIT_KILLED_BY_US:
			log_info("worker %s#%d (pid %d) killed: %s", s->queue,
			    s->index, (int)pid, reason == SB_KILL_TIMELIMIT ?
			    "hard time limit" : "task revoked");
			break;
		case CHILD_EXIT_NORESPAWN:
			log_errx("worker %s#%d (pid %d) cannot run (see its "
			    "message above); not respawning it", s->queue,
			    s->index, (int)pid);
			s->parked = 1;
			break;
		default:
			log_warnx("worker %s#%d (pid %d) %s; respawning in "
			    "%lld ms", s->queue, s->index, (int)pid,
			    exit_text(status, buf, sizeof(buf)),
			    (long long)(at - now));
			if (kind == CHILD_EXIT_CRASH && s->role == SB_ROLE_WORKER)
				note_crash(m, s->queue, now);
			break;
		}
		if (kind == CHILD_EXIT_NORESPAWN)
			sl->parked = 1;
		s->next_spawn_ms = at;
		s->ready_ms = 0;
	}
}

/* Spawn every slot that is due; returns the next spawn time or 0. */
static int64_t
spawn_due(struct master *m, int64_t now)
{
	int64_t	next = 0;
	int	i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		if (!s->used || s->pid > 0 || s->parked || s->draining ||
		    s->next_spawn_ms < 0)
			continue;
		if (s->next_spawn_ms > now) {
			if (next == 0 || s->next_spawn_ms < next)
				next = s->next_spawn_ms;
			continue;
		}
		s->spawned_ms = now;
		if ((s->role != SB_ROLE_WORKER ?
		    child_spawn_role(s, i, m->sb, m->cfg, m->notify[1],
		    m->notify[0]) :
		    child_spawn_worker(s, i, m->sb, m->cfg, m->notify[1],
		    m->notify[0])) == -1) {
			s->next_spawn_ms = now + BACKOFF_MIN_MS;
			if (next == 0 || s->next_spawn_ms < next)
				next = s->next_spawn_ms;
		}
	}
	return next;
}

/*
 * Kill every child over its hard time limit; return the nearest future
 * deadline (0 if none).  The worker writes busy_since and its limit into
 * the scoreboard when a task starts and pokes the notify pipe, so this
 * runs at the start of every task and at every deadline.
 */
static int64_t
check_time_limits(struct master *m, int64_t now)
{
	int64_t	next = 0, deadline;
	int	i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		struct sb_slot *sl = &m->sb->slots[i];
		if (!s->used || s->pid <= 0)
			continue;
		if (sl->kill_request != 0) {
			char cur[SB_TASKIDLEN];
			int sig = sl->kill_request;
			sl->kill_request = 0;
			/* Only if that task is still the one running. */
			if (sb_read_task(sl, cur, sizeof(cur), NULL, 0, NULL) &&
			    strcmp(cur, sl->kill_task_id) == 0) {
				sl->kill_reason = SB_KILL_REVOKE;
				killpg(s->pid, sig);
				/* A worker ignores INT, HUP, USR1...: it must
				 * end all the same, so it also gets TERM,
				 * which it obeys at once when revoking. */
				if (sig != SIGTERM && sig != SIGKILL)
					kill(s->pid, SIGTERM);
			}
		}
		if (sl->state != SB_BUSY || sl->kill_reason != SB_KILL_NONE)
			continue;
		if (policy_hard_limit_due(sl->busy_since_ms, sl->hard_limit_ms,
		    now, &deadline)) {
			log_notice("worker %s#%d (pid %d): task %s[%s] over its "
			    "hard time limit of %.3fs; killing its process "
			    "group", s->queue, s->index, (int)s->pid,
			    sl->task_name, sl->task_id,
			    sl->hard_limit_ms / 1000.0);
			sl->kill_reason = SB_KILL_TIMELIMIT;
			killpg(s->pid, SIGKILL);
		} else if (sl->hard_limit_ms > 0 && sl->busy_since_ms > 0 &&
		    (next == 0 || deadline < next))
			next = deadline;
	}
	return next;
}

static void
check_ready(struct master *m, int64_t now)
{
	int i, total = 0, ready = 0, workers = 0;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		int st;
		if (!s->used || s->parked)
			continue;
		st = m->sb->slots[i].state;
		total++;
		if (s->pid > 0 && (st == SB_IDLE || st == SB_BUSY)) {
			ready++;
			workers += s->role == SB_ROLE_WORKER;
			if (s->ready_ms == 0)
				s->ready_ms = now;
		}
	}
	if (!m->announced && ready == total) {
		m->announced = 1;
		log_notice("ready: %d workers, %d other children", workers,
		    ready - workers);
		notify_systemd("READY=1\nSTATUS=ready");
		proctitle_set("celeriacd: master -c %s", m->cfg->path);
		if (m->ready_fd >= 0) {
			/* Daemon: stderr stayed open to report start-up
			 * failures; from now on it would reach nobody. */
			int fd = open("/dev/null", O_WRONLY);
			if (fd != -1) {
				dup2(fd, STDERR_FILENO);
				close(fd);
			}
			(void)!write(m->ready_fd, "R", 1);
			close(m->ready_fd);
			m->ready_fd = -1;
		}
	}
}

static struct mslot *
slot_find(struct master *m, const char *queue, int index, int *at)
{
	int i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		if (s->used && s->role == SB_ROLE_WORKER &&
		    strcmp(s->queue, queue) == 0 && s->index == index) {
			if (at)
				*at = i;
			return s;
		}
	}
	return NULL;
}

/* Ask a child to finish its task and exit, within shutdown_timeout. */
static void
slot_stop(struct master *m, struct mslot *s, int64_t now)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		s->drain_deadline = now + m->cfg->shutdown_timeout_ms;
	} else if (s->draining)
		s->used = 0;
}

static void
slot_retarget(struct master *m, const char *queue, int from, int to,
    const struct cfg_queue *nq, int restart, int64_t now)
{
	struct mslot	*s;
	int		 k, at;

	for (k = from; k < to; k++) {
		if ((s = slot_find(m, queue, k, &at)) == NULL) {
			if (nq)
				slot_alloc(m, SB_ROLE_WORKER, nq, k);
			continue;
		}
		if (nq == NULL) {
			m->sb->slots[at].configured = 0;
			s->draining = 1;
			s->restart = 0;
			s->q = NULL;
			slot_stop(m, s, now);
			continue;
		}
		s->q = nq;
		s->parked = 0;
		m->sb->slots[at].parked = 0;
		if (s->draining) {
			/* Shrunk, then grown back before it exited. */
			s->draining = 0;
			s->restart = s->pid > 0;
		} else if (restart && s->pid > 0) {
			s->restart = 1;
			slot_stop(m, s, now);
		}
	}
}

static struct mslot *
role_slot(struct master *m, int role)
{
	int i;

	for (i = 0; i < SB_MAXSLOTS; i++)
		if (m->slots[i].used && m->slots[i].role == role &&
		    !m->slots[i].draining)
			return &m->slots[i];
	return NULL;
}

/*
 * The control, beat and http children read the configuration once, at
 * fork.  Each restarts when what it uses changed: everything for a
 * change of the settings all processes share; the schedule for beat;
 * its own section and the queues for http; the set of queue names for
 * control (its `active_queues` answer).  The control child reads the
 * pools from the scoreboard, so a resized or restarted queue leaves its
 * pid.  A beat or http section added by a reload starts its child, one
 * removed stops it.
 */
static void
reload_roles(struct master *m, const struct config *old,
    const struct config *new, const struct reload_plan *plan,
    int queues_changed, int queue_set_changed, int64_t now)
{
	static const int roles[] = {
		SB_ROLE_CONTROL, SB_ROLE_BEAT, SB_ROLE_HTTP
	};
	struct mslot	*c;
	size_t		 i;
	int		 want, restart;

	for (i = 0; i < sizeof(roles) / sizeof(*roles); i++) {
		switch (roles[i]) {
		case SB_ROLE_BEAT:
			want = (m->opts->roles & MASTER_ROLE_BEAT) &&
			    new->nbeat > 0;
			restart = reload_beat_differs(old, new);
			break;
		case SB_ROLE_HTTP:
			want = (m->opts->roles & MASTER_ROLE_HTTP) &&
			    (new->http.listen || new->http.monitor);
			restart = reload_http_differs(old, new) ||
			    queues_changed;
			break;
		default:
			want = (m->opts->roles & MASTER_ROLE_CONTROL) != 0;
			restart = queue_set_changed;
			break;
		}
		restart |= plan->global_changed;
		c = role_slot(m, roles[i]);
		if (c == NULL) {
			if (want)
				slot_alloc(m, roles[i], NULL, 0);
			continue;
		}
		if (!want) {
			c->draining = 1;
			m->sb->slots[c - m->slots].configured = 0;
			slot_stop(m, c, now);
		} else if (restart && c->pid > 0) {
			c->restart = 1;
			slot_stop(m, c, now);
		}
	}
}

/*
 * SIGHUP: parse into a fresh tree; on any error keep running unchanged.
 * Otherwise apply the difference queue by queue, so unchanged pools keep
 * their processes and their in-flight tasks.
 */
static void
reload(struct master *m, int64_t now)
{
	struct config		*new, *old = m->cfg;
	struct reload_plan	 plan;
	const struct cfg_queue	*nq;
	char			 err[CFG_ERRLEN];
	size_t			 i;
	int			 k, kept = 0, changed = 0;
	int			 queues_changed = 0, queue_set_changed = 0;

	log_notice("SIGHUP: reloading %s", m->opts->config_path);
	notify_systemd("RELOADING=1");
	new = master_load_config(m->opts->config_path, m->opts->queues, err,
	    sizeof(err));
	if (new == NULL) {
		log_errx("reload refused, configuration unchanged: %s", err);
		notify_systemd("READY=1\nSTATUS=reload refused: bad configuration");
		return;
	}
	if (reload_plan(old, new, &plan) == -1) {
		log_errx("reload: out of memory; configuration unchanged");
		cfg_free(new);
		return;
	}
	log_set_level(new->log_level);
	preload(new);
	for (i = 0; i < plan.n; i++) {
		struct reload_item *it = &plan.items[i];
		nq = cfg_queue_find(new, it->name);
		switch (it->action) {
		case RELOAD_KEEP:
			slot_retarget(m, it->name, 0, it->new_concurrency, nq,
			    0, now);
			kept++;
			continue;
		case RELOAD_RESIZE:
			slot_retarget(m, it->name, 0, it->new_concurrency, nq,
			    0, now);
			slot_retarget(m, it->name, it->new_concurrency,
			    it->old_concurrency, NULL, 0, now);
			break;
		case RELOAD_RESTART:
			queues_changed = 1;
			slot_retarget(m, it->name, 0, it->new_concurrency, nq,
			    1, now);
			slot_retarget(m, it->name, it->new_concurrency,
			    it->old_concurrency, NULL, 0, now);
			break;
		case RELOAD_REMOVE:
			queues_changed = queue_set_changed = 1;
			slot_retarget(m, it->name, 0, it->old_concurrency,
			    NULL, 0, now);
			break;
		case RELOAD_ADD:
			queues_changed = queue_set_changed = 1;
			for (k = 0; k < it->new_concurrency; k++)
				slot_alloc(m, SB_ROLE_WORKER, nq, k);
			break;
		}
		changed++;
		log_notice("reload: queue %s %s (concurrency %d -> %d)",
		    it->name, reload_action_name(it->action),
		    it->old_concurrency, it->new_concurrency);
	}
	reload_roles(m, old, new, &plan, queues_changed, queue_set_changed,
	    now);
	reload_plan_free(&plan);
	/* Remote-control overrides last until the next reload. */
	memset(m->sb->limits, 0, sizeof(m->sb->limits));
	m->sb->task_events = new->events;
	m->cfg = new;
	cfg_free(old);
	log_notice("reload done: %d queues changed, %d unchanged", changed,
	    kept);
	notify_systemd("READY=1\nSTATUS=ready");
}

/*
 * Remote control (pool_grow, pool_shrink, add/cancel_consumer) asks,
 * through the scoreboard, for a queue's concurrency to change until the
 * next reload: applied as a reload would.
 */
static void
check_pool_request(struct master *m, int64_t now)
{
	struct sb_pool_request	*r = &m->sb->pool_req;
	struct cfg_queue	*q;
	int			 old = 0, i, n;

	if (r->seq == m->pool_seq)
		return;
	m->pool_seq = r->seq;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if ((q = cfg_queue_find(m->cfg, r->queue)) == NULL)
		return;
	n = r->concurrency;
	for (i = 0; i < SB_MAXSLOTS; i++)
		if (m->slots[i].used && m->slots[i].role == SB_ROLE_WORKER &&
		    !m->slots[i].draining &&
		    strcmp(m->slots[i].queue, q->name) == 0)
			old++;
	log_notice("remote control: queue %s concurrency %d -> %d", q->name,
	    old, n);
	q->concurrency = n;
	slot_retarget(m, q->name, 0, n, q, 0, now);
	if (old > n)
		slot_retarget(m, q->name, n, old, NULL, 0, now);
}

/* Drained children past their deadline are killed; their task re-queued. */
static int64_t
check_drains(struct master *m, int64_t now)
{
	int64_t	next = 0;
	int	i;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		if (!s->used || s->pid <= 0 || s->drain_deadline == 0)
			continue;
		if (now >= s->drain_deadline) {
			log_warnx("worker %s#%d (pid %d) still busy after "
			    "shutdown_timeout; killing it", s->queue, s->index,
			    (int)s->pid);
			m->sb->slots[i].kill_reason = SB_KILL_SHUTDOWN;
			killpg(s->pid, SIGKILL);
			s->drain_deadline = 0;
		} else if (next == 0 || s->drain_deadline < next)
			next = s->drain_deadline;
	}
	return next;
}

static void
begin_shutdown(struct master *m, int cold, int64_t now)
{
	if (cold) {
		if (!m->cold) {
			notify_systemd("STOPPING=1");
			log_notice("cold shutdown: killing workers now");
		}
		m->cold = m->stopping = 1;
		signal_all(m, SIGKILL, SB_KILL_SHUTDOWN);
		return;
	}
	if (m->stopping)
		return;
	notify_systemd("STOPPING=1");
	log_notice("warm shutdown: workers finish their tasks (at most %lld "
	    "ms)", (long long)m->cfg->shutdown_timeout_ms);
	m->stopping = 1;
	m->stop_deadline = now + m->cfg->shutdown_timeout_ms;
	signal_all(m, SIGTERM, SB_KILL_NONE);
}

static int
poll_timeout(int64_t now, int64_t a, int64_t b, int64_t c)
{
	int64_t	t = -1, v[3] = { a, b, c };
	int	i;

	for (i = 0; i < 3; i++)
		if (v[i] > 0 && (t == -1 || v[i] < t))
			t = v[i];
	if (t == -1)
		return -1;
	return t <= now ? 0 : (int)(t - now);
}

int
master_run(struct config *cfg, const struct master_opts *o)
{
	struct master	 m;
	struct pollfd	 pfd[2];
	unsigned	 f;
	int64_t		 now, next_spawn, next_limit, next_drain;
	char		 buf[256];

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.opts = o;
	m.ready_fd = o->ready_fd;
	if ((m.sb = sb_create()) == NULL)
		fatal("mmap scoreboard");
	m.sb->master_pid = getpid();
	m.sb->task_events = cfg->events;
	m.sb->started_ms = mono_ms();
	if (pipe2(m.notify, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	if (sig_init() == -1)
		fatal("signals");
	proctitle_set("celeriacd: master -c %s (starting)", cfg->path);
	slots_from_config(&m);
	preload(cfg);
	log_notice("celeriacd %s starting: %d queues, environment %s",
	    PACKAGE_VERSION, (int)cfg->nqueues,
	    cfg_environment_name(cfg->environment));

	for (;;) {
		now = mono_ms();
		f = sig_take();
		if (f & SIGF_CHLD)
			reap(&m);
		if (f & SIGF_USR1) {
			if (log_reopen() == -1)
				log_warn("reopening the log file");
			signal_all(&m, SIGUSR1, SB_KILL_NONE);
		}
		if ((f & SIGF_HUP) && !m.stopping)
			reload(&m, now);
		if ((f & SIGF_QUIT) || ((f & SIGF_INT) && m.stopping))
			begin_shutdown(&m, 1, now);
		else if (f & (SIGF_TERM | SIGF_INT))
			begin_shutdown(&m, 0, now);
		while (read(m.notify[0], buf, sizeof(buf)) > 0)
			;

		check_pool_request(&m, now);
		next_limit = check_time_limits(&m, now);
		next_drain = check_drains(&m, now);
		if (next_drain && (next_limit == 0 || next_drain < next_limit))
			next_limit = next_drain;
		next_spawn = m.stopping ? 0 : spawn_due(&m, now);
		check_ready(&m, now);
		if (m.stopping) {
			if (live_children(&m) == 0)
				break;
			if (!m.cold && now >= m.stop_deadline) {
				log_warnx("shutdown timeout: killing the "
				    "workers still running");
				begin_shutdown(&m, 1, now);
			}
		}
		pfd[0].fd = sig_fd();
		pfd[0].events = POLLIN;
		pfd[1].fd = m.notify[0];
		pfd[1].events = POLLIN;
		poll(pfd, 2, poll_timeout(now, next_limit, next_spawn,
		    m.stopping && !m.cold ? m.stop_deadline : 0));
	}
	log_notice("stopped");
	cfg_free(m.cfg);
	sb_destroy(m.sb);
	close(m.notify[0]);
	close(m.notify[1]);
	return 0;
}
