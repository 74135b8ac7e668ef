/*
 * child.c - forking a worker into its slot.
 *
 * Each step in the child is ordered on purpose; see the comments.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/celeriac.h"
#include "common/log.h"
#include "common/util.h"
#include "supervisor/child.h"
#include "supervisor/limits.h"
#include "supervisor/signal.h"
#include "beat/beat.h"
#include "control/control.h"
#include "http/http.h"
#include "worker/worker.h"

pid_t
child_spawn_worker(struct mslot *s, int i, struct scoreboard *sb,
    const struct config *cfg, int notify_fd, int close_fd)
{
	struct worker_args	 a;
	struct sb_slot		*slot = &sb->slots[i];
	pid_t			 pid, master = getpid();
	char			 err[256];

	slot->pid = 0;
	slot->state = SB_STARTING;
	slot->generation++;
	pid = fork();
	if (pid == -1) {
		log_warn("fork for worker %s#%d", s->queue, s->index);
		return -1;
	}
	if (pid > 0) {
		/* Both sides set the group, so neither races the other. */
		setpgid(pid, pid);
		s->pid = pid;
		slot->pid = pid;
		return pid;
	}

	/* Own process group: a hard-limit kill reaches grandchildren too. */
	setpgid(0, 0);
	/* Die with the master; the check closes the race with its exit. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(EXIT_CLEAN);
	sig_reset_child();
	close(close_fd);
	slot->pid = getpid();

	/* Limits before privileges: a root master may still raise them. */
	if (limits_apply(s->q, err, sizeof(err)) == -1) {
		log_errx("worker %s#%d: %s", s->queue, s->index, err);
		_exit(EXIT_NORESPAWN);
	}
	if (limits_drop_privileges(cfg->user, cfg->group, err,
	    sizeof(err)) == -1) {
		log_errx("worker %s#%d: %s", s->queue, s->index, err);
		_exit(EXIT_NORESPAWN);
	}
	memset(&a, 0, sizeof(a));
	a.sb = sb;
	a.cfg = cfg;
	a.queue = s->q;
	a.index = s->index;
	a.slot = slot;
	a.notify_fd = notify_fd;
	worker_main(&a);
}

pid_t
child_spawn_role(struct mslot *s, int i, struct scoreboard *sb,
    const struct config *cfg, int notify_fd, int close_fd)
{
	struct sb_slot		*slot = &sb->slots[i];
	pid_t			 pid, master = getpid();
	char			 err[256];

	slot->pid = 0;
	slot->state = SB_STARTING;
	slot->generation++;
	if ((pid = fork()) == -1) {
		log_warn("fork for the %s child", s->queue);
		return -1;
	}
	if (pid > 0) {
		setpgid(pid, pid);
		s->pid = slot->pid = pid;
		return pid;
	}
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(EXIT_CLEAN);
	sig_reset_child();
	close(close_fd);
	slot->pid = getpid();
	if (limits_drop_privileges(cfg->user, cfg->group, err,
	    sizeof(err)) == -1) {
		log_errx("%s: %s", s->queue, err);
		_exit(EXIT_NORESPAWN);
	}
	switch (s->role) {
	case SB_ROLE_BEAT: {
		struct beat_args b = { cfg, sb, i, notify_fd };
		beat_main(&b);
	}
	case SB_ROLE_HTTP: {
		struct http_args h = { cfg, sb, i, notify_fd };
		http_main(&h);
	}
	default: {
		struct control_args c = { cfg, sb, i, notify_fd };
		control_main(&c);
	}
	}
}
