/*
 * limits.h - resource limits and privileges, applied in a new child.
 */
#ifndef CELERIAC_LIMITS_H
#define CELERIAC_LIMITS_H

#include "common/config.h"

/*
 * Apply the queue's rlimits and nice value.  Returns 0, or -1 with the
 * failing limit in err; the child then exits with EXIT_NORESPAWN.
 */
int	limits_apply(const struct cfg_queue *, char *err, size_t errlen);

/* setgroups/setgid/setuid to user and group (either may be NULL). */
int	limits_drop_privileges(const char *user, const char *group, char *err,
	    size_t errlen);

#endif
