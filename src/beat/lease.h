/*
 * lease.h - one active beat per cluster: a lease in Redis with a fencing
 * token.
 *
 * The lease is the key LEASE_KEY holding "<host>:<pid>:<token>" with a
 * TTL of LEASE_TTL_MS.  Acquiring it takes a new token from INCR
 * LEASE_TOKEN_KEY, in the same script as the SET, so tokens only grow and
 * only winners consume them.  The holder extends it every LEASE_RENEW_MS
 * with a compare-and-extend; a follower tries to acquire it as often.
 * Anything written on behalf of the leader checks, in the same Lua script
 * as the write, that the lease still holds its exact value: a stale
 * leader (paused, partitioned, its lease expired and taken) writes
 * nothing.
 */
#ifndef CELERIAC_LEASE_H
#define CELERIAC_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#define LEASE_KEY		"celeriac.beat.lease"
#define LEASE_TOKEN_KEY		"celeriac.beat.token"
/*
 * What the leader records with each fire, in the same script as the
 * message: entry name -> {"fire_time" (scheduled, Unix seconds),
 * "scheduled" (the same, ISO 8601 in the entry's zone), "token",
 * "task_id", "host", "sent_at"}, and the last BEAT_HISTORY_LEN fires
 * (the same objects with "entry"), newest first.
 */
#define BEAT_LAST_KEY		"celeriac.beat.last"
#define BEAT_HISTORY_KEY	"celeriac.beat.history"
#define BEAT_HISTORY_LEN	1000
#define LEASE_TTL_MS		5000
#define LEASE_RENEW_MS		1000
/*
 * The holder stops firing this long before the TTL it last obtained runs
 * out by its own clock, for the drift between its clock and Redis's.
 */
#define LEASE_MARGIN_MS		500

struct lease {
	char		 host[256];
	char		 value[320];	/* "<host>:<pid>:<token>" when held */
	int64_t		 token;		/* 0: none yet */
	int		 held;
	int64_t		 valid_until;	/* monotonic ms; 0: not valid now */
};

void	 lease_init(struct lease *, const char *host);

/*
 * Try to become the leader.  Returns 1 (held, new token), 0 (someone else
 * holds it) or -1 (Redis error).  `now` is the monotonic time the request
 * was sent.
 */
int	 lease_acquire(redisContext *, struct lease *, int64_t now);

/*
 * Extend a held lease.  Returns 1, 0 when it is no longer ours (it
 * expired, or another host holds it: the lease is dropped), or -1 on a
 * Redis error: the lease stays held but stops being valid at once, until
 * a renewal works again.
 */
int	 lease_renew(redisContext *, struct lease *, int64_t now);

/* Give it up at exit (only if still ours), for a fast hand-over. */
void	 lease_release(redisContext *, struct lease *);

/* May the holder act now (held, and its TTL not run out)? */
int	 lease_valid(const struct lease *, int64_t now);

/*
 * Split a lease value "<host>:<pid>:<token>" (the host may hold colons).
 * Returns 0 or -1.
 */
int	 lease_parse(const char *value, char *host, size_t hostlen,
	    long *pid, int64_t *token);

#endif
