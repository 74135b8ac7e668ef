/*
 * http_int.h - what the files of the http child share.
 *
 * The child runs libmicrohttpd daemons (the job API with /metrics and
 * /health, and the monitor) whose pool threads call the route handlers,
 * plus two threads of its own: the sampler (graphs, oldest message ages,
 * time-limit kills) and the resender (pending jobs, the store's spool).
 * Every thread has its own Redis and PostgreSQL connections (conn.c), so
 * handlers never share a connection.
 */
#ifndef CELERIAC_HTTP_INT_H
#define CELERIAC_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "common/scoreboard.h"

#define HTTP_MAXQ		32	/* queues (scoreboard + config) */
#define HTTP_SAMPLE_MS		5000	/* sampler period */
#define HTTP_NSAMPLES		720	/* one hour of samples */
#define HTTP_JOBS_MAXLIMIT	100

/* Which listener a request came in on. */
#define HTTP_L_API		0x1
#define HTTP_L_MONITOR		0x2

enum http_redis_which {
	HTTP_BROKER = 0,
	HTTP_BACKEND
};

/* A growable string; oom is set (and the text dropped) on failure. */
struct http_buf {
	char		*s;
	size_t		 len, cap;
	int		 oom;
};

struct http_req {
	const char	*method;	/* "GET", "POST", "DELETE", ... */
	const char	*path;
	const char	*body;		/* NUL-terminated, may be "" */
	size_t		 bodylen;
	int		 listener;	/* HTTP_L_* */
	int		 authed;	/* bearer token given and right */
	void		*conn;		/* struct MHD_Connection */
};

struct http_resp {
	int		 status;
	const char	*ctype;
	char		*body;		/* malloc'd, owned */
	size_t		 len;
	const void	*static_body;	/* or this, not freed */
	const char	*allow;		/* Allow: for 405 */
	int		 retry_after;	/* seconds, 0 = none */
	int		 www_auth;	/* send WWW-Authenticate */
};

/* Per (task, queue) totals summed over the worker slots. */
struct http_tstat {
	char		 task[SB_TASKNAMELEN];
	char		 queue[SB_QUEUELEN];
	uint64_t	 count[SB_NOUTCOMES];
	uint64_t	 hist[SB_NHIST];
	double		 sum;
	int		 active;
};

/* Per queue, from the scoreboard (and the configuration at fork). */
struct http_qstat {
	char		 name[SB_QUEUELEN];
	int		 configured;	/* slots of the running config */
	int		 concurrency;	/* our config's, or -1 */
	int		 priority;
	int		 starting, idle, busy, stopping, down, parked;
	uint64_t	 restarts;
	uint64_t	 exits[SB_NEXITS];
	uint64_t	 timelimit_kills;
	uint64_t	 broker_reconnects;
	uint64_t	 processed;
	uint64_t	 count[SB_NOUTCOMES];
	int64_t		 rss;
};

struct http_agg {
	struct http_qstat q[HTTP_MAXQ];
	size_t		 nq;
	struct http_tstat *t;		/* malloc'd */
	size_t		 nt, tcap;
	uint64_t	 total[SB_NOUTCOMES];
	double		 sum;
	uint64_t	 nsum;		/* durations counted */
};

/* The child's shared state; set up before any thread starts. */
struct http_ctx {
	const struct config	*cfg;
	struct scoreboard	*sb;
	char			*token;		/* NULL: no auth */
	int			 has_db;
	struct store		*store;
	pthread_mutex_t		 store_mu;
	volatile int		 stop;
};

extern struct http_ctx http;

/* conn.c */
void		 http_conn_init(void);
void		 http_conn_release(void);
redisContext	*http_redis(enum http_redis_which);
/* After a failed command: drop the connection if it is broken. */
void		 http_redis_check(enum http_redis_which);
PGconn		*http_pg(void);
/* Run a query; NULL on failure (*down set when the database is gone). */
PGresult	*http_pg_query(const char *sql, int n, const char *const *v,
		    int *down);
void		 http_buf_add(struct http_buf *, const char *, size_t);
void		 http_buf_printf(struct http_buf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 http_buf_free(struct http_buf *);
void		 http_reply_json(struct http_resp *, int status,
		    json_object *);
void		 http_reply_text(struct http_resp *, int status,
		    const char *ctype, char *text, size_t len);
void		 http_error(struct http_resp *, int status, const char *msg,
		    const char *param);
const char	*http_arg(struct http_req *, const char *name);
int		 http_parse_int(const char *, long long min, long long max,
		    long long *out);

/* stats.c */
int		 http_agg_collect(struct http_agg *);
void		 http_agg_free(struct http_agg *);
struct http_qstat *http_agg_queue(struct http_agg *, const char *);
/* LLEN of each priority bucket; -1 each when the broker is down. */
int		 http_queue_depths(const char *queue, long long depth[4]);
int		 http_slot_live(const struct sb_slot *);

/* sampler.c */
int		 http_sampler_start(void);
void		 http_sampler_stop(void);
/* Unix time since when the oldest message of queue waits, 0 if none. */
double		 http_oldest_since(const char *queue, int *known);
/* Rates per second over the last minute; 0 when unknown. */
void		 http_rates(const char *queue, double *processed,
		    double *failed);
json_object	*http_series_json(double since);

/* jobs.c */
struct http_job {
	const char	*task;		/* Celery task name */
	const char	*queue;
	int		 priority;
	const char	*job_type;
	json_object	*args;		/* borrowed */
	json_object	*kwargs;	/* borrowed; job_id is added */
	/* out */
	long long	 job_id;	/* -1: not known yet */
	char		 task_id[40];
	int		 broker_ok;
	int		 db_ok;
	int		 queued;
};
int		 http_job_submit(struct http_job *);
int		 http_resender_start(void);
void		 http_resender_stop(void);
const char	*http_task_queue(const char *task, const char *dflt,
		    int *priority);
int		 http_revoke(const char *task_id);

/* api.c */
void		 api_route(struct http_req *, struct http_resp *);
/* A job (by id or task id) with its events; 400/404/503 otherwise. */
void		 api_job_detail(const char *ref, struct http_resp *);
/* Cancel: revoke with terminate, mark revoked; 404, 409, 503. */
void		 api_job_cancel(const char *ref, const char *by,
		    struct http_resp *);

/* queues.c */
void		 api_queues_status(struct http_req *, struct http_resp *);

/* metrics.c */
void		 metrics_route(struct http_req *, struct http_resp *);

/* health.c */
void		 health_route(struct http_req *, struct http_resp *);

/* monitor.c */
void		 monitor_route(struct http_req *, struct http_resp *);

/* monitor_tasks.c */
void		 monitor_tasks(struct http_req *, struct http_resp *);
void		 monitor_task(struct http_req *, struct http_resp *,
		    const char *id);
void		 monitor_action(struct http_req *, struct http_resp *,
		    const char *id, const char *action);

/* monitor_assets.c (generated from share/monitor) */
struct http_asset {
	const char		*path;
	const char		*ctype;
	const unsigned char	*data;
	size_t			 len;
};
extern const struct http_asset http_assets[];

#endif
