/*
 * ctl.h - the commands of celeriac(1).  Each returns the process exit
 * status: 0 success, 1 failure, 2 usage or timeout.
 */
#ifndef CELERIAC_CTL_H
#define CELERIAC_CTL_H

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "common/config.h"

int	ctl_send(struct config *, int argc, char **argv);
int	ctl_result(struct config *, int argc, char **argv);
int	ctl_run(struct config *, int argc, char **argv);
int	ctl_dead(struct config *, int argc, char **argv);
int	ctl_revoke(struct config *, int argc, char **argv);
int	ctl_status(struct config *, int argc, char **argv);
int	ctl_reload(struct config *, int argc, char **argv);
int	ctl_stop(struct config *, int argc, char **argv);
int	ctl_beat(struct config *, int argc, char **argv);
int	ctl_demo_data(struct config *, int argc, char **argv);
int	ctl_db(struct config *, int argc, char **argv);
int	ctl_jobs(struct config *, int argc, char **argv);
int	ctl_job(struct config *, int argc, char **argv);
int	ctl_inspect(struct config *, int argc, char **argv);
int	ctl_control(struct config *, int argc, char **argv);

/* Helpers shared by the commands (send.c). */
redisContext	*ctl_connect(const char *url);
json_object	*ctl_parse_json(const char *opt, const char *text,
		    json_type want);
/* Print a stored meta the way --wait does; returns the exit status. */
int		 ctl_print_outcome(const char *meta);

#endif
