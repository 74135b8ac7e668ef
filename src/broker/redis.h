/*
 * redis.h - Redis URLs and connections.  Every process opens its own
 * connections after fork; nothing here is shared between processes.
 */
#ifndef CELERIAC_REDIS_H
#define CELERIAC_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct redis_url {
	char	 host[256];
	int	 port;
	int	 db;
	char	 password[256];
	char	 socket[256];		/* unix socket path, or "" */
};

/* redis://[:password@]host[:port][/db] and unix:///path[?db=N]. */
int		 redis_url_parse(const char *url, struct redis_url *,
		    char *err, size_t errlen);
int		 redis_url_same_server(const struct redis_url *,
		    const struct redis_url *);

/*
 * Connect (with a connect timeout), AUTH and SELECT.  Returns a context
 * the caller frees with redisFree(), or NULL with the reason in err.
 * The socket is close-on-exec.
 */
redisContext	*redis_connect(const struct redis_url *, int timeout_ms,
		    char *err, size_t errlen);

/*
 * Run a command and check the reply type.  Returns the reply (free with
 * freeReplyObject) or NULL after logging what failed; on a connection
 * error c->err is set and the caller reconnects.
 */
redisReply	*redis_command(redisContext *c, const char *fmt, ...);
redisReply	*redis_commandv(redisContext *c, int argc, const char **argv,
		    const size_t *argvlen);

/* Read n pipelined replies; returns 0 if none was an error. */
int		 redis_read_replies(redisContext *c, int n, redisReply **last);

#endif
