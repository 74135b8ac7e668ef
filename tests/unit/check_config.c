/*
 * check_config.c - unit tests of the configuration loader (config.c,
 * config_yaml.c) and of the unit parsers (units.c).
 *
 * Error tests write a small YAML text to a temporary file and check the
 * whole "file:line:column: key.path: " prefix of the message, since that
 * position is what an operator acts on.  Run under valgrind with
 * CK_FORK=no to check that no path leaks.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <check.h>

#include "common/config.h"
#include "tasks/registry.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR	"tests/unit/data"
#endif
#define EXAMPLE_CONFIG	TEST_DATA_DIR "/../../../etc/celeriac.yml"
#define FULL_CONFIG	TEST_DATA_DIR "/cfg-full.yml"

static char	 tmp_path[64];
static char	 errbuf[CFG_ERRLEN];

static void
clear_env(void)
{
	unsetenv("ENVIRONMENT");
	unsetenv("REDIS_URL");
	unsetenv("DATABASE_URL");
}

static const char *
write_yaml(const char *text)
{
	size_t	 len = strlen(text);
	int	 fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/check_config-XXXXXX");
	fd = mkstemp(tmp_path);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return tmp_path;
}

static struct config *
load_ok_at(int line, const char *text)
{
	struct config *cfg;

	cfg = cfg_load(write_yaml(text), errbuf, sizeof(errbuf));
	unlink(tmp_path);
	ck_assert_msg(cfg != NULL, "line %d: unexpected error: %s", line,
	    errbuf);
	return cfg;
}

/*
 * Load text expecting a failure whose message starts with
 * "<file>:<where>"; return the rest of the message.
 */
static const char *
load_err_at(int line, const char *text, const char *where)
{
	struct config *cfg;
	char	 want[CFG_ERRLEN];

	cfg = cfg_load(write_yaml(text), errbuf, sizeof(errbuf));
	unlink(tmp_path);
	if (cfg != NULL) {
		cfg_free(cfg);
		ck_abort_msg("line %d: loaded, expected an error at %s", line,
		    where);
	}
	snprintf(want, sizeof(want), "%s:%s", tmp_path, where);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0,
	    "line %d: error \"%s\" does not start with \"%s\"", line, errbuf,
	    want);
	ck_assert_msg(strchr(errbuf, '\n') == NULL, "line %d: two lines",
	    line);
	return errbuf + strlen(want);
}

#define load_ok(text)		load_ok_at(__LINE__, (text))
#define load_err(text, where)	load_err_at(__LINE__, (text), (where))
#define err_is(text, where, msg) \
	ck_assert_str_eq(load_err((text), (where)), (msg))

/* The 1-based line of the first line of path that starts with text. */
static int
line_of(const char *path, const char *text)
{
	char	 buf[512];
	FILE	*fp;
	int	 n = 0;

	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		n++;
		if (strncmp(buf, text, strlen(text)) == 0) {
			fclose(fp);
			return n;
		}
	}
	fclose(fp);
	ck_abort_msg("%s: no line starts with %s", path, text);
	return -1;
}

#define Q1	"queues:\n  q:\n"	/* the smallest valid file */

/*
 * Loading valid files.
 */

START_TEST(test_example)
{
	struct config *cfg;
	struct cfg_queue *q;
	struct cfg_task *t;
	struct cfg_beat_entry *b;
	char	 host[256];

	cfg = cfg_load(EXAMPLE_CONFIG, errbuf, sizeof(errbuf));
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_str_eq(cfg->path, EXAMPLE_CONFIG);
	ck_assert_int_eq(cfg->environment, CFG_ENV_DEVELOPMENT);
	ck_assert_str_eq(cfg->broker, "redis://127.0.0.1:6379/0");
	ck_assert_str_eq(cfg->result_backend, cfg->broker);
	ck_assert_ptr_null(cfg->database);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	ck_assert_str_eq(cfg->hostname, host);
	ck_assert_int_eq(cfg->result_expires_ms, 86400000);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 10000);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_STDERR);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->track_started, 0);
	ck_assert_int_eq(cfg->events, 0);
	ck_assert_ptr_null(cfg->pidfile);

	ck_assert_uint_eq(cfg->nqueues, 4);
	q = cfg_queue_find(cfg, "reports");
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(q->concurrency, 2);
	ck_assert_int_eq(q->priority, 5);
	ck_assert_int_eq(q->soft_time_limit_ms, 540000);
	ck_assert_int_eq(q->time_limit_ms, 600000);
	ck_assert_int_eq(q->limits.address_space, 1073741824);
	ck_assert_int_eq(q->limits.cpu, 900);
	ck_assert_int_eq(q->limits.open_files, 256);
	ck_assert_int_eq(q->limits.core, CFG_UNSET);
	ck_assert_int_eq(q->acks_late, 1);
	ck_assert_int_eq(q->line, line_of(EXAMPLE_CONFIG, "  reports:"));
	q = cfg_queue_find(cfg, "documents");
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(q->priority, 7);
	ck_assert_int_eq(q->concurrency, 1);
	ck_assert_int_eq(q->time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(cfg_queue_find(cfg, "notifications")->priority, 3);
	ck_assert_int_eq(cfg_queue_find(cfg, "celery")->priority, 6);

	t = cfg_task_find(cfg, "reports.generate_dummy_report");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->run_kind, CFG_RUN_BUILTIN);
	ck_assert_str_eq(t->builtin, "reports.dummy");
	ck_assert_str_eq(t->queue, "reports");
	ck_assert_int_eq(t->max_retries, 3);
	ck_assert_int_eq(t->acks_late, CFG_UNSET);
	ck_assert_int_eq(t->line, line_of(EXAMPLE_CONFIG,
	    "  reports.generate_dummy_report:"));

	ck_assert_uint_eq(cfg->nbeat, 3);
	b = &cfg->beat[0];
	ck_assert_str_eq(b->name, "cleanup-old-jobs");
	ck_assert_str_eq(b->task, "celeriac.cleanup_jobs");
	ck_assert_int_eq(b->kind, CFG_BEAT_EVERY);
	ck_assert_int_eq(b->every_ms, 3600000);
	ck_assert_str_eq(b->kwargs_json, "{\"older_than\":\"7d\"}");
	ck_assert_str_eq(b->args_json, "[]");
	ck_assert_int_eq(b->line, line_of(EXAMPLE_CONFIG,
	    "  cleanup-old-jobs:"));
	ck_assert_int_eq(cfg->beat[1].every_ms, 300000);
	b = &cfg->beat[2];
	ck_assert_str_eq(b->name, "daily-metrics");
	ck_assert_int_eq(b->kind, CFG_BEAT_CRON);
	ck_assert_str_eq(b->cron, "0 0 * * *");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_full)
{
	struct config *cfg;
	struct cfg_queue *q;
	struct cfg_task *t;
	struct cfg_beat_entry *b;

	cfg = cfg_load(FULL_CONFIG, errbuf, sizeof(errbuf));
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(cfg->environment, CFG_ENV_PRODUCTION);
	ck_assert_str_eq(cfg->broker, "redis://broker.example:6380/2");
	ck_assert_str_eq(cfg->result_backend, "redis://results.example:6381/3");
	ck_assert_str_eq(cfg->database,
	    "postgresql://celeriac@db.example/jobs");
	ck_assert_str_eq(cfg->hostname, "node7.example");
	ck_assert_int_eq(cfg->result_expires_ms, 0);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 45000);
	ck_assert_int_eq(cfg->crash_limit, 0);
	ck_assert_int_eq(cfg->crash_window_ms, 120000);
	ck_assert_int_eq(cfg->track_started, 1);
	ck_assert_int_eq(cfg->events, 1);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_FILE);
	ck_assert_str_eq(cfg->log_file, "/var/log/celeriac/celeriacd.log");
	ck_assert_int_eq(cfg->log_level, LOG_NOTICE);
	ck_assert_str_eq(cfg->pidfile, "/run/celeriac/celeriacd.pid");
	ck_assert_str_eq(cfg->user, "celeriac");
	ck_assert_str_eq(cfg->group, "nogroup");

	ck_assert_uint_eq(cfg->nqueues, 2);
	q = &cfg->queues[0];
	ck_assert_str_eq(q->name, "reports");
	ck_assert_int_eq(q->concurrency, 4);
	ck_assert_int_eq(q->priority, 9);
	ck_assert_int_eq(q->soft_time_limit_ms, 250);
	ck_assert_int_eq(q->time_limit_ms, 120000);
	ck_assert_int_eq(q->limits.address_space, 2LL << 30);
	ck_assert_int_eq(q->limits.cpu, 2);	/* 1500ms, rounded up */
	ck_assert_int_eq(q->limits.open_files, 1048576);
	ck_assert_int_eq(q->limits.core, 0);
	ck_assert_int_eq(q->limits.file_size, 64 * 1024);
	ck_assert_int_eq(q->max_tasks_per_child, 1000);
	ck_assert_int_eq(q->max_memory_per_child, 300LL << 20);
	ck_assert_int_eq(q->nice, -20);
	ck_assert_int_eq(q->acks_late, 1);
	ck_assert_int_eq(q->line, line_of(FULL_CONFIG, "  reports:"));
	q = cfg_queue_find(cfg, "idle.queue:local-1");
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(q->concurrency, 0);
	ck_assert_int_eq(q->nice, 19);
	/* production gives no default time limit */
	ck_assert_int_eq(q->time_limit_ms, CFG_UNSET);

	ck_assert_uint_eq(cfg->ntasks, 2);
	t = &cfg->tasks[0];
	ck_assert_str_eq(t->name, "app.tasks.generate_dummy_report");
	ck_assert_int_eq(t->max_retries, 0);
	ck_assert_int_eq(t->acks_late, 0);
	ck_assert_int_eq(t->soft_time_limit_ms, 10000);
	ck_assert_int_eq(t->time_limit_ms, 60000);
	ck_assert_int_eq(t->retry_backoff_ms, 2000);
	ck_assert_int_eq(t->retry_backoff_max_ms, 3600000);
	ck_assert_int_eq(t->ignore_result, 1);
	ck_assert_int_eq(t->limits.open_files, 64);
	ck_assert_int_eq(t->limits.cpu, 7);
	ck_assert_int_eq(t->limits.address_space, CFG_UNSET);
	ck_assert_uint_eq(t->nautoretry, 2);
	ck_assert_str_eq(t->autoretry_for[0], "ConnectionError");
	ck_assert_str_eq(t->autoretry_for[1], "celeriac.errors.Busy");
	ck_assert_int_eq(t->run_line, line_of(FULL_CONFIG,
	    "    run: builtin:reports.dummy"));
	ck_assert_int_eq(t->run_col, 10);
	t = cfg_task_find(cfg, "ocr");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->run_kind, CFG_RUN_EXEC);
	ck_assert_uint_eq(t->argc, 4);
	ck_assert_str_eq(t->argv[2], "fr");
	ck_assert_str_eq(t->argv[3], "");
	ck_assert_ptr_null(t->argv[4]);
	ck_assert_ptr_null(t->builtin);
	ck_assert_int_eq(t->retry_backoff_ms, CFG_UNSET);
	ck_assert_int_eq(t->line, line_of(FULL_CONFIG, "  ocr:"));
	ck_assert_int_eq(t->run_line, t->line + 2);	/* the list below */
	ck_assert_int_eq(t->run_col, 7);
	ck_assert_uint_eq(t->nautoretry, 1);
	ck_assert_str_eq(t->autoretry_for[0], "Exception");

	ck_assert_uint_eq(cfg->nbeat, 2);
	b = &cfg->beat[0];
	ck_assert_str_eq(b->name, "nightly");
	ck_assert_int_eq(b->kind, CFG_BEAT_CRON);
	ck_assert_str_eq(b->cron, "30  2 * * 1-5");
	ck_assert_str_eq(b->timezone, "Europe/Paris");
	ck_assert_str_eq(b->args_json,
	    "[42,\"42\",true,null,2.5,[\"a\"],{\"b\":1}]");
	ck_assert_str_eq(b->kwargs_json,
	    "{\"job_id\":null,\"pages\":16,\"name\":\"d\\\"oc\"}");
	ck_assert_str_eq(b->queue, "reports");
	b = &cfg->beat[1];
	ck_assert_int_eq(b->kind, CFG_BEAT_EVERY);
	ck_assert_int_eq(b->every_ms, 7 * 86400000LL);
	ck_assert_str_eq(b->timezone, "UTC");
	ck_assert_ptr_null(b->queue);
	ck_assert_int_eq(b->line, line_of(FULL_CONFIG, "  tick:"));
	cfg_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *cfg;
	struct cfg_queue *q;
	struct cfg_task *t;
	struct cfg_beat_entry *b;

	cfg = load_ok("# comment\n"
	    "queues:\n"
	    "  q:\n"
	    "tasks:\n"
	    "  t: {run: builtin:x, queue: q}\n"
	    "beat:\n"
	    "  b: {task: t, every: 10}\n");
	ck_assert_int_eq(cfg->environment, CFG_ENV_DEVELOPMENT);
	ck_assert_str_eq(cfg->broker, "redis://127.0.0.1:6379/0");
	ck_assert_str_eq(cfg->result_backend, "redis://127.0.0.1:6379/0");
	ck_assert_ptr_null(cfg->database);
	ck_assert_ptr_nonnull(cfg->hostname);
	ck_assert_int_eq(cfg->result_expires_ms, 86400000);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 10000);
	ck_assert_int_eq(cfg->crash_limit, 5);
	ck_assert_int_eq(cfg->crash_window_ms, 60000);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_STDERR);
	ck_assert_ptr_null(cfg->log_file);
	ck_assert_ptr_null(cfg->user);
	ck_assert_ptr_null(cfg->group);

	q = &cfg->queues[0];
	ck_assert_str_eq(q->name, "q");
	ck_assert_int_eq(q->line, 3);
	ck_assert_int_eq(q->concurrency, 1);
	ck_assert_int_eq(q->priority, 0);
	ck_assert_int_eq(q->soft_time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(q->time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(q->limits.address_space, CFG_UNSET);
	ck_assert_int_eq(q->limits.cpu, CFG_UNSET);
	ck_assert_int_eq(q->limits.open_files, CFG_UNSET);
	ck_assert_int_eq(q->limits.core, CFG_UNSET);
	ck_assert_int_eq(q->limits.file_size, CFG_UNSET);
	ck_assert_int_eq(q->max_tasks_per_child, CFG_UNSET);
	ck_assert_int_eq(q->max_memory_per_child, CFG_UNSET);
	ck_assert_int_eq(q->nice, 0);
	ck_assert_int_eq(q->acks_late, 0);

	t = &cfg->tasks[0];
	ck_assert_int_eq(t->line, 5);
	ck_assert_int_eq(t->max_retries, 3);
	ck_assert_int_eq(t->acks_late, CFG_UNSET);
	ck_assert_int_eq(t->soft_time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(t->time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(t->retry_backoff_ms, CFG_UNSET);
	ck_assert_int_eq(t->retry_backoff_max_ms, 600000);
	ck_assert_int_eq(t->ignore_result, 0);
	ck_assert_int_eq(t->limits.cpu, CFG_UNSET);
	ck_assert_int_eq(t->limits.open_files, CFG_UNSET);
	ck_assert_ptr_null(t->autoretry_for);
	ck_assert_uint_eq(t->nautoretry, 0);
	ck_assert_int_eq(t->run_line, 5);
	ck_assert_int_eq(t->run_col, 12);

	b = &cfg->beat[0];
	ck_assert_int_eq(b->line, 7);
	ck_assert_int_eq(b->every_ms, 10000);	/* bare number: seconds */
	ck_assert_str_eq(b->timezone, "UTC");
	ck_assert_str_eq(b->args_json, "[]");
	ck_assert_str_eq(b->kwargs_json, "{}");
	ck_assert_ptr_null(b->queue);
	ck_assert_ptr_null(b->cron);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_values)
{
	struct config *cfg;

	/* every spelling of a boolean, in any case */
	cfg = load_ok("track_started: TRUE\nevents: Yes\n"
	    "queues:\n"
	    "  a: {acks_late: on}\n"
	    "  b: {acks_late: OFF}\n"
	    "  c: {acks_late: no}\n"
	    "  d: {acks_late: False, soft_time_limit: 30, time_limit: \"31\"}\n"
	    "tasks:\n"
	    "  t1: {run: [prog], queue: a, retry_backoff: true,"
	    " acks_late: yes}\n"
	    "  t2: {run: [prog], queue: a, retry_backoff: 0}\n"
	    "  t3: {run: [prog], queue: a, retry_backoff: 250ms}\n");
	ck_assert_int_eq(cfg->track_started, 1);
	ck_assert_int_eq(cfg->events, 1);
	ck_assert_int_eq(cfg->queues[0].acks_late, 1);
	ck_assert_int_eq(cfg->queues[1].acks_late, 0);
	ck_assert_int_eq(cfg->queues[2].acks_late, 0);
	ck_assert_int_eq(cfg->queues[3].acks_late, 0);
	ck_assert_int_eq(cfg->queues[3].soft_time_limit_ms, 30000);
	ck_assert_int_eq(cfg->queues[3].time_limit_ms, 31000);
	ck_assert_int_eq(cfg->tasks[0].retry_backoff_ms, 1000);
	ck_assert_int_eq(cfg->tasks[0].acks_late, 1);
	ck_assert_int_eq(cfg->tasks[1].retry_backoff_ms, CFG_UNSET);
	ck_assert_int_eq(cfg->tasks[2].retry_backoff_ms, 250);
	cfg_free(cfg);

	/* log.file alone implies target: file */
	cfg = load_ok("log: {file: /tmp/x.log, level: warning}\n" Q1);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_FILE);
	ck_assert_str_eq(cfg->log_file, "/tmp/x.log");
	ck_assert_int_eq(cfg->log_level, LOG_WARNING);
	cfg_free(cfg);
	cfg = load_ok("log: {target: syslog, level: error}\n" Q1);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_SYSLOG);
	ck_assert_int_eq(cfg->log_level, LOG_ERR);
	cfg_free(cfg);
	cfg = load_ok("log: {level: info}\nenvironment: test\n" Q1);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	cfg_free(cfg);

	/* anchors are harmless without aliases; empty task/beat maps */
	cfg = load_ok("queues:\n  q: &anchor {priority: 1}\n"
	    "tasks:\nbeat: {}\n");
	ck_assert_int_eq(cfg->queues[0].priority, 1);
	ck_assert_uint_eq(cfg->ntasks, 0);
	ck_assert_uint_eq(cfg->nbeat, 0);
	ck_assert_ptr_null(cfg_task_find(cfg, "x"));
	cfg_free(cfg);
}
END_TEST

/* Beat arguments are typed as Python's yaml.safe_load types them. */
START_TEST(test_beat_json)
{
	struct config *cfg;

	cfg = load_ok(Q1 "beat:\n"
	    "  b:\n"
	    "    task: t\n"
	    "    every: 1m\n"
	    "    args: [1, \"2\", '3', -4, +5, 0x1F, 010, 0b101, 1_000,"
	    " 99999999999999999999999, 1.5, .5, 1., -2.5e+3, 1e3, 0.1,"
	    " yes, No, TRUE, yES, ~, null, NULL, nULL, \"\", abc, 1:30,"
	    " .inf, \"tab\\tquote\\\"back\\\\\", é, [], {},"
	    " [a, {b: [c]}]]\n"
	    "    kwargs: {a: 1, \"b c\": [], 3: x, 'd': '4'}\n");
	ck_assert_str_eq(cfg->beat[0].args_json,
	    "[1,\"2\",\"3\",-4,5,31,8,5,1000,99999999999999999999999,"
	    "1.5,0.5,1.0,-2500.0,\"1e3\",0.1,"
	    "true,false,true,\"yES\",null,null,null,\"nULL\",\"\",\"abc\","
	    "\"1:30\",\".inf\",\"tab\\tquote\\\"back\\\\\",\"é\",[],{},"
	    "[\"a\",{\"b\":[\"c\"]}]]");
	ck_assert_str_eq(cfg->beat[0].kwargs_json,
	    "{\"a\":1,\"b c\":[],\"3\":\"x\",\"d\":\"4\"}");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_find)
{
	struct config *cfg;

	cfg = load_ok("queues:\n  a.b:\n  c:\n"
	    "tasks:\n  x.y.z: {run: builtin:n, queue: c}\n");
	ck_assert_ptr_eq(cfg_queue_find(cfg, "a.b"), &cfg->queues[0]);
	ck_assert_ptr_eq(cfg_queue_find(cfg, "c"), &cfg->queues[1]);
	ck_assert_ptr_null(cfg_queue_find(cfg, "a"));
	ck_assert_ptr_eq(cfg_task_find(cfg, "x.y.z"), &cfg->tasks[0]);
	ck_assert_ptr_null(cfg_task_find(cfg, "x.y"));
	ck_assert_ptr_null(cfg_queue_find(NULL, "a"));
	ck_assert_ptr_null(cfg_task_find(NULL, "a"));
	cfg_free(cfg);
	cfg_free(NULL);
	ck_assert_str_eq(cfg_environment_name(CFG_ENV_DEVELOPMENT),
	    "development");
	ck_assert_str_eq(cfg_environment_name(CFG_ENV_TEST), "test");
	ck_assert_str_eq(cfg_environment_name(CFG_ENV_PRODUCTION),
	    "production");
	ck_assert_str_eq(cfg_environment_name((enum cfg_environment)7),
	    "unknown");
}
END_TEST

/*
 * Errors: the file as a whole.
 */

START_TEST(test_err_file)
{
	struct config *cfg;

	cfg = cfg_load("/nonexistent/celeriac.yml", errbuf, sizeof(errbuf));
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(errbuf, "/nonexistent/celeriac.yml: cannot open: "
	    "No such file or directory");
	/* a NULL or tiny error buffer is fine */
	ck_assert_ptr_null(cfg_load("/nonexistent/x", NULL, 0));
	ck_assert_ptr_null(cfg_load("/nonexistent/x", errbuf, 4));
	ck_assert_str_eq(errbuf, "/no");

	err_is("", "1:1: ", "expected a mapping at the top level, got an "
	    "empty file");
	err_is("# nothing but a comment\n\n", "1:1: ", "expected a mapping "
	    "at the top level, got an empty file");
	err_is("- a\n- b\n", "1:1: ", "expected a mapping at the top level, "
	    "got a list");
	err_is("\n\njust text\n", "1:1: ", "expected a mapping at the top "
	    "level, got a scalar");
}
END_TEST

START_TEST(test_err_syntax)
{
	err_is("queues: [a,\n", "2:1: ", "YAML syntax error: did not find "
	    "expected node content (while parsing a flow node)");
	err_is("queues:\n  a: 1\n b: 2\n", "3:2: ", "YAML syntax error: did "
	    "not find expected key (while parsing a block mapping)");
	err_is("queues:\n  a:\n\tb: 1\n", "3:1: ", "YAML syntax error: found "
	    "character that cannot start any token (while scanning for the "
	    "next token)");
	err_is("a: \"unterminated\n", "2:1: ", "YAML syntax error: found "
	    "unexpected end of stream (while scanning a quoted scalar)");
	err_is("queues:\n  q: \xff\n", "2:6: ", "YAML syntax error: invalid "
	    "leading UTF-8 octet");
	err_is("queues:\n  a: &x {}\n  b: *x\n", "3:6: ",
	    "YAML alias *x is not supported; write the value out");
	err_is(Q1 "---\nqueues: {}\n", "3:1: ",
	    "a second YAML document; expected only one");
}
END_TEST

/*
 * Errors: keys.
 */

START_TEST(test_err_unknown_key)
{
	err_is("broker: redis://x\nbrokers: redis://y\n" Q1, "2:1: brokers: ",
	    "unknown key; expected one of environment, broker, "
	    "result_backend, database, hostname, result_expires, "
	    "shutdown_timeout, crash_limit, crash_window, track_started, "
	    "events, log, pidfile, user, group, state_dir, reports_dir, http, "
	    "queues, tasks, beat");
	err_is("queues:\n  reports:\n    concurrency: 2\n    concurency: 2\n",
	    "4:5: queues.reports.concurency: ",
	    "unknown key; expected one of concurrency, priority, "
	    "soft_time_limit, time_limit, limits, max_tasks_per_child, "
	    "max_memory_per_child, nice, acks_late");
	err_is("queues:\n  r:\n    limits: {cpu: 1, memory: 1G}\n",
	    "3:22: queues.r.limits.memory: ", "unknown key; expected one of "
	    "address_space, cpu, open_files, core, file_size");
	err_is("log:\n  lvl: info\n" Q1, "2:3: log.lvl: ", "unknown key; "
	    "expected one of target, file, level");
	err_is(Q1 "tasks:\n  a.b.c:\n    run: builtin:x\n    queue: q\n"
	    "    retries: 3\n", "7:5: tasks.a.b.c.retries: ", "unknown key; "
	    "expected one of run, queue, max_retries, autoretry_for, "
	    "acks_late, soft_time_limit, time_limit, retry_backoff, "
	    "retry_backoff_max, "
	    "ignore_result, limits");
	err_is(Q1 "tasks:\n  t:\n    run: builtin:x\n    queue: q\n"
	    "    limits: {open_file: 3}\n", "7:14: tasks.t.limits.open_file: ",
	    "unknown key; expected one of address_space, cpu, open_files, "
	    "core, file_size");
	err_is(Q1 "beat:\n  b:\n    task: t\n    every: 1h\n    kwarg: {}\n",
	    "7:5: beat.b.kwarg: ", "unknown key; expected one of task, every, "
	    "cron, timezone, args, kwargs, queue, skip_missed");
	/* a key that is not a scalar */
	err_is("? [a, b]\n: 1\n" Q1, "1:3: ", "expected a name, got a list");
}
END_TEST

START_TEST(test_err_duplicate)
{
	err_is(Q1 "broker: a\nbroker: b\n", "4:1: broker: ",
	    "duplicate key; first given on line 3");
	err_is("queues:\n  q:\n    nice: 1\n    nice: 2\n",
	    "4:5: queues.q.nice: ", "duplicate key; first given on line 3");
	err_is("queues:\n  q:\n  r:\n  q: {}\n", "4:3: queues.q: ",
	    "duplicate key; first given on line 2");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q}\n  t: {run: [b], "
	    "queue: q}\n", "5:3: tasks.t: ", "duplicate key; first given on "
	    "line 4");
	load_err(Q1 "beat:\n  b: {task: t, every: 1, kwargs: {x: 1, x: 2}}\n",
	    "4:41: beat.b.kwargs.x: ");
}
END_TEST

START_TEST(test_err_missing)
{
	err_is("broker: redis://x\n", "1:1: queues: ", "required key is "
	    "missing");
	err_is("\n# queues come later\nbroker: x\n", "3:1: queues: ",
	    "required key is missing");
	err_is(Q1 "tasks:\n  t1:\n    queue: q\n", "4:3: tasks.t1.run: ",
	    "required key is missing");
	err_is(Q1 "tasks:\n  t1:\n    run: builtin:x\n",
	    "4:3: tasks.t1.queue: ",
	    "required key is missing");
	err_is(Q1 "tasks:\n  t1:\n", "4:3: tasks.t1.run: ",
	    "required key is missing");
	err_is(Q1 "beat:\n  b:\n    every: 1h\n", "4:3: beat.b.task: ",
	    "required key is missing");
	err_is("queues:\n", "1:8: queues: ", "expected a mapping of queue "
	    "names to queues, got nothing");
	err_is("queues: {}\n", "1:9: queues: ", "expected at least one queue, "
	    "got an empty mapping");
	err_is("log:\n  target: file\n" Q1, "2:3: log.file: ",
	    "required key is missing (target is file)");
	err_is("log:\n  target: syslog\n  file: /x\n" Q1, "3:3: log.file: ",
	    "only used with target: file");
}
END_TEST

/*
 * Errors: values of the wrong type or out of range.
 */

START_TEST(test_err_types)
{
	err_is("broker: {a: 1}\n" Q1, "1:9: broker: ",
	    "expected a string, got a mapping");
	err_is("hostname: [a]\n" Q1, "1:11: hostname: ",
	    "expected a string, got a list");
	err_is("pidfile: \"\"\n" Q1, "1:10: pidfile: ",
	    "expected a non-empty string, got \"\"");
	err_is("user:\n" Q1, "1:6: user: ", "expected a string, got nothing");
	err_is("environment: staging\n" Q1, "1:14: environment: ",
	    "expected development, test or production, got \"staging\"");
	err_is("track_started: maybe\n" Q1, "1:16: track_started: ",
	    "expected true or false (or yes/no, on/off), got \"maybe\"");
	err_is("events: [1]\n" Q1, "1:9: events: ",
	    "expected true or false (or yes/no, on/off), got a list");
	err_is("log: stderr\n" Q1, "1:6: log: ",
	    "expected a mapping, got \"stderr\"");
	err_is("log: {target: journald}\n" Q1, "1:15: log.target: ",
	    "expected stderr, syslog or file, got \"journald\"");
	err_is("log: {level: warn}\n" Q1, "1:14: log.level: ",
	    "expected debug, info, notice, warning or error, got \"warn\"");
	err_is("queues: [a, b]\n", "1:9: queues: ",
	    "expected a mapping of queue names to queues, got a list");
	err_is("queues:\n  q: 3\n", "2:6: queues.q: ",
	    "expected a mapping, got \"3\"");
	err_is("queues:\n  q:\n    limits: [1]\n", "3:13: queues.q.limits: ",
	    "expected a mapping, got a list");
	err_is(Q1 "tasks: yes\n", "3:8: tasks: ", "expected a mapping of "
	    "Celery task names to tasks, got \"yes\"");
	err_is(Q1 "beat: [x]\n", "3:7: beat: ", "expected a mapping of entry "
	    "names to beat entries, got a list");
	err_is("queues:\n  r:\n    concurrency: two\n",
	    "3:18: queues.r.concurrency: ",
	    "expected an integer from 0 to 256, got \"two\"");
	err_is("queues:\n  r:\n    priority: 1.5\n",
	    "3:15: queues.r.priority: ",
	    "expected an integer from 0 to 9, got \"1.5\"");
	err_is("queues:\n  r:\n    nice: \"\"\n", "3:11: queues.r.nice: ",
	    "expected an integer from -20 to 19, got \"\"");
	err_is(Q1 "beat:\n  b: {task: t, every: 1, args: {a: 1}}\n",
	    "4:32: beat.b.args: ",
	    "expected a list of arguments, got a mapping");
	err_is(Q1 "beat:\n  b: {task: t, every: 1, kwargs: [1]}\n",
	    "4:34: beat.b.kwargs: ", "expected a mapping of keyword arguments, "
	    "got a list");
	err_is(Q1 "beat:\n  b: {task: [t], every: 1}\n", "4:13: beat.b.task: ",
	    "expected a string, got a list");
}
END_TEST

START_TEST(test_err_range)
{
	err_is("queues:\n  r: {concurrency: 257}\n",
	    "2:20: queues.r.concurrency: ",
	    "expected an integer from 0 to 256, got \"257\"");
	err_is("queues:\n  r: {concurrency: -1}\n",
	    "2:20: queues.r.concurrency: ",
	    "expected an integer from 0 to 256, got \"-1\"");
	load_err("queues:\n  r: {concurrency: 99999999999999999999}\n",
	    "2:20: queues.r.concurrency: ");
	load_err("queues:\n  r: {concurrency: -99999999999999999999}\n",
	    "2:20: queues.r.concurrency: ");
	err_is("crash_limit: -1\n" Q1, "1:14: crash_limit: ",
	    "expected an integer >= 0, got \"-1\"");
	err_is("crash_window: 0\n" Q1, "1:15: crash_window: ",
	    "expected a duration greater than 0, got \"0\"");
	err_is("queues:\n  r: {priority: 10}\n", "2:17: queues.r.priority: ",
	    "expected an integer from 0 to 9, got \"10\"");
	load_err("queues:\n  r: {nice: -21}\n", "2:13: queues.r.nice: ");
	load_err("queues:\n  r: {nice: 20}\n", "2:13: queues.r.nice: ");
	err_is("queues:\n  r: {max_tasks_per_child: 0}\n",
	    "2:28: queues.r.max_tasks_per_child: ",
	    "expected an integer >= 1, got \"0\"");
	err_is("queues:\n  r: {limits: {open_files: 0}}\n",
	    "2:28: queues.r.limits.open_files: ",
	    "expected an integer from 1 to 1048576, got \"0\"");
	load_err("queues:\n  r: {limits: {open_files: 1048577}}\n",
	    "2:28: queues.r.limits.open_files: ");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q, max_retries: -1}\n",
	    "4:40: tasks.t.max_retries: ",
	    "expected an integer >= 0, got \"-1\"");
	load_err(Q1 "tasks:\n  t: {run: [a], queue: q,"
	    " max_retries: 2147483648}\n",
	    "4:40: tasks.t.max_retries: ");
}
END_TEST

START_TEST(test_err_duration)
{
	const char *msg = "expected a duration such as 250ms, 30s, 5m, 1h "
	    "or 7d, got ";

	ck_assert_str_eq(load_err("shutdown_timeout: 5 minutes\n" Q1,
	    "1:19: shutdown_timeout: ") + strlen(msg), "\"5 minutes\"");
	ck_assert_str_eq(load_err("result_expires: -5s\n" Q1,
	    "1:17: result_expires: "), "expected a duration such as 250ms, "
	    "30s, 5m, 1h or 7d, got \"-5s\"");
	load_err("queues:\n  r: {time_limit: 1.5h}\n",
	    "2:19: queues.r.time_limit: ");
	load_err("queues:\n  r: {time_limit: 10S}\n",
	    "2:19: queues.r.time_limit: ");
	load_err("queues:\n  r: {time_limit: 9999999999999999d}\n",
	    "2:19: queues.r.time_limit: ");
	load_err("queues:\n  r: {time_limit: [1]}\n",
	    "2:19: queues.r.time_limit: ");
	err_is("queues:\n  r: {soft_time_limit: 0}\n",
	    "2:24: queues.r.soft_time_limit: ",
	    "expected a duration greater than 0, got \"0\"");
	load_err("queues:\n  r: {limits: {cpu: 0s}}\n",
	    "2:21: queues.r.limits.cpu: ");
	load_err(Q1 "tasks:\n  t: {run: [a], queue: q, retry_backoff_max: 0}\n",
	    "4:46: tasks.t.retry_backoff_max: ");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q, retry_backoff: often}\n",
	    "4:42: tasks.t.retry_backoff: ", "expected a duration such as 1s "
	    "or 30s, or true or false, got \"often\"");
	load_err(Q1 "beat:\n  b: {task: t, every: 0}\n",
	    "4:23: beat.b.every: ");
	load_err(Q1 "beat:\n  b: {task: t, every: soon}\n",
	    "4:23: beat.b.every: ");
	err_is("queues:\n  r: {limits: {cpu: [1]}}\n",
	    "2:21: queues.r.limits.cpu: ", "expected a duration such as "
	    "250ms, 30s, 5m, 1h or 7d, got a list");
	load_err(Q1 "tasks:\n  t: {run: [a], queue: q, retry_backoff: [1]}\n",
	    "4:42: tasks.t.retry_backoff: ");
}
END_TEST

START_TEST(test_err_size)
{
	err_is("queues:\n  r: {limits: {address_space: 1X}}\n",
	    "2:31: queues.r.limits.address_space: ", "expected a size such as "
	    "64K, 512M, 1G or 2T, got \"1X\"");
	load_err("queues:\n  r: {limits: {core: -1G}}\n",
	    "2:22: queues.r.limits.core: ");
	load_err("queues:\n  r: {limits: {core: 1iB}}\n",
	    "2:22: queues.r.limits.core: ");
	load_err("queues:\n  r: {limits: {file_size: 1.5G}}\n",
	    "2:27: queues.r.limits.file_size: ");
	load_err("queues:\n  r: {limits: {file_size: 99999999T}}\n",
	    "2:27: queues.r.limits.file_size: ");
	err_is("queues:\n  r: {max_memory_per_child: 0}\n",
	    "2:29: queues.r.max_memory_per_child: ",
	    "expected a size greater than 0, got \"0\"");
	load_err("queues:\n  r: {limits: {address_space: 0}}\n",
	    "2:31: queues.r.limits.address_space: ");
	err_is("queues:\n  r: {limits: {file_size: {a: 1}}}\n",
	    "2:27: queues.r.limits.file_size: ", "expected a size such as "
	    "64K, 512M, 1G or 2T, got a mapping");
}
END_TEST

/*
 * Errors: task, queue and beat rules.
 */

START_TEST(test_err_run)
{
	const char *want = "expected \"builtin:NAME\" or a list of strings "
	    "(a program and its arguments), got ";

	ck_assert_str_eq(load_err(Q1 "tasks:\n  t:\n    run: /bin/true\n"
	    "    queue: q\n", "5:10: tasks.t.run: ") + strlen(want),
	    "\"/bin/true\"");
	load_err(Q1 "tasks:\n  t:\n    run: \"builtin:\"\n    queue: q\n",
	    "5:10: tasks.t.run: ");
	load_err(Q1 "tasks:\n  t:\n    run: []\n    queue: q\n",
	    "5:10: tasks.t.run: ");
	load_err(Q1 "tasks:\n  t:\n    run: {a: b}\n    queue: q\n",
	    "5:10: tasks.t.run: ");
	load_err(Q1 "tasks:\n  t:\n    run:\n    queue: q\n",
	    "5:9: tasks.t.run: ");
	err_is(Q1 "tasks:\n  t:\n    run: [prog, [x]]\n    queue: q\n",
	    "5:17: tasks.t.run[1]: ", "expected a string, got a list");
	err_is(Q1 "tasks:\n  t:\n    run: [\"\", x]\n    queue: q\n",
	    "5:11: tasks.t.run[0]: ", "expected a program, got \"\"");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q, autoretry_for: {}}\n",
	    "4:42: tasks.t.autoretry_for: ", "expected a list of exception "
	    "type names, got an empty mapping");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q,"
	    " autoretry_for: [A, \"\"]}\n", "4:46: tasks.t.autoretry_for[1]: ",
	    "expected an exception type name, got \"\"");
	err_is(Q1 "tasks:\n  t: {run: [a], queue: q, autoretry_for: \"A B\"}\n",
	    "4:42: tasks.t.autoretry_for: ", "expected an exception type "
	    "name, got \"A B\"");
	err_is(Q1 "tasks:\n  \"bad name\": {run: [a], queue: q}\n",
	    "4:3: tasks.bad name: ",
	    "invalid task name; expected a Celery task name without blanks");
}
END_TEST

START_TEST(test_err_queue)
{
	const char *want = "invalid queue name; expected letters, digits, "
	    "\"_\", \".\", \":\" or \"-\"";

	err_is("queues:\n  bad name: {}\n", "2:3: queues.bad name: ", want);
	err_is("queues:\n  ok:\n  a/b: {}\n", "3:3: queues.a/b: ", want);
	err_is("queues:\n  \"\": {}\n", "2:3: queues: ", "expected a name, "
	    "got \"\"");
	err_is("queues:\n  reports: {}\ntasks:\n  foo:\n    run: builtin:x\n"
	    "    queue: nope\n", "6:12: tasks.foo.queue: ",
	    "queue \"nope\" is not defined in queues");
	/* tasks may come before queues; the check waits for the whole file */
	err_is("tasks:\n  a.b: {run: [x], queue: other}\n" Q1,
	    "2:26: tasks.a.b.queue: ", "queue \"other\" is not defined in "
	    "queues");
}
END_TEST

START_TEST(test_err_time_limits)
{
	err_is("queues:\n  r:\n    soft_time_limit: 10s\n    time_limit: 5s\n",
	    "4:5: queues.r.time_limit: ",
	    "expected more than the soft_time_limit (10s)");
	err_is("queues:\n  r:\n    time_limit: 1m\n    soft_time_limit: 60s\n",
	    "4:5: queues.r.soft_time_limit: ",
	    "expected less than the time_limit (1m)");
	err_is(Q1 "tasks:\n  t:\n    run: [a]\n    queue: q\n"
	    "    time_limit: 1500ms\n    soft_time_limit: 2s\n",
	    "8:5: tasks.t.soft_time_limit: ",
	    "expected less than the time_limit (1500ms)");
	/* a task's value against its queue's */
	err_is("queues:\n  r: {time_limit: 5m}\n"
	    "tasks:\n  a.t: {run: [a], queue: r, soft_time_limit: 6m}\n",
	    "4:29: tasks.a.t.soft_time_limit: ",
	    "expected less than the time_limit of queue r (5m)");
	err_is("queues:\n  r: {soft_time_limit: 1h}\n"
	    "tasks:\n  a.t: {run: [a], queue: r, time_limit: 30m}\n",
	    "4:29: tasks.a.t.time_limit: ",
	    "expected more than the soft_time_limit of queue r (1h)");
	/* the queue's key is the later one when queues come last */
	err_is("tasks:\n  t: {run: [a], queue: r, time_limit: 30s}\n"
	    "queues:\n  r: {soft_time_limit: 1d}\n",
	    "4:7: queues.r.soft_time_limit: ",
	    "expected less than the time_limit of task t (30s)");
	/* a task's own pair overrides the queue's: no error */
	cfg_free(load_ok("queues:\n  r: {soft_time_limit: 1h, time_limit: 2h}\n"
	    "tasks:\n  t: {run: [a], queue: r, soft_time_limit: 1s,"
	    " time_limit: 2s}\n"));
}
END_TEST

START_TEST(test_err_beat)
{
	err_is(Q1 "beat:\n  nightly:\n    task: t\n", "4:3: beat.nightly: ",
	    "expected a schedule: every or cron");
	err_is(Q1 "beat:\n  b:\n    task: t\n    every: 1h\n"
	    "    cron: \"* * * * *\"\n", "7:5: beat.b.cron: ",
	    "every and cron exclude each other; expected one of them");
	load_err(Q1 "beat:\n  b:\n    cron: \"* * * * *\"\n    task: t\n"
	    "    every: 1h\n", "7:5: beat.b.every: ");
	err_is(Q1 "beat:\n  b:\n    task: t\n    cron: \"0 0 * *\"\n",
	    "6:11: beat.b.cron: ", "expected a cron expression with 5 fields "
	    "(minute hour day-of-month month day-of-week), got \"0 0 * *\"");
	load_err(Q1 "beat:\n  b:\n    task: t\n    cron: \"0 0 * * * 2024\"\n",
	    "6:11: beat.b.cron: ");
	load_err(Q1 "beat:\n  b:\n    task: t\n    cron: \"@daily\"\n",
	    "6:11: beat.b.cron: ");
	load_err(Q1 "beat:\n  b:\n    task: t\n    cron: 5\n",
	    "6:11: beat.b.cron: ");
	load_err(Q1 "beat:\n  b:\n    task: t\n"
	    "    cron: [0, 0, '*', '*', '*']\n",
	    "6:11: beat.b.cron: ");
	load_err(Q1 "beat:\n  b: {task: t, every: 1, args: [[[[[[[[[[[[[[[[[[[["
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	    "]]]]]]]]]]]]]]]]]]]]]}\n", "4:");
}
END_TEST

/*
 * Environment overrides.
 */

START_TEST(test_env_redis)
{
	struct config *cfg;

	setenv("REDIS_URL", "redis://env:6379/5", 1);
	cfg = load_ok("broker: redis://file:6379/0\n" Q1);
	ck_assert_str_eq(cfg->broker, "redis://env:6379/5");
	ck_assert_str_eq(cfg->result_backend, "redis://env:6379/5");
	cfg_free(cfg);
	cfg = load_ok(Q1);
	ck_assert_str_eq(cfg->broker, "redis://env:6379/5");
	ck_assert_str_eq(cfg->result_backend, "redis://env:6379/5");
	cfg_free(cfg);
	/* an explicit result_backend stays */
	cfg = load_ok("result_backend: redis://file:6379/1\n" Q1);
	ck_assert_str_eq(cfg->broker, "redis://env:6379/5");
	ck_assert_str_eq(cfg->result_backend, "redis://file:6379/1");
	cfg_free(cfg);
	/* empty means unset */
	setenv("REDIS_URL", "", 1);
	cfg = load_ok("broker: redis://file:6379/0\n" Q1);
	ck_assert_str_eq(cfg->broker, "redis://file:6379/0");
	ck_assert_str_eq(cfg->result_backend, "redis://file:6379/0");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_env_database)
{
	struct config *cfg;

	setenv("DATABASE_URL", "postgresql://env/db", 1);
	cfg = load_ok(Q1);
	ck_assert_str_eq(cfg->database, "postgresql://env/db");
	cfg_free(cfg);
	cfg = load_ok("database: postgresql://file/db\n" Q1);
	ck_assert_str_eq(cfg->database, "postgresql://env/db");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_env_environment)
{
	struct config *cfg;

	setenv("ENVIRONMENT", "production", 1);
	cfg = load_ok("environment: development\n" Q1);
	ck_assert_int_eq(cfg->environment, CFG_ENV_PRODUCTION);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_SYSLOG);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 30000);
	ck_assert_int_eq(cfg->queues[0].time_limit_ms, CFG_UNSET);
	cfg_free(cfg);
	/* what the file sets wins over the environment's defaults */
	cfg = load_ok("shutdown_timeout: 2s\n"
	    "log: {level: debug, target: stderr}\n" Q1);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 2000);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_STDERR);
	cfg_free(cfg);

	setenv("ENVIRONMENT", "test", 1);
	cfg = load_ok("queues:\n"
	    "  short:\n"
	    "  own: {time_limit: 2h}\n"
	    "  long: {soft_time_limit: 90s}\n"
	    "  busy:\n"
	    "tasks:\n"
	    "  slow: {run: [a], queue: busy, soft_time_limit: 5m}\n");
	ck_assert_int_eq(cfg->environment, CFG_ENV_TEST);
	ck_assert_int_eq(cfg->log_target, CFG_LOG_STDERR);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 5000);
	ck_assert_int_eq(cfg_queue_find(cfg, "short")->time_limit_ms, 60000);
	ck_assert_int_eq(cfg_queue_find(cfg, "own")->time_limit_ms, 7200000);
	/* a default under a longer soft limit would break the file */
	ck_assert_int_eq(cfg_queue_find(cfg, "long")->time_limit_ms, CFG_UNSET);
	ck_assert_int_eq(cfg_queue_find(cfg, "busy")->time_limit_ms, CFG_UNSET);
	cfg_free(cfg);

	/* the file's environment, without ENVIRONMENT */
	unsetenv("ENVIRONMENT");
	cfg = load_ok("environment: test\n" Q1);
	ck_assert_int_eq(cfg->environment, CFG_ENV_TEST);
	ck_assert_int_eq(cfg->queues[0].time_limit_ms, 60000);
	cfg_free(cfg);

	setenv("ENVIRONMENT", "", 1);
	cfg = load_ok("environment: production\n" Q1);
	ck_assert_int_eq(cfg->environment, CFG_ENV_PRODUCTION);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_env_invalid)
{
	struct config *cfg;

	setenv("ENVIRONMENT", "staging", 1);
	cfg = cfg_load(write_yaml(Q1), errbuf, sizeof(errbuf));
	unlink(tmp_path);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(errbuf, "ENVIRONMENT: expected development, test or "
	    "production, got \"staging\"");
	/* errors in the file come first */
	load_err("queues:\n  q: {nice: 99}\n", "2:13: queues.q.nice: ");
	setenv("ENVIRONMENT", "Production\n", 1);
	cfg = cfg_load(write_yaml(Q1), errbuf, sizeof(errbuf));
	unlink(tmp_path);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(errbuf, "ENVIRONMENT: expected development, test or "
	    "production, got \"Production?\"");
}
END_TEST

/*
 * Unit parsers.
 */

START_TEST(test_duration)
{
	static const struct {
		const char	*s;
		int64_t		 ms;
	} ok[] = {
		{ "0", 0 }, { "30", 30000 }, { "250ms", 250 }, { "30s", 30000 },
		{ "5m", 300000 }, { "1h", 3600000 }, { "7d", 604800000 },
		{ "0ms", 0 }, { "0010s", 10000 },
		{ "9223372036854775807ms", INT64_MAX },
		{ "106751991167d", 106751991167LL * 86400000 },
	};
	static const char *const bad[] = {
		"", "-1", "-5s", "+5s", "s", "5x", "5 s", " 5s", "5s ", "1.5h",
		"5S", "5M", "5ms5", "1h30m", "0x10", "9223372036854775808ms",
		"9223372036854775807s", "106751991168d", "99999999999999999999",
	};
	int64_t	 v;
	size_t	 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -7;
		ck_assert_msg(cfg_parse_duration(ok[i].s, &v) == 0, "%s",
		    ok[i].s);
		ck_assert_msg(v == ok[i].ms, "%s: %" PRId64, ok[i].s, v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		ck_assert_msg(cfg_parse_duration(bad[i], &v) == -1, "%s",
		    bad[i]);
		ck_assert_int_eq(v, -7);
	}
	ck_assert_int_eq(cfg_parse_duration(NULL, &v), -1);
}
END_TEST

START_TEST(test_size)
{
	static const struct {
		const char	*s;
		int64_t		 bytes;
	} ok[] = {
		{ "0", 0 }, { "10", 10 }, { "10B", 10 }, { "64K", 65536 },
		{ "64k", 65536 }, { "64KB", 65536 }, { "64KiB", 65536 },
		{ "512M", 512LL << 20 }, { "512MiB", 512LL << 20 },
		{ "1G", 1LL << 30 }, { "1g", 1LL << 30 }, { "1GB", 1LL << 30 },
		{ "2T", 2LL << 40 }, { "2TiB", 2LL << 40 },
		{ "8388607T", 8388607LL << 40 },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = {
		"", "-1", "-1G", "+1G", "G", "1X", "1 G", " 1G", "1G ", "1.5G",
		"1iB", "1Gi", "1GBB", "1Gb", "1b", "1P", "8388608T",
		"9223372036854775808", "1KK",
	};
	int64_t	 v;
	size_t	 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -7;
		ck_assert_msg(cfg_parse_size(ok[i].s, &v) == 0, "%s", ok[i].s);
		ck_assert_msg(v == ok[i].bytes, "%s: %" PRId64, ok[i].s, v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		ck_assert_msg(cfg_parse_size(bad[i], &v) == -1, "%s", bad[i]);
		ck_assert_int_eq(v, -7);
	}
	ck_assert_int_eq(cfg_parse_size(NULL, &v), -1);
}
END_TEST

/*
 * The registry names the module's tasks without loading it (config
 * checks, `registered`): that list and the module's tables must agree.
 */
START_TEST(test_module_task_names)
{
	const struct builtin_task *const	*tab;
	const struct builtin_task		*t;
	size_t					 i, n = 0;
	int					 found;

	for (tab = task_module_tables; *tab != NULL; tab++)
		for (t = *tab; t->name != NULL; t++) {
			n++;
			found = 0;
			for (i = 0; task_module_names[i] != NULL; i++)
				found |= strcmp(task_module_names[i],
				    t->name) == 0;
			ck_assert_msg(found, "%s is missing from "
			    "task_module_names", t->name);
			ck_assert(task_registry_known(t->name));
			ck_assert_ptr_eq(task_registry_find(t->name), t);
		}
	for (i = 0; task_module_names[i] != NULL; i++)
		;
	ck_assert_uint_eq(i, n);
	ck_assert(task_registry_known("celeriac.echo"));
	ck_assert(!task_registry_known("reports.nonexistent"));
}
END_TEST

static Suite *
config_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("config");

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, clear_env, clear_env);
	tcase_add_test(tc, test_example);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_beat_json);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, clear_env, clear_env);
	tcase_add_test(tc, test_err_file);
	tcase_add_test(tc, test_err_syntax);
	tcase_add_test(tc, test_err_unknown_key);
	tcase_add_test(tc, test_err_duplicate);
	tcase_add_test(tc, test_err_missing);
	tcase_add_test(tc, test_err_types);
	tcase_add_test(tc, test_err_range);
	tcase_add_test(tc, test_err_duration);
	tcase_add_test(tc, test_err_size);
	tcase_add_test(tc, test_err_run);
	tcase_add_test(tc, test_err_queue);
	tcase_add_test(tc, test_err_time_limits);
	tcase_add_test(tc, test_err_beat);
	suite_add_tcase(s, tc);

	tc = tcase_create("environment");
	tcase_add_checked_fixture(tc, clear_env, clear_env);
	tcase_add_test(tc, test_env_redis);
	tcase_add_test(tc, test_env_database);
	tcase_add_test(tc, test_env_environment);
	tcase_add_test(tc, test_env_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("units");
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_test(tc, test_module_task_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
