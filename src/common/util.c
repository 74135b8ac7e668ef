/*
 * util.c - allocation, clocks, fds and /proc readings.
 *
 * Linux specifics (close_range, /proc) live here so the rest of the tree
 * stays portable.
 */
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n ? n : 1)) == NULL)
		fatal("malloc(%zu)", n);
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p;

	if ((p = calloc(n ? n : 1, sz ? sz : 1)) == NULL)
		fatal("calloc(%zu, %zu)", n, sz);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	return n;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t
now_unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
fd_cloexec(int fd)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFD)) == -1)
		return -1;
	return fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int
fd_nonblock(int fd)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void
fd_close_from(int lowfd)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	/* Older kernels: walk /proc/self/fd rather than guess a maximum. */
	if ((d = opendir("/proc/self/fd")) == NULL) {
		long max = sysconf(_SC_OPEN_MAX);
		for (fd = lowfd; fd < max; fd++)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (fd >= lowfd && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
}

int64_t
proc_rss(int pid)
{
	char	 path[64], buf[256];
	FILE	*f;
	long	 pages, rss;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL ||
	    sscanf(buf, "%ld %ld", &pages, &rss) != 2) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

const char *
host_name(void)
{
	static char name[256];

	if (name[0] == '\0' && gethostname(name, sizeof(name) - 1) == -1)
		strcpy(name, "localhost");
	return name;
}

void
child_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handler;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	/* The master alone reacts to ^C and SIGHUP; children follow it. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

const char *
json_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t
json_int(json_object *o, const char *key)
{
	json_object *v;

	return o != NULL && json_object_object_get_ex(o, key, &v) ?
	    json_object_get_int64(v) : 0;
}
