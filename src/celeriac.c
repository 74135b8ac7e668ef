/*
 * celeriac - the control tool: send tasks, read results, run tasks
 * inline, inspect dead letters.  It reads the same configuration file as
 * the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "ctl/ctl.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/celeriac/celeriac.yml"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: celeriac [-c file] command [arguments]\n"
	    "commands:\n"
	    "  send TASK [--args JSON] [--kwargs JSON] [--queue Q] "
	    "[--priority N]\n"
	    "       [--countdown S] [--wait [--timeout S]]\n"
	    "  result TASK_ID\n"
	    "  run TASK [--args JSON] [--kwargs JSON]\n"
	    "  revoke TASK_ID [--terminate [--signal SIG]]\n"
	    "  status [--json]\n"
	    "  inspect COMMAND [ARG...] [-d NODE,...] [-t SECONDS] [--json]\n"
	    "  control COMMAND [ARG...] [-d NODE,...] [-t SECONDS] [--json]\n"
	    "  reload\n"
	    "  stop [--cold]\n"
	    "  beat status\n"
	    "  db migrate\n"
	    "  jobs [--status S] [--queue Q] [--limit N]\n"
	    "  job ID\n"
	    "  demo-data [--clients N] [--seed S] [--replace]\n"
	    "  dead list | retry ID|--all | purge [--older-than D]\n");
}

static const struct {
	const char	*name;
	int		(*fn)(struct config *, int, char **);
} commands[] = {
	{ "send", ctl_send },
	{ "result", ctl_result },
	{ "run", ctl_run },
	{ "dead", ctl_dead },
	{ "revoke", ctl_revoke },
	{ "status", ctl_status },
	{ "inspect", ctl_inspect },
	{ "control", ctl_control },
	{ "reload", ctl_reload },
	{ "stop", ctl_stop },
	{ "beat", ctl_beat },
	{ "db", ctl_db },
	{ "jobs", ctl_jobs },
	{ "job", ctl_job },
	{ "demo-data", ctl_demo_data },
};

int
main(int argc, char **argv)
{
	struct config	*cfg;
	const char	*path = getenv("CELERIAC_CONFIG");
	char		 err[CFG_ERRLEN];
	size_t		 i;
	int		 a = 1, rc;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		path = argv[2];
		a = 3;
	}
	if (a >= argc || strcmp(argv[a], "-h") == 0 ||
	    strcmp(argv[a], "--help") == 0) {
		usage(a >= argc ? stderr : stdout);
		return a >= argc ? 2 : 0;
	}
	if (strcmp(argv[a], "-V") == 0 || strcmp(argv[a], "--version") == 0) {
		printf("celeriac %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (strcmp(argv[a], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(*commands)) {
		fprintf(stderr, "celeriac: unknown command \"%s\"\n", argv[a]);
		usage(stderr);
		return 2;
	}
	if (path == NULL)
		path = DEFAULT_CONFIG;
	if ((cfg = cfg_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "celeriac: %s\n", err);
		return 1;
	}
	log_init("celeriac", 0, NULL, LOG_WARNING);
	rc = commands[i].fn(cfg, argc - a, argv + a);
	cfg_free(cfg);
	return rc;
}
