/*
 * check_message.c - task messages, result values, base64, ISO 8601,
 * Python repr and the hand-written task events against the Celery 5.2.6
 * captures in tests/fixtures/celery.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/events.h"
#include "broker/message.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must name tests/fixtures/celery"
#endif

#define ID_ARGS		"00000000-0000-4000-8000-000000000002"
#define SEC_2030	1893553445.0	/* 2030-01-02T03:04:05Z */

/* The whole of a fixture file, NUL-terminated; *len without the NUL. */
static char *
slurp(const char *name, size_t *len)
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
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

static json_object *
fixture_json(const char *name)
{
	json_object	*o;
	char		*s;

	s = slurp(name, NULL);
	o = json_tokener_parse(s);
	ck_assert_msg(o != NULL, "%s is not JSON", name);
	free(s);
	return o;
}

static void
decode_fixture(const char *name, struct task_msg *m)
{
	char	 err[MSG_ERRLEN], *s;
	size_t	 len;

	s = slurp(name, &len);
	ck_assert_msg(msg_decode(s, len, m, err, sizeof(err)) == 0,
	    "%s: %s", name, err);
	free(s);
}

static int
is_zeroed(const struct task_msg *m)
{
	static const struct task_msg zero;

	return memcmp(m, &zero, sizeof(zero)) == 0;
}

/* Decode s and expect a refusal whose reason contains word. */
static void
expect_refused(const char *s, size_t len, const char *word)
{
	struct task_msg	 m;
	char		 err[MSG_ERRLEN];

	ck_assert_int_eq(msg_decode(s, len, &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, word) != NULL, "reason \"%s\" lacks \"%s\"",
	    err, word);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert(is_zeroed(&m));
}

/*
 * The envelope text with one change: section (NULL: the envelope itself)
 * key set to the JSON text value, or removed if value is NULL.  Frees text.
 */
static char *
edit(char *text, const char *section, const char *key, const char *value)
{
	json_object	*env, *obj;
	char		*out;

	env = json_tokener_parse(text);
	free(text);
	obj = env;
	if (section != NULL)
		ck_assert(json_object_object_get_ex(env, section, &obj));
	if (value == NULL)
		json_object_object_del(obj, key);
	else
		json_object_object_add(obj, key, json_tokener_parse(value));
	out = strdup(json_object_to_json_string_ext(env,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	return out;
}

/* task-reports-args-kwargs.json with one change, as edit(). */
static char *
edited(const char *section, const char *key, const char *value)
{
	return edit(slurp("task-reports-args-kwargs.json", NULL), section,
	    key, value);
}

/* The same fixture with its body replaced by base64(text). */
static char *
with_body(const char *text)
{
	char	*b64, *q, *out;
	size_t	 len;

	b64 = msg_base64_encode((const unsigned char *)text, strlen(text));
	len = strlen(b64) + 3;
	q = malloc(len);
	snprintf(q, len, "\"%s\"", b64);
	out = edited(NULL, "body", q);
	free(b64);
	free(q);
	return out;
}

static int
has_fixture(const char *name)
{
	char	 path[1024];

	snprintf(path, sizeof(path), "%s/%s", FIXTURES_DIR, name);
	return access(path, R_OK) == 0;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t	 a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}


/*
 * Every task-*.json envelope decodes; its raw text is kept; its args and
 * kwargs are those of the captured .body.json.
 */
START_TEST(test_decode_all_fixtures)
{
	struct task_msg	 m;
	struct dirent	*de;
	json_object	*body, *env;
	DIR		*dir;
	char		 bname[512], *raw;
	size_t		 len, stem;
	int		 n = 0;

	ck_assert_ptr_nonnull(dir = opendir(FIXTURES_DIR));
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "task-", 5) != 0 ||
		    !ends_with(de->d_name, ".json") ||
		    ends_with(de->d_name, ".body.json"))
			continue;
		decode_fixture(de->d_name, &m);
		env = fixture_json(de->d_name);
		ck_assert_str_eq(m.id, json_object_get_string(
		    json_object_object_get(json_object_object_get(env,
		    "headers"), "id")));
		ck_assert(strncmp(m.task, "probe.", 6) == 0);
		ck_assert(json_object_is_type(m.args, json_type_array));
		ck_assert(json_object_is_type(m.kwargs, json_type_object));
		ck_assert(json_object_is_type(m.embed, json_type_object));
		ck_assert_str_eq(m.exchange, "");
		ck_assert_ptr_nonnull(m.routing_key);
		ck_assert_ptr_nonnull(m.delivery_tag);
		ck_assert_ptr_nonnull(m.root_id);
		ck_assert_ptr_nonnull(m.argsrepr);
		raw = slurp(de->d_name, &len);
		ck_assert_mem_eq(m.raw, raw, len + 1);
		stem = strlen(de->d_name) - 5;
		snprintf(bname, sizeof(bname), "%.*s.body.json", (int)stem,
		    de->d_name);
		if (has_fixture(bname)) {
			body = fixture_json(bname);
			ck_assert(json_object_equal(m.args,
			    json_object_array_get_idx(body, 0)));
			ck_assert(json_object_equal(m.kwargs,
			    json_object_array_get_idx(body, 1)));
			ck_assert(json_object_equal(m.embed,
			    json_object_array_get_idx(body, 2)));
			json_object_put(body);
		}
		free(raw);
		json_object_put(env);
		msg_clear(&m);
		ck_assert(is_zeroed(&m));
		msg_clear(&m);		/* twice is harmless */
		n++;
	}
	closedir(dir);
	ck_assert_int_eq(n, 35);
}
END_TEST

START_TEST(test_decode_args_kwargs)
{
	struct task_msg	 m;
	char		*r;

	decode_fixture("task-reports-args-kwargs.json", &m);
	ck_assert_str_eq(m.id, ID_ARGS);
	ck_assert_str_eq(m.task, "probe.echo");
	ck_assert_str_eq(m.root_id, ID_ARGS);
	ck_assert_ptr_null(m.parent_id);
	ck_assert_ptr_null(m.group);
	ck_assert_str_eq(m.routing_key, "reports");
	ck_assert_str_eq(m.delivery_tag,
	    "916ca226-d8df-42a1-a0a8-62998b635dec");
	ck_assert_int_eq(json_object_array_length(m.args), 8);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(m.kwargs,
	    "report_id")), 42);
	ck_assert_int_eq(m.priority, 0);
	ck_assert_int_eq(m.retries, 0);
	ck_assert_int_eq(m.ignore_result, 0);
	ck_assert_int_eq(m.redelivered, 0);
	ck_assert(m.eta == 0 && m.expires == 0);
	ck_assert(m.time_limit == 0 && m.soft_time_limit == 0);
	/* Our repr of the decoded values is Python's, byte for byte. */
	r = msg_pyrepr(m.args);
	ck_assert_str_eq(r, m.argsrepr);
	free(r);
	r = msg_pyrepr(m.kwargs);
	ck_assert_str_eq(r, m.kwargsrepr);
	free(r);
	msg_clear(&m);
}
END_TEST

/* Header values, fixture by fixture (times computed by Python). */
START_TEST(test_decode_header_values)
{
	static const struct {
		const char	*name;
		double		 eta, expires, hard, soft;
		int		 retries, ignore, redelivered, priority;
	} rows[] = {
		{ "task-eta.json", SEC_2030 + 0.678901, 0, 0, 0, 0, 0, 0, 0 },
		{ "task-expires-datetime.json", 0, SEC_2030, 0, 0, 0, 0, 0, 0 },
		{ "task-expires-seconds.json", 0, 1795883027.035816, 0, 0,
		  0, 0, 0, 0 },
		{ "task-countdown-30.json", 1795882997.031547, 0, 0, 0,
		  0, 0, 0, 0 },
		{ "task-retry-republished-by-worker.json", 1795882982.551177,
		  0, 0, 0, 1, 0, 0, 0 },
		{ "task-time-limits.json", 0, 0, 30, 20, 0, 0, 0, 0 },
		{ "task-retries-2.json", 0, 0, 0, 0, 2, 0, 0, 0 },
		{ "task-ignore-result-headers.json", 0, 0, 0, 0, 0, 1, 0, 0 },
		{ "task-requeued-after-reject.json", 0, 0, 0, 0, 0, 0, 1, 0 },
		{ "task-restored-after-visibility-timeout.json", 0, 0, 0, 0,
		  0, 0, 1, 0 },
		{ "task-restored-at-warm-shutdown.json", 0, 0, 0, 0, 0, 0, 1, 0 },
		{ "task-restored-priority-9-lands-in-base-list.json", 0, 0,
		  0, 0, 0, 0, 1, 9 },
	};
	struct task_msg	 m;
	char		 name[64];
	size_t		 i;
	int		 p;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		decode_fixture(rows[i].name, &m);
		ck_assert_double_eq_tol(m.eta, rows[i].eta, 1e-6);
		ck_assert_double_eq_tol(m.expires, rows[i].expires, 1e-6);
		ck_assert(m.time_limit == rows[i].hard);
		ck_assert(m.soft_time_limit == rows[i].soft);
		ck_assert_int_eq(m.retries, rows[i].retries);
		ck_assert_int_eq(m.ignore_result, rows[i].ignore);
		ck_assert_int_eq(m.redelivered, rows[i].redelivered);
		ck_assert_int_eq(m.priority, rows[i].priority);
		msg_clear(&m);
	}
	for (p = 0; p <= 9; p++) {
		snprintf(name, sizeof(name), "task-priority-%d.json", p);
		decode_fixture(name, &m);
		ck_assert_int_eq(m.priority, p);
		msg_clear(&m);
	}
	decode_fixture("task-retry-republished-by-worker.json", &m);
	ck_assert_str_eq(m.parent_id, m.id);
	msg_clear(&m);
	decode_fixture("task-group-member-1.json", &m);
	ck_assert_ptr_nonnull(m.group);
	msg_clear(&m);
}
END_TEST

/* Variations on a fixture that must still decode, with these values. */
START_TEST(test_decode_variants)
{
	static const struct {
		const char	*section, *key, *value;
		int		 priority;
		double		 hard, soft;
	} cases[] = {
		{ "properties", "priority", "42", 9, 0, 0 },
		{ "properties", "priority", "-3", 0, 0, 0 },
		{ "properties", "priority", "\"5\"", 0, 0, 0 },
		{ "properties", "priority", "5.5", 0, 0, 0 },
		{ "properties", "priority", NULL, 0, 0, 0 },
		{ "headers", "timelimit", "[1.5, null]", 0, 1.5, 0 },
		{ "headers", "timelimit", "[null, 2]", 0, 0, 2 },
		{ "headers", "timelimit", "null", 0, 0, 0 },
		{ "headers", "timelimit", "[-1, \"x\"]", 0, 0, 0 },
	};
	struct task_msg	 m;
	char		 err[MSG_ERRLEN], *s;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = edited(cases[i].section, cases[i].key, cases[i].value);
		ck_assert_msg(msg_decode(s, strlen(s), &m, err,
		    sizeof(err)) == 0, "case %zu: %s", i, err);
		ck_assert_int_eq(m.priority, cases[i].priority);
		ck_assert(m.time_limit == cases[i].hard);
		ck_assert(m.soft_time_limit == cases[i].soft);
		msg_clear(&m);
		free(s);
	}
	/* No body_encoding (absent or null): the body is the payload. */
	for (i = 0; i < 2; i++) {
		s = edit(edited(NULL, "body", "\"[[7], {}, null]\""),
		    "properties", "body_encoding", i == 0 ? NULL : "null");
		ck_assert_int_eq(msg_decode(s, strlen(s), &m, err,
		    sizeof(err)), 0);
		ck_assert_int_eq(json_object_get_int(
		    json_object_array_get_idx(m.args, 0)), 7);
		ck_assert_ptr_null(m.embed);
		msg_clear(&m);
		free(s);
	}
}
END_TEST

/*
 * Escaped supplementary characters as Python sends them, including
 * those json-c alone would turn into U+FFFD (U+2DC00, CJK extension F).
 */
START_TEST(test_decode_surrogates)
{
	struct task_msg	 m;
	char		 err[MSG_ERRLEN], *s, *r;
	json_object	*a;

	s = with_body("[[\"\\ud877\\udc00 \\ud83d\\ude00 \\ud836\\udc00\", "
	    "\"\\\\ud877\\udc00\", {\"\\ud877\\udc00\": 1}], {}, {}]");
	ck_assert_int_eq(msg_decode(s, strlen(s), &m, err, sizeof(err)), 0);
	a = json_object_array_get_idx(m.args, 0);
	ck_assert_str_eq(json_object_get_string(a),
	    "\xf0\xad\xb0\x80 \xf0\x9f\x98\x80 \xf0\x9d\xa0\x80");
	/* An escaped backslash is not the start of a pair. */
	a = json_object_array_get_idx(m.args, 1);
	ck_assert(strncmp(json_object_get_string(a), "\\ud877", 6) == 0);
	r = msg_pyrepr(json_object_array_get_idx(m.args, 2));
	ck_assert_str_eq(r, "{'\xf0\xad\xb0\x80': 1}");
	free(r);
	msg_clear(&m);
	free(s);
}
END_TEST

START_TEST(test_decode_refusals)
{
	static const struct {
		const char	*section, *key, *value, *word;
	} cases[] = {
		{ NULL, "content-type", "\"application/x-python-serialize\"",
		  "content-type application/x-python-serialize refused" },
		{ NULL, "content-type", "\"application/x-yaml\"",
		  "application/x-yaml refused" },
		{ NULL, "content-type", "\"application/x-msgpack\"",
		  "application/x-msgpack refused" },
		{ NULL, "content-type", NULL, "content-type missing" },
		{ NULL, "content-type", "\"a\\nb\"", "a?b refused" },
		{ NULL, "content-encoding", "\"latin-1\"", "latin-1 refused" },
		{ NULL, "body", "\"!!not base64!!\"", "base64" },
		{ NULL, "body", "\"W10=\"", "[args, kwargs, embed]" },
		{ NULL, "body", "42", "body" },
		{ NULL, "body", NULL, "body" },
		{ NULL, "headers", NULL, "headers missing" },
		{ "headers", "task", NULL, "headers.task missing" },
		{ "headers", "task", "7", "headers.task missing" },
		{ "headers", "id", NULL, "headers.id missing" },
		{ "headers", "id", "\"\"", "headers.id missing" },
		{ "headers", "eta", "\"tomorrow\"", "headers.eta" },
		{ "headers", "expires", "12", "headers.expires" },
		{ "properties", "body_encoding", "\"gzip\"", "gzip refused" },
	};
	static const char *bodies[][2] = {
		{ "[[1], {}]", "[args, kwargs, embed]" },
		{ "{\"args\": []}", "[args, kwargs, embed]" },
		{ "[{}, {}, {}]", "args is not an array" },
		{ "[[], [], {}]", "kwargs is not an object" },
		{ "[[], {}, 5]", "embed is not an object" },
		{ "[[], {}, {}", "not valid JSON" },
		{ "", "not valid JSON" },
	};
	static const char *raws[][2] = {
		{ "hello", "malformed JSON envelope" },
		{ "", "malformed JSON envelope" },
		{ "{\"body\": ", "malformed JSON envelope" },
		{ "[1, 2]", "not a JSON object" },
		{ "{} {}", "malformed JSON envelope" },
		{ "null", "not a JSON object" },
	};
	/* A protocol 1 message: everything is in the body, no task header. */
	static const char proto1[] = "{\"body\": \"eyJ0YXNrIjogInByb2JlLmFkZCIs"
	    "ICJpZCI6ICJ4IiwgImFyZ3MiOiBbMSwgMl0sICJrd2FyZ3MiOiB7fX0=\", "
	    "\"content-type\": \"application/json\", \"content-encoding\": "
	    "\"utf-8\", \"headers\": {}, \"properties\": {\"body_encoding\": "
	    "\"base64\", \"delivery_tag\": \"t\"}}";
	struct task_msg	 m;
	char		*s;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = edited(cases[i].section, cases[i].key, cases[i].value);
		expect_refused(s, strlen(s), cases[i].word);
		free(s);
	}
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		s = with_body(bodies[i][0]);
		expect_refused(s, strlen(s), bodies[i][1]);
		free(s);
	}
	for (i = 0; i < sizeof(raws) / sizeof(raws[0]); i++)
		expect_refused(raws[i][0], strlen(raws[i][0]), raws[i][1]);
	expect_refused(proto1, strlen(proto1), "not a Celery protocol 2");
	/* A NUL inside the envelope is not JSON. */
	s = slurp("task-priority-3.json", NULL);
	s[40] = '\0';
	expect_refused(s, 868, "malformed JSON envelope");
	free(s);
	ck_assert_int_eq(msg_decode(NULL, 0, &m, NULL, 0), -1);
	ck_assert_int_eq(msg_decode("x", 1, NULL, NULL, 0), -1);
}
END_TEST

/* The keys of an object, in order, joined with commas. */
static void
keys_of(json_object *o, char *buf, size_t len)
{
	buf[0] = '\0';
	json_object_object_foreach(o, k, v) {
		(void)v;
		strncat(buf, k, len - strlen(buf) - 2);
		strcat(buf, ",");
	}
}

START_TEST(test_encode_roundtrip)
{
	struct msg_new	 n;
	struct task_msg	 m;
	json_object	*env, *ref, *args, *kwargs;
	char		 err[MSG_ERRLEN], a[512], b[512], *s;
	char		 idbuf[37];
	const char	*sec[] = { NULL, "headers", "properties" };
	size_t		 i;

	args = json_tokener_parse("[1, \"two\", 3.5, null, [\"it's\"]]");
	kwargs = json_tokener_parse("{\"k\": \"v\", \"n\": {\"x\": true}}");
	memset(&n, 0, sizeof(n));
	n.task = "probe.echo";
	n.id = ID_ARGS;
	n.queue = "reports";
	n.args = args;
	n.kwargs = kwargs;
	n.priority = 6;
	n.retries = 3;
	n.eta = SEC_2030 + 0.5;
	n.expires = SEC_2030 + 60;
	n.time_limit = 30;
	n.soft_time_limit = 20.5;
	n.root_id = "root";
	n.parent_id = "parent";
	n.ignore_result = 1;
	n.origin = "gen1@host";
	s = msg_encode(&n, idbuf);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(msg_decode(s, strlen(s), &m, err, sizeof(err)), 0);
	ck_assert_str_eq(m.id, ID_ARGS);
	ck_assert_str_eq(m.task, "probe.echo");
	ck_assert_str_eq(m.routing_key, "reports");
	ck_assert(json_object_equal(m.args, args));
	ck_assert(json_object_equal(m.kwargs, kwargs));
	ck_assert_int_eq(m.priority, 6);
	ck_assert_int_eq(m.retries, 3);
	ck_assert_double_eq_tol(m.eta, SEC_2030 + 0.5, 1e-6);
	ck_assert(m.expires == SEC_2030 + 60);
	ck_assert(m.time_limit == 30 && m.soft_time_limit == 20.5);
	ck_assert_str_eq(m.root_id, "root");
	ck_assert_str_eq(m.parent_id, "parent");
	ck_assert_int_eq(m.ignore_result, 1);
	ck_assert_int_eq(m.redelivered, 0);
	ck_assert_str_eq(m.argsrepr, "[1, 'two', 3.5, None, [\"it's\"]]");
	ck_assert_str_eq(m.kwargsrepr, "{'k': 'v', 'n': {'x': True}}");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
	    m.headers, "origin")), "gen1@host");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
	    m.headers, "eta")), "2030-01-02T03:04:05.500000+00:00");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
	    m.headers, "expires")), "2030-01-02T03:05:05+00:00");
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(
	    m.headers, "timelimit"), JSON_C_TO_STRING_PLAIN), "[30,20.5]");
	ck_assert_int_eq(strlen(m.delivery_tag), 36);
	/* Same keys in the same order as a real Celery client's message. */
	env = json_tokener_parse(s);
	ref = fixture_json("task-reports-args-kwargs.json");
	for (i = 0; i < 3; i++) {
		keys_of(sec[i] ? json_object_object_get(env, sec[i]) : env,
		    a, sizeof(a));
		keys_of(sec[i] ? json_object_object_get(ref, sec[i]) : ref,
		    b, sizeof(b));
		ck_assert_str_eq(a, b);
	}
	json_object_put(env);
	json_object_put(ref);
	msg_clear(&m);
	free(s);

	/* Defaults: fresh id, own root_id, [] / {}, null eta and limits. */
	memset(&n, 0, sizeof(n));
	n.task = "probe.add";
	n.queue = "celery";
	n.priority = 12;
	s = msg_encode(&n, idbuf);
	ck_assert_int_eq(msg_decode(s, strlen(s), &m, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(idbuf), 36);
	ck_assert_str_eq(m.id, idbuf);
	ck_assert_str_eq(m.root_id, idbuf);
	ck_assert_ptr_null(m.parent_id);
	ck_assert_int_eq(m.priority, 9);
	ck_assert(m.eta == 0 && m.expires == 0 && m.time_limit == 0);
	ck_assert_str_eq(m.argsrepr, "[]");
	ck_assert_str_eq(m.kwargsrepr, "{}");
	ck_assert(strncmp(json_object_get_string(json_object_object_get(
	    m.headers, "origin")), "gen", 3) == 0);
	ck_assert_ptr_nonnull(strstr(s, "\"timelimit\":[null,null]"));
	ck_assert_ptr_nonnull(strstr(s, "\"eta\":null,\"expires\":null"));
	msg_clear(&m);
	free(s);

	/* argsrepr is capped as Celery caps it. */
	json_object_put(args);
	args = json_object_new_array();
	for (i = 0; i < 1000; i++)
		json_object_array_add(args, json_object_new_int(1000));
	n.args = args;
	s = msg_encode(&n, NULL);
	ck_assert_int_eq(msg_decode(s, strlen(s), &m, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(m.argsrepr), 1024 + 3);
	ck_assert(ends_with(m.argsrepr, "..."));
	ck_assert_int_eq(json_object_array_length(m.args), 1000);
	msg_clear(&m);
	free(s);

	/* Any string is a valid task id, not only a UUID. */
	n.args = NULL;
	n.id = "report-2030-01-02-monthly-summary-for-all-tenants";
	s = msg_encode(&n, NULL);
	ck_assert_int_eq(msg_decode(s, strlen(s), &m, err, sizeof(err)), 0);
	ck_assert_str_eq(m.id, n.id);
	ck_assert_str_eq(m.root_id, n.id);
	msg_clear(&m);
	free(s);

	n.args = kwargs;		/* not an array */
	ck_assert_ptr_null(msg_encode(&n, NULL));
	n.args = NULL;
	n.task = NULL;
	ck_assert_ptr_null(msg_encode(&n, NULL));
	ck_assert_ptr_null(msg_encode(NULL, NULL));
	json_object_put(args);
	json_object_put(kwargs);
}
END_TEST

START_TEST(test_encode_redelivered)
{
	static const char *names[] = {
		"task-reports-args-kwargs.json",
		"task-requeued-after-reject.json",
	};
	struct task_msg	 m, m2;
	json_object	*orig, *again;
	char		 err[MSG_ERRLEN], *s;
	size_t		 i;

	for (i = 0; i < 2; i++) {
		decode_fixture(names[i], &m);
		s = msg_encode_redelivered(&m);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(msg_decode(s, strlen(s), &m2, err,
		    sizeof(err)), 0);
		ck_assert_int_eq(m2.redelivered, 1);
		ck_assert_str_eq(m2.id, m.id);
		ck_assert_str_eq(m2.delivery_tag, m.delivery_tag);
		ck_assert_str_eq(m2.argsrepr, m.argsrepr);
		ck_assert(json_object_equal(m2.args, m.args));
		ck_assert(json_object_equal(m2.kwargs, m.kwargs));
		ck_assert(json_object_get_boolean(json_object_object_get(
		    m2.headers, "redelivered")));
		/* Both flags set; everything else as it was. */
		orig = json_tokener_parse(m.raw);
		again = json_tokener_parse(s);
		json_object_object_del(json_object_object_get(orig,
		    "headers"), "redelivered");
		json_object_object_del(json_object_object_get(again,
		    "headers"), "redelivered");
		ck_assert(json_object_get_boolean(json_object_object_get(
		    json_object_object_get(json_object_object_get(again,
		    "properties"), "delivery_info"), "redelivered")));
		json_object_object_del(json_object_object_get(
		    json_object_object_get(orig, "properties"),
		    "delivery_info"), "redelivered");
		json_object_object_del(json_object_object_get(
		    json_object_object_get(again, "properties"),
		    "delivery_info"), "redelivered");
		ck_assert(json_object_equal(orig, again));
		json_object_put(orig);
		json_object_put(again);
		msg_clear(&m2);
		msg_clear(&m);
		free(s);
	}
	ck_assert_ptr_null(msg_encode_redelivered(&m));
}
END_TEST

/*
 * Compare a result value (freed) with a fixture's (ref, put): same keys in
 * the same order, equal values but date_done, which is "now" or null.
 */
static void
result_like(char *s, json_object *ref, int want_date)
{
	json_object	*got, *dd;
	char		 a[256], b[256];
	double		 t;

	ck_assert_ptr_nonnull(s);
	got = json_tokener_parse(s);
	keys_of(got, a, sizeof(a));
	keys_of(ref, b, sizeof(b));
	ck_assert_str_eq(a, b);
	dd = json_object_object_get(got, "date_done");
	if (want_date) {
		ck_assert(json_object_is_type(dd, json_type_string));
		ck_assert_int_eq(msg_parse_iso8601(json_object_get_string(dd),
		    &t), 0);
		ck_assert(fabs(t - (double)time(NULL)) < 5);
		/* Naive UTC, as Python's utcnow().isoformat(). */
		ck_assert_ptr_null(strchr(json_object_get_string(dd), '+'));
	} else
		ck_assert_ptr_null(dd);
	json_object_object_del(got, "date_done");
	json_object_object_del(ref, "date_done");
	ck_assert_msg(json_object_equal(got, ref), "%s differs", s);
	json_object_put(got);
	json_object_put(ref);
	free(s);
}

/* The result values we build match Celery's, fixture by fixture. */
START_TEST(test_results)
{
	json_object	*ref, *v;

	v = json_object_new_int(5);
	result_like(msg_result_success("00000000-0000-4000-9000-000000000001",
	    v, NULL), fixture_json("result-success.json"), 1);
	json_object_put(v);
	ref = fixture_json("result-link-callback.json");
	result_like(msg_result_success("00000000-0000-4000-9000-000000000021",
	    json_object_object_get(ref, "result"),
	    "00000000-0000-4000-9000-000000000020"), ref, 1);

	ref = fixture_json("result-failure.json");
	v = json_tokener_parse("[\"boom: bad input\"]");
	result_like(msg_result_failure("FAILURE",
	    "00000000-0000-4000-9000-000000000003", "ValueError", "builtins",
	    v, json_object_get_string(json_object_object_get(ref,
	    "traceback")), NULL), ref, 1);
	json_object_put(v);

	v = json_tokener_parse("[\"terminated\"]");
	result_like(msg_result_failure("REVOKED",
	    "00000000-0000-4000-9000-000000000010", "TaskRevokedError",
	    "celery.exceptions", v, NULL, NULL),
	    fixture_json("result-revoked-terminate.json"), 1);
	json_object_put(v);

	/* RETRY is not a ready state: date_done null.  Children are ours. */
	ref = fixture_json("result-retry.json");
	json_object_object_add(ref, "children", json_object_new_array());
	v = json_tokener_parse("[\"transient r1\"]");
	result_like(msg_result_failure("RETRY",
	    "00000000-0000-4000-9000-000000000008", "KeyError", "builtins",
	    v, json_object_get_string(json_object_object_get(ref,
	    "traceback")), NULL), ref, 0);
	json_object_put(v);

	v = json_tokener_parse("{\"pid\": 2918, \"hostname\": \"w1@probe\"}");
	result_like(msg_result_state("STARTED",
	    "00000000-0000-4000-9000-000000000102", v),
	    fixture_json("result-started.json"), 0);
	json_object_put(v);
	v = json_tokener_parse("{\"current\": 0, \"total\": 3}");
	result_like(msg_result_state("PROGRESS",
	    "00000000-0000-4000-9000-000000000009", v),
	    fixture_json("result-progress-custom-state.json"), 0);
	json_object_put(v);
}
END_TEST

START_TEST(test_results_edges)
{
	static const char head[] = "{\"status\":\"FAILURE\",\"result\":"
	    "{\"exc_type\":\"NotRegistered\",\"exc_message\":[],"
	    "\"exc_module\":null},\"traceback\":null,\"children\":[],"
	    "\"date_done\":\"";
	char	*s;

	/* exc_message NULL is [], exc_module NULL is null. */
	s = msg_result_failure("FAILURE", "t1", "NotRegistered", NULL, NULL,
	    NULL, "p1");
	ck_assert(strncmp(s, head, sizeof(head) - 1) == 0);
	ck_assert(ends_with(s, "\",\"parent_id\":\"p1\",\"task_id\":\"t1\"}"));
	free(s);
	s = msg_result_state("STARTED", "t2", NULL);
	ck_assert_str_eq(s, "{\"status\":\"STARTED\",\"result\":null,"
	    "\"traceback\":null,\"children\":[],\"date_done\":null,"
	    "\"task_id\":\"t2\"}");
	free(s);
	ck_assert_ptr_null(msg_result_state(NULL, "t", NULL));
	ck_assert_ptr_null(msg_result_success(NULL, NULL, NULL));
}
END_TEST

START_TEST(test_base64)
{
	static const char *vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" }, { "\xff\xfe?>", "//4/Pg==" },
	};
	static const char *bad[] = {
		"Zg=", "Zg", "Zm9vY", "Zm 9v", "Zm9v\n", "Zg==Zg==", "====",
		"Z===", "Zm=v", "Zm9*", "Zm9v\x80" "AAA",
	};
	unsigned char	 all[256], *d;
	char		*e, *env, *body, name[512];
	size_t		 i, len, blen, n;
	json_object	*o;
	struct dirent	*de;
	DIR		*dir;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		e = msg_base64_encode((const unsigned char *)vec[i][0],
		    strlen(vec[i][0]));
		ck_assert_str_eq(e, vec[i][1]);
		d = msg_base64_decode(e, strlen(e), &len);
		ck_assert_uint_eq(len, strlen(vec[i][0]));
		ck_assert_mem_eq(d, vec[i][0], len + 1);
		free(d);
		free(e);
	}
	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	for (n = 0; n <= 256; n += 1 + n / 7) {
		e = msg_base64_encode(all, n);
		d = msg_base64_decode(e, strlen(e), &len);
		ck_assert_uint_eq(len, n);
		ck_assert_mem_eq(d, all, n);
		free(d);
		free(e);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = 99;
		ck_assert_msg(msg_base64_decode(bad[i], strlen(bad[i]),
		    &len) == NULL, "accepted \"%s\"", bad[i]);
		ck_assert_uint_eq(len, 0);
	}
	/* Each captured body decodes to the captured .body.json bytes. */
	ck_assert_ptr_nonnull(dir = opendir(FIXTURES_DIR));
	for (n = 0; (de = readdir(dir)) != NULL; ) {
		/*
		 * The event captures had traceback paths edited in their
		 * .body.json only; the task and pidbox ones are untouched.
		 */
		if (!ends_with(de->d_name, ".body.json") ||
		    strncmp(de->d_name, "event-", 6) == 0)
			continue;
		snprintf(name, sizeof(name), "%.*s.json",
		    (int)(strlen(de->d_name) - 10), de->d_name);
		env = slurp(name, NULL);
		body = slurp(de->d_name, &blen);
		o = json_tokener_parse(env);
		e = (char *)json_object_get_string(json_object_object_get(o,
		    "body"));
		d = msg_base64_decode(e, strlen(e), &len);
		ck_assert_msg(d != NULL && len == blen &&
		    memcmp(d, body, len) == 0, "%s", name);
		free(d);
		json_object_put(o);
		free(body);
		free(env);
		n++;
	}
	closedir(dir);
	ck_assert_uint_ge(n, 60);
}
END_TEST

START_TEST(test_iso8601)
{
	static const struct {
		const char	*s;
		double		 t;
	} good[] = {
		{ "2030-01-02T03:04:05.678901+00:00", SEC_2030 + 0.678901 },
		{ "2030-01-02T03:04:05+00:00", SEC_2030 },
		{ "2030-01-02T03:04:05Z", SEC_2030 },
		{ "2030-01-02T03:04:05", SEC_2030 },
		{ "2030-01-02T03:04:05.5Z", SEC_2030 + 0.5 },
		{ "2030-01-02T03:04:05.123456789", SEC_2030 + 0.123456789 },
		{ "2030-01-01T21:34:05-05:30", SEC_2030 },
		{ "2030-01-02T04:04:05.25+01:00", SEC_2030 + 0.25 },
		{ "2028-02-29T00:00:00", 1835395200.0 },
		{ "1970-01-01T00:00:00+00:00", 0.0 },
	};
	static const char *bad[] = {
		"", "2030", "2030-01-02", "2030-01-02 03:04:05",
		"2030-01-02T03:04:05.", "2030-01-02T03:04:05.1234567890",
		"2030-13-02T03:04:05", "2030-02-30T03:04:05",
		"2029-02-29T00:00:00", "2030-01-02T24:00:00",
		"2030-01-02T03:60:05", "2030-01-02T03:04:05+0100",
		"2030-01-02T03:04:05+01", "2030-01-02T03:04:05Zjunk",
		"2030-01-02T03:04:05 ", "2030-1-02T03:04:05",
		"2030-01-02T03:04:05+24:00", "x030-01-02T03:04:05",
	};
	char	 buf[40];
	double	 t;
	size_t	 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(msg_parse_iso8601(good[i].s, &t) == 0, "%s",
		    good[i].s);
		ck_assert_double_eq_tol(t, good[i].t, 1e-6);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(msg_parse_iso8601(bad[i], &t) == -1, "%s",
		    bad[i]);
	ck_assert_int_eq(msg_parse_iso8601(NULL, &t), -1);

	msg_format_date_done(SEC_2030 + 0.678901, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2030-01-02T03:04:05.678901");
	msg_format_date_done(SEC_2030, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2030-01-02T03:04:05");
	msg_format_date_done(SEC_2030 + 0.9999996, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2030-01-02T03:04:06");
	msg_format_iso8601(SEC_2030 + 0.5, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2030-01-02T03:04:05.500000+00:00");
	msg_format_iso8601(SEC_2030, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2030-01-02T03:04:05+00:00");
	msg_format_iso8601(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00+00:00");
	msg_format_iso8601(1764346966.271794, buf, sizeof(buf));
	ck_assert_int_eq(msg_parse_iso8601(buf, &t), 0);
	ck_assert_double_eq_tol(t, 1764346966.271794, 1e-6);
	msg_format_iso8601(NAN, buf, sizeof(buf));
	ck_assert_int_eq(msg_parse_iso8601(buf, &t), 0);
	msg_format_iso8601(1e300, buf, sizeof(buf));
	ck_assert_str_eq(buf, "9999-12-31T23:59:59+00:00");
}
END_TEST

START_TEST(test_pyrepr)
{
	/* Expected values printed by Python 3.11: repr(json.loads(in)). */
	static const char *cases[][2] = {
	{ "null", "None" }, { "true", "True" }, { "false", "False" },
	{ "0", "0" }, { "-5", "-5" },
	{ "12345678901234567890", "12345678901234567890" },
	{ "3.5", "3.5" }, { "1e20", "1e+20" }, { "1.0", "1.0" },
	{ "0.1", "0.1" }, { "1e16", "1e+16" },
	{ "1e15", "1000000000000000.0" }, { "1e-5", "1e-05" },
	{ "0.0001", "0.0001" }, { "-0.0", "-0.0" },
	{ "123456789.123", "123456789.123" }, { "1.5e-7", "1.5e-07" },
	{ "2.5e-300", "2.5e-300" },
	{ "1.7976931348623157e308", "1.7976931348623157e+308" },
	{ "5e-324", "5e-324" }, { "-2.0", "-2.0" }, { "100.0", "100.0" },
	{ "1e22", "1e+22" }, { "0.30000000000000004", "0.30000000000000004" },
	{ "\"it's\"", "\"it's\"" },
	{ "\"a\\\"b'c\"", "'a\"b\\'c'" },
	{ "\"plain\"", "'plain'" },
	{ "\"back\\\\slash\"", "'back\\\\slash'" },
	{ "\"tab\\t nl\\n cr\\r\"", "'tab\\t nl\\n cr\\r'" },
	{ "\"\\u0001\\u007f\\u0000\"", "'\\x01\\x7f\\x00'" },
	{ "\"\\u00fcn\\u00efc\\u00f8d\\u00e9 \\u2713\"",
	  "'\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \xe2\x9c\x93'" },
	{ "\"\\u00a0\\u00ad\"", "'\\xa0\\xad'" },
	{ "\"\\u200b\\u2028\"", "'\\u200b\\u2028'" },
	{ "\"\\ud83d\\ude00\"", "'\xf0\x9f\x98\x80'" },
	{ "\"\\ue000\"", "'\\ue000'" },
	{ "\"\\udb80\\udc00\"", "'\\U000f0000'" },
	{ "\"\\u0085\"", "'\\x85'" },
	{ "[]", "[]" }, { "{}", "{}" },
	{ "[1, [2, [3, {\"k\": [null]}]]]", "[1, [2, [3, {'k': [None]}]]]" },
	{ "{\"a\": 1, \"b'\": \"x\", \"c\": [true, false]}",
	  "{'a': 1, \"b'\": 'x', 'c': [True, False]}" },
	};
	json_object	*o;
	char		*r;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = json_tokener_parse(cases[i][0]);
		r = msg_pyrepr(o);
		ck_assert_msg(r != NULL && strcmp(r, cases[i][1]) == 0,
		    "repr(%s) = %s, want %s", cases[i][0], r, cases[i][1]);
		free(r);
		json_object_put(o);
	}
	r = msg_pyrepr(NULL);
	ck_assert_str_eq(r, "None");
	free(r);
	/* Bytes that are not UTF-8 (json-c lets them through) are shown. */
	o = json_object_new_string_len("a\xff\xc3", 3);
	r = msg_pyrepr(o);
	ck_assert_str_eq(r, "'a\\xff\\xc3'");
	free(r);
	json_object_put(o);
}
END_TEST

/* ------------------------------------------------------- task events */

/* Strings with everything a JSON writer must get right. */
#define NASTY_ARGS	"['say \"hi\"', 'C:\\\\dir\\\\', 'a\nb\r\tc', '\x01\x1f\x7f'," \
			" '\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80']"
#define NASTY_KWARGS	"{'k/\"': '\b\f\\\\u0041'}"
#define NASTY_RESULT	"'r\xc3\xa9sult \"x\" \\\\ \n'"
#define NASTY_TB	"Traceback (most recent call last):\n  File \"C:\\\\a.py\"" \
			", line 1\n\tValueError: \x02 caf\xc3\xa9\n"

static void
events_test_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->node, sizeof(e->node), "celeriac@rc-\"host\"");
	e->pid = 4242;
	/* Nothing listens there: a flush drops quietly. */
	snprintf(e->url.host, sizeof(e->url.host), "127.0.0.1");
	e->url.port = 1;
}

/* The event text, parsed strictly (valid UTF-8 included). */
static json_object *
events_test_parse(struct events *e, const char *type, const char **textp)
{
	struct json_tokener	*tok;
	json_object		*o;
	const char		*text;
	size_t			 len, i;

	text = events_finish(e, type, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	/* No raw control character reaches the wire. */
	for (i = 0; i < len && (unsigned char)text[i] >= 0x20; i++)
		;
	ck_assert_msg(i == len, "raw byte %#x at %zu", text[i], i);
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	ck_assert_msg(o != NULL && json_tokener_get_error(tok) ==
	    json_tokener_success, "not JSON: %s", text);
	ck_assert_int_eq(json_tokener_get_parse_end(tok), len);
	json_tokener_free(tok);
	if (textp != NULL)
		*textp = text;
	return o;
}

static const char *
ev_str(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	ck_assert_msg(json_object_is_type(v, json_type_string), "%s", key);
	return json_object_get_string(v);
}

static void
ev_null(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	ck_assert_msg(v == NULL, "%s is not null", key);
}

static int64_t
ev_int(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	ck_assert_msg(json_object_is_type(v, json_type_int), "%s", key);
	return json_object_get_int64(v);
}

static int
ev_bool(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	ck_assert_msg(json_object_is_type(v, json_type_boolean), "%s", key);
	return json_object_get_boolean(v);
}

static double
ev_double(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	ck_assert_msg(json_object_is_type(v, json_type_double), "%s", key);
	return json_object_get_double(v);
}

/* o has exactly the keys of ref. */
static void
same_keys(json_object *o, json_object *ref, const char *what)
{
	json_object_object_foreach(ref, k1, v1) {
		(void)v1;
		ck_assert_msg(json_object_object_get_ex(o, k1, NULL),
		    "%s: no %s", what, k1);
	}
	json_object_object_foreach(o, k2, v2) {
		(void)v2;
		ck_assert_msg(json_object_object_get_ex(ref, k2, NULL),
		    "%s: extra %s", what, k2);
	}
}

/* Our event has exactly the keys of Celery's (fixture body, element 0). */
static void
ev_same_keys(json_object *o, const char *fixture)
{
	json_object *ref;

	ref = fixture_json(fixture);
	same_keys(o, json_object_is_type(ref, json_type_array) ?
	    json_object_array_get_idx(ref, 0) : ref, fixture);
	json_object_put(ref);
}

/* The common fields, with the clock the event should carry. */
static void
ev_common(json_object *o, const char *type, int64_t clock)
{
	double ts = ev_double(o, "timestamp");

	ck_assert_str_eq(ev_str(o, "hostname"), "celeriac@rc-\"host\"");
	ck_assert_int_eq(ev_int(o, "utcoffset"), events_utcoffset());
	ck_assert_int_eq(ev_int(o, "pid"), 4242);
	ck_assert_int_eq(ev_int(o, "clock"), clock);
	ck_assert_str_eq(ev_str(o, "type"), type);
	ck_assert_msg(fabs(ts - (double)time(NULL)) < 5, "timestamp %f", ts);
}

START_TEST(test_events_received)
{
	struct events	 e;
	json_object	*o;
	char		 iso[48];

	events_test_init(&e);
	msg_format_iso8601(SEC_2030, iso, sizeof(iso));
	events_begin(&e, ID_ARGS);
	events_str(&e, "name", "probe.add");
	events_str(&e, "args", NASTY_ARGS);
	events_str(&e, "kwargs", NASTY_KWARGS);
	events_str(&e, "root_id", NULL);
	events_str(&e, "parent_id", "p\xe2\x82\xac");
	events_int(&e, "retries", 3);
	events_str(&e, "eta", iso);
	events_str(&e, "expires", NULL);
	o = events_test_parse(&e, "task-received", NULL);
	ev_common(o, "task-received", 1);
	ck_assert_str_eq(ev_str(o, "uuid"), ID_ARGS);
	ck_assert_str_eq(ev_str(o, "name"), "probe.add");
	ck_assert_str_eq(ev_str(o, "args"), NASTY_ARGS);
	ck_assert_str_eq(ev_str(o, "kwargs"), NASTY_KWARGS);
	ev_null(o, "root_id");
	ck_assert_str_eq(ev_str(o, "parent_id"), "p\xe2\x82\xac");
	ck_assert_int_eq(ev_int(o, "retries"), 3);
	ck_assert_str_eq(ev_str(o, "eta"), "2030-01-02T03:04:05+00:00");
	ev_null(o, "expires");
	ev_same_keys(o, "event-task-received.body.json");
	json_object_put(o);

	events_begin(&e, ID_ARGS);
	o = events_test_parse(&e, "task-started", NULL);
	ev_common(o, "task-started", 2);
	ev_same_keys(o, "event-task-started.body.json");
	json_object_put(o);
	events_close(&e);
}
END_TEST

START_TEST(test_events_outcomes)
{
	struct events	 e;
	json_object	*o;
	const char	*text;

	events_test_init(&e);
	events_begin(&e, ID_ARGS);
	events_str(&e, "result", NASTY_RESULT);
	events_secs(&e, "runtime", 1500);
	o = events_test_parse(&e, "task-succeeded", &text);
	ck_assert_ptr_nonnull(strstr(text, "\"runtime\":0.0015,"));
	ev_common(o, "task-succeeded", 1);
	ck_assert_str_eq(ev_str(o, "result"), NASTY_RESULT);
	ck_assert(ev_double(o, "runtime") == 1500 / 1e6);
	ev_same_keys(o, "event-task-succeeded.body.json");
	json_object_put(o);

	events_begin(&e, ID_ARGS);
	events_str(&e, "exception", "ValueError('no \"good\"')");
	events_str(&e, "traceback", NASTY_TB);
	o = events_test_parse(&e, "task-failed", &text);
	/* Escapes as a JSON writer would spell them. */
	ck_assert_ptr_nonnull(strstr(text, "\\n\\tValueError: \\u0002 caf"
	    "\xc3\xa9\\n\""));
	ck_assert_ptr_nonnull(strstr(text, "\\\"C:\\\\\\\\a.py\\\""));
	ev_common(o, "task-failed", 2);
	ck_assert_str_eq(ev_str(o, "exception"), "ValueError('no \"good\"')");
	ck_assert_str_eq(ev_str(o, "traceback"), NASTY_TB);
	ev_same_keys(o, "event-task-failed.body.json");
	json_object_put(o);

	events_begin(&e, ID_ARGS);
	events_str(&e, "exception", "Retry()");
	events_str(&e, "traceback", "");
	o = events_test_parse(&e, "task-retried", NULL);
	ck_assert_str_eq(ev_str(o, "traceback"), "");
	ev_same_keys(o, "event-task-retried.body.json");
	json_object_put(o);

	events_begin(&e, ID_ARGS);
	events_bool(&e, "terminated", 0);
	events_str(&e, "signum", NULL);
	events_bool(&e, "expired", 1);
	o = events_test_parse(&e, "task-revoked", &text);
	ck_assert_ptr_nonnull(strstr(text,
	    ",\"terminated\":false,\"signum\":null,\"expired\":true,"));
	ck_assert_int_eq(ev_bool(o, "terminated"), 0);
	ev_null(o, "signum");
	ck_assert_int_eq(ev_bool(o, "expired"), 1);
	ev_same_keys(o, "event-task-revoked.body.json");
	json_object_put(o);

	events_begin(&e, ID_ARGS);
	events_bool(&e, "requeue", 0);
	o = events_test_parse(&e, "task-rejected", NULL);
	ev_common(o, "task-rejected", 5);
	ck_assert_int_eq(ev_bool(o, "requeue"), 0);
	ev_same_keys(o, "event-task-rejected.body.json");
	json_object_put(o);
	events_close(&e);
}
END_TEST

/* Seconds from microseconds read back as exactly us / 1e6. */
START_TEST(test_events_secs)
{
	static const struct {
		int64_t		 us;
		const char	*text;
	} vec[] = {
		{ 0, "0.0" }, { 1, "0.000001" }, { 10, "0.00001" },
		{ 1500000, "1.5" }, { 2000000, "2.0" }, { 123456789,
		"123.456789" }, { -1500000, "-1.5" }, { 1795882983282354LL,
		"1795882983.282354" }, { 1795882983000001LL,
		"1795882983.000001" },
	};
	struct events	 e;
	json_object	*o;
	const char	*text;
	char		 want[64];
	size_t		 i, len;
	int64_t		 us;

	events_test_init(&e);
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		events_begin(&e, NULL);
		events_secs(&e, "runtime", vec[i].us);
		o = events_test_parse(&e, "x", &text);
		snprintf(want, sizeof(want), ",\"runtime\":%s,", vec[i].text);
		ck_assert_msg(strstr(text, want) != NULL, "%s in %s", want,
		    text);
		ck_assert_msg(ev_double(o, "runtime") == vec[i].us / 1e6,
		    "%s", vec[i].text);
		json_object_put(o);
	}
	/* Every microsecond of a second near now round-trips. */
	for (us = 1795882983000000LL; us < 1795882984000000LL; us += 997) {
		events_begin(&e, NULL);
		events_secs(&e, "runtime", us);
		text = events_finish(&e, "x", &len);
		o = json_tokener_parse(text);
		ck_assert_msg(ev_double(o, "runtime") == us / 1e6, "%lld",
		    (long long)us);
		json_object_put(o);
	}
	events_close(&e);
}
END_TEST

/* Bytes that are not UTF-8 become U+FFFD; good sequences pass. */
START_TEST(test_events_bad_utf8)
{
	static const char *vec[][2] = {
		{ "a\xff" "b", "a\xef\xbf\xbd" "b" },
		{ "\xc3", "\xef\xbf\xbd" },			/* cut short */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },	/* overlong */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		    "\xef\xbf\xbd" },				/* > U+10FFFF */
		{ "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },
		{ "\xe2\x82\xac\xc3\xa9", "\xe2\x82\xac\xc3\xa9" },
	};
	struct events	 e;
	json_object	*o;
	size_t		 i;

	events_test_init(&e);
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		events_begin(&e, NULL);
		events_str(&e, "args", vec[i][0]);
		o = events_test_parse(&e, "x", NULL);
		ck_assert_msg(strcmp(ev_str(o, "args"), vec[i][1]) == 0,
		    "case %zu", i);
		json_object_put(o);
	}
	events_close(&e);
}
END_TEST

/* A huge traceback grows the buffers, which shrink back afterwards. */
START_TEST(test_events_big)
{
	struct events	 e;
	json_object	*o;
	char		*tb;
	size_t		 i, n = 3 * 1024 * 1024;

	ck_assert_ptr_nonnull(tb = malloc(n + 1));
	for (i = 0; i < n; i++)
		tb[i] = (char)(1 + i % 127);
	tb[n] = '\0';
	events_test_init(&e);
	events_begin(&e, ID_ARGS);
	events_str(&e, "exception", "MemoryError()");
	events_str(&e, "traceback", tb);
	o = events_test_parse(&e, "task-failed", NULL);
	ck_assert(strcmp(ev_str(o, "traceback"), tb) == 0);
	json_object_put(o);
	ck_assert_uint_gt(e.ev.cap, n);
	events_begin(&e, ID_ARGS);
	o = events_test_parse(&e, "task-started", NULL);
	json_object_put(o);
	ck_assert_uint_le(e.ev.cap, 1024 * 1024);
	events_close(&e);
	free(tb);
}
END_TEST

/* Queued events make one JSON list; the envelope is kombu's. */
START_TEST(test_events_batch_envelope)
{
	struct events	 e;
	struct evbuf	 env;
	json_object	*o, *ref, *p, *di, *v;
	unsigned char	*body;
	char		 tag[40];
	size_t		 len;
	int		 i;

	events_test_init(&e);
	for (i = 0; i < 3; i++) {
		events_begin(&e, ID_ARGS);
		events_str(&e, "args", NASTY_ARGS);
		events_end(&e, "task-received");
		/* Never old enough to be flushed while the test runs. */
		e.batch.t0 = 1e12;
	}
	ck_assert_int_eq(e.batch.n, 3);
	ck_assert_int_eq(e.batch.nbody, 1);
	ck_assert_int_eq(e.batch.text.p[0], '[');

	memset(&env, 0, sizeof(env));
	e.batch.text.p[e.batch.text.len] = ']';
	ck_assert_int_eq(events_envelope(&env, e.node, "task.multi",
	    e.batch.text.p, e.batch.text.len + 1), 0);
	ck_assert_uint_eq(strlen(env.p), env.len);
	o = json_tokener_parse(env.p);
	ck_assert_ptr_nonnull(o);
	/* The same fields as Celery's envelope, with the same values. */
	ref = fixture_json("event-task-multi-batch.json");
	ck_assert_str_eq(ev_str(o, "content-encoding"), "utf-8");
	ck_assert_str_eq(ev_str(o, "content-type"), "application/json");
	ck_assert(json_object_object_get_ex(o, "headers", &v));
	ck_assert_str_eq(ev_str(v, "hostname"), e.node);
	ck_assert_int_eq(json_object_object_length(v), 1);
	ck_assert(json_object_object_get_ex(o, "properties", &p));
	ck_assert_int_eq(ev_int(p, "delivery_mode"), 1);
	ck_assert_int_eq(ev_int(p, "priority"), 0);
	ck_assert_str_eq(ev_str(p, "body_encoding"), "base64");
	ck_assert_uint_eq(strlen(ev_str(p, "delivery_tag")), 36);
	ck_assert_int_eq(ev_str(p, "delivery_tag")[14], '4');
	snprintf(tag, sizeof(tag), "%s", ev_str(p, "delivery_tag"));
	ck_assert(json_object_object_get_ex(p, "delivery_info", &di));
	ck_assert_str_eq(ev_str(di, "exchange"), "celeryev");
	ck_assert_str_eq(ev_str(di, "routing_key"), "task.multi");
	same_keys(o, ref, "envelope");
	ck_assert(json_object_object_get_ex(ref, "properties", &v));
	same_keys(p, v, "properties");
	ck_assert(json_object_object_get_ex(v, "delivery_info", &v));
	same_keys(di, v, "delivery_info");
	json_object_put(ref);

	/* The body is the batch, byte for byte, and a list of 3. */
	body = msg_base64_decode(ev_str(o, "body"), strlen(ev_str(o, "body")),
	    &len);
	ck_assert_ptr_nonnull(body);
	ck_assert_uint_eq(len, e.batch.text.len + 1);
	ck_assert_mem_eq(body, e.batch.text.p, len);
	json_object_put(o);
	o = json_tokener_parse((char *)body);
	ck_assert(json_object_is_type(o, json_type_array));
	ck_assert_uint_eq(json_object_array_length(o), 3);
	for (i = 0; i < 3; i++) {
		v = json_object_array_get_idx(o, (size_t)i);
		ck_assert_int_eq(ev_int(v, "clock"), i + 1);
		ck_assert_str_eq(ev_str(v, "args"), NASTY_ARGS);
	}
	json_object_put(o);
	free(body);

	/* A fresh delivery_tag for every envelope. */
	ck_assert_int_eq(events_envelope(&env, e.node, "task.multi", "[]", 2),
	    0);
	o = json_tokener_parse(env.p);
	ck_assert(json_object_object_get_ex(o, "properties", &p));
	ck_assert_str_ne(ev_str(p, "delivery_tag"), tag);
	ck_assert_str_eq(ev_str(o, "body"), "W10=");
	json_object_put(o);
	free(env.p);

	/* Closing sends what waits (here: dropped, nothing listens). */
	events_close(&e);
	ck_assert_int_eq(e.batch.n, 0);
	ck_assert_ptr_null(e.batch.text.p);
}
END_TEST

/*
 * Events that pile up while the sender is held up are cut into bodies
 * of EVENTS_BATCH_MAX: no task.multi message is longer.  No thread is
 * started: the lock alone lets events_end() queue past a full batch.
 */
START_TEST(test_events_batch_split)
{
	struct events	 e;
	json_object	*o;
	size_t		 end;
	char		*t;
	int		 i, n = 2 * EVENTS_BATCH_MAX + 6, clock = 1;

	events_test_init(&e);
	pthread_mutex_init(&e.mu, NULL);
	pthread_cond_init(&e.cv, NULL);
	e.threaded = 1;
	for (i = 0; i < n; i++) {
		events_begin(&e, ID_ARGS);
		events_end(&e, "task-started");
	}
	ck_assert_int_eq(e.batch.n, n);
	ck_assert_int_eq(e.batch.nbody, 3);
	for (i = 0; i < e.batch.nbody; i++) {
		end = i + 1 < e.batch.nbody ? e.batch.body[i + 1] :
		    e.batch.text.len;
		if (i + 1 == e.batch.nbody)
			e.batch.text.p[end++] = ']';
		ck_assert_ptr_nonnull(t = strndup(e.batch.text.p +
		    e.batch.body[i], end - e.batch.body[i]));
		o = json_tokener_parse(t);
		ck_assert_msg(o != NULL, "body %d: %s", i, t);
		ck_assert_uint_eq(json_object_array_length(o),
		    i < 2 ? EVENTS_BATCH_MAX : 6);
		ck_assert_int_eq(ev_int(json_object_array_get_idx(o, 0),
		    "clock"), clock);
		clock += (int)json_object_array_length(o);
		json_object_put(o);
		free(t);
	}
	e.threaded = 0;
	pthread_cond_destroy(&e.cv);
	pthread_mutex_destroy(&e.mu);
	events_close(&e);
	ck_assert_int_eq(e.batch.n, 0);
	ck_assert_int_eq(e.batch.nbody, 0);
}
END_TEST

static Suite *
message_suite(void)
{
	Suite	*s = suite_create("message");
	TCase	*tc;

	tc = tcase_create("decode");
	tcase_add_test(tc, test_decode_all_fixtures);
	tcase_add_test(tc, test_decode_args_kwargs);
	tcase_add_test(tc, test_decode_header_values);
	tcase_add_test(tc, test_decode_variants);
	tcase_add_test(tc, test_decode_surrogates);
	tcase_add_test(tc, test_decode_refusals);
	suite_add_tcase(s, tc);
	tc = tcase_create("encode");
	tcase_add_test(tc, test_encode_roundtrip);
	tcase_add_test(tc, test_encode_redelivered);
	suite_add_tcase(s, tc);
	tc = tcase_create("result");
	tcase_add_test(tc, test_results);
	tcase_add_test(tc, test_results_edges);
	suite_add_tcase(s, tc);
	tc = tcase_create("codecs");
	tcase_add_test(tc, test_base64);
	tcase_add_test(tc, test_iso8601);
	tcase_add_test(tc, test_pyrepr);
	suite_add_tcase(s, tc);
	tc = tcase_create("events");
	tcase_add_test(tc, test_events_received);
	tcase_add_test(tc, test_events_outcomes);
	tcase_add_test(tc, test_events_secs);
	tcase_add_test(tc, test_events_bad_utf8);
	tcase_add_test(tc, test_events_big);
	tcase_add_test(tc, test_events_batch_envelope);
	tcase_add_test(tc, test_events_batch_split);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(message_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
