/*
 * beat.c - placeholder until the beat child lands: idles until stopped.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "beat/beat.h"
#include "common/celeriac.h"

void
beat_main(const struct beat_args *a)
{
	a->sb->slots[a->slot].state = SB_IDLE;
	(void)!write(a->notify_fd, "b", 1);
	for (;;)
		pause();
}
