/*
 * util.h - small helpers every role uses: allocation that fails loudly
 * at start-up, clocks, and fd hygiene.
 */
#ifndef CELERIAC_UTIL_H
#define CELERIAC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* The x* family calls fatal() on OOM: use at start-up and in the CLI only. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));

int64_t	 mono_ms(void);		/* CLOCK_MONOTONIC in milliseconds */
int64_t	 mono_us(void);		/* CLOCK_MONOTONIC in microseconds */
double	 now_unix(void);	/* CLOCK_REALTIME as Unix seconds */
int64_t	 now_unix_us(void);	/* the same in microseconds */

int	 fd_cloexec(int fd);
int	 fd_nonblock(int fd);
/* Close every fd >= lowfd (close_range when the kernel has it). */
void	 fd_close_from(int lowfd);

/* Resident set size of pid from /proc, bytes; -1 if unknown. */
int64_t	 proc_rss(int pid);

const char *host_name(void);	/* cached gethostname() */

/*
 * The signals of every child of the master: handler takes SIGTERM (stop)
 * and SIGUSR1 (reopen logs); SIGINT and SIGHUP are the master's alone,
 * SIGPIPE is an error return.  A role adds what else it needs.
 */
void	 child_signals(void (*handler)(int));

/* The string member key of o, or NULL (o NULL, key absent, not a string). */
const char	*json_str(json_object *o, const char *key);
/* The integer member key of o, 0 if absent. */
int64_t		 json_int(json_object *o, const char *key);

#endif
