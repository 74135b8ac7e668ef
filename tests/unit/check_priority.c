/*
 * check_priority.c - kombu's priority buckets on Redis: which list a
 * message of a given priority is pushed to, checked against the lists
 * Celery 5.2.6 / kombu 5.2.4 actually created (tests/fixtures/celery).
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must name tests/fixtures/celery"
#endif

/* celery-wire.md section 4: the list of each priority 0..9. */
static const char *const reports_lists[10] = {
	"reports", "reports", "reports",
	"reports" MSG_SEP "3", "reports" MSG_SEP "3", "reports" MSG_SEP "3",
	"reports" MSG_SEP "6", "reports" MSG_SEP "6", "reports" MSG_SEP "6",
	"reports" MSG_SEP "9",
};

static char *
slurp(const char *name)
{
	char	 path[1024], *buf;
	FILE	*fp;
	long	 n;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES_DIR, name);
	fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, fp), n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/*
 * Undo the "\x06" escapes of a Python bytes repr or of the README's
 * `reports\x06\x163` notation, up to the delimiter end; malloc'd.
 */
static char *
unescape(const char *s, char end)
{
	char		*out, *p;
	unsigned int	 c;

	p = out = malloc(strlen(s) + 1);
	ck_assert_ptr_nonnull(out);
	while (*s != '\0' && *s != end) {
		if (s[0] == '\\' && s[1] == 'x' &&
		    sscanf(s + 2, "%2x", &c) == 1) {
			*p++ = (char)c;
			s += 4;
		} else
			*p++ = *s++;
	}
	*p = '\0';
	return out;
}

static char *
decode_fixture_list(const char *name, struct task_msg *m)
{
	char	 err[MSG_ERRLEN], *raw;

	raw = slurp(name);
	ck_assert_msg(msg_decode(raw, strlen(raw), m, err, sizeof(err)) == 0,
	    "%s: %s", name, err);
	free(raw);
	return msg_bucket_list(m->routing_key, m->priority);
}

START_TEST(test_steps)
{
	ck_assert_int_eq(MSG_NBUCKETS, 4);
	ck_assert_int_eq(msg_priority_steps[0], 0);
	ck_assert_int_eq(msg_priority_steps[1], 3);
	ck_assert_int_eq(msg_priority_steps[2], 6);
	ck_assert_int_eq(msg_priority_steps[3], 9);
	ck_assert_mem_eq(MSG_SEP, "\x06\x16", 3);
}
END_TEST

START_TEST(test_bucket_table)
{
	static const struct {
		int		 priority;
		const char	*list;
	} clamp[] = {
		{ -1, "q" }, { INT_MIN, "q" }, { 10, "q" MSG_SEP "9" },
		{ INT_MAX, "q" MSG_SEP "9" },
	};
	char	*l, *q;
	int	 p;
	size_t	 i;

	for (p = 0; p <= 9; p++) {
		l = msg_bucket_list("reports", p);
		ck_assert_str_eq(l, reports_lists[p]);
		q = msg_queue_of_list(l);
		ck_assert_str_eq(q, "reports");
		free(q);
		free(l);
	}
	for (i = 0; i < sizeof(clamp) / sizeof(clamp[0]); i++) {
		l = msg_bucket_list("q", clamp[i].priority);
		ck_assert_str_eq(l, clamp[i].list);
		free(l);
	}
	/* A queue name that itself ends in digits survives the round trip. */
	l = msg_bucket_list("batch2", 4);
	ck_assert_str_eq(l, "batch2" MSG_SEP "3");
	q = msg_queue_of_list(l);
	ck_assert_str_eq(q, "batch2");
	free(q);
	free(l);
	l = msg_bucket_list("", 0);
	ck_assert_str_eq(l, "");
	free(l);
	ck_assert_ptr_null(msg_bucket_list(NULL, 3));
}
END_TEST

START_TEST(test_queue_of_list)
{
	static const char *cases[][2] = {
		{ "reports", "reports" },
		{ "reports" MSG_SEP "3", "reports" },
		{ "reports" MSG_SEP "9", "reports" },
		{ "celery" MSG_SEP "12", "celery" },
		{ "batch2", "batch2" },
		{ "reports" MSG_SEP, "reports" MSG_SEP },
		{ "reports\x16" "3", "reports\x16" "3" },
		{ MSG_SEP "6", "" },
		{ "6", "6" },
		{ "", "" },
	};
	char	*q;
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q = msg_queue_of_list(cases[i][0]);
		ck_assert_str_eq(q, cases[i][1]);
		free(q);
	}
	ck_assert_ptr_null(msg_queue_of_list(NULL));
}
END_TEST

/*
 * keys-priority-lists.txt holds the lists kombu made for priorities 9, 6,
 * 3, 0 and none: exactly the four names our buckets give for "reports".
 */
START_TEST(test_keys_priority_lists)
{
	char	*txt, *line, *save, *name, *ours[MSG_NBUCKETS];
	int	 seen[MSG_NBUCKETS] = { 0 }, nlists = 0, i;

	for (i = 0; i < MSG_NBUCKETS; i++)
		ours[i] = msg_bucket_list("reports", msg_priority_steps[i]);
	txt = slurp("keys-priority-lists.txt");
	for (line = strtok_r(txt, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "KEY b'", 6) != 0 ||
		    strstr(line, " TYPE list ") == NULL)
			continue;
		name = unescape(line + 6, '\'');
		for (i = 0; i < MSG_NBUCKETS; i++)
			if (strcmp(name, ours[i]) == 0)
				seen[i]++;
		nlists++;
		free(name);
	}
	ck_assert_int_eq(nlists, MSG_NBUCKETS);
	for (i = 0; i < MSG_NBUCKETS; i++) {
		ck_assert_int_eq(seen[i], 1);
		free(ours[i]);
	}
	free(txt);
}
END_TEST

/* Each task-priority-N.json landed in the list the README names. */
START_TEST(test_fixture_lands_in_list)
{
	struct task_msg	 m;
	char		 key[64], *readme, *at, *want, *got;
	int		 n;

	readme = slurp("README.md");
	for (n = 0; n <= 9; n++) {
		snprintf(key, sizeof(key), "| `task-priority-%d.json`", n);
		ck_assert_ptr_nonnull(at = strstr(readme, key));
		ck_assert_ptr_nonnull(at = strstr(at, "-> list `"));
		want = unescape(at + strlen("-> list `"), '`');
		snprintf(key, sizeof(key), "task-priority-%d.json", n);
		got = decode_fixture_list(key, &m);
		ck_assert_int_eq(m.priority, n);
		ck_assert_str_eq(got, want);
		ck_assert_str_eq(got, reports_lists[n]);
		free(got);
		free(want);
		msg_clear(&m);
	}
	free(readme);
	/* A restored message goes back to the base list, priority kept. */
	got = decode_fixture_list(
	    "task-restored-priority-9-lands-in-base-list.json", &m);
	ck_assert_str_eq(got, "reports" MSG_SEP "9");
	free(got);
	got = msg_bucket_list(m.routing_key, 0);
	ck_assert_str_eq(got, "reports");
	free(got);
	msg_clear(&m);
}
END_TEST

static Suite *
priority_suite(void)
{
	Suite	*s = suite_create("priority");
	TCase	*tc = tcase_create("buckets");

	tcase_add_test(tc, test_steps);
	tcase_add_test(tc, test_bucket_table);
	tcase_add_test(tc, test_queue_of_list);
	tcase_add_test(tc, test_keys_priority_lists);
	tcase_add_test(tc, test_fixture_lands_in_list);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(priority_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
