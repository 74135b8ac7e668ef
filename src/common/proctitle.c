/*
 * proctitle.c - setproctitle() for Linux.
 *
 * Linux shows /proc/PID/cmdline, which is the argv area of the process.
 * The environment strings follow argv in memory; we copy them elsewhere
 * so the title may use both areas, as nginx and PostgreSQL do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "common/proctitle.h"

extern char **environ;

static char	*title_start;
static int	 comm_set;	/* reset in each new child */
static size_t	 title_len;
/* Global so no compiler drops the store: the copy must stay reachable. */
char		**proctitle_environ;

void
proctitle_init(int argc, char **argv)
{
	char	*end;
	char   **newenv;
	int	 i, n;

	if (argc == 0 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n] != NULL; n++)
		;
	newenv = calloc(n + 1, sizeof(*newenv));
	if (newenv == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		newenv[i] = strdup(environ[i]);
		if (newenv[i] == NULL)
			return;
	}
	/* Kept reachable on purpose: it lives as long as the process. */
	proctitle_environ = newenv;
	environ = newenv;
	/* argv[] itself keeps pointing here; callers parsed options already. */
	title_start = argv[0];
	title_len = end - argv[0];
}

void
proctitle_new_process(void)
{
	comm_set = 0;
}

void
proctitle_set(const char *fmt, ...)
{
	char	 buf[256];
	va_list	 ap;
	size_t	 len;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	{
		/* comm names the process (top, pgrep -x): set it once per
		 * role, not on every state change. */
		const char *comm = buf + (strncmp(buf, "celeriacd: ", 11) == 0 ?
		    11 : 0);
		if (!comm_set) {
			char name[16];
			comm_set = 1;
			memcpy(name, comm, 15);
			name[15] = '\0';
			prctl(PR_SET_NAME, name);
		}
	}
	if (title_start == NULL || title_len < 2)
		return;
	len = strlen(buf);
	if (len > title_len - 1)
		len = title_len - 1;
	memcpy(title_start, buf, len);
	memset(title_start + len, '\0', title_len - len);
}
