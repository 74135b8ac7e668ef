/*
 * scoreboard.c - the shared table of slots (see scoreboard.h).
 *
 * Writers update task fields under a sequence counter so readers in other
 * processes never see a half-written task id next to a new start time.
 */
#include <sys/mman.h>

#include <stdio.h>
#include <string.h>

#include "common/scoreboard.h"
#include "common/util.h"

const char *const sb_exit_names[SB_NEXITS] = {
	"clean", "recycle", "cannot_run", "killed", "crash"
};

const double sb_hist_bounds[SB_NHIST] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 1e300
};

struct scoreboard *
sb_create(void)
{
	struct scoreboard *sb;

	sb = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED)
		return NULL;
	/* Fresh anonymous pages are zero: not touching them keeps the
	 * slots nobody uses out of every process's resident memory. */
	sb->nslots = SB_MAXSLOTS;
	return sb;
}

void
sb_destroy(struct scoreboard *sb)
{
	if (sb != NULL)
		munmap(sb, sizeof(*sb));
}

void
sb_task_begin(struct sb_slot *s, const char *id, const char *name,
    int64_t hard_limit_ms)
{
	s->seq++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	snprintf(s->task_id, sizeof(s->task_id), "%s", id ? id : "");
	snprintf(s->task_name, sizeof(s->task_name), "%s", name ? name : "");
	s->hard_limit_ms = hard_limit_ms;
	s->busy_since_ms = mono_ms();
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->seq++;
}

static struct sb_taskstat *
sb_stat_for(struct sb_slot *s, const char *name)
{
	int i;

	for (i = 0; i < SB_NSTATS; i++) {
		if (s->stats[i].name[0] == '\0') {
			snprintf(s->stats[i].name, sizeof(s->stats[i].name),
			    "%s", name);
			return &s->stats[i];
		}
		if (strcmp(s->stats[i].name, name) == 0)
			return &s->stats[i];
	}
	/* Table full: count under the last entry rather than lose it. */
	return &s->stats[SB_NSTATS - 1];
}

void
sb_task_end(struct sb_slot *s, const char *name, enum sb_outcome outcome,
    double seconds)
{
	struct sb_taskstat	*st;
	int			 b;

	st = sb_stat_for(s, name ? name : "?");
	st->count[outcome]++;
	for (b = 0; b < SB_NHIST - 1 && seconds > sb_hist_bounds[b]; b++)
		;
	st->hist[b]++;
	st->seconds_sum += seconds;
	s->processed++;
	s->seq++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->task_id[0] = '\0';
	s->task_name[0] = '\0';
	s->hard_limit_ms = 0;
	s->busy_since_ms = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->seq++;
}

void
sb_set_state(struct sb_slot *s, enum sb_state st)
{
	s->state = st;
}

int
sb_read_task(const struct sb_slot *s, char *id, size_t idlen, char *name,
    size_t namelen, int64_t *since_ms)
{
	uint32_t seq;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		seq = s->seq;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		if (id)
			snprintf(id, idlen, "%s", s->task_id);
		if (name)
			snprintf(name, namelen, "%s", s->task_name);
		if (since_ms)
			*since_ms = s->busy_since_ms;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (seq == s->seq)
			return s->task_id[0] != '\0';
	}
	return 0;
}

const char *
sb_state_name(int st)
{
	switch (st) {
	case SB_FREE:		return "free";
	case SB_STARTING:	return "starting";
	case SB_IDLE:		return "idle";
	case SB_BUSY:		return "busy";
	case SB_STOPPING:	return "stopping";
	default:		return "?";
	}
}

const struct sb_task_limit *
sb_limit_find(const struct scoreboard *sb, const char *task)
{
	int i;

	for (i = 0; i < SB_NLIMITS && sb->limits[i].task[0]; i++)
		if (strcmp(sb->limits[i].task, task) == 0)
			return &sb->limits[i];
	return NULL;
}
