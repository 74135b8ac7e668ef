/*
 * child.c - forking a worker into its slot.
 *
 * Each step in the child is ordered on purpose; see the comments.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/celeriac.h"
#include "common/log.h"
#include "common/module.h"
#include "common/proctitle.h"
#include "common/util.h"
#include "supervisor/child.h"
#include "supervisor/limits.h"
#include "supervisor/signal.h"
#include "beat/beat.h"
#include "control/control.h"
#include "http/http.h"
#include "worker/worker.h"

/*
 * Fork a child into slot i.  Returns the pid in the master, -1 if fork
 * failed, and 0 in the child, which then runs as the slot's owner with
 * default signals and its limits applied (limits only for a worker).
 */
static pid_t
child_fork(struct mslot *s, int i, struct scoreboard *sb,
    const struct config *cfg, int close_fd)
{
	struct sb_slot	*slot = &sb->slots[i];
	pid_t		 pid, master = getpid();
	char		 err[256];

	slot->pid = 0;
	slot->state = SB_STARTING;
	slot->generation++;
	if ((pid = fork()) == -1) {
		log_warn("fork for %s#%d", s->queue, s->index);
		return -1;
	}
	if (pid > 0) {
		/* Both sides set the group, so neither races the other. */
		setpgid(pid, pid);
		s->pid = slot->pid = pid;
		return pid;
	}

	/* Own process group: a hard-limit kill reaches grandchildren too. */
	setpgid(0, 0);
	/* Die with the master; the check closes the race with its exit. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(EXIT_CLEAN);
	sig_reset_child();
	proctitle_new_process();
	close(close_fd);
	slot->pid = getpid();
	if (child_detach_stderr) {
		/* -d: the launcher's stderr must not stay open in us. */
		int fd = open("/dev/null", O_WRONLY);
		if (fd != -1) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}

	/* Limits before privileges: a root master may still raise them. */
	if (s->role == SB_ROLE_WORKER &&
	    limits_apply(s->q, err, sizeof(err)) == -1) {
		log_errx("%s#%d: %s", s->queue, s->index, err);
		_exit(EXIT_NORESPAWN);
	}
	if (limits_drop_privileges(cfg->user, cfg->group, err,
	    sizeof(err)) == -1) {
		log_errx("%s#%d: %s", s->queue, s->index, err);
		_exit(EXIT_NORESPAWN);
	}
	return 0;
}

int child_detach_stderr;

pid_t
child_spawn_worker(struct mslot *s, int i, struct scoreboard *sb,
    const struct config *cfg, int notify_fd, int close_fd)
{
	struct worker_args	a;
	pid_t			pid;

	if ((pid = child_fork(s, i, sb, cfg, close_fd)) != 0)
		return pid;
	memset(&a, 0, sizeof(a));
	a.sb = sb;
	a.cfg = cfg;
	a.queue = s->q;
	a.index = s->index;
	a.slot = &sb->slots[i];
	a.notify_fd = notify_fd;
	worker_main(&a);
}

/* Linked in by programs that carry the http module's code (tests). */
extern void http_main(const struct http_args *) __attribute__((weak));

/*
 * The http child's server lives in MODULE_HTTP, opened here after fork()
 * so libmicrohttpd never enters the master or the other children.
 */
static void __attribute__((noreturn))
http_run(const struct http_args *h)
{
	void	(*fn)(const struct http_args *) = http_main;
	char	err[512];

	if (fn == NULL && (fn = (void (*)(const struct http_args *))
	    module_sym(MODULE_HTTP, "http_main", err, sizeof(err))) == NULL) {
		log_warnx("http: %s", err);
		_exit(EXIT_NORESPAWN);
	}
	fn(h);
	_exit(EXIT_CRASH);	/* http_main() does not return */
}

pid_t
child_spawn_role(struct mslot *s, int i, struct scoreboard *sb,
    const struct config *cfg, int notify_fd, int close_fd)
{
	pid_t pid;

	if ((pid = child_fork(s, i, sb, cfg, close_fd)) != 0)
		return pid;
	switch (s->role) {
	case SB_ROLE_BEAT: {
		struct beat_args b = { cfg, sb, i, notify_fd };
		beat_main(&b);
	}
	case SB_ROLE_HTTP: {
		struct http_args h = { cfg, sb, i, notify_fd };
		http_run(&h);
	}
	default: {
		struct control_args c = { cfg, sb, i, notify_fd };
		control_main(&c);
	}
	}
}
