/*
 * beat.h - the beat child: periodic tasks, one active beat per cluster.
 */
#ifndef CELERIAC_BEAT_H
#define CELERIAC_BEAT_H

#include "common/config.h"
#include "common/scoreboard.h"

struct beat_args {
	const struct config	*cfg;
	struct scoreboard	*sb;
	int			 slot;		/* its own scoreboard slot */
	int			 notify_fd;	/* poke the master on state changes */
};

/*
 * Runs until SIGTERM (or the master's death); exits with the codes of
 * common/celeriac.h.  Sets its slot's state to SB_IDLE once connected.
 */
void	beat_main(const struct beat_args *) __attribute__((noreturn));

#endif
