/*
 * external.h - run an external program as a task.
 *
 * A task configured as "run: [argv...]" is carried out by a program: the
 * worker forks and execs it, writes the task's JSON input on its stdin,
 * reads its JSON result from its stdout and keeps the end of its stderr
 * for the error message.  The program stays in the worker's process group,
 * so the master's hard time limit (killpg of the worker's group) reaches it
 * and whatever it spawned.
 */
#ifndef CELERIAC_EXTERNAL_H
#define CELERIAC_EXTERNAL_H

#include <signal.h>
#include <stddef.h>

/* EX_TEMPFAIL: the program asks to be retried. */
#define EXT_EXIT_RETRY	75
#define EXT_ERR_TAIL	4096		/* bytes of stderr kept (the end) */
#define EXT_MAX_OUTPUT	(16 << 20)	/* bytes of stdout kept */

struct ext_result {
	int	 status;	/* wait status (as from waitpid) */
	char	*out;		/* stdout, NUL-terminated, malloc'd, maybe "" */
	size_t	 outlen;
	char	*err_tail;	/* end of stderr, NUL-terminated, malloc'd */
	int	 soft_killed;	/* SIGTERM was sent at the soft limit */
	int	 truncated;	/* stdout exceeded EXT_MAX_OUTPUT */
};

/*
 * Run argv[0] (execvp) with input on stdin.  Blocks until the program
 * exits.  While waiting, if *soft_flag (may be NULL) becomes non-zero, send
 * SIGTERM to the program once (soft time limit); only the program itself
 * is signalled, not what it spawned.  A warm stop of the worker needs no
 * action here: the worker finishes its task.
 *
 * Returns 0 when the program ran (whatever its exit status), -1 with errno
 * when it could not be started (pipe/fork failure) or could not be waited
 * for; res is then empty.  Exec failure is reported as exit status 127
 * with "exec ARGV0: strerror" in err_tail.
 *
 * res is always initialized, so ext_result_clear() is safe after any
 * return.  NUL bytes of stderr show as '?' in err_tail.
 *
 * Reaps only its own child (waitpid(pid)); a SIGCHLD handler of the caller
 * must not reap with waitpid(-1).  The wait ends when stdout and stderr are
 * at EOF: a background child of the program that keeps them open keeps us
 * waiting (until it exits or the hard time limit kills the group).
 */
int	ext_run(char *const argv[], const char *input, size_t inlen,
	    volatile sig_atomic_t *soft_flag, struct ext_result *res);
void	ext_result_clear(struct ext_result *);
/*
 * One-line description of a failed result: "exited with status 3: <last
 * stderr line(s), trimmed>" (up to 3 non-blank lines joined with "; ") or
 * "killed by signal 9 (SIGKILL)".  malloc'd, NULL when out of memory.
 */
char	*ext_describe_failure(const struct ext_result *);

#endif
