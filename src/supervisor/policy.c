/*
 * policy.c - pure decisions of the supervisor, over a clock value passed
 * in, so unit tests drive them with a fake clock.
 */
#include <sys/wait.h>

#include "common/celeriac.h"
#include "supervisor/child.h"

int64_t
policy_backoff_ms(int crashes)
{
	int64_t d = BACKOFF_MIN_MS;

	while (--crashes > 0 && d < BACKOFF_MAX_MS)
		d *= 2;
	return d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
}

enum child_exit_kind
policy_classify_exit(int status, int kill_reason)
{
	if (kill_reason != SB_KILL_NONE && WIFSIGNALED(status))
		return CHILD_EXIT_KILLED_BY_US;
	if (WIFEXITED(status)) {
		switch (WEXITSTATUS(status)) {
		case EXIT_CLEAN:	return CHILD_EXIT_CLEAN;
		case EXIT_RECYCLE:	return CHILD_EXIT_RECYCLE;
		case EXIT_NORESPAWN:	return CHILD_EXIT_NORESPAWN;
		}
	}
	return CHILD_EXIT_CRASH;
}

int64_t
policy_next_spawn(struct mslot *s, enum child_exit_kind kind, int64_t now)
{
	/* A child that was ready long enough has paid for past crashes. */
	if (s->ready_ms != 0 && now - s->ready_ms >= BACKOFF_RESET_MS)
		s->crashes = 0;
	switch (kind) {
	case CHILD_EXIT_NORESPAWN:
		return -1;
	case CHILD_EXIT_RECYCLE:
	case CHILD_EXIT_KILLED_BY_US:
		return now;
	case CHILD_EXIT_CLEAN:
	case CHILD_EXIT_CRASH:
		break;
	}
	/*
	 * Death before ready counts as a crash even with a clean code.  A
	 * worker that was ready and crashes once (one bad task, the OOM
	 * killer) is replaced at once; from its second crash in a row the
	 * back-off grows from 1 s, so a crash loop never forks in a storm.
	 */
	if (kind == CHILD_EXIT_CRASH || s->ready_ms == 0) {
		s->crashes++;
		if (s->crashes > 1 || s->ready_ms == 0)
			now += policy_backoff_ms(s->crashes - (s->ready_ms != 0));
	}
	if (now < s->spawned_ms + SPAWN_MIN_INTERVAL_MS)
		now = s->spawned_ms + SPAWN_MIN_INTERVAL_MS;
	return now;
}

int
policy_hard_limit_due(int64_t busy_since, int64_t limit_ms, int64_t now,
    int64_t *deadline)
{
	if (limit_ms <= 0 || busy_since <= 0)
		return 0;
	*deadline = busy_since + limit_ms;
	return now >= *deadline;
}

int
policy_should_park(const int64_t *crash_times, int n, int64_t now, int limit,
    int64_t window_ms)
{
	int i, recent = 0;

	if (limit <= 0)
		return 0;
	for (i = 0; i < n; i++)
		if (crash_times[i] > 0 && now - crash_times[i] <= window_ms)
			recent++;
	return recent >= limit;
}
