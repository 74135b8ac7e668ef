/*
 * check_cron.c - cron parsing, next-fire times in a time zone (DST gaps
 * and overlaps in Europe/Paris, month ends, the day-of-month/day-of-week
 * OR rule), every-interval alignment and the catch-up policy, all over a
 * fake "now".
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beat/cron.h"
#include "beat/lease.h"
#include "beat/schedule.h"
#include "common/config.h"

#define PARIS	"Europe/Paris"

/* Unix seconds of a UTC wall-clock time. */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm);
}

static struct cron_expr
parse_ok(const char *text)
{
	struct cron_expr	 e;
	char			 err[CRON_ERRLEN] = "";

	ck_assert_msg(cron_parse(text, &e, err, sizeof(err)) == 0,
	    "\"%s\" refused: %s", text, err);
	return e;
}

static void
parse_bad(const char *text, const char *want)
{
	struct cron_expr	 e;
	char			 err[CRON_ERRLEN] = "";

	ck_assert_msg(cron_parse(text, &e, err, sizeof(err)) == -1,
	    "\"%s\" accepted", text);
	ck_assert_msg(strstr(err, want) != NULL,
	    "\"%s\": error \"%s\" lacks \"%s\"", text, err, want);
}

/* The next fire after `after`, in zone tz, as Unix seconds. */
static int64_t
next_in(const char *expr, const char *tz, int64_t after)
{
	struct cron_expr	 e = parse_ok(expr);
	int64_t			 next = -1;

	ck_assert_msg(cron_next(&e, tz, after, &next) == 0,
	    "\"%s\" never fires after %lld", expr, (long long)after);
	return next;
}

#define ASSERT_NEXT(expr, tz, after, want) do {				\
	int64_t got_ = next_in((expr), (tz), (after));			\
	char g_[48], w_[48];						\
	cron_format(got_ * 1000, (tz), g_, sizeof(g_));			\
	cron_format((int64_t)(want) * 1000, (tz), w_, sizeof(w_));	\
	ck_assert_msg(got_ == (int64_t)(want), "%s in %s: got %s, want %s", \
	    (expr), (tz), g_, w_);					\
} while (0)

START_TEST(test_parse_good)
{
	struct cron_expr e;

	e = parse_ok("*/15 * * * *");
	ck_assert_uint_eq(e.minute, (1ULL << 0) | (1ULL << 15) |
	    (1ULL << 30) | (1ULL << 45));
	ck_assert_uint_eq(e.hour, (1u << 24) - 1);
	ck_assert_int_eq(e.dom_star, 1);
	e = parse_ok("1-5/2 0,12 * * *");
	ck_assert_uint_eq(e.minute, (1ULL << 1) | (1ULL << 3) | (1ULL << 5));
	ck_assert_uint_eq(e.hour, (1u << 0) | (1u << 12));
	e = parse_ok("5/20 * * * *");
	ck_assert_uint_eq(e.minute, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
	e = parse_ok("0 9 * JAN,jul Mon-FRI");
	ck_assert_uint_eq(e.month, (1u << 1) | (1u << 7));
	ck_assert_uint_eq(e.dow, 0x3e);
	ck_assert_int_eq(e.dom_star, 1);
	ck_assert_int_eq(e.dow_star, 0);
	/* 0 and 7 are both Sunday. */
	e = parse_ok("0 0 * * 7");
	ck_assert_uint_eq(e.dow, 1);
	e = parse_ok("0 0 * * 5-7");
	ck_assert_uint_eq(e.dow, (1u << 0) | (1u << 5) | (1u << 6));
	e = parse_ok("\t0  0 1,15 * sun ");
	ck_assert_uint_eq(e.dom, (1u << 1) | (1u << 15));
	ck_assert_int_eq(e.dom_star, 0);
	ck_assert_int_eq(e.dow_star, 0);
	e = parse_ok("0 0 29 2 *");		/* leap days only */
	ck_assert_uint_eq(e.dom, 1u << 29);
}
END_TEST

START_TEST(test_parse_bad)
{
	parse_bad("", "expected 5 fields");
	parse_bad("* * * *", "got 4");
	parse_bad("* * * * * *", "got more than 5");
	parse_bad("60 * * * *", "minute: 60 is out of range 0-59");
	parse_bad("* 24 * * *", "hour: 24 is out of range 0-23");
	parse_bad("* * 0 * *", "day-of-month: 0 is out of range 1-31");
	parse_bad("* * * 13 *", "month: 13 is out of range 1-12");
	parse_bad("* * * * 8", "day-of-week: 8 is out of range 0-7");
	parse_bad("99999999999 * * * *", "out of range");
	parse_bad("5-1 * * * *", "range 5-1 is reversed");
	parse_bad("*/0 * * * *", "step");
	parse_bad("*/ * * * *", "step");
	parse_bad("*/60 * * * *", "from 1 to 59");
	parse_bad("* * * foo *", "month: unknown name \"foo\"");
	parse_bad("* * * * monday", "unknown name \"monday\"");
	parse_bad("* * jan * *", "day-of-month: expected a number");
	parse_bad("1,,2 * * * *", "minute: empty list item");
	parse_bad("1, * * * *", "empty list item");
	parse_bad("-5 * * * *", "minute: expected a number");
	parse_bad("1-5x * * * *", "unexpected \"x\"");
	parse_bad("*5 * * * *", "unexpected");
	parse_bad("0 0 31 4 *", "never occurs");
	parse_bad("0 0 30 2 *", "never occurs");
	parse_bad("0 0 31 apr,jun,sep,nov *", "never occurs");
}
END_TEST

START_TEST(test_next_plain)
{
	/* 2026-01-01 is a Thursday. */
	ASSERT_NEXT("*/15 * * * *", "UTC", utc(2026, 1, 1, 0, 7),
	    utc(2026, 1, 1, 0, 15));
	/* Strictly after: a fire time itself is not returned again. */
	ASSERT_NEXT("*/15 * * * *", "UTC", utc(2026, 1, 1, 0, 15),
	    utc(2026, 1, 1, 0, 30));
	ASSERT_NEXT("*/15 * * * *", "UTC", utc(2026, 1, 1, 0, 15) - 1,
	    utc(2026, 1, 1, 0, 15));
	ASSERT_NEXT("59 23 31 12 *", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 12, 31, 23, 59));
	ASSERT_NEXT("0 9 * * mon-fri", "UTC", utc(2026, 1, 2, 9, 0),
	    utc(2026, 1, 5, 9, 0));
	ASSERT_NEXT("0 0 1 jan *", "UTC", utc(2026, 6, 1, 0, 0),
	    utc(2027, 1, 1, 0, 0));
	/* Paris is UTC+1 in winter. */
	ASSERT_NEXT("0 9 * * *", PARIS, utc(2026, 1, 10, 12, 0),
	    utc(2026, 1, 11, 8, 0));
}
END_TEST

START_TEST(test_month_ends)
{
	/* The 31st: April has none, May does. */
	ASSERT_NEXT("0 0 31 * *", "UTC", utc(2026, 4, 1, 0, 0),
	    utc(2026, 5, 31, 0, 0));
	ASSERT_NEXT("0 0 31 * *", "UTC", utc(2026, 5, 31, 0, 0),
	    utc(2026, 7, 31, 0, 0));
	/* February 29 only in leap years. */
	ASSERT_NEXT("0 0 29 2 *", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2028, 2, 29, 0, 0));
	ASSERT_NEXT("0 12 29 2 *", PARIS, utc(2028, 3, 1, 0, 0),
	    utc(2032, 2, 29, 11, 0));
	/* The 30th skips February. */
	ASSERT_NEXT("0 0 30 * *", "UTC", utc(2026, 1, 30, 0, 0),
	    utc(2026, 3, 30, 0, 0));
}
END_TEST

START_TEST(test_midnight_paris_dst_2026)
{
	/* Spring forward: Sunday 2026-03-29, 02:00 CET -> 03:00 CEST. */
	ASSERT_NEXT("0 0 * * *", PARIS, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 28, 23, 0));		/* 00:00 CET */
	ASSERT_NEXT("0 0 * * *", PARIS, utc(2026, 3, 28, 23, 0),
	    utc(2026, 3, 29, 22, 0));		/* 00:00 CEST */
	/* Fall back: Sunday 2026-10-25, 03:00 CEST -> 02:00 CET. */
	ASSERT_NEXT("0 0 * * *", PARIS, utc(2026, 10, 23, 22, 0),
	    utc(2026, 10, 24, 22, 0));		/* 00:00 CEST */
	ASSERT_NEXT("0 0 * * *", PARIS, utc(2026, 10, 24, 22, 0),
	    utc(2026, 10, 25, 23, 0));		/* 00:00 CET */
	/* The day of the transition lasts 23 h and 25 h. */
	ck_assert_int_eq(next_in("0 0 * * *", PARIS, utc(2026, 3, 28, 23, 0)) -
	    utc(2026, 3, 28, 23, 0), 23 * 3600);
	ck_assert_int_eq(next_in("0 0 * * *", PARIS, utc(2026, 10, 24, 22, 0)) -
	    utc(2026, 10, 24, 22, 0), 25 * 3600);
}
END_TEST

START_TEST(test_gap_fires_once_after_it)
{
	struct cron_wall w = { 2026, 3, 29, 2, 30 };

	/* 02:30 does not exist on 2026-03-29: fire at 03:00 CEST. */
	ck_assert_int_eq(cron_wall_to_unix(&w, PARIS), utc(2026, 3, 29, 1, 0));
	ASSERT_NEXT("30 2 * * *", PARIS, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 29, 1, 0));
	/* and the next day at 02:30 CEST again. */
	ASSERT_NEXT("30 2 * * *", PARIS, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 30, 0, 30));
	/* Every match inside the gap collapses into the one fire at 03:00. */
	ASSERT_NEXT("*/15 2 * * *", PARIS, utc(2026, 3, 29, 0, 59),
	    utc(2026, 3, 29, 1, 0));
	ASSERT_NEXT("*/15 2 * * *", PARIS, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 30, 0, 0));
	/* A 03:00 match on the same day is that same fire, not a second. */
	ASSERT_NEXT("0,30 2,3 * * *", PARIS, utc(2026, 3, 29, 0, 59),
	    utc(2026, 3, 29, 1, 0));
	ASSERT_NEXT("0,30 2,3 * * *", PARIS, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 29, 1, 30));
	/* Hourly: 01:00 CET, then 03:00 CEST (02:00 does not exist). */
	ASSERT_NEXT("0 * * * *", PARIS, utc(2026, 3, 29, 0, 0),
	    utc(2026, 3, 29, 1, 0));
}
END_TEST

START_TEST(test_overlap_fires_once_first)
{
	struct cron_wall w = { 2026, 10, 25, 2, 30 };

	/* 02:30 happens at 00:30Z (CEST) and 01:30Z (CET): the first. */
	ck_assert_int_eq(cron_wall_to_unix(&w, PARIS),
	    utc(2026, 10, 25, 0, 30));
	ASSERT_NEXT("30 2 * * *", PARIS, utc(2026, 10, 24, 23, 0),
	    utc(2026, 10, 25, 0, 30));
	/* Not again at the second 02:30: the next day. */
	ASSERT_NEXT("30 2 * * *", PARIS, utc(2026, 10, 25, 0, 30),
	    utc(2026, 10, 26, 1, 30));
	/* Asked from inside the repeated hour (02:10 CET). */
	ASSERT_NEXT("30 2 * * *", PARIS, utc(2026, 10, 25, 1, 10),
	    utc(2026, 10, 26, 1, 30));
	ASSERT_NEXT("*/30 2 * * *", PARIS, utc(2026, 10, 25, 0, 0),
	    utc(2026, 10, 25, 0, 30));
	ASSERT_NEXT("*/30 2 * * *", PARIS, utc(2026, 10, 25, 0, 30),
	    utc(2026, 10, 26, 1, 0));
	/* Hourly: 02:00 CEST, then 03:00 CET; 02:00 CET is not repeated. */
	ASSERT_NEXT("0 * * * *", PARIS, utc(2026, 10, 24, 23, 30),
	    utc(2026, 10, 25, 0, 0));
	ASSERT_NEXT("0 * * * *", PARIS, utc(2026, 10, 25, 0, 0),
	    utc(2026, 10, 25, 2, 0));
}
END_TEST

START_TEST(test_dom_dow_or_rule)
{
	/* Both restricted: the 1st or any Monday.  2026-01-26 is a Monday. */
	ASSERT_NEXT("0 0 1 * mon", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 1, 5, 0, 0));
	ASSERT_NEXT("0 0 1 * mon", "UTC", utc(2026, 1, 26, 0, 0),
	    utc(2026, 2, 1, 0, 0));
	ASSERT_NEXT("0 0 1 * mon", "UTC", utc(2026, 2, 1, 0, 0),
	    utc(2026, 2, 2, 0, 0));
	/* Friday the 13th is not needed: the 13th or a Friday. */
	ASSERT_NEXT("0 0 13 * fri", "UTC", utc(2026, 2, 1, 0, 0),
	    utc(2026, 2, 6, 0, 0));
	/* A field starting with '*' is unrestricted: AND (Vixie). */
	ASSERT_NEXT("0 0 1 * */2", "UTC", utc(2026, 3, 1, 0, 0),
	    utc(2026, 8, 1, 0, 0));
	ASSERT_NEXT("0 0 */10 * mon", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 5, 11, 0, 0));
}
END_TEST

static struct beat_sched
sched_every(int64_t ms)
{
	struct cfg_beat_entry	 e;
	struct beat_sched	 s;
	char			 err[256];

	memset(&e, 0, sizeof(e));
	e.kind = CFG_BEAT_EVERY;
	e.every_ms = ms;
	e.timezone = (char *)"UTC";
	ck_assert_int_eq(beat_sched_init(&s, &e, err, sizeof(err)), 0);
	return s;
}

static struct beat_sched
sched_cron(const char *expr, const char *tz)
{
	struct cfg_beat_entry	 e;
	struct beat_sched	 s;
	char			 err[256] = "";

	memset(&e, 0, sizeof(e));
	e.kind = CFG_BEAT_CRON;
	e.cron = (char *)expr;
	e.timezone = (char *)tz;
	ck_assert_msg(beat_sched_init(&s, &e, err, sizeof(err)) == 0, "%s",
	    err);
	return s;
}

START_TEST(test_every_aligned_on_epoch)
{
	struct beat_sched s = sched_every(1000);

	ck_assert_int_eq(beat_sched_next(&s, 1500), 2000);
	ck_assert_int_eq(beat_sched_next(&s, 2000), 3000);
	ck_assert_int_eq(beat_sched_next(&s, 1999), 2000);
	s = sched_every(7000);
	ck_assert_int_eq(beat_sched_next(&s, 10000), 14000);
	s = sched_every(250);
	ck_assert_int_eq(beat_sched_next(&s, 1767225600123LL),
	    1767225600250LL);
	/* Hourly: on the hour, UTC, whatever host asks and when. */
	s = sched_every(3600000);
	ck_assert_int_eq(beat_sched_next(&s, utc(2026, 5, 4, 10, 17) * 1000 +
	    42), utc(2026, 5, 4, 11, 0) * 1000);
}
END_TEST

START_TEST(test_due_catch_up_and_skip)
{
	struct beat_sched	 s = sched_every(1000);
	struct beat_due		 d;

	beat_sched_due(&s, 5000, 5000, 0, &d);
	ck_assert_int_eq(d.action, BEAT_WAIT);
	ck_assert_int_eq(d.next_ms, 6000);
	beat_sched_due(&s, 5000, 6010, 0, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	ck_assert_int_eq(d.fire_ms, 6000);
	ck_assert_int_eq(d.nmissed, 0);
	ck_assert_int_eq(d.next_ms, 7000);
	/* Ten fires due after downtime: one catch-up fire, the latest. */
	beat_sched_due(&s, 5000, 15500, 0, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	ck_assert_int_eq(d.fire_ms, 15000);
	ck_assert_int_eq(d.first_ms, 6000);
	ck_assert_int_eq(d.nmissed, 9);
	/* skip_missed: the latest is within half a period: still fired. */
	beat_sched_due(&s, 5000, 15500, 1, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	beat_sched_due(&s, 5000, 15600, 1, &d);
	ck_assert_int_eq(d.action, BEAT_SKIP);
	ck_assert_int_eq(d.fire_ms, 15000);
	ck_assert_int_eq(d.next_ms, 16000);
	/* Hourly: a hand-over's few seconds are not downtime ... */
	s = sched_every(3600000);
	beat_sched_due(&s, 0, 3 * 3600000 + 6000, 1, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	ck_assert_int_eq(d.fire_ms, 3 * 3600000);
	ck_assert_int_eq(d.nmissed, 2);
	/* ... twenty seconds are. */
	beat_sched_due(&s, 0, 3 * 3600000 + 20000, 1, &d);
	ck_assert_int_eq(d.action, BEAT_SKIP);
	beat_sched_due(&s, 0, 3 * 3600000 + 20000, 0, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
}
END_TEST

START_TEST(test_due_cron_downtime)
{
	struct beat_sched	 s = sched_cron("0 0 * * *", PARIS);
	struct beat_due		 d;
	int64_t			 now;

	/* Down from just after midnight 03-27 to noon 03-30 (across DST). */
	now = utc(2026, 3, 30, 10, 0) * 1000;
	beat_sched_due(&s, utc(2026, 3, 26, 23, 0) * 1000, now, 0, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	ck_assert_int_eq(d.first_ms, utc(2026, 3, 27, 23, 0) * 1000);
	ck_assert_int_eq(d.fire_ms, utc(2026, 3, 29, 22, 0) * 1000);
	ck_assert_int_eq(d.nmissed, 2);
	ck_assert_int_eq(d.next_ms, utc(2026, 3, 30, 22, 0) * 1000);
	beat_sched_due(&s, utc(2026, 3, 26, 23, 0) * 1000, now, 1, &d);
	ck_assert_int_eq(d.action, BEAT_SKIP);
	/* Minutely, 100 days down: one fire, the latest minute. */
	s = sched_cron("* * * * *", "UTC");
	now = utc(2026, 5, 1, 12, 34) * 1000 + 5500;
	beat_sched_due(&s, utc(2026, 1, 20, 0, 0) * 1000, now, 0, &d);
	ck_assert_int_eq(d.action, BEAT_FIRE);
	ck_assert_int_eq(d.fire_ms, utc(2026, 5, 1, 12, 34) * 1000);
	ck_assert_int_eq(d.nmissed, -1);
	ck_assert_int_eq(d.next_ms, utc(2026, 5, 1, 12, 35) * 1000);
}
END_TEST

START_TEST(test_sched_init_errors)
{
	struct cfg_beat_entry	 e;
	struct beat_sched	 s;
	char			 err[256] = "";

	memset(&e, 0, sizeof(e));
	e.kind = CFG_BEAT_CRON;
	e.cron = (char *)"0 0 * * *";
	e.timezone = (char *)"Mars/Olympus_Mons";
	ck_assert_int_eq(beat_sched_init(&s, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown time zone"));
	e.timezone = (char *)"UTC";
	e.cron = (char *)"0 25 * * *";
	ck_assert_int_eq(beat_sched_init(&s, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "hour: 25 is out of range"));
	ck_assert(cron_tz_valid("Europe/Paris"));
	ck_assert(cron_tz_valid("UTC"));
	ck_assert(!cron_tz_valid("../../etc/passwd"));
	ck_assert(!cron_tz_valid("/etc/localtime"));
	ck_assert(!cron_tz_valid(""));
}
END_TEST

START_TEST(test_format_and_describe)
{
	struct cfg_beat_entry	 e;
	char			 buf[64];

	cron_format(utc(2026, 3, 29, 1, 0) * 1000, PARIS, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-03-29T03:00:00+02:00");
	cron_format(utc(2026, 1, 2, 3, 4) * 1000 + 56, "UTC", buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "2026-01-02T03:04:00.056Z");
	memset(&e, 0, sizeof(e));
	e.kind = CFG_BEAT_EVERY;
	e.every_ms = 3600000;
	beat_sched_describe(&e, buf, sizeof(buf));
	ck_assert_str_eq(buf, "every 1h");
	e.every_ms = 1500;
	beat_sched_describe(&e, buf, sizeof(buf));
	ck_assert_str_eq(buf, "every 1500ms");
	e.kind = CFG_BEAT_CRON;
	e.cron = (char *)"0 0 * * *";
	e.timezone = (char *)PARIS;
	beat_sched_describe(&e, buf, sizeof(buf));
	ck_assert_str_eq(buf, "cron 0 0 * * * (Europe/Paris)");
	/* The process's own zone is left as it was. */
	ck_assert_ptr_null(getenv("TZ"));
}
END_TEST

START_TEST(test_lease_value)
{
	char	 host[64];
	long	 pid;
	int64_t	 token;

	ck_assert_int_eq(lease_parse("web-1:4242:17", host, sizeof(host),
	    &pid, &token), 0);
	ck_assert_str_eq(host, "web-1");
	ck_assert_int_eq(pid, 4242);
	ck_assert_int_eq(token, 17);
	/* A host name with colons (an IPv6 literal) keeps them. */
	ck_assert_int_eq(lease_parse("::1:7:8", host, sizeof(host), &pid,
	    &token), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(pid, 7);
	ck_assert_int_eq(token, 8);
	ck_assert_int_eq(lease_parse("web-1:17", host, sizeof(host), &pid,
	    &token), -1);
	ck_assert_int_eq(lease_parse("web-1:x:17", host, sizeof(host), &pid,
	    &token), -1);
	ck_assert_int_eq(lease_parse("web-1:1:", host, sizeof(host), &pid,
	    &token), -1);
	ck_assert_int_eq(lease_parse(":1:2", host, sizeof(host), &pid,
	    &token), -1);
}
END_TEST

static Suite *
cron_suite(void)
{
	Suite	*s = suite_create("cron");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_next_plain);
	tcase_add_test(tc, test_month_ends);
	tcase_add_test(tc, test_midnight_paris_dst_2026);
	tcase_add_test(tc, test_gap_fires_once_after_it);
	tcase_add_test(tc, test_overlap_fires_once_first);
	tcase_add_test(tc, test_dom_dow_or_rule);
	tcase_add_test(tc, test_every_aligned_on_epoch);
	tcase_add_test(tc, test_due_catch_up_and_skip);
	tcase_add_test(tc, test_due_cron_downtime);
	tcase_add_test(tc, test_sched_init_errors);
	tcase_add_test(tc, test_format_and_describe);
	tcase_add_test(tc, test_lease_value);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(cron_suite());
	int	 failed;

	/* The process zone must not leak into the computations. */
	unsetenv("TZ");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
