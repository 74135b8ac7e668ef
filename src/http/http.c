/*
 * http.c - placeholder until the http child lands: idles until stopped.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/celeriac.h"
#include "http/http.h"

void
http_main(const struct http_args *a)
{
	a->sb->slots[a->slot].state = SB_IDLE;
	(void)!write(a->notify_fd, "h", 1);
	for (;;)
		pause();
}
