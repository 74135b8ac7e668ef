/*
 * check_store.c - the job store without a database: the event line and
 * what it makes acceptable to jsonb, the spill file round trip, locking
 * and adoption, and a store whose database is down (returns at once,
 * keeps every event on disk).
 */
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/config.h"
#include "common/util.h"
#include "store/store.h"
#include "store/store_int.h"

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static json_object *
parsed(const char *line)
{
	json_object *o = json_tokener_parse(line);

	ck_assert_msg(o != NULL, "not JSON: %s", line);
	return o;
}

static const char *
jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) :
	    NULL;
}

START_TEST(test_event_line)
{
	struct store_event	 e;
	json_object		*o, *v;
	char			*line;

	memset(&e, 0, sizeof(e));
	ck_assert_ptr_null(store_event_line(&e));
	e.task_id = "abc";
	e.task_name = "celeriac.echo";
	e.queue = "celery";
	e.status = STORE_FAILED;
	e.retries = 2;
	e.time = 1700000000.25;
	e.host = "h1";
	e.pid = 42;
	e.params_json = "{\"args\":[1],\"kwargs\":{}}";
	e.error_type = "RuntimeError";
	e.error_message = "say \"hi\"\n\tback\\slash";
	line = store_event_line(&e);
	ck_assert_ptr_null(strchr(line, '\n'));
	o = parsed(line);
	ck_assert_str_eq(jstr(o, "id"), "abc");
	ck_assert_str_eq(jstr(o, "status"), "failed");
	ck_assert_str_eq(jstr(o, "emsg"), "say \"hi\"\n\tback\\slash");
	ck_assert(json_object_object_get_ex(o, "t", &v));
	ck_assert_double_eq_tol(json_object_get_double(v), 1700000000.25,
	    1e-6);
	ck_assert(json_object_object_get_ex(o, "params", &v));
	ck_assert(json_object_is_type(v, json_type_object));
	ck_assert(!json_object_object_get_ex(o, "result", NULL));
	json_object_put(o);
	free(line);
	ck_assert_str_eq(store_status_name(STORE_RETRYING), "retrying");
}
END_TEST

START_TEST(test_event_line_sanitised)
{
	struct store_event	 e;
	json_object		*o;
	char			*line, big[STORE_TEXT_MAX + 100];

	memset(&e, 0, sizeof(e));
	e.task_id = "id\xff\xfe";
	e.task_name = "t\xc3\xa9";			/* é, valid */
	e.time = 1;
	/* \u0000 and a lone surrogate become U+FFFD; an escaped
	 * backslash before "u0000" is left alone; a pair is kept. */
	e.params_json = "{\"a\":\"x\\u0000y\",\"b\":\"\\ud800\",\"c\":"
	    "\"\\\\u0000\",\"d\":\"\\ud83d\\ude00\",\r\n\"e\":\"\xc0\xaf\"}";
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[STORE_TEXT_MAX - 1] = '\xc3';		/* cut inside é */
	big[STORE_TEXT_MAX] = '\xa9';
	e.error_message = big;
	line = store_event_line(&e);
	ck_assert_ptr_null(strchr(line, '\n'));
	ck_assert_ptr_nonnull(strstr(line, "x\\ufffdy"));
	ck_assert_ptr_nonnull(strstr(line, "\"\\\\u0000\""));
	ck_assert_ptr_nonnull(strstr(line, "\\ud83d\\ude00"));
	o = parsed(line);
	ck_assert_str_eq(jstr(o, "id"), "id\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(jstr(o, "task"), "t\xc3\xa9");
	ck_assert_uint_eq(strlen(jstr(o, "emsg")), STORE_TEXT_MAX - 1);
	json_object_put(o);
	free(line);

	/* Too big to keep: a marker instead. */
	{
		char *huge = malloc(STORE_JSON_MAX + 10);
		memset(huge, ' ', STORE_JSON_MAX + 9);
		huge[0] = '[';
		huge[STORE_JSON_MAX + 8] = ']';
		huge[STORE_JSON_MAX + 9] = '\0';
		e.params_json = NULL;
		e.result_json = huge;
		line = store_event_line(&e);
		ck_assert_ptr_nonnull(strstr(line, "\"result\":{\"truncated\":"
		    "true"));
		free(line);
		free(huge);
	}
}
END_TEST

START_TEST(test_degrade)
{
	struct store_event	 e;
	json_object		*o;
	char			*line, *d;

	memset(&e, 0, sizeof(e));
	e.task_id = "x";
	e.task_name = "n";
	e.status = STORE_SUCCEEDED;
	e.time = 5.5;
	e.result_json = "{\"big\":1}";
	e.params_json = "[1]";
	line = store_event_line(&e);
	d = store_event_degrade(line);
	o = parsed(d);
	ck_assert_str_eq(jstr(o, "status"), "succeeded");
	ck_assert(!json_object_object_get_ex(o, "result", NULL));
	ck_assert(!json_object_object_get_ex(o, "params", NULL));
	json_object_put(o);
	free(d);
	free(line);
	ck_assert_ptr_null(store_event_degrade("{\"id\":\"x\",\"status\":"
	    "\"bogus\",\"t\":1}"));
	ck_assert_ptr_null(store_event_degrade("not json"));
}
END_TEST

START_TEST(test_spill_round_trip)
{
	struct spill	 own, other, *orph;
	char		*lines[3] = { "{\"id\":\"1\"}", "{\"id\":\"2\"}",
	    "{\"id\":\"3\"}" }, **got, path[PATH_MAX];
	size_t		 norph;
	ssize_t		 n;
	off_t		 next;
	int		 fd;

	own.fd = -1;
	ck_assert_int_eq(spill_create(&own, tmpdir, "w"), 0);
	ck_assert_int_eq(spill_append(&own, lines, 3), 0);
	/* Read two, then the rest. */
	n = spill_read(&own, 2, 1 << 20, &got, &next);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(got[0], lines[0]);
	ck_assert_str_eq(got[1], lines[1]);
	free(got[0]);
	free(got[1]);
	free(got);
	ck_assert_int_eq(spill_consumed(&own, next, 1), 0);
	ck_assert_int_eq(own.off, next);
	n = spill_read(&own, 10, 1 << 20, &got, &next);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(got[0], lines[2]);
	free(got[0]);
	free(got);
	/* All of it in: truncated, appended to from 0. */
	ck_assert_int_eq(spill_consumed(&own, next, 1), 0);
	ck_assert_int_eq(own.end, 0);
	snprintf(path, sizeof(path), "%s/w.spool", tmpdir);
	{
		struct stat st;
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_size, 0);
	}
	/* Held: a second writer of the same name gets its own file. */
	other.fd = -1;
	ck_assert_int_eq(spill_create(&other, tmpdir, "w"), 0);
	ck_assert_str_ne(other.path, own.path);
	spill_close(&other);
	spill_close(&own);

	/* A file left by a dead writer, with a torn last line, is adopted
	 * by whoever scans first, and removed once replayed. */
	snprintf(path, sizeof(path), "%s/dead.spool", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "{\"id\":\"a\"}\nnot json\n{\"id\":", 27),
	    27);
	close(fd);
	ck_assert_int_eq(spill_scan(tmpdir, "w", &own, &orph, &norph), 0);
	ck_assert_uint_eq(norph, 1);
	n = spill_read(&orph[0], 10, 1 << 20, &got, &next);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(got[0], "{\"id\":\"a\"}");
	ck_assert_int_eq(next, orph[0].end);
	free(got[0]);
	free(got);
	ck_assert_int_eq(spill_consumed(&orph[0], next, 0), 1);
	ck_assert_int_eq(access(path, F_OK), -1);
	close(orph[0].fd);
	free(orph);
	spill_close(&own);
}
END_TEST

START_TEST(test_store_without_database)
{
	struct config		 cfg;
	struct store		*s;
	struct store_event	 e;
	struct store_stats	 st;
	int64_t			 t0;
	int			 i;
	char			 id[16], path[PATH_MAX];

	memset(&cfg, 0, sizeof(cfg));
	ck_assert_ptr_null(store_open(&cfg, "w"));
	store_record(NULL, NULL);
	store_flush(NULL, 10);
	store_close(NULL);

	/* Nothing listens on port 1: every call returns at once and the
	 * events wait in the spill file. */
	cfg.database = "postgresql://nobody@127.0.0.1:1/none";
	cfg.state_dir = tmpdir;
	s = store_open(&cfg, "w/0");
	ck_assert_ptr_nonnull(s);
	memset(&e, 0, sizeof(e));
	e.task_name = "t";
	e.status = STORE_STARTED;
	t0 = mono_ms();
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		e.task_id = id;
		store_record(s, &e);
		store_flush(s, 50);
	}
	ck_assert_int_lt(mono_ms() - t0, 500);
	store_get_stats(s, &st);
	ck_assert_uint_eq(st.recorded, 5);
	ck_assert_uint_eq(st.written, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_int_gt(st.spill_bytes, 0);
	store_close(s);
	snprintf(path, sizeof(path), "%s/spool/w_0.spool", tmpdir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* The next process of that name finds them. */
	s = store_open(&cfg, "w/0");
	store_get_stats(s, &st);
	ck_assert_int_gt(st.spill_bytes, 0);
	store_close(s);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite	*s = suite_create("store");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_event_line);
	tcase_add_test(tc, test_event_line_sanitised);
	tcase_add_test(tc, test_degrade);
	tcase_add_test(tc, test_spill_round_trip);
	tcase_add_test(tc, test_store_without_database);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(store_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
