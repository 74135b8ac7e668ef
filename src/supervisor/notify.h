/*
 * notify.h - tell systemd (Type=notify) how the daemon is doing, through
 * $NOTIFY_SOCKET, without linking libsystemd.
 */
#ifndef CELERIAC_NOTIFY_H
#define CELERIAC_NOTIFY_H

/* Send "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..."; no-op
 * without $NOTIFY_SOCKET. */
void	notify_systemd(const char *state);

#endif
