/*
 * limits.c - rlimits, nice and privileges of a child.
 *
 * The order is fixed: rlimits and nice first, while we may still raise a
 * hard limit or lower nice as root; privileges last, so that a worker
 * never runs a task with more than the configuration gave it.
 */
#include <sys/resource.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/limits.h"

static int
set_one(int resource, const char *name, int64_t value, char *err,
    size_t errlen)
{
	struct rlimit rl;

	if (value == CFG_UNSET)
		return 0;
	rl.rlim_cur = rl.rlim_max = (rlim_t)value;
	if (setrlimit(resource, &rl) == -1) {
		snprintf(err, errlen, "setrlimit(%s, %lld): %s", name,
		    (long long)value, strerror(errno));
		return -1;
	}
	return 0;
}

int
limits_apply(const struct cfg_queue *q, char *err, size_t errlen)
{
	const struct cfg_limits *l = &q->limits;

	if (set_one(RLIMIT_CORE, "RLIMIT_CORE", l->core, err, errlen) == -1 ||
	    set_one(RLIMIT_FSIZE, "RLIMIT_FSIZE", l->file_size, err,
	    errlen) == -1 ||
	    set_one(RLIMIT_NOFILE, "RLIMIT_NOFILE", l->open_files, err,
	    errlen) == -1 ||
	    set_one(RLIMIT_CPU, "RLIMIT_CPU", l->cpu, err, errlen) == -1 ||
	    set_one(RLIMIT_AS, "RLIMIT_AS", l->address_space, err,
	    errlen) == -1)
		return -1;
	if (q->nice != 0) {
		errno = 0;
		if (setpriority(PRIO_PROCESS, 0, q->nice) == -1) {
			snprintf(err, errlen, "setpriority(%d): %s", q->nice,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
limits_drop_privileges(const char *user, const char *group, char *err,
    size_t errlen)
{
	struct passwd	*pw = NULL;
	struct group	*gr;
	gid_t		 gid;

	if (user == NULL && group == NULL)
		return 0;
	if (user && (pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "unknown user \"%s\"", user);
		return -1;
	}
	gid = pw ? pw->pw_gid : getgid();
	if (group) {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "unknown group \"%s\"", group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (geteuid() == 0 && setgroups(1, &gid) == -1) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "setgid(%d): %s", (int)gid,
		    strerror(errno));
		return -1;
	}
	if (pw && setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		snprintf(err, errlen, "setuid(%s): %s", user, strerror(errno));
		return -1;
	}
	return 0;
}
