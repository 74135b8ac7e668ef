/*
 * log.h - one logger for every process role: stderr in the foreground,
 * syslog or a file in production.  Children inherit the target across
 * fork; log_reopen() serves SIGUSR1 (logrotate).
 */
#ifndef CELERIAC_LOG_H
#define CELERIAC_LOG_H

#include <stdarg.h>
#include <syslog.h>

int	log_init(const char *ident, int target, const char *file, int level);
void	log_set_ident(const char *ident);
void	log_set_level(int level);
int	log_reopen(void);
void	log_close(void);

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	log_msg(int pri, int with_errno, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));

#endif
