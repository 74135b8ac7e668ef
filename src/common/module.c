/*
 * module.c - dlopen() of the daemon's optional parts (see module.h).
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/module.h"

#ifndef CELERIAC_MODULEDIR
#define CELERIAC_MODULEDIR "/usr/local/lib/celeriac"
#endif

struct loaded {
	const char	*name;
	void		*handle;
};

static struct loaded	 loaded[4];
static pthread_mutex_t	 loaded_mu = PTHREAD_MUTEX_INITIALIZER;

/* The directory of the running executable, or "" when unknown. */
static void
exe_dir(char *buf, size_t len)
{
	ssize_t	 n;
	char	*slash;

	n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) != NULL)
		*slash = '\0';
	else
		buf[0] = '\0';
}

static void *
module_open(const char *module, char *err, size_t errlen)
{
	char	 dir[PATH_MAX], path[PATH_MAX + 64];
	void	*h;

	exe_dir(dir, sizeof(dir));
	/* Next to the executable: a build tree, never an installed
	 * /usr/sbin, so a test never runs an installed module by mistake. */
	if (dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/%s", dir, module);
		if (access(path, R_OK) == 0)
			goto open;
	}
	snprintf(path, sizeof(path), "%s/%s", CELERIAC_MODULEDIR, module);
open:
	/* RTLD_NOW: a missing symbol is an error here, not a crash in the
	 * middle of a task. */
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
	return h;
}

void *
module_sym(const char *module, const char *sym, char *err, size_t errlen)
{
	void	*h = NULL, *p;
	size_t	 i;

	pthread_mutex_lock(&loaded_mu);
	for (i = 0; i < sizeof(loaded) / sizeof(*loaded); i++) {
		if (loaded[i].name == NULL) {
			if ((h = module_open(module, err, errlen)) != NULL) {
				loaded[i].name = module;
				loaded[i].handle = h;
			}
			break;
		}
		if (strcmp(loaded[i].name, module) == 0) {
			h = loaded[i].handle;
			break;
		}
	}
	pthread_mutex_unlock(&loaded_mu);
	if (h == NULL) {
		if (i == sizeof(loaded) / sizeof(*loaded))
			snprintf(err, errlen, "cannot load %s: too many "
			    "modules", module);
		return NULL;
	}
	if ((p = dlsym(h, sym)) == NULL)
		snprintf(err, errlen, "%s: no symbol %s", module, sym);
	return p;
}
