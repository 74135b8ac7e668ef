/*
 * pidbox.h - Celery remote control (celery inspect / celery control and
 * Flower) answered once per host by the control child, describing the
 * whole host: node name celeriac@HOST.
 */
#ifndef CELERIAC_PIDBOX_H
#define CELERIAC_PIDBOX_H

#include <stddef.h>

#include "broker/events.h"
#include "common/config.h"
#include "common/scoreboard.h"
#include "worker/worker.h"

struct pidbox {
	struct worker		*w;		/* the control child's connections */
	struct scoreboard	*sb;
	struct events		*ev;
	int			 notify_fd;	/* poke the master */
	char			 channel[64];	/* /<db>.celery.pidbox */
	double			 started;
};

void	pidbox_init(struct pidbox *, struct worker *, struct scoreboard *,
	    struct events *, int notify_fd);
/* Declare our binding (as a Celery worker does at start). */
void	pidbox_declare(struct pidbox *);
/* Handle one message published on the pidbox channel. */
void	pidbox_handle(struct pidbox *, const char *payload, size_t len);
/* Leave: remove our binding (warm shutdown). */
void	pidbox_leave(struct pidbox *);

/* Host totals for worker events: running tasks and tasks processed. */
void	pidbox_host_counts(const struct scoreboard *, int *active,
	    uint64_t *processed);

#endif
