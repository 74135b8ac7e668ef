/*
 * revoke.h - revoked task ids.  A revoke is stored in the sorted set
 * celeriac.revoked (scored by its expiry) so workers started later know
 * it, and broadcast on the channel celeriac.control so running workers
 * learn it at once; each worker keeps the live set in memory and checks
 * it before running a task, at no Redis cost per task.
 */
#ifndef CELERIAC_REVOKE_H
#define CELERIAC_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define REVOKED_KEY		"celeriac.revoked"
#define CONTROL_CHANNEL		"celeriac.control"
#define REVOKE_TTL_S		(3 * 3600)	/* as Celery's revokes expiry */

struct revset {
	char	**ids;
	double	 *expires;
	size_t	  n, cap;
};

int	revset_add(struct revset *, const char *id, double expires);
int	revset_has(struct revset *, const char *id, double now);
void	revset_free(struct revset *);

/* Load the ids not yet expired; 0 or -1. */
int	revoke_load(redisContext *, struct revset *, double now);

/*
 * Record a revoke and broadcast it: {"op":"revoke","id":...,"terminate":
 * bool,"signal":"SIGTERM"}.  Returns 0 or -1.
 */
int	revoke_publish(redisContext *, const char *id, int terminate,
	    const char *signame, double now);

/*
 * Parse a control-channel payload; for a revoke returns 1 and fills id
 * (idlen) / terminate / signal number, else 0.
 */
int	revoke_parse(const char *payload, char *id, size_t idlen,
	    int *terminate, int *signo);

int	revoke_signal_number(const char *name);

#endif
