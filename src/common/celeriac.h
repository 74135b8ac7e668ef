/*
 * celeriac.h - types and constants shared by every process role: the exit
 * codes a child uses to tell the master what happened (the respawn
 * protocol), and the names of our own Redis keys.
 */
#ifndef CELERIAC_H
#define CELERIAC_H

/*
 * Child exit codes.  The master decides whether and when to respawn a
 * slot from these; any other status (a signal, another code) is a crash.
 */
#define EXIT_CLEAN		0	/* asked to stop, stopped: do not respawn */
#define EXIT_RECYCLE		3	/* max tasks/memory reached: respawn now */
#define EXIT_NORESPAWN		4	/* cannot run (limits, privileges, config): park the slot */
#define EXIT_CRASH		70	/* internal error: respawn with back-off (EX_SOFTWARE) */

/* Our own bookkeeping keys live under this prefix in the broker db. */
#define CELERIAC_KEY_PREFIX	"celeriac"
#define CELERIAC_DEAD_LETTERS	"celeriac.dead"

#define CELERIAC_NAME		"celeriac"
#define CELERIAC_SW_IDENT	"celeriac"

#endif
