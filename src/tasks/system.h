/*
 * system.h - what the files of the housekeeping tasks share.
 */
#ifndef CELERIAC_SYSTEM_H
#define CELERIAC_SYSTEM_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "tasks/registry.h"

#define SYS_PG_TIMEOUT_S	5
#define SYS_REDIS_TIMEOUT_MS	2000
#define HEALTH_KEY		"celeriac.health"
#define HEALTH_TTL_S		900
#define HEALTH_OLDEST_KEY	"celeriac.health.oldest"

/* Short-lived connections for one task run; NULL with err set. */
PGconn		*sys_pg(const struct config *, int timeout_s, char *err,
		    size_t errlen);
redisContext	*sys_redis(const char *url, char *err, size_t errlen);

int		 sys_health_check(struct task_ctx *);

/* The entries of this file set, for registry.c. */
extern const struct builtin_task task_system_table[];

#endif
