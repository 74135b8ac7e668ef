/*
 * http.h - the http child: job API, /metrics, /health and the monitor.
 */
#ifndef CELERIAC_HTTP_H
#define CELERIAC_HTTP_H

#include "common/config.h"
#include "common/scoreboard.h"

struct http_args {
	const struct config	*cfg;
	struct scoreboard	*sb;
	int			 slot;
	int			 notify_fd;
};

void	http_main(const struct http_args *) __attribute__((noreturn));

#endif
