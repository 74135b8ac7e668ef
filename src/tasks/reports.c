/*
 * reports.c - the report tasks of MonAssurance's design note.
 *
 * generate_heavy_report builds a real document from the insurance data:
 * the writers (report_pdf.c, report_xlsx.c) produce it under a temporary
 * name in reports_dir; this file checks the arguments, names the output,
 * checksums it and renames it into place only once it is complete, so a
 * reader never sees half a report under its final name.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "tasks/notif.h"
#include "tasks/registry.h"
#include "tasks/report.h"

#define REPORT_TMP_PREFIX	".tmp-"
#define REPORT_STALE_S		(24 * 3600)
#define REPORT_CALLBACK_MS	5000

/* generate_dummy_report(report_id, job_id=None) -> {"report_id": ...} */
static int
reports_dummy(struct task_ctx *ctx)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "report_id",
	    json_object_get(ctx->param[0]));
	return task_succeed(ctx, o);
}

const char *
report_type_name(enum report_type t)
{
	switch (t) {
	case REPORT_PDF:
		return "pdf";
	case REPORT_EXCEL:
		return "excel";
	case REPORT_ANALYSIS:
		return "analysis";
	}
	return "?";
}

const char *
report_status_label(const char *s)
{
	static const struct {
		const char *code, *label;
	} labels[] = {
		{ "active", "Actif" }, { "suspended", "Suspendu" },
		{ "terminated", "Résilié" }, { "open", "Ouvert" },
		{ "in_review", "En instruction" }, { "settled", "Réglé" },
		{ "rejected", "Refusé" },
	};
	size_t i;

	for (i = 0; i < sizeof(labels) / sizeof(*labels); i++)
		if (strcmp(labels[i].code, s) == 0)
			return labels[i].label;
	return s;
}

void
report_fmt_money(char *buf, size_t len, double v, const char *sep)
{
	char	 digits[64], *dot;
	size_t	 n, i, o = 0, slen = strlen(sep);
	int	 neg = v < 0;

	snprintf(digits, sizeof(digits), "%.2f", fabs(v));
	dot = strchr(digits, '.');
	n = dot ? (size_t)(dot - digits) : strlen(digits);
	if (len == 0)
		return;
	if (neg && o + 1 < len)
		buf[o++] = '-';
	for (i = 0; i < n && o + 1 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0 && o + slen + 1 < len) {
			memcpy(buf + o, sep, slen);
			o += slen;
		}
		buf[o++] = digits[i];
	}
	if (dot && o + 4 < len) {
		buf[o++] = ',';
		buf[o++] = dot[1];
		buf[o++] = dot[2];
	}
	buf[o] = '\0';
}

int
report_step(struct report_job *job, int current, int total)
{
	struct task_ctx	*ctx = job->ctx;
	json_object	*meta;
	int		 every;

	if (ctx->soft_timeout != NULL && *ctx->soft_timeout) {
		if (current < total)
			return task_fail(ctx, "SoftTimeLimitExceeded",
			    "billiard.exceptions", "soft time limit exceeded "
			    "(%s report stopped at %d of %d)",
			    report_type_name(job->type), current, total);
		return task_fail(ctx, "SoftTimeLimitExceeded",
		    "billiard.exceptions", "soft time limit exceeded (%s "
		    "report stopped before it was finished)",
		    report_type_name(job->type));
	}
	/* About a hundred updates for a long report, every page for a short. */
	every = total / 100 > 1 ? total / 100 : 1;
	if (ctx->progress == NULL ||
	    (current != total && current - job->last_step < every))
		return 0;
	job->last_step = current;
	meta = json_object_new_object();
	json_object_object_add(meta, "current", json_object_new_int(current));
	json_object_object_add(meta, "total", json_object_new_int(total));
	json_object_object_add(meta, "percent", json_object_new_int(total > 0 ?
	    (int)((int64_t)current * 100 / total) : 100));
	json_object_object_add(meta, "report_type",
	    json_object_new_string(report_type_name(job->type)));
	ctx->progress(ctx, meta);
	json_object_put(meta);
	return 0;
}

/* A whole number from a JSON int or an integral float. */
static int
json_whole(json_object *v, int64_t *out)
{
	double d;

	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		d = json_object_get_double(v);
		if (d == floor(d) && fabs(d) < 1e15) {
			*out = (int64_t)d;
			return 0;
		}
	}
	return -1;
}

/* Ids become file names: keep them to a safe alphabet. */
static int
safe_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 100 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* mkdir -p, for reports_dir. */
static int
make_dirs(const char *path)
{
	char	 buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0750) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * Temporary files of reports whose worker was killed (hard time limit)
 * stay behind; remove those old enough that no report can still be
 * writing them.
 */
static void
sweep_stale(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	time_t		 now = time(NULL);

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, REPORT_TMP_PREFIX,
		    strlen(REPORT_TMP_PREFIX)) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > REPORT_STALE_S &&
		    unlinkat(dirfd(d), e->d_name, 0) == 0)
			log_info("removed stale report file %s/%s", dir,
			    e->d_name);
	}
	closedir(d);
}

/* Size and SHA-256 of the finished file; syncs it to disk on the way. */
static int
file_digest(const char *path, char hex[65], int64_t *size)
{
	unsigned char	 buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, i;
	EVP_MD_CTX	*md_ctx;
	ssize_t		 n;
	int		 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((md_ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1)
		goto out;
	*size = 0;
	/* The worker's signals do not restart system calls. */
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n == -1 &&
	    errno == EINTR)) {
		if (n == -1)
			continue;
		EVP_DigestUpdate(md_ctx, buf, (size_t)n);
		*size += n;
	}
	if (n == -1 || EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1)
		goto out;
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
	rc = fchmod(fd, 0640) == -1 || fsync(fd) == -1 ? -1 : 0;
out:
	EVP_MD_CTX_free(md_ctx);
	close(fd);
	return rc;
}

static void
sync_dir(const char *dir)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * The design note's "webhooks after generation": tell callback_url how
 * the report ended.  Best effort: the report is done either way.
 */
static void
report_callback(struct task_ctx *ctx, const char *url, json_object *job_id,
    const char *status, const char *path)
{
	struct notif_reply	 reply;
	json_object		*o;
	char			 err[256];
	int			 rc;

	if (url == NULL)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_get(job_id));
	json_object_object_add(o, "task_id", json_object_new_string(ctx->id ?
	    ctx->id : ""));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "path", path ?
	    json_object_new_string(path) : NULL);
	rc = notif_post_json(url, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN), NULL, ctx->id, REPORT_CALLBACK_MS, NULL,
	    &reply, err, sizeof(err));
	if (rc != NOTIF_OK)
		log_warnx("report %s: callback %s failed: %s", ctx->id, url,
		    err);
	else
		log_debug("report %s: callback %s answered %ld", ctx->id, url,
		    reply.code);
	json_object_put(o);
}

static int
heavy_args(struct task_ctx *ctx, struct report_job *job)
{
	const char	*type;
	int64_t		 pages;
	json_object	*v;

	if (!json_object_is_type(ctx->param[0], json_type_string))
		return task_fail(ctx, "TypeError", "builtins",
		    "report_type must be a string");
	type = json_object_get_string(ctx->param[0]);
	if (strcmp(type, "pdf") == 0)
		job->type = REPORT_PDF;
	else if (strcmp(type, "excel") == 0)
		job->type = REPORT_EXCEL;
	else if (strcmp(type, "analysis") == 0)
		job->type = REPORT_ANALYSIS;
	else
		return task_fail(ctx, "ValueError", "builtins",
		    "unknown report_type '%.40s' (pdf, excel or analysis)",
		    type);
	if (json_whole(ctx->param[1], &pages) == -1)
		return task_fail(ctx, "TypeError", "builtins",
		    "pages must be an integer");
	if (pages < 1 || pages > REPORT_MAX_PAGES)
		return task_fail(ctx, "ValueError", "builtins",
		    "pages must be between 1 and %d", REPORT_MAX_PAGES);
	job->pages = (int)pages;
	v = ctx->param[2];
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return task_fail(ctx, "TypeError", "builtins",
		    "processing_time must be a number of seconds");
	job->budget = json_object_get_double(v);
	if (!(job->budget >= 0))
		return task_fail(ctx, "ValueError", "builtins",
		    "processing_time must be >= 0");
	v = ctx->param[3];
	if (v != NULL && !json_object_is_type(v, json_type_int) &&
	    !(json_object_is_type(v, json_type_string) &&
	    safe_name(json_object_get_string(v))))
		return task_fail(ctx, "ValueError", "builtins",
		    "job_id must be an integer or a string of letters, digits, "
		    "'-' and '_'");
	v = ctx->param[4];
	if (v != NULL && !json_object_is_type(v, json_type_string))
		return task_fail(ctx, "TypeError", "builtins",
		    "callback_url must be a string");
	return 0;
}

static int
reports_heavy(struct task_ctx *ctx)
{
	static const char *const ext[] = { "pdf", "xlsx", "xlsx" };
	struct report_job	 job;
	const char		*dir = ctx->cfg->reports_dir, *callback;
	char			 base[160], label[160], final[PATH_MAX];
	char			 tmp[PATH_MAX], hex[65], num[32];
	json_object		*res, *job_id;
	int64_t			 size = 0;
	double			 elapsed;
	int			 fd, rc;

	memset(&job, 0, sizeof(job));
	job.ctx = ctx;
	job.t0_us = mono_us();
	if (heavy_args(ctx, &job) == -1)
		return -1;
	job_id = ctx->param[3];
	callback = ctx->param[4] ? json_object_get_string(ctx->param[4]) :
	    NULL;
	if (job_id != NULL) {
		snprintf(base, sizeof(base), "job-%s",
		    json_object_get_string(job_id));
		snprintf(label, sizeof(label), "job %s",
		    json_object_get_string(job_id));
	} else {
		if (ctx->id == NULL || !safe_name(ctx->id))
			return task_fail(ctx, "ValueError", "builtins",
			    "the task id cannot name a file: pass a job_id");
		snprintf(base, sizeof(base), "task-%s", ctx->id);
		snprintf(label, sizeof(label), "tâche %s", ctx->id);
	}
	job.label = label;
	if (make_dirs(dir) == -1)
		return task_fail(ctx, "OSError", "builtins",
		    "cannot create reports_dir %s: %s", dir, strerror(errno));
	sweep_stale(dir);
	if (snprintf(final, sizeof(final), "%s/%s.%s", dir, base,
	    ext[job.type]) >= (int)sizeof(final) ||
	    snprintf(tmp, sizeof(tmp), "%s/" REPORT_TMP_PREFIX "%s.%s-XXXXXX",
	    dir, base, ext[job.type]) >= (int)sizeof(tmp))
		return task_fail(ctx, "OSError", "builtins",
		    "reports_dir path too long");
	if ((fd = mkstemp(tmp)) == -1)
		return task_fail(ctx, "OSError", "builtins",
		    "cannot create a file in %s: %s", dir, strerror(errno));
	close(fd);
	job.tmp_path = tmp;
	job.tmp_dir = dir;

	if ((job.db = report_db_open(ctx)) == NULL)
		rc = -1;
	else if (job.type == REPORT_PDF)
		rc = report_pdf_write(&job);
	else if (job.type == REPORT_EXCEL)
		rc = report_xlsx_write(&job);
	else
		rc = report_analysis_write(&job);
	report_db_close(job.db);
	/* The limit may have passed while the file was being written. */
	if (rc == 0 && ctx->soft_timeout != NULL && *ctx->soft_timeout)
		rc = task_fail(ctx, "SoftTimeLimitExceeded",
		    "billiard.exceptions", "soft time limit exceeded (while "
		    "the %s report was written out)",
		    report_type_name(job.type));
	if (rc == 0 && file_digest(tmp, hex, &size) == -1)
		rc = task_fail(ctx, "OSError", "builtins", "cannot read back "
		    "%s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, final) == -1)
		rc = task_fail(ctx, "OSError", "builtins", "cannot rename %s: "
		    "%s", tmp, strerror(errno));
	if (rc != 0) {
		/*
		 * The soft limit's signal interrupts system calls (the worker
		 * does not restart them): a write it broke is the limit.
		 */
		if (ctx->soft_timeout != NULL && *ctx->soft_timeout &&
		    strcmp(ctx->exc_type, "SoftTimeLimitExceeded") != 0) {
			ctx->retry = 0;
			task_fail(ctx, "SoftTimeLimitExceeded",
			    "billiard.exceptions", "soft time limit exceeded "
			    "(the %s report was interrupted)",
			    report_type_name(job.type));
		}
		if (unlink(tmp) == -1 && errno != ENOENT)
			log_warn("report %s: cannot remove %s", ctx->id, tmp);
		if (ctx->exc_type[0] == '\0')
			task_fail(ctx, "ReportError", REPORT_ERRMOD,
			    "the %s report failed", report_type_name(job.type));
		/* A retry will call back once it is over. */
		if (!ctx->retry)
			report_callback(ctx, callback, job_id, "failed", NULL);
		return -1;
	}
	sync_dir(dir);
	elapsed = (mono_us() - job.t0_us) / 1e6;
	if (job.budget > 0 && elapsed > job.budget)
		log_notice("report %s: %.1fs, over its %.1fs budget", ctx->id,
		    elapsed, job.budget);

	res = json_object_new_object();
	json_object_object_add(res, "path", json_object_new_string(final));
	json_object_object_add(res, "size", json_object_new_int64(size));
	if (job.type == REPORT_PDF) {
		json_object_object_add(res, "pages",
		    json_object_new_int(job.out_pages));
		json_object_object_add(res, "content_pages",
		    json_object_new_int(job.pages));
		/* A listing shorter than its pages started over. */
		json_object_object_add(res, "wrapped",
		    json_object_new_boolean(job.wrapped));
	} else
		json_object_object_add(res, "sheets",
		    json_object_new_int(job.out_sheets));
	json_object_object_add(res, "sha256", json_object_new_string(hex));
	json_object_object_add(res, "report_type",
	    json_object_new_string(report_type_name(job.type)));
	json_object_object_add(res, "rows", json_object_new_int64(job.rows));
	json_object_object_add(res, "job_id", json_object_get(job_id));
	snprintf(num, sizeof(num), "%.3f", elapsed);
	json_object_object_add(res, "elapsed",
	    json_object_new_double_s(elapsed, num));
	json_object_object_add(res, "budget",
	    json_object_new_double(job.budget));
	report_callback(ctx, callback, job_id, "succeeded", final);
	return task_succeed(ctx, res);
}

static const struct task_param p_dummy[] = {
	{ "report_id", 1 }, { "job_id", 0 }
};
static const struct task_param p_heavy[] = {
	{ "report_type", 1 }, { "pages", 1 }, { "processing_time", 1 },
	{ "job_id", 0 }, { "callback_url", 0 }
};

const struct builtin_task task_reports_table[] = {
	{ "reports.dummy", reports_dummy, p_dummy, 2, 0,
	    "generate_dummy_report(report_id, job_id=None)" },
	{ "reports.heavy", reports_heavy, p_heavy, 5, 0,
	    "generate_heavy_report(report_type, pages, processing_time, "
	    "job_id=None, callback_url=None)" },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
