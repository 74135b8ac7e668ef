/*
 * check_external.c - external-program tasks: the fork/exec/pipe runner.
 *
 * The programs are /bin/sh scripts and coreutils, so the suite needs no
 * fixture files.  Every test also checks that no child is left to reap
 * and that no descriptor leaked in the test process.
 */
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/external.h"

static volatile sig_atomic_t soft;

static void
on_alarm(int sig)
{
	soft = 1;
}

/*
 * The soft time limit as the worker has it: SIGALRM sets a flag.  With
 * SA_RESTART a blocking waitpid() is not interrupted by it.
 */
static void
arm_soft(long ms, int flags)
{
	struct sigaction sa;
	struct itimerval it;

	soft = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void
disarm_soft(void)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	(void)signal(SIGALRM, SIG_DFL);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static int
count_fds(void)
{
	DIR	*d;
	int	 n = 0;

	ck_assert_ptr_nonnull(d = opendir("/proc/self/fd"));
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return (n);
}

static int	fds_before;

static void
setup(void)
{
	fds_before = count_fds();
}

/* No zombie, no descriptor left behind. */
static void
teardown(void)
{
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
	ck_assert_int_eq(count_fds(), fds_before);
}

/* Run a shell script; input is a C string. */
static void
run_sh(const char *script, const char *input, struct ext_result *res)
{
	char *const argv[] = { "/bin/sh", "-c", (char *)script, NULL };

	ck_assert_int_eq(ext_run(argv, input, strlen(input), NULL, res), 0);
}

START_TEST(t_stdin_exact)
{
	char *const argv[] = { "/bin/sh", "-c", "cat", NULL };
	struct ext_result res;
	size_t	 i, len = (3 << 20) + 17;	/* more than a pipe holds */
	char	*in;

	/* Binary, NULs included, no final newline: passed through as is. */
	ck_assert_ptr_nonnull(in = malloc(len));
	for (i = 0; i < len; i++)
		in[i] = (char)(i * 7 + i / 251);
	ck_assert_int_eq(ext_run(argv, in, len, NULL, &res), 0);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	ck_assert_uint_eq(res.outlen, len);
	ck_assert(memcmp(res.out, in, len) == 0);
	ck_assert_int_eq(res.out[len], '\0');
	ck_assert_str_eq(res.err_tail, "");
	ck_assert_int_eq(res.truncated, 0);
	ext_result_clear(&res);
	ck_assert_ptr_null(res.out);
	free(in);
}
END_TEST

START_TEST(t_json_result)
{
	static volatile sig_atomic_t never;
	char *const argv[] = { "/bin/sh", "-c",
	    "read -r line; printf '{\"got\": %s}\\n' \"$line\"", NULL };
	const char *in = "{\"args\": [1, 2], \"kwargs\": {}, \"id\": \"x\"}\n";
	struct ext_result res;

	/* A soft flag that never fires: the 10 ms poll path. */
	never = 0;
	ck_assert_int_eq(ext_run(argv, in, strlen(in), &never, &res), 0);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	ck_assert_str_eq(res.out,
	    "{\"got\": {\"args\": [1, 2], \"kwargs\": {}, \"id\": \"x\"}}\n");
	ck_assert_int_eq(res.soft_killed, 0);
	ext_result_clear(&res);

	/* Empty input, empty output. */
	run_sh("exit 0", "", &res);
	ck_assert_uint_eq(res.outlen, 0);
	ck_assert_str_eq(res.out, "");
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_exit_stderr)
{
	struct ext_result res;
	char	*msg;

	run_sh("cat >/dev/null; echo '{}'; echo warming up >&2; "
	    "echo 'fatal: bad input  ' >&2; echo >&2; exit 3", "{}", &res);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 3);
	ck_assert_str_eq(res.out, "{}\n");
	ck_assert_str_eq(res.err_tail, "warming up\nfatal: bad input  \n\n");
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg,
	    "exited with status 3: warming up; fatal: bad input");
	free(msg);
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_exit_retry)
{
	struct ext_result res;

	run_sh("echo 'database busy' >&2; exit 75", "{}", &res);
	ck_assert(WIFEXITED(res.status));
	ck_assert_int_eq(WEXITSTATUS(res.status), EXT_EXIT_RETRY);
	ck_assert_str_eq(res.err_tail, "database busy\n");
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_nonexistent)
{
	char *const abs[] = { "/nonexistent/celeriac-prog", NULL };
	char *const rel[] = { "celeriac-no-such-program", "x", NULL };
	char *const none[] = { NULL };
	struct ext_result res;
	char	*msg;

	ck_assert_int_eq(ext_run(abs, "{}", 2, NULL, &res), 0);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 127);
	ck_assert_str_eq(res.err_tail,
	    "exec /nonexistent/celeriac-prog: No such file or directory\n");
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 127: "
	    "exec /nonexistent/celeriac-prog: No such file or directory");
	free(msg);
	ext_result_clear(&res);

	/* Looked up in PATH (execvp). */
	ck_assert_int_eq(ext_run(rel, "{}", 2, NULL, &res), 0);
	ck_assert_int_eq(WEXITSTATUS(res.status), 127);
	ck_assert_str_eq(res.err_tail,
	    "exec celeriac-no-such-program: No such file or directory\n");
	ext_result_clear(&res);

	/* Nothing to run is the caller's error, not the program's. */
	ck_assert_int_eq(ext_run(none, "", 0, NULL, &res), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(res.out);
}
END_TEST

START_TEST(t_truncated)
{
	char *const big[] = { "head", "-c", "17000000", "/dev/zero", NULL };
	char *const exact[] = { "head", "-c", "16777216", "/dev/zero", NULL };
	struct ext_result res;

	/* Drained to the end: head is neither stuck nor killed by SIGPIPE. */
	ck_assert_int_eq(ext_run(big, "", 0, NULL, &res), 0);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	ck_assert_int_eq(res.truncated, 1);
	ck_assert_uint_eq(res.outlen, EXT_MAX_OUTPUT);
	ck_assert_int_eq(res.out[EXT_MAX_OUTPUT], '\0');
	ext_result_clear(&res);

	ck_assert_int_eq(ext_run(exact, "", 0, NULL, &res), 0);
	ck_assert_int_eq(res.truncated, 0);
	ck_assert_uint_eq(res.outlen, EXT_MAX_OUTPUT);
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_err_tail_end)
{
	struct ext_result res;
	char	*msg;
	size_t	 len;

	run_sh("seq 1 100000 >&2; exit 1", "", &res);
	len = strlen(res.err_tail);
	ck_assert_uint_eq(len, EXT_ERR_TAIL);
	ck_assert_str_eq(res.err_tail + len - 13, "99999\n100000\n");
	ck_assert_ptr_null(strstr(res.err_tail, "\n1\n"));
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 1: 99998; 99999; 100000");
	free(msg);
	ext_result_clear(&res);

	/* Many small writes, each kept in order. */
	run_sh("i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; "
	    "i=$((i+1)); done", "", &res);
	len = strlen(res.err_tail);
	ck_assert_uint_eq(len, EXT_ERR_TAIL);
	ck_assert_str_eq(res.err_tail + len - 20, "line 1998\nline 1999\n");
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_soft_kill)
{
	char *const argv[] = { "sleep", "30", NULL };
	struct sigaction ign, oterm;
	struct ext_result res;
	sigset_t set, omask;
	double	 t0, elapsed;
	char	*msg;

	/*
	 * The worker ignores and blocks SIGTERM itself: the program must get
	 * the default disposition, or it would shrug off the soft limit.
	 */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &ign, &oterm);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &omask);

	arm_soft(200, 0);
	t0 = now();
	ck_assert_int_eq(ext_run(argv, "{}", 2, &soft, &res), 0);
	elapsed = now() - t0;
	disarm_soft();
	sigprocmask(SIG_SETMASK, &omask, NULL);
	sigaction(SIGTERM, &oterm, NULL);

	ck_assert_msg(elapsed < 2.0, "took %.2f s", elapsed);
	ck_assert(WIFSIGNALED(res.status));
	ck_assert_int_eq(WTERMSIG(res.status), SIGTERM);
	ck_assert_int_eq(res.soft_killed, 1);
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "killed by signal 15 (SIGTERM)");
	free(msg);
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_soft_kill_closed_output)
{
	char *const argv[] = { "/bin/sh", "-c",
	    "exec >&- 2>&-; exec sleep 30", NULL };
	struct ext_result res;
	double	 t0, elapsed;

	/* Output at EOF early, still running: the limit is still acted on. */
	arm_soft(200, SA_RESTART);
	t0 = now();
	ck_assert_int_eq(ext_run(argv, "", 0, &soft, &res), 0);
	elapsed = now() - t0;
	disarm_soft();
	ck_assert_msg(elapsed < 2.0, "took %.2f s", elapsed);
	ck_assert(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGTERM);
	ck_assert_int_eq(res.soft_killed, 1);
	ext_result_clear(&res);
}
END_TEST

/*
 * Documented behaviour: the soft limit signals the program only.  What it
 * spawned shares the worker's process group and outlives it until the
 * hard limit (the master's killpg of the group) or its own end; here the
 * grandchild does not hold our pipes, else ext_run would wait for it.
 */
START_TEST(t_soft_kill_grandchild)
{
	char *const argv[] = { "/bin/sh", "-c",
	    "sleep 30 </dev/null >/dev/null 2>&1 & echo $!; exec sleep 30",
	    NULL };
	struct ext_result res;
	pid_t	 gpid;
	double	 t0;

	arm_soft(200, 0);
	t0 = now();
	ck_assert_int_eq(ext_run(argv, "", 0, &soft, &res), 0);
	disarm_soft();
	ck_assert(now() - t0 < 2.0);
	ck_assert(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGTERM);
	gpid = (pid_t)atol(res.out);
	ck_assert_int_gt(gpid, 1);
	ck_assert_int_eq(kill(gpid, 0), 0);
	ck_assert_int_eq(getpgid(gpid), getpgrp());
	ck_assert_int_eq(kill(gpid, SIGKILL), 0);	/* init reaps it */
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_only_std_fds)
{
	char *const self[] = { "ls", "/proc/self/fd", NULL };
	struct ext_result res;
	int	 fd;

	/* Deliberately inheritable: no O_CLOEXEC, one of them high. */
	ck_assert_int_ge(fd = open("/dev/null", O_RDONLY), 3);
	ck_assert_int_eq(dup2(fd, 42), 42);

	/* ls opens the directory itself: lowest free fd, 3. */
	ck_assert_int_eq(ext_run(self, "", 0, NULL, &res), 0);
	ck_assert_str_eq(res.out, "0\n1\n2\n3\n");
	ext_result_clear(&res);

	/* The shell's own table seen from ls (dash may exec ls itself). */
	run_sh("ls /proc/$$/fd", "", &res);
	ck_assert_msg(strcmp(res.out, "0\n1\n2\n") == 0 ||
	    strcmp(res.out, "0\n1\n2\n3\n") == 0, "fds: %s", res.out);
	ext_result_clear(&res);
	close(fd);
	close(42);
}
END_TEST

START_TEST(t_default_signals)
{
	char *const argv[] = { "grep", "-E", "^Sig(Blk|Ign)",
	    "/proc/self/status", NULL };
	struct sigaction ign, opipe, oterm;
	struct ext_result res;
	sigset_t set, omask;

	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &opipe);
	sigaction(SIGTERM, &ign, &oterm);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGALRM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &omask);
	ck_assert_int_eq(ext_run(argv, "", 0, NULL, &res), 0);
	sigprocmask(SIG_SETMASK, &omask, NULL);
	sigaction(SIGPIPE, &opipe, NULL);
	sigaction(SIGTERM, &oterm, NULL);

	{
		/*
		 * Signals 32 and 33 belong to glibc: no process can change
		 * them, so whatever the test's own parent set shows through.
		 */
		unsigned long long blk, ign_mask;
		ck_assert_int_eq(sscanf(res.out, "SigBlk:\t%llx\nSigIgn:\t%llx",
		    &blk, &ign_mask), 2);
		ck_assert_uint_eq(blk & ~0x180000000ULL, 0);
		ck_assert_uint_eq(ign_mask & ~0x180000000ULL, 0);
	}
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_epipe)
{
	char *const argv[] = { "true", NULL };
	struct ext_result res;
	sigset_t set, omask, pend;
	size_t	 len = 4 << 20;
	char	*in;

	/* SIGPIPE at its default here: it would kill the test. */
	ck_assert_ptr_nonnull(in = calloc(1, len));
	ck_assert_int_eq(ext_run(argv, in, len, NULL, &res), 0);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	ext_result_clear(&res);

	/* Blocked by the caller: no SIGPIPE left pending for later. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, &omask);
	ck_assert_int_eq(ext_run(argv, in, len, NULL, &res), 0);
	ck_assert_int_eq(sigpending(&pend), 0);
	ck_assert(!sigismember(&pend, SIGPIPE));
	sigprocmask(SIG_SETMASK, &omask, NULL);
	ext_result_clear(&res);
	free(in);
}
END_TEST

START_TEST(t_sigchld_ignored)
{
	struct sigaction ign, old, now_sa;
	struct ext_result res;

	/* The kernel would reap the program and lose its status. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGCHLD, &ign, &old);
	run_sh("exit 3", "", &res);
	sigaction(SIGCHLD, &old, &now_sa);
	ck_assert(now_sa.sa_handler == SIG_IGN);	/* restored */
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 3);
	ext_result_clear(&res);
}
END_TEST

START_TEST(t_describe)
{
	struct ext_result res;
	char	*msg;

	memset(&res, 0, sizeof(res));
	res.status = 2 << 8;	/* exited with 2 */
	/* Cut inside a UTF-8 sequence; CR and tab; blank lines. */
	res.err_tail = "\x80\xbfpartial\nTraceback (most recent call last):\n"
	    "  File \"t.py\",\tline 1\n\n  ValueError: caf\xc3\xa9\r\n\n";
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 2: Traceback (most recent "
	    "call last):; File \"t.py\", line 1; ValueError: caf\xc3\xa9");
	free(msg);

	res.err_tail = "\x80only a continuation";
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 2: only a continuation");
	free(msg);

	res.err_tail = " \n\n";
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 2");
	free(msg);

	res.err_tail = NULL;
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "exited with status 2");
	free(msg);

	res.status = SIGKILL;	/* killed by signal 9 */
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "killed by signal 9 (SIGKILL)");
	free(msg);

	res.status = 40;	/* a real-time signal: no name */
	ck_assert_ptr_nonnull(msg = ext_describe_failure(&res));
	ck_assert_str_eq(msg, "killed by signal 40");
	free(msg);
}
END_TEST

START_TEST(t_nul_in_stderr)
{
	struct ext_result res;

	/* err_tail is a string: a NUL in stderr must not hide what follows. */
	run_sh("printf 'a\\000b\\n' >&2; exit 1", "", &res);
	ck_assert_str_eq(res.err_tail, "a?b\n");
	ext_result_clear(&res);
}
END_TEST

static Suite *
external_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("external");
	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_stdin_exact);
	tcase_add_test(tc, t_json_result);
	tcase_add_test(tc, t_exit_stderr);
	tcase_add_test(tc, t_exit_retry);
	tcase_add_test(tc, t_nonexistent);
	tcase_add_test(tc, t_truncated);
	tcase_add_test(tc, t_err_tail_end);
	tcase_add_test(tc, t_soft_kill);
	tcase_add_test(tc, t_soft_kill_closed_output);
	tcase_add_test(tc, t_soft_kill_grandchild);
	tcase_add_test(tc, t_only_std_fds);
	tcase_add_test(tc, t_default_signals);
	tcase_add_test(tc, t_epipe);
	tcase_add_test(tc, t_sigchld_ignored);
	tcase_add_test(tc, t_describe);
	tcase_add_test(tc, t_nul_in_stderr);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(external_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
