/*
 * daemon.c - `celeriac status`, `reload` and `stop`: what an operator
 * asks of a running celeriacd.  status reads what each host's control
 * child publishes in Redis, so it shows every host of the cluster;
 * reload and stop signal the local daemon through its pidfile.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/redis.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "supervisor/master.h"

static const char *
jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ?
	    json_object_get_string(v) : "";
}

static void
print_host(json_object *h)
{
	json_object	*ws, *w, *v;
	size_t		 i, n;
	int		 st;

	printf("host %s (master pid %lld, up %.0fs)\n", jstr(h, "host"),
	    (long long)json_int(h, "master_pid"),
	    json_object_object_get_ex(h, "uptime", &v) ?
	    json_object_get_double(v) : 0.0);
	printf("  %-16s %-5s %-8s %-8s %9s %7s %8s  %s\n", "QUEUE", "SLOT",
	    "PID", "STATE", "PROCESSED", "FAILED", "RESTARTS", "TASK");
	if (!json_object_object_get_ex(h, "workers", &ws))
		return;
	n = json_object_array_length(ws);
	for (i = 0; i < n; i++) {
		w = json_object_array_get_idx(ws, i);
		printf("  %-16s #%-4lld %-8lld %-8s %9lld %7lld %8lld  ",
		    jstr(w, "queue"), (long long)json_int(w, "index"),
		    (long long)json_int(w, "pid"), jstr(w, "state"),
		    (long long)json_int(w, "processed"),
		    (long long)json_int(w, "failed"),
		    (long long)json_int(w, "restarts"));
		if (json_object_object_get_ex(w, "task", &v))
			printf("%s[%s] for %.1fs", json_object_get_string(v),
			    jstr(w, "task_id"), json_object_get_double(
			    json_object_object_get_ex(w, "busy_seconds", &v) ?
			    v : NULL));
		st = (int)json_int(w, "last_exit");
		if (json_int(w, "restarts") > 0) {
			if (WIFSIGNALED(st))
				printf("%slast exit: signal %d%s",
				    json_object_object_get_ex(w, "task", &v) ?
				    "; " : "", WTERMSIG(st),
				    json_int(w, "last_kill") == 1 ?
				    " (hard time limit)" :
				    json_int(w, "last_kill") == 2 ? " (revoked)" :
				    json_int(w, "last_kill") == 3 ?
				    " (shutdown)" : "");
			else
				printf("%slast exit: status %d",
				    json_object_object_get_ex(w, "task", &v) ?
				    "; " : "", WEXITSTATUS(st));
		}
		printf("\n");
	}
	for (i = 0; i < n; i++) {
		w = json_object_array_get_idx(ws, i);
		if (strcmp(jstr(w, "state"), "parked") == 0 &&
		    json_int(w, "index") == 0)
			printf("  queue %s is PARKED (crash loop or cannot "
			    "start); fix it and reload\n", jstr(w, "queue"));
	}
}

int
ctl_status(struct config *cfg, int argc, char **argv)
{
	redisContext	*c;
	redisReply	*r, *g, *keys;
	json_object	*h;
	size_t		 i;
	char		 cursor[64] = "0";
	int		 json = argc > 1 && strcmp(argv[1], "--json") == 0;
	int		 hosts = 0;

	if ((c = ctl_connect(cfg->broker)) == NULL)
		return 1;
	/* SCAN, not KEYS: never block a busy broker for a status line. */
	do {
		r = redis_command(c, "SCAN %s MATCH celeriac.status.* COUNT 500",
		    cursor);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2) {
			if (r)
				freeReplyObject(r);
			redisFree(c);
			return 1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		keys = r->element[1];
		for (i = 0; i < keys->elements; i++) {
			g = redis_command(c, "GET %s", keys->element[i]->str);
			if (g == NULL || g->type != REDIS_REPLY_STRING) {
				if (g)
					freeReplyObject(g);
				continue;
			}
			hosts++;
			if (json)
				printf("%s\n", g->str);
			else if ((h = json_tokener_parse(g->str)) != NULL) {
				print_host(h);
				json_object_put(h);
			}
			freeReplyObject(g);
		}
		if (strcmp(cursor, "0") != 0)
			freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	freeReplyObject(r);
	redisFree(c);
	if (hosts == 0) {
		fprintf(stderr, "celeriac: no celeriacd is running against %s "
		    "(no status in the last %d s)\n", cfg->broker, 10);
		return 1;
	}
	return 0;
}

static pid_t
read_pidfile(const struct config *cfg)
{
	FILE	*f;
	long	 pid = 0;

	if (cfg->pidfile == NULL) {
		fprintf(stderr, "celeriac: no pidfile in %s; signal celeriacd "
		    "with kill(1)\n", cfg->path);
		return -1;
	}
	if ((f = fopen(cfg->pidfile, "re")) == NULL) {
		fprintf(stderr, "celeriac: %s: %s (is celeriacd running?)\n",
		    cfg->pidfile, strerror(errno));
		return -1;
	}
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "celeriac: %s: no pid in it\n", cfg->pidfile);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (kill((pid_t)pid, 0) == -1) {
		fprintf(stderr, "celeriac: celeriacd (pid %ld) is not running\n",
		    pid);
		return -1;
	}
	return (pid_t)pid;
}

/*
 * Still running?  A stopped daemon removes its pidfile; one not yet
 * reaped by its parent is a zombie, which kill(pid, 0) cannot tell.
 */
static int
daemon_alive(const struct config *cfg, pid_t pid)
{
	char	path[64], buf[512], *p;
	FILE	*f;
	int	zombie = 0;

	if (kill(pid, 0) == -1 || access(cfg->pidfile, F_OK) == -1)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    p[1] == ' ' && p[2] == 'Z')
			zombie = 1;
		fclose(f);
	}
	return !zombie;
}

int
ctl_reload(struct config *cfg, int argc, char **argv)
{
	struct config	*check;
	char		 err[CFG_ERRLEN];
	pid_t		 pid;

	/* The same check the daemon makes: refuse to signal a bad file. */
	if ((check = master_load_config(cfg->path, NULL, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "celeriac: %s\nceleriac: not reloading: the "
		    "running configuration stays\n", err);
		return 1;
	}
	cfg_free(check);
	if ((pid = read_pidfile(cfg)) == -1)
		return 1;
	if (kill(pid, SIGHUP) == -1) {
		fprintf(stderr, "celeriac: kill %d: %s\n", (int)pid,
		    strerror(errno));
		return 1;
	}
	printf("reload signalled to celeriacd (pid %d)\n", (int)pid);
	return 0;
}

int
ctl_stop(struct config *cfg, int argc, char **argv)
{
	int	 cold = argc > 1 && strcmp(argv[1], "--cold") == 0;
	pid_t	 pid;
	int64_t	 deadline;

	if ((pid = read_pidfile(cfg)) == -1)
		return 1;
	if (kill(pid, cold ? SIGQUIT : SIGTERM) == -1) {
		fprintf(stderr, "celeriac: kill %d: %s\n", (int)pid,
		    strerror(errno));
		return 1;
	}
	deadline = mono_ms() + cfg->shutdown_timeout_ms + 10000;
	while (daemon_alive(cfg, pid) && mono_ms() < deadline)
		usleep(20 * 1000);
	if (daemon_alive(cfg, pid)) {
		fprintf(stderr, "celeriac: celeriacd (pid %d) still running\n",
		    (int)pid);
		return 1;
	}
	printf("celeriacd (pid %d) stopped\n", (int)pid);
	return 0;
}
