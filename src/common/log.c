/*
 * log.c - logging to stderr, syslog or a file.
 *
 * Every line carries the process role ("celeriacd", "worker reports#1")
 * so that one stream read by a person says who spoke.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

static int	 log_target = CFG_LOG_STDERR;
static int	 log_level = LOG_INFO;
static int	 log_fd = STDERR_FILENO;
static char	*log_file;
static char	 log_ident[64] = "celeriac";

static const char *
log_level_name(int pri)
{
	switch (pri) {
	case LOG_DEBUG:		return "debug";
	case LOG_INFO:		return "info";
	case LOG_NOTICE:	return "notice";
	case LOG_WARNING:	return "warning";
	case LOG_ERR:		return "error";
	default:		return "crit";
	}
}

static int
log_open_file(void)
{
	int fd;

	fd = open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (log_fd > STDERR_FILENO) {
		/* dup3 swaps the file under the same number at once, so a
		 * thread writing meanwhile never hits a closed fd. */
		if (dup3(fd, log_fd, O_CLOEXEC) == -1) {
			close(fd);
			return -1;
		}
		close(fd);
		return 0;
	}
	log_fd = fd;
	return 0;
}

int
log_init(const char *ident, int target, const char *file, int level)
{
	log_set_ident(ident);
	log_level = level;
	log_target = target;
	free(log_file);
	log_file = NULL;
	if (target == CFG_LOG_SYSLOG) {
		openlog("celeriacd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	} else if (target == CFG_LOG_FILE) {
		if ((log_file = strdup(file)) == NULL)
			return -1;
		if (log_open_file() == -1) {
			int saved = errno;
			log_target = CFG_LOG_STDERR;
			errno = saved;
			return -1;
		}
	}
	return 0;
}

void
log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void
log_set_level(int level)
{
	log_level = level;
}

/* SIGUSR1: logrotate has moved the file away; open a fresh one. */
int
log_reopen(void)
{
	if (log_target != CFG_LOG_FILE)
		return 0;
	return log_open_file();
}

void
log_close(void)
{
	if (log_target == CFG_LOG_SYSLOG)
		closelog();
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	free(log_file);
	log_file = NULL;
}

void
log_msg(int pri, int with_errno, const char *fmt, va_list ap)
{
	char		 msg[2048], line[2300], ts[40];
	int		 saved = errno, n;
	struct timespec	 now;
	struct tm	 tm;

	if (pri > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(saved));
	}
	if (log_target == CFG_LOG_SYSLOG) {
		syslog(pri, "%s: %s", log_ident, msg);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ld %s[%ld]: %s: %s\n", ts,
	    now.tv_nsec / 1000000, log_ident, (long)getpid(),
	    log_level_name(pri), msg);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write per line keeps lines whole when children share the fd. */
	(void)!write(log_fd, line, n);
	errno = saved;
}

#define LOG_FN(name, pri, err)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_msg(pri, err, fmt, ap);				\
	va_end(ap);						\
}

LOG_FN(log_debug, LOG_DEBUG, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_notice, LOG_NOTICE, 0)
LOG_FN(log_warnx, LOG_WARNING, 0)
LOG_FN(log_warn, LOG_WARNING, 1)
LOG_FN(log_errx, LOG_ERR, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msg(LOG_CRIT, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msg(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
