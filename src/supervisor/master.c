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
#include "supervisor/signal.h"

struct master {
	struct config		*cfg;
	struct scoreboard	*sb;
	struct mslot		 slots[SB_MAXSLOTS];
	int			 notify[2];
	int			 stopping;	/* warm shutdown under way */
	int			 cold;
	int64_t			 stop_deadline;
	int			 announced;	/* "ready" was logged */
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
		    "control");
		s->index = index;
		s->q = q;
		memset(&m->sb->slots[i], 0, sizeof(m->sb->slots[i]));
		snprintf(m->sb->slots[i].queue, SB_QUEUELEN, "%s", q ? q->name :
		    "");
		m->sb->slots[i].role = role;
		m->sb->slots[i].index = index;
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

	slot_alloc(m, SB_ROLE_CONTROL, NULL, 0);
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
		sl->last_status = status;
		sl->last_kill = reason;
		sl->kill_reason = SB_KILL_NONE;
		sl->pid = 0;
		sl->state = SB_FREE;
		sl->restarts++;
		s->pid = 0;
		kind = policy_classify_exit(status, reason);
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
			break;
		}
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
		if ((s->role == SB_ROLE_CONTROL ?
		    child_spawn_control(s, i, m->sb, m->cfg, m->notify[1],
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
	int i, total = 0, ready = 0;

	for (i = 0; i < SB_MAXSLOTS; i++) {
		struct mslot *s = &m->slots[i];
		int st = m->sb->slots[i].state;
		if (!s->used || s->parked)
			continue;
		total++;
		if (s->pid > 0 && (st == SB_IDLE || st == SB_BUSY)) {
			ready++;
			if (s->ready_ms == 0)
				s->ready_ms = now;
		}
	}
	if (!m->announced && ready == total) {
		m->announced = 1;
		log_notice("ready: %d workers", ready);
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

static void
begin_shutdown(struct master *m, int cold, int64_t now)
{
	if (cold) {
		if (!m->cold)
			log_notice("cold shutdown: killing workers now");
		m->cold = m->stopping = 1;
		signal_all(m, SIGKILL, SB_KILL_SHUTDOWN);
		return;
	}
	if (m->stopping)
		return;
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
	int64_t		 now, next_spawn, next_limit;
	char		 buf[256];

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.ready_fd = o->ready_fd;
	if ((m.sb = sb_create()) == NULL)
		fatal("mmap scoreboard");
	m.sb->master_pid = getpid();
	m.sb->started_ms = mono_ms();
	if (pipe2(m.notify, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	if (sig_init() == -1)
		fatal("signals");
	proctitle_set("celeriacd: master starting -c %s", cfg->path);
	slots_from_config(&m);
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
		if (f & SIGF_HUP)
			log_warnx("SIGHUP: reload is not implemented yet; "
			    "configuration unchanged");
		if ((f & SIGF_QUIT) || ((f & SIGF_INT) && m.stopping))
			begin_shutdown(&m, 1, now);
		else if (f & (SIGF_TERM | SIGF_INT))
			begin_shutdown(&m, 0, now);
		while (read(m.notify[0], buf, sizeof(buf)) > 0)
			;

		next_limit = check_time_limits(&m, now);
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
	sb_destroy(m.sb);
	close(m.notify[0]);
	close(m.notify[1]);
	return 0;
}
