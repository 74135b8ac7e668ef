/*
 * config.h - the parsed configuration of celeriacd and celeriac.
 *
 * The YAML file is parsed into these plain structs by cfg_load(); every
 * string and array hangs off the struct config and is freed by one call to
 * cfg_free(), so a reload parses into a fresh tree and swaps it only when
 * the whole file is valid.
 */
#ifndef CELERIAC_CONFIG_H
#define CELERIAC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_UNSET	(-1)	/* an integer or duration key that is absent */
#define CFG_ERRLEN	512

enum cfg_environment {
	CFG_ENV_DEVELOPMENT = 0,
	CFG_ENV_TEST,
	CFG_ENV_PRODUCTION
};

enum cfg_log_target {
	CFG_LOG_STDERR = 0,
	CFG_LOG_SYSLOG,
	CFG_LOG_FILE
};

/*
 * Resource limits.  A value of CFG_UNSET leaves the inherited limit alone.
 * Sizes are bytes, cpu is seconds.
 */
struct cfg_limits {
	int64_t		 address_space;
	int64_t		 cpu;
	int64_t		 open_files;
	int64_t		 core;
	int64_t		 file_size;
};

struct cfg_queue {
	char		*name;
	int		 concurrency;		/* >= 0, default 1 */
	int		 priority;		/* 0..9, default 0: default message priority */
	int64_t		 soft_time_limit_ms;	/* CFG_UNSET or > 0 */
	int64_t		 time_limit_ms;		/* CFG_UNSET or > 0 */
	struct cfg_limits limits;
	int64_t		 max_tasks_per_child;	/* CFG_UNSET or > 0 */
	int64_t		 max_memory_per_child;	/* bytes, CFG_UNSET or > 0 */
	int		 nice;			/* -20..19, default 0 */
	int		 acks_late;		/* 0/1, default 0 */
	int		 line;			/* where it was declared */
};

enum cfg_run_kind {
	CFG_RUN_BUILTIN = 0,
	CFG_RUN_EXEC
};

struct cfg_task {
	char		*name;			/* Celery task name */
	enum cfg_run_kind run_kind;
	char		*builtin;		/* CFG_RUN_BUILTIN: registry name */
	char	       **argv;			/* CFG_RUN_EXEC: NULL-terminated */
	size_t		 argc;
	char		*queue;			/* the queue it runs on (must exist) */
	int		 max_retries;		/* default 3 */
	int		 acks_late;		/* CFG_UNSET: take the queue's */
	int64_t		 soft_time_limit_ms;	/* CFG_UNSET: take the queue's */
	int64_t		 time_limit_ms;		/* CFG_UNSET: take the queue's */
	int64_t		 retry_backoff_ms;	/* CFG_UNSET or base delay */
	int64_t		 retry_backoff_max_ms;	/* default 600 s */
	int		 ignore_result;		/* 0/1, default 0 */
	struct cfg_limits limits;		/* CFG_UNSET: take the queue's */
	int		 line;
	int		 run_line;		/* position of the run: value */
	int		 run_col;
	char	       **autoretry_for;		/* exception type names */
	size_t		 nautoretry;
};

enum cfg_beat_kind {
	CFG_BEAT_EVERY = 0,
	CFG_BEAT_CRON
};

struct cfg_beat_entry {
	char		*name;
	char		*task;
	enum cfg_beat_kind kind;
	int64_t		 every_ms;
	char		*cron;			/* 5-field expression */
	char		*timezone;		/* default "UTC" */
	char		*args_json;		/* JSON text, default "[]" */
	char		*kwargs_json;		/* JSON text, default "{}" */
	char		*queue;			/* NULL: routed by task */
	int		 line;
	int		 skip_missed;		/* after downtime: skip, not run once */
};

/* The http child's listeners; a NULL address turns that one off. */
struct cfg_http {
	char		*listen;		/* job API, /metrics, /health */
	char		*monitor;		/* monitor page */
	char		*token_file;		/* bearer token for writes */
	int		 rate_limit;		/* requests/s per client, 0 = off */
	int64_t		 max_body;		/* bytes, default 64K */
};

struct config {
	char		*path;			/* file it was read from */
	enum cfg_environment environment;
	char		*broker;		/* redis://host:port/db */
	char		*result_backend;	/* defaults to broker */
	char		*database;		/* may be NULL */
	char		*hostname;		/* node name host part, default gethostname() */
	int64_t		 result_expires_ms;	/* default 1 day, 0 = never */
	int64_t		 shutdown_timeout_ms;	/* default 30 s */
	int		 track_started;		/* default 0 */
	int		 crash_limit;		/* crashes that park a queue, default 5, 0 = never */
	int64_t		 crash_window_ms;	/* within this, default 60 s */
	int		 events;		/* default 0 */

	enum cfg_log_target log_target;
	char		*log_file;		/* CFG_LOG_FILE */
	int		 log_level;		/* syslog priority, LOG_DEBUG..LOG_ERR */
	char		*pidfile;		/* may be NULL */
	char		*user;			/* may be NULL */
	char		*group;			/* may be NULL */

	struct cfg_queue *queues;
	size_t		 nqueues;
	struct cfg_task	*tasks;
	size_t		 ntasks;
	struct cfg_beat_entry *beat;
	size_t		 nbeat;

	char		*state_dir;		/* default LOCALSTATEDIR/lib/celeriac */
	char		*reports_dir;		/* default state_dir/reports */
	struct cfg_http	 http;
};

/*
 * Parse the file at path, apply the environment overrides (REDIS_URL,
 * DATABASE_URL, ENVIRONMENT) and validate.  On success returns a new tree
 * the caller owns (free with cfg_free()).  On failure returns NULL and
 * writes "file:line:column: key: what was expected" into err.
 */
struct config	*cfg_load(const char *path, char *err, size_t errlen);
void		 cfg_free(struct config *);

struct cfg_queue *cfg_queue_find(const struct config *, const char *name);
struct cfg_task	*cfg_task_find(const struct config *, const char *name);

/* Human units: "30s", "5m", "1h", "7d", "250ms" and bare seconds. */
int		 cfg_parse_duration(const char *, int64_t *ms);
/* "512M", "1G", "64K", "10" (bytes); binary multiples. */
int		 cfg_parse_size(const char *, int64_t *bytes);

const char	*cfg_environment_name(enum cfg_environment);

#endif
