/*
 * celeriacd - the celeriac daemon: parse the configuration, become a
 * daemon if asked, then hand over to the supervisor's main loop.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/celeriac.h"
#include "common/config.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"
#include "supervisor/child.h"
#include "supervisor/master.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/celeriac/celeriac.yml"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: celeriacd [-tdfhV] [-c file] [--queues name[=n],...] [--no-beat]\n"
	    "                 [--beat-only | --http-only]\n"
	    "  -c file        configuration file (default %s)\n"
	    "  -t             check the configuration and exit\n"
	    "  -f             stay in the foreground (the default)\n"
	    "  -d             run as a daemon\n"
	    "  --queues spec  run only these queues, e.g. reports=4,documents\n"
	    "  --no-beat      do not run the beat child\n"
	    "  --beat-only    run only the beat child\n"
	    "  --http-only    run only the http child\n"
	    "  -V             print the version and exit\n",
	    DEFAULT_CONFIG);
}

static int
pidfile_open(const char *path)
{
	char	buf[32];
	int	fd, n;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("pidfile %s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		log_errx("pidfile %s is held by a running celeriacd (pid %s); "
		    "refusing to start a second one", path, buf);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) == -1)
		log_warn("ftruncate %s", path);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (pwrite(fd, buf, n, 0) != n)
		log_warn("write %s", path);
	return fd;
}

/*
 * -d: the launching process waits until the daemon reports ready, so an
 * init script learns of a failure from our exit status.
 */
static int
daemonize(void)
{
	int	p[2], status;
	pid_t	pid;
	char	c;

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1 && c == 'R')
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(1);
	}
	close(p[0]);
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") == -1)
		fatal("chdir /");
	return p[1];
}

static void
null_stdio(int keep_stderr)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd == -1)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (!keep_stderr)
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queues", required_argument, NULL, 'Q' },
		{ "no-beat", no_argument, NULL, 'B' },
		{ "beat-only", no_argument, NULL, 'b' },
		{ "http-only", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct config		*cfg;
	struct master_opts	 mo;
	char			 err[CFG_ERRLEN];
	char			*path = NULL, *queues = NULL, *pidpath;
	int			 ch, test = 0, daemon_mode = 0, pidfd = -1, rc;

	memset(&mo, 0, sizeof(mo));
	mo.ready_fd = -1;
	mo.roles = MASTER_ROLE_ALL;
	while ((ch = getopt_long(argc, argv, "c:tdfhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':	path = xstrdup(optarg); break;
		case 't':	test = 1; break;
		case 'd':	daemon_mode = 1; break;
		case 'f':	daemon_mode = 0; break;
		case 'Q':	queues = xstrdup(optarg); break;
		case 'B':	mo.roles &= ~MASTER_ROLE_BEAT; break;
		case 'b':	mo.roles = MASTER_ROLE_BEAT; break;
		case 'H':	mo.roles = MASTER_ROLE_HTTP; break;
		case 'V':
			printf("celeriacd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (path == NULL)
		path = xstrdup(getenv("CELERIAC_CONFIG") ?
		    getenv("CELERIAC_CONFIG") : DEFAULT_CONFIG);
	{
		/* -d changes directory to /: reloads need an absolute path. */
		char *abs = realpath(path, NULL);
		if (abs != NULL) {
			free(path);
			path = abs;
		}
	}

	if ((cfg = master_load_config(path, queues, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "celeriacd: %s\n", err);
		if (test)
			fprintf(stderr, "celeriacd: configuration file %s "
			    "test failed\n", path);
		free(path);
		free(queues);
		return 1;
	}
	if (test) {
		fprintf(stderr, "celeriacd: configuration file %s test is "
		    "successful\n", path);
		cfg_free(cfg);
		free(path);
		free(queues);
		return 0;
	}

	if (log_init("celeriacd", cfg->log_target, cfg->log_file,
	    cfg->log_level) == -1) {
		fprintf(stderr, "celeriacd: log file %s: %s\n", cfg->log_file,
		    strerror(errno));
		return 1;
	}
	proctitle_init(argc, argv);
	if (daemon_mode) {
		mo.ready_fd = daemonize();
		child_detach_stderr = 1;
	}
	null_stdio(1);
	/* After the last fork of start-up, so it holds the master's pid. */
	if (cfg->pidfile && (pidfd = pidfile_open(cfg->pidfile)) == -1)
		return 1;
	mo.config_path = path;
	mo.queues = queues;
	pidpath = cfg->pidfile ? xstrdup(cfg->pidfile) : NULL;
	rc = master_run(cfg, &mo);	/* takes cfg: reloads replace it */
	if (pidfd != -1) {
		unlink(pidpath);
		close(pidfd);
	}
	free(pidpath);
	free(path);
	free(queues);
	log_close();
	return rc;
}
