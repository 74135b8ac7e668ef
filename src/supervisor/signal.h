/*
 * signal.h - the master's signals.  Handlers only record that a signal
 * came and write a byte to a self-pipe; the main loop does the work.
 */
#ifndef CELERIAC_SIGNAL_H
#define CELERIAC_SIGNAL_H

#define SIGF_HUP	0x01	/* reload */
#define SIGF_TERM	0x02	/* warm shutdown */
#define SIGF_INT	0x04	/* warm shutdown; a second one is cold */
#define SIGF_QUIT	0x08	/* cold shutdown */
#define SIGF_USR1	0x10	/* reopen logs */
#define SIGF_CHLD	0x20	/* reap */

int		 sig_init(void);
int		 sig_fd(void);
/* The flags that arrived since the last call (and drain the pipe). */
unsigned	 sig_take(void);
/* In a new child: default dispositions, empty mask, no self-pipe. */
void		 sig_reset_child(void);

#endif
