/*
 * signal.c - everything that runs in signal-handler context.
 *
 * The handler below uses only async-signal-safe operations: it ORs a bit
 * into a sig_atomic_t and write(2)s one byte to a non-blocking pipe.  A
 * full pipe already holds a pending wake-up, so a failed write is fine.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/signal.h"

static volatile sig_atomic_t	pending;
static int			self_pipe[2] = { -1, -1 };

static void
sig_handler(int sig)
{
	int saved = errno;

	switch (sig) {
	case SIGHUP:	pending |= SIGF_HUP; break;
	case SIGTERM:	pending |= SIGF_TERM; break;
	case SIGINT:	pending |= SIGF_INT; break;
	case SIGQUIT:	pending |= SIGF_QUIT; break;
	case SIGUSR1:	pending |= SIGF_USR1; break;
	case SIGCHLD:	pending |= SIGF_CHLD; break;
	}
	(void)!write(self_pipe[1], "", 1);
	errno = saved;
}

int
sig_init(void)
{
	static const int sigs[] = {
		SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD
	};
	struct sigaction	sa;
	size_t			i;

	if (pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	/* Block the others while one runs; SA_RESTART keeps slow calls. */
	for (i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	for (i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int
sig_fd(void)
{
	return self_pipe[0];
}

unsigned
sig_take(void)
{
	char		buf[64];
	unsigned	f;
	sigset_t	all, old;

	while (read(self_pipe[0], buf, sizeof(buf)) > 0)
		;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	f = pending;
	pending = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return f;
}

void
sig_reset_child(void)
{
	static const int sigs[] = {
		SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGPIPE
	};
	sigset_t	empty;
	size_t		i;

	for (i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		signal(sigs[i], SIG_DFL);
	/*
	 * The master forwards SIGUSR1 (reopen logs) to every child; one
	 * that does not handle it must not die of it.
	 */
	signal(SIGUSR1, SIG_IGN);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
	close(self_pipe[0]);
	close(self_pipe[1]);
	self_pipe[0] = self_pipe[1] = -1;
	pending = 0;
}
