/*
 * control.h - the control child, one per host.  It never runs a task.
 * It keeps the host's heartbeat key, recovers the processing lists of
 * hosts whose heartbeat expired, moves due delayed messages, and carries
 * out "revoke --terminate" by asking the master (through the scoreboard)
 * to signal the worker running that task.
 */
#ifndef CELERIAC_CONTROL_H
#define CELERIAC_CONTROL_H

#include "common/config.h"
#include "common/scoreboard.h"

#define HOST_KEY_PREFIX		"celeriac.host."
#define PROCESSING_INDEX	"celeriac.processing"
#define HOST_TTL_MS		10000
#define HEARTBEAT_EVERY_MS	1000
#define RECOVERY_EVERY_MS	5000

struct control_args {
	const struct config	*cfg;
	struct scoreboard	*sb;
	int			 slot;		/* its own slot */
	int			 notify_fd;
};

void	control_main(const struct control_args *) __attribute__((noreturn));

#endif
