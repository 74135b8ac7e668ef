/*
 * external.c - run an external program as a task (see external.h).
 *
 * One fork/exec per task, three pipes, one poll() loop in the worker that
 * feeds stdin while it drains stdout and stderr, so that neither side can
 * block the other on a full pipe.
 */
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/external.h"

#define EXT_CHUNK	16384	/* bytes per read() */
#define EXT_OUT_INIT	4096	/* first stdout buffer; doubles up to the cap */
#define EXT_SOFT_POLL	10	/* ms between looks at the soft limit flag */
#define EXT_DESC_LINES	3	/* stderr lines in a failure description */

static const char *const ext_signames[] = {
	[SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT",
	[SIGILL] = "SIGILL", [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
	[SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE", [SIGKILL] = "SIGKILL",
	[SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
	[SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",
	[SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",
	[SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
	[SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
	[SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO", [SIGSYS] = "SIGSYS",
};

static void
ext_close(int *fd)
{
	if (*fd != -1) {
		(void)close(*fd);
		*fd = -1;
	}
}

/* Close every descriptor from lowfd up, in the child before exec. */
static void
ext_closefrom(int lowfd)
{
	DIR		*d;
	struct dirent	*de;
	long		 fd, max;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned int)lowfd, ~0U, 0) == 0)
		return;
#endif
	/* Older kernel: close what /proc lists, else try every number. */
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			fd = strtol(de->d_name, NULL, 10);
			if (fd >= lowfd && fd != dirfd(d))
				(void)close((int)fd);
		}
		(void)closedir(d);
		return;
	}
	if ((max = sysconf(_SC_OPEN_MAX)) < 0)
		max = 1024;
	for (fd = lowfd; fd < max; fd++)
		(void)close((int)fd);
}

/*
 * In the child: pipes on 0-2, nothing else open, default signal handling,
 * then exec.  Runs between fork and exec of a single-threaded worker, so
 * the few calls that are not async-signal-safe (opendir, strerror) are
 * safe here.
 */
static void __attribute__((noreturn))
ext_child(char *const argv[], int fds[3])
{
	struct sigaction sa;
	sigset_t	 none;
	char		 msg[512];
	int		 i, sig;

	/*
	 * Move our ends above 2 first: with a caller that runs with 0-2
	 * closed, a pipe may sit on 0-2 and placing one could close another.
	 */
	for (i = 0; i < 3; i++)
		if (fds[i] < 3 &&
		    (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) == -1)
			_exit(127);
	for (i = 0; i < 3; i++)
		if (dup2(fds[i], i) == -1)
			_exit(127);
	/* The program must not hold the broker socket, logs, other pipes. */
	ext_closefrom(3);

	/*
	 * The worker ignores or handles signals and blocked them all around
	 * fork().  Ignored dispositions and the mask survive exec: give the
	 * program the defaults it expects (SIGPIPE, SIGTERM at the limits).
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/*
	 * No setsid()/setpgid(): the program stays in the worker's process
	 * group, so the master's killpg() at the hard time limit (or when it
	 * stops the worker for good) takes the program and its children too.
	 */
	(void)execvp(argv[0], argv);
	(void)snprintf(msg, sizeof(msg), "exec %s: %s\n", argv[0],
	    strerror(errno));
	(void)!write(2, msg, strlen(msg));
	_exit(127);
}

/*
 * Write what the pipe takes of the rest of the input; close stdin when all
 * is written or the program stopped reading.  The program may exit without
 * reading all of its input: that is its business, and the worker must not
 * die of SIGPIPE for it, whatever its own SIGPIPE handling.  So SIGPIPE is
 * blocked around write() and a SIGPIPE it raised is taken back.
 */
static void
ext_write_in(int *fd, const char *input, size_t inlen, size_t *off)
{
	struct timespec	 zero = { 0, 0 };
	sigset_t	 pipeset, omask, pend;
	ssize_t		 n;
	int		 was_pending, saved;

	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	(void)sigprocmask(SIG_BLOCK, &pipeset, &omask);
	was_pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
	n = write(*fd, input + *off, inlen - *off);
	saved = errno;
	if (n == -1 && saved == EPIPE && !was_pending)
		while (sigtimedwait(&pipeset, NULL, &zero) == -1 &&
		    errno == EINTR)
			;
	(void)sigprocmask(SIG_SETMASK, &omask, NULL);
	if (n > 0)
		*off += (size_t)n;
	else if (n == -1 && saved != EAGAIN && saved != EINTR)
		*off = inlen;	/* EPIPE: the program wants no more */
	if (*off == inlen)
		ext_close(fd);
}

/* Read stdout into res->out, up to the cap; then drain it.  -1: ENOMEM. */
static int
ext_read_out(int *fd, struct ext_result *res, size_t *cap)
{
	char	 scratch[EXT_CHUNK];
	char	*p;
	size_t	 ncap;
	ssize_t	 n;

	if (res->outlen == EXT_MAX_OUTPUT) {
		/* Keep reading: a program blocked on a full pipe never ends. */
		if ((n = read(*fd, scratch, sizeof(scratch))) > 0)
			res->truncated = 1;
	} else {
		if (res->outlen + 1 == *cap) {
			ncap = *cap * 2;
			if (ncap > (size_t)EXT_MAX_OUTPUT + 1)
				ncap = (size_t)EXT_MAX_OUTPUT + 1;
			if ((p = realloc(res->out, ncap)) == NULL)
				return (-1);
			res->out = p;
			*cap = ncap;
		}
		n = read(*fd, res->out + res->outlen, *cap - 1 - res->outlen);
		if (n > 0)
			res->outlen += (size_t)n;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		ext_close(fd);
	return (0);
}

/*
 * Read stderr, keeping only its last EXT_ERR_TAIL bytes; tail has room for
 * EXT_ERR_TAIL + EXT_CHUNK.
 */
static void
ext_read_err(int *fd, char *tail, size_t *len)
{
	ssize_t	 n, i;

	if ((n = read(*fd, tail + *len, EXT_CHUNK)) <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			ext_close(fd);
		return;
	}
	/* err_tail is a C string: a NUL must not cut the end away. */
	for (i = 0; i < n; i++)
		if (tail[*len + (size_t)i] == '\0')
			tail[*len + (size_t)i] = '?';
	if ((*len += (size_t)n) > EXT_ERR_TAIL) {
		memmove(tail, tail + *len - EXT_ERR_TAIL, EXT_ERR_TAIL);
		*len = EXT_ERR_TAIL;
	}
}

/* Act on the soft time limit once; returns whether we still watch it. */
static int
ext_soft(pid_t pid, volatile sig_atomic_t *soft_flag, struct ext_result *res)
{
	if (soft_flag == NULL || res->soft_killed)
		return (0);
	if (!*soft_flag)
		return (1);
	/* Only the program: its process group is the worker's own. */
	(void)kill(pid, SIGTERM);
	res->soft_killed = 1;
	return (0);
}

/*
 * Wait for our child, and only it.  The program may have closed its output
 * and still run, so the soft limit is watched until acted on.
 */
static int
ext_reap(pid_t pid, volatile sig_atomic_t *soft_flag, struct ext_result *res)
{
	pid_t	 r;
	int	 watch;

	for (;;) {
		watch = ext_soft(pid, soft_flag, res);
		r = waitpid(pid, &res->status, watch ? WNOHANG : 0);
		if (r == pid)
			return (0);
		if (r == -1 && errno != EINTR)
			return (-1);
		if (r == 0)
			(void)poll(NULL, 0, EXT_SOFT_POLL);
	}
}

/*
 * With SIGCHLD ignored (or SA_NOCLDWAIT) the kernel reaps the program
 * itself and its exit status is lost: wait normally meanwhile.  Returns
 * whether *old must be put back afterwards.
 */
static int
ext_chld_take(struct sigaction *old)
{
	struct sigaction sa;
	int		 ign;

	if (sigaction(SIGCHLD, NULL, old) == -1)
		return (0);
	ign = !(old->sa_flags & SA_SIGINFO) && old->sa_handler == SIG_IGN;
	if (!ign && !(old->sa_flags & SA_NOCLDWAIT))
		return (0);
	sa = *old;
	sa.sa_flags &= ~SA_NOCLDWAIT;
	if (ign)
		sa.sa_handler = SIG_DFL;
	return (sigaction(SIGCHLD, &sa, NULL) == 0);
}

int
ext_run(char *const argv[], const char *input, size_t inlen,
    volatile sig_atomic_t *soft_flag, struct ext_result *res)
{
	struct sigaction chld_old;
	struct pollfd	 pfd[3];
	sigset_t	 all, omask;
	pid_t		 pid;
	size_t		 inoff = 0, outcap = EXT_OUT_INIT, errlen = 0;
	int		 in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int		 err[2] = { -1, -1 }, cfd[3], chld_set = 0;
	int		 timeout, saved, i;

	memset(res, 0, sizeof(*res));
	if (argv == NULL || argv[0] == NULL) {
		errno = EINVAL;
		return (-1);
	}
	if ((res->out = malloc(outcap)) == NULL ||
	    (res->err_tail = malloc(EXT_ERR_TAIL + EXT_CHUNK)) == NULL)
		goto fail;
	/* All O_CLOEXEC: no other child of the worker may inherit them. */
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1)
		goto fail;

	chld_set = ext_chld_take(&chld_old);

	/* No handler of the worker may run in the child before exec. */
	sigfillset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, &omask);
	if ((pid = fork()) == 0) {
		cfd[0] = in[0];
		cfd[1] = out[1];
		cfd[2] = err[1];
		ext_child(argv, cfd);
	}
	saved = errno;
	(void)sigprocmask(SIG_SETMASK, &omask, NULL);
	if (pid == -1) {
		errno = saved;
		goto fail;
	}
	ext_close(&in[0]);
	ext_close(&out[1]);
	ext_close(&err[1]);
	(void)fcntl(in[1], F_SETFL, O_NONBLOCK);
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(err[0], F_SETFL, O_NONBLOCK);
	if (inlen == 0)
		ext_close(&in[1]);

	pfd[0].events = POLLOUT;
	pfd[1].events = pfd[2].events = POLLIN;
	while (out[0] != -1 || err[0] != -1) {
		pfd[0].fd = in[1];
		pfd[1].fd = out[0];
		pfd[2].fd = err[0];
		/*
		 * Short timeouts only while the soft limit may still fire;
		 * poll() skips negative fds, so closed pipes drop out.
		 */
		timeout = ext_soft(pid, soft_flag, res) ? EXT_SOFT_POLL : -1;
		if (poll(pfd, 3, timeout) == -1) {
			if (errno == EINTR)
				continue;	/* maybe the soft limit */
			goto killfail;
		}
		if (in[1] != -1 && pfd[0].revents != 0)
			ext_write_in(&in[1], input, inlen, &inoff);
		if (out[0] != -1 && pfd[1].revents != 0 &&
		    ext_read_out(&out[0], res, &outcap) == -1)
			goto killfail;
		if (err[0] != -1 && pfd[2].revents != 0)
			ext_read_err(&err[0], res->err_tail, &errlen);
	}
	ext_close(&in[1]);
	if (ext_reap(pid, soft_flag, res) == -1)
		goto fail;
	if (chld_set)
		(void)sigaction(SIGCHLD, &chld_old, NULL);
	res->out[res->outlen] = '\0';
	res->err_tail[errlen] = '\0';
	return (0);

killfail:
	saved = errno;
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	errno = saved;
fail:
	saved = errno;
	for (i = 0; i < 2; i++) {
		ext_close(&in[i]);
		ext_close(&out[i]);
		ext_close(&err[i]);
	}
	if (chld_set)
		(void)sigaction(SIGCHLD, &chld_old, NULL);
	ext_result_clear(res);
	errno = saved;
	return (-1);
}

void
ext_result_clear(struct ext_result *res)
{
	free(res->out);
	free(res->err_tail);
	memset(res, 0, sizeof(*res));
}

/*
 * The end of stderr as one line: its last EXT_DESC_LINES non-blank lines,
 * trimmed, joined with "; ".  Tracebacks and shell errors put the reason
 * last; the lines before it give some context.
 */
static char *
ext_tail_line(const char *tail)
{
	const char	*b[EXT_DESC_LINES], *e[EXT_DESC_LINES];
	const char	*ls, *lb, *le, *end;
	char		*s, *q;
	size_t		 len = 1;
	int		 n = 0, i;

	/* The kept tail may start inside a UTF-8 sequence. */
	while (((unsigned char)*tail & 0xc0) == 0x80)
		tail++;
	for (end = tail + strlen(tail); ; end = ls - 1) {
		for (ls = end; ls > tail && ls[-1] != '\n'; ls--)
			;
		for (lb = ls; lb < end && isspace((unsigned char)*lb); lb++)
			;
		for (le = end; le > lb && isspace((unsigned char)le[-1]); le--)
			;
		if (le > lb) {
			b[n] = lb;
			e[n] = le;
			len += (size_t)(le - lb) + 2;
			n++;
		}
		if (ls == tail || n == EXT_DESC_LINES)
			break;
	}
	if ((s = q = malloc(len)) == NULL)
		return (NULL);
	for (i = n - 1; i >= 0; i--) {
		for (lb = b[i]; lb < e[i]; lb++)
			*q++ = (unsigned char)*lb < 0x20 || *lb == 0x7f ?
			    ' ' : *lb;
		if (i > 0) {
			*q++ = ';';
			*q++ = ' ';
		}
	}
	*q = '\0';
	return (s);
}

char *
ext_describe_failure(const struct ext_result *res)
{
	char	*s, *line;
	int	 sig, r;

	if (WIFSIGNALED(res->status)) {
		sig = WTERMSIG(res->status);
		if (sig > 0 && sig < (int)(sizeof(ext_signames) /
		    sizeof(ext_signames[0])) && ext_signames[sig] != NULL)
			r = asprintf(&s, "killed by signal %d (%s)", sig,
			    ext_signames[sig]);
		else
			r = asprintf(&s, "killed by signal %d", sig);
	} else if (WIFEXITED(res->status)) {
		if ((line = ext_tail_line(res->err_tail != NULL ?
		    res->err_tail : "")) == NULL)
			return (NULL);
		r = asprintf(&s, "exited with status %d%s%s",
		    WEXITSTATUS(res->status), *line != '\0' ? ": " : "", line);
		free(line);
	} else
		r = asprintf(&s, "ended with wait status %#x", res->status);
	return (r == -1 ? NULL : s);
}
