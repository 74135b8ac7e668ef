/*
 * check_policy.c - the supervisor's and the worker's pure policies over a
 * fake clock: back-off, exit classification, respawn time, hard time
 * limit decision, recovery decision and the retry schedule.
 */
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "broker/retry.h"
#include "common/celeriac.h"
#include "common/scoreboard.h"
#include "supervisor/child.h"
#include "worker/recover.h"

/* Build wait statuses the way the kernel encodes them. */
#define EXITED(code)	(((code) & 0xff) << 8)
#define SIGNALED(sig)	((sig) & 0x7f)

START_TEST(test_backoff_doubles_to_a_minute)
{
	ck_assert_int_eq(policy_backoff_ms(1), 1000);
	ck_assert_int_eq(policy_backoff_ms(2), 2000);
	ck_assert_int_eq(policy_backoff_ms(3), 4000);
	ck_assert_int_eq(policy_backoff_ms(6), 32000);
	ck_assert_int_eq(policy_backoff_ms(7), 60000);
	ck_assert_int_eq(policy_backoff_ms(50), 60000);
}
END_TEST

START_TEST(test_classify_exit)
{
	ck_assert(WIFEXITED(EXITED(3)) && WEXITSTATUS(EXITED(3)) == 3);
	ck_assert(WIFSIGNALED(SIGNALED(SIGKILL)));
	ck_assert_int_eq(policy_classify_exit(EXITED(EXIT_CLEAN), 0),
	    CHILD_EXIT_CLEAN);
	ck_assert_int_eq(policy_classify_exit(EXITED(EXIT_RECYCLE), 0),
	    CHILD_EXIT_RECYCLE);
	ck_assert_int_eq(policy_classify_exit(EXITED(EXIT_NORESPAWN), 0),
	    CHILD_EXIT_NORESPAWN);
	ck_assert_int_eq(policy_classify_exit(EXITED(EXIT_CRASH), 0),
	    CHILD_EXIT_CRASH);
	ck_assert_int_eq(policy_classify_exit(EXITED(1), 0), CHILD_EXIT_CRASH);
	ck_assert_int_eq(policy_classify_exit(SIGNALED(SIGSEGV), 0),
	    CHILD_EXIT_CRASH);
	ck_assert_int_eq(policy_classify_exit(SIGNALED(SIGKILL),
	    SB_KILL_TIMELIMIT), CHILD_EXIT_KILLED_BY_US);
	/* A kill we asked for that ended in a normal exit is judged by it. */
	ck_assert_int_eq(policy_classify_exit(EXITED(EXIT_CLEAN),
	    SB_KILL_REVOKE), CHILD_EXIT_CLEAN);
}
END_TEST

START_TEST(test_next_spawn_crash_loop_backs_off)
{
	struct mslot	s;
	int64_t		now = 100000, at;
	int		i;

	memset(&s, 0, sizeof(s));
	s.spawned_ms = now - 5000;
	s.ready_ms = now - 4000;
	/* A ready worker's first crash: replaced at once. */
	at = policy_next_spawn(&s, CHILD_EXIT_CRASH, now);
	ck_assert_int_eq(at, now);
	/* Its replacement, ready too, crashes at once: 1 s. */
	s.spawned_ms = now;
	s.ready_ms = now + 5;
	at = policy_next_spawn(&s, CHILD_EXIT_CRASH, now + 10);
	ck_assert_int_eq(at, now + 10 + 1000);
	s.crashes = 1;
	for (i = 2; i <= 8; i++) {
		now = at + 10;		/* respawned, crashed before ready */
		s.spawned_ms = at;
		s.ready_ms = 0;
		at = policy_next_spawn(&s, CHILD_EXIT_CRASH, now);
		ck_assert_int_eq(at - now, policy_backoff_ms(i));
	}
	ck_assert_int_eq(s.crashes, 8);
	/* Ready for a minute: crashes are forgiven, the next is replaced
	 * at once again. */
	s.ready_ms = now;
	now += BACKOFF_RESET_MS;
	s.spawned_ms = now - BACKOFF_RESET_MS - 10;
	at = policy_next_spawn(&s, CHILD_EXIT_CRASH, now);
	ck_assert_int_eq(s.crashes, 1);
	ck_assert_int_eq(at, now);
}
END_TEST

START_TEST(test_next_spawn_recycle_and_kills_are_immediate)
{
	struct mslot	s;
	int64_t		now = 50000;

	memset(&s, 0, sizeof(s));
	s.spawned_ms = now - 10;
	s.ready_ms = now - 5;
	ck_assert_int_eq(policy_next_spawn(&s, CHILD_EXIT_RECYCLE, now), now);
	ck_assert_int_eq(policy_next_spawn(&s, CHILD_EXIT_KILLED_BY_US, now),
	    now);
	ck_assert_int_eq(s.crashes, 0);
	ck_assert_int_eq(policy_next_spawn(&s, CHILD_EXIT_NORESPAWN, now), -1);
}
END_TEST

START_TEST(test_next_spawn_min_interval)
{
	struct mslot	s;
	int64_t		now = 50000;

	memset(&s, 0, sizeof(s));
	/* A clean exit after being ready: no back-off, but not faster
	 * than one spawn a second. */
	s.spawned_ms = now - 200;
	s.ready_ms = now - 100;
	ck_assert_int_eq(policy_next_spawn(&s, CHILD_EXIT_CLEAN, now),
	    now - 200 + SPAWN_MIN_INTERVAL_MS);
	ck_assert_int_eq(s.crashes, 0);
	/* The same clean exit before ready counts as a crash. */
	s.ready_ms = 0;
	ck_assert_int_eq(policy_next_spawn(&s, CHILD_EXIT_CLEAN, now),
	    now + 1000);
	ck_assert_int_eq(s.crashes, 1);
}
END_TEST

START_TEST(test_hard_limit_decision)
{
	int64_t deadline = 0;

	ck_assert_int_eq(policy_hard_limit_due(1000, 2000, 2999, &deadline), 0);
	ck_assert_int_eq(deadline, 3000);
	ck_assert_int_eq(policy_hard_limit_due(1000, 2000, 3000, &deadline), 1);
	ck_assert_int_eq(policy_hard_limit_due(1000, 2000, 9000, &deadline), 1);
	/* No limit, or not busy: never due. */
	ck_assert_int_eq(policy_hard_limit_due(1000, 0, 1 << 30, &deadline), 0);
	ck_assert_int_eq(policy_hard_limit_due(0, 2000, 1 << 30, &deadline), 0);
}
END_TEST

START_TEST(test_recover_decision)
{
	ck_assert_int_eq(recover_decide(SB_KILL_NONE, 0), RECOVER_FAIL_LOST);
	ck_assert_int_eq(recover_decide(SB_KILL_NONE, 1), RECOVER_REQUEUE);
	ck_assert_int_eq(recover_decide(SB_KILL_SHUTDOWN, 1), RECOVER_REQUEUE);
	ck_assert_int_eq(recover_decide(SB_KILL_TIMELIMIT, 1),
	    RECOVER_FAIL_TIMELIMIT);
	ck_assert_int_eq(recover_decide(SB_KILL_TIMELIMIT, 0),
	    RECOVER_FAIL_TIMELIMIT);
	ck_assert_int_eq(recover_decide(SB_KILL_REVOKE, 1), RECOVER_REVOKED);
}
END_TEST

START_TEST(test_retry_schedule)
{
	/* No back-off: the default delay, no jitter. */
	ck_assert_int_eq(retry_delay_ms(0, 0, 0, 180000, 0.5), 180000);
	/* Exponential from 1 s, capped at 10 s, full jitter. */
	ck_assert_int_eq(retry_delay_ms(0, 1000, 10000, 0, 0.999999), 999);
	ck_assert_int_eq(retry_delay_ms(1, 1000, 10000, 0, 0.5), 1000);
	ck_assert_int_eq(retry_delay_ms(2, 1000, 10000, 0, 0.5), 2000);
	ck_assert_int_eq(retry_delay_ms(3, 1000, 10000, 0, 0.5), 4000);
	ck_assert_int_eq(retry_delay_ms(4, 1000, 10000, 0, 0.5), 5000);
	ck_assert_int_eq(retry_delay_ms(30, 1000, 10000, 0, 0.5), 5000);
	ck_assert_int_eq(retry_delay_ms(30, 1000, 10000, 0, 0.0), 0);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite	*s = suite_create("policy");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_backoff_doubles_to_a_minute);
	tcase_add_test(tc, test_classify_exit);
	tcase_add_test(tc, test_next_spawn_crash_loop_backs_off);
	tcase_add_test(tc, test_next_spawn_recycle_and_kills_are_immediate);
	tcase_add_test(tc, test_next_spawn_min_interval);
	tcase_add_test(tc, test_hard_limit_decision);
	tcase_add_test(tc, test_recover_decision);
	tcase_add_test(tc, test_retry_schedule);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(policy_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
