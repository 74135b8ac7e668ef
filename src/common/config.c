/*
 * config.c - the schema of celeriac.yml and what its keys mean: which
 * keys each mapping takes, the defaults, the checks that span several
 * keys, and the environment variables that override the file.
 *
 * Each mapping is a table of struct cfg_key (config_yaml.h) read by
 * cfg_walk(); plain values are stored through offsets, the few keys with
 * a shape of their own (run, retry_backoff, cron, ...) have a handler.
 * cfg_load() builds a fresh tree or nothing, so a reload can swap trees.
 */
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <yaml.h>

#include "common/config.h"
#include "common/config_yaml.h"

#define CFG_DEFAULT_BROKER	"redis://127.0.0.1:6379/0"
#define CFG_DAY_MS		(24 * 60 * 60 * 1000LL)
#define CFG_TEST_TIME_LIMIT_MS	(60 * 1000LL)
#define CFG_CRASH_LIMIT		5	/* crashes in the window park a queue */
#define CFG_CRASH_WINDOW_MS	(60 * 1000LL)

/*
 * Where the time-limit keys of a queue or task sit in the document, for
 * the soft < hard checks made once the whole file is read.
 */
struct cfg_marks {
	yaml_node_pair_t *soft;
	yaml_node_pair_t *hard;
	yaml_node_pair_t *queue;
};

/* What config.c remembers while reading, behind cfg_ctx.priv. */
struct cfg_state {
	int		 level_set;
	int		 target_set;
	struct cfg_marks *qmarks;
	struct cfg_marks *tmarks;
};

static const char *const cfg_env_names[] = {
	"development", "test", "production", NULL
};
static const char *const cfg_target_names[] = {
	"stderr", "syslog", "file", NULL
};
static const char *const cfg_level_names[] = {
	"debug", "info", "notice", "warning", "error", NULL
};
static const int cfg_level_prio[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR
};

/* Defaults that depend on the environment, for keys the file left out. */
static const struct {
	int			 level;
	enum cfg_log_target	 target;
	int64_t			 shutdown_ms;
} cfg_env_defaults[] = {
	[CFG_ENV_DEVELOPMENT] =	{ LOG_DEBUG, CFG_LOG_STDERR, 10 * 1000 },
	[CFG_ENV_TEST] =	{ LOG_INFO, CFG_LOG_STDERR, 5 * 1000 },
	[CFG_ENV_PRODUCTION] =	{ LOG_INFO, CFG_LOG_SYSLOG, 30 * 1000 },
};

static int	cfg_read_environment(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_log(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_log_target(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_log_level(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_queues(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_tasks(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_run(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_autoretry(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_backoff(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_beat(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_cron(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_args(struct cfg_ctx *, yaml_node_t *, void *);
static int	cfg_read_kwargs(struct cfg_ctx *, yaml_node_t *, void *);

/*
 * The schema.  Keys are listed in the order the "expected one of" part
 * of an unknown-key error shows them.
 */
#define KEY(n, k, o, lo, hi) \
	{ .name = (n), .kind = (k), .off = (o), .min = (lo), .max = (hi) }
#define REQ(n, k, o) \
	{ .name = (n), .kind = (k), .off = (o), .flags = CFG_KEY_REQUIRED }
#define FN(n, f, fl) \
	{ .name = (n), .kind = CFG_K_FN, .fn = (f), .flags = (fl) }
#define MAP(n, o, s) \
	{ .name = (n), .kind = CFG_K_MAP, .off = (o), .sub = (s) }
#define END	{ .name = NULL }

#define C_(f)	offsetof(struct config, f)
#define L_(f)	offsetof(struct cfg_limits, f)
#define Q_(f)	offsetof(struct cfg_queue, f)
#define T_(f)	offsetof(struct cfg_task, f)
#define B_(f)	offsetof(struct cfg_beat_entry, f)

static const struct cfg_key cfg_log_keys[] = {
	FN("target", cfg_read_log_target, 0),
	KEY("file", CFG_K_STR, C_(log_file), 0, 0),
	FN("level", cfg_read_log_level, 0),
	END
};

static const struct cfg_key cfg_limit_keys[] = {
	KEY("address_space", CFG_K_SIZE, L_(address_space), 1, INT64_MAX),
	KEY("cpu", CFG_K_SECONDS, L_(cpu), 1, INT64_MAX),
	KEY("open_files", CFG_K_INT64, L_(open_files), 1, 1048576),
	KEY("core", CFG_K_SIZE, L_(core), 0, INT64_MAX),
	KEY("file_size", CFG_K_SIZE, L_(file_size), 0, INT64_MAX),
	END
};

static const struct cfg_key cfg_queue_keys[] = {
	KEY("concurrency", CFG_K_INT, Q_(concurrency), 0, 256),
	KEY("priority", CFG_K_INT, Q_(priority), 0, 9),
	KEY("soft_time_limit", CFG_K_DURATION, Q_(soft_time_limit_ms), 1,
	    INT64_MAX),
	KEY("time_limit", CFG_K_DURATION, Q_(time_limit_ms), 1, INT64_MAX),
	MAP("limits", Q_(limits), cfg_limit_keys),
	KEY("max_tasks_per_child", CFG_K_INT64, Q_(max_tasks_per_child), 1,
	    INT64_MAX),
	KEY("max_memory_per_child", CFG_K_SIZE, Q_(max_memory_per_child), 1,
	    INT64_MAX),
	KEY("nice", CFG_K_INT, Q_(nice), -20, 19),
	KEY("acks_late", CFG_K_BOOL, Q_(acks_late), 0, 0),
	END
};

static const struct cfg_key cfg_task_keys[] = {
	FN("run", cfg_read_run, CFG_KEY_REQUIRED),
	REQ("queue", CFG_K_STR, T_(queue)),
	KEY("max_retries", CFG_K_INT, T_(max_retries), 0, INT_MAX),
	FN("autoretry_for", cfg_read_autoretry, 0),
	KEY("acks_late", CFG_K_BOOL, T_(acks_late), 0, 0),
	KEY("soft_time_limit", CFG_K_DURATION, T_(soft_time_limit_ms), 1,
	    INT64_MAX),
	KEY("time_limit", CFG_K_DURATION, T_(time_limit_ms), 1, INT64_MAX),
	FN("retry_backoff", cfg_read_backoff, 0),
	KEY("retry_backoff_max", CFG_K_DURATION, T_(retry_backoff_max_ms), 1,
	    INT64_MAX),
	KEY("ignore_result", CFG_K_BOOL, T_(ignore_result), 0, 0),
	MAP("limits", T_(limits), cfg_limit_keys),
	END
};

static const struct cfg_key cfg_beat_keys[] = {
	REQ("task", CFG_K_STR, B_(task)),
	KEY("every", CFG_K_DURATION, B_(every_ms), 1, INT64_MAX),
	FN("cron", cfg_read_cron, 0),
	KEY("timezone", CFG_K_STR, B_(timezone), 0, 0),
	FN("args", cfg_read_args, 0),
	FN("kwargs", cfg_read_kwargs, 0),
	KEY("queue", CFG_K_STR, B_(queue), 0, 0),
	KEY("skip_missed", CFG_K_BOOL, B_(skip_missed), 0, 0),
	END
};

#define H_(f)	offsetof(struct cfg_http, f)
static const struct cfg_key cfg_http_keys[] = {
	KEY("listen", CFG_K_STR, H_(listen), 0, 0),
	KEY("monitor", CFG_K_STR, H_(monitor), 0, 0),
	KEY("token_file", CFG_K_STR, H_(token_file), 0, 0),
	KEY("rate_limit", CFG_K_INT, H_(rate_limit), 0, 1000000),
	KEY("max_body", CFG_K_SIZE, H_(max_body), 1, INT64_MAX),
	END
};

static const struct cfg_key cfg_top_keys[] = {
	FN("environment", cfg_read_environment, 0),
	KEY("broker", CFG_K_STR, C_(broker), 0, 0),
	KEY("result_backend", CFG_K_STR, C_(result_backend), 0, 0),
	KEY("database", CFG_K_STR, C_(database), 0, 0),
	KEY("hostname", CFG_K_STR, C_(hostname), 0, 0),
	KEY("result_expires", CFG_K_DURATION, C_(result_expires_ms), 0,
	    INT64_MAX),
	KEY("shutdown_timeout", CFG_K_DURATION, C_(shutdown_timeout_ms), 0,
	    INT64_MAX),
	KEY("crash_limit", CFG_K_INT, C_(crash_limit), 0, INT_MAX),
	KEY("crash_window", CFG_K_DURATION, C_(crash_window_ms), 1,
	    INT64_MAX),
	KEY("track_started", CFG_K_BOOL, C_(track_started), 0, 0),
	KEY("events", CFG_K_BOOL, C_(events), 0, 0),
	FN("log", cfg_read_log, 0),
	KEY("pidfile", CFG_K_STR, C_(pidfile), 0, 0),
	KEY("user", CFG_K_STR, C_(user), 0, 0),
	KEY("group", CFG_K_STR, C_(group), 0, 0),
	KEY("state_dir", CFG_K_STR, C_(state_dir), 0, 0),
	KEY("reports_dir", CFG_K_STR, C_(reports_dir), 0, 0),
	MAP("http", C_(http), cfg_http_keys),
	FN("queues", cfg_read_queues, CFG_KEY_REQUIRED),
	FN("tasks", cfg_read_tasks, 0),
	FN("beat", cfg_read_beat, 0),
	END
};

/* cfg_walk() keeps one slot per key of a table. */
#define CFG_FITS(t)	_Static_assert(sizeof(t) / sizeof((t)[0]) <= \
	CFG_MAXKEYS + 1, #t " has more than CFG_MAXKEYS keys")
CFG_FITS(cfg_log_keys);
CFG_FITS(cfg_limit_keys);
CFG_FITS(cfg_queue_keys);
CFG_FITS(cfg_task_keys);
CFG_FITS(cfg_beat_keys);
CFG_FITS(cfg_top_keys);
CFG_FITS(cfg_http_keys);

/* The pair a cfg_walk() found for the key called name, or NULL. */
static yaml_node_pair_t *
cfg_found(const struct cfg_key *keys, yaml_node_pair_t **found,
    const char *name)
{
	size_t	 i;

	for (i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, name) == 0)
			return found[i];
	return NULL;
}

static yaml_node_t *
cfg_key_node(struct cfg_ctx *ctx, yaml_node_pair_t *pair)
{
	return cfg_node(ctx, pair->key);
}

/* "1h", "90s", "250ms": a duration as a person would write it. */
static const char *
cfg_fmt_ms(int64_t ms, char *buf, size_t len)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = {
		{ "d", CFG_DAY_MS }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 }, { "ms", 1 }
	};
	size_t	 i;

	for (i = 0; ms != 0 && units[i].ms > 1 && ms % units[i].ms != 0; i++)
		;
	snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms),
	    units[i].unit);
	return buf;
}

/*
 * Top level and log.
 */

static int
cfg_read_environment(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	int	 i;

	if (cfg_get_word(ctx, n, cfg_env_names,
	    "development, test or production", &i) == -1)
		return -1;
	cfg->environment = (enum cfg_environment)i;
	return 0;
}

static int
cfg_read_log_target(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	struct cfg_state *st = ctx->priv;
	int	 i;

	if (cfg_get_word(ctx, n, cfg_target_names, "stderr, syslog or file",
	    &i) == -1)
		return -1;
	cfg->log_target = (enum cfg_log_target)i;
	st->target_set = 1;
	return 0;
}

static int
cfg_read_log_level(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	struct cfg_state *st = ctx->priv;
	int	 i;

	if (cfg_get_word(ctx, n, cfg_level_names,
	    "debug, info, notice, warning or error", &i) == -1)
		return -1;
	cfg->log_level = cfg_level_prio[i];
	st->level_set = 1;
	return 0;
}

/*
 * log.file goes with target: file.  A file alone implies that target; a
 * file next to another target would be silently unused, so it is an
 * error, as is target: file without a file.
 */
static int
cfg_read_log(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	struct cfg_state *st = ctx->priv;
	yaml_node_pair_t *found[CFG_MAXKEYS], *target, *file;
	size_t	 old;

	if (cfg_walk(ctx, n, &n->start_mark, cfg_log_keys, cfg, found) == -1)
		return -1;
	target = cfg_found(cfg_log_keys, found, "target");
	file = cfg_found(cfg_log_keys, found, "file");
	if (file != NULL && target == NULL) {
		cfg->log_target = CFG_LOG_FILE;
		st->target_set = 1;
	} else if (file != NULL && cfg->log_target != CFG_LOG_FILE) {
		old = cfg_path_push(ctx, "file");
		cfg_error(ctx, &cfg_key_node(ctx, file)->start_mark,
		    "only used with target: file");
		cfg_path_pop(ctx, old);
		return -1;
	} else if (file == NULL && target != NULL &&
	    cfg->log_target == CFG_LOG_FILE) {
		old = cfg_path_push(ctx, "file");
		cfg_error(ctx, &cfg_key_node(ctx, target)->start_mark,
		    "required key is missing (target is file)");
		cfg_path_pop(ctx, old);
		return -1;
	}
	return 0;
}

/*
 * Queues.
 */

static int
cfg_queue_name_ok(const char *s)
{
	static const char extra[] = "_.:-";

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	return 1;
}

static void
cfg_limits_unset(struct cfg_limits *l)
{
	l->address_space = l->cpu = l->open_files = CFG_UNSET;
	l->core = l->file_size = CFG_UNSET;
}

/*
 * A mapping of names to entries (queues, tasks, beat): check its shape
 * and return how many entries to allocate.  An absent or empty mapping
 * is fine unless an entry is required (named by required).
 */
static int
cfg_entries(struct cfg_ctx *ctx, yaml_node_t *n, const char *what,
    const char *required, size_t *count)
{
	if (cfg_is_null(n) && required == NULL) {
		*count = 0;
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return cfg_expected(ctx, n, "a mapping of %s", what);
	if ((*count = cfg_map_len(n)) == 0 && required != NULL)
		return cfg_expected(ctx, n, "at least one %s", required);
	return 0;
}

/* Call fn for each entry of a mapping of names, under its name. */
static int
cfg_each_entry(struct cfg_ctx *ctx, yaml_node_t *n,
    int (*fn)(struct cfg_ctx *, yaml_node_pair_t *, const char *, size_t,
    struct config *), struct config *cfg)
{
	const char *name;
	size_t	 i, old;
	int	 rc = 0;

	for (i = 0; i < cfg_map_len(n) && rc == 0; i++) {
		if ((name = cfg_pair_name(ctx, n, i)) == NULL)
			return -1;
		old = cfg_path_push(ctx, name);
		rc = fn(ctx, n->data.mapping.pairs.start + i, name, i, cfg);
		cfg_path_pop(ctx, old);
	}
	return rc;
}

static int
cfg_read_queue(struct cfg_ctx *ctx, yaml_node_pair_t *pair, const char *name,
    size_t i, struct config *cfg)
{
	struct cfg_state *st = ctx->priv;
	yaml_node_pair_t *found[CFG_MAXKEYS];
	yaml_node_t *key = cfg_node(ctx, pair->key);
	struct cfg_queue *q;

	if (!cfg_queue_name_ok(name))
		return cfg_error(ctx, &key->start_mark, "invalid queue name; "
		    "expected letters, digits, \"_\", \".\", \":\" or \"-\"");
	q = &cfg->queues[cfg->nqueues++];
	q->concurrency = 1;
	q->soft_time_limit_ms = q->time_limit_ms = CFG_UNSET;
	cfg_limits_unset(&q->limits);
	q->max_tasks_per_child = q->max_memory_per_child = CFG_UNSET;
	q->line = (int)key->start_mark.line + 1;
	if ((q->name = cfg_strdup(ctx, name)) == NULL)
		return -1;
	if (cfg_walk(ctx, cfg_node(ctx, pair->value), &key->start_mark,
	    cfg_queue_keys, q, found) == -1)
		return -1;
	st->qmarks[i].soft = cfg_found(cfg_queue_keys, found,
	    "soft_time_limit");
	st->qmarks[i].hard = cfg_found(cfg_queue_keys, found, "time_limit");
	return 0;
}

static int
cfg_read_queues(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	struct cfg_state *st = ctx->priv;
	size_t	 count = 0;

	if (cfg_entries(ctx, n, "queue names to queues", "queue", &count) == -1)
		return -1;
	if ((cfg->queues = cfg_calloc(ctx, count, sizeof(*cfg->queues))) ==
	    NULL || (st->qmarks = cfg_calloc(ctx, count,
	    sizeof(*st->qmarks))) == NULL)
		return -1;
	return cfg_each_entry(ctx, n, cfg_read_queue, cfg);
}

/*
 * Tasks.
 */

static int
cfg_read_run(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	static const char what[] = "\"builtin:NAME\" or a list of strings "
	    "(a program and its arguments)";
	struct cfg_task *t = obj;
	yaml_node_item_t *it;
	const char *s;
	char	 idx[32];
	size_t	 count, old;

	/* celeriacd -t reports unknown builtin names here. */
	t->run_line = (int)n->start_mark.line + 1;
	t->run_col = (int)n->start_mark.column + 1;
	if (n->type == YAML_SCALAR_NODE && !cfg_is_null(n)) {
		if ((s = cfg_scalar(ctx, n, what)) == NULL)
			return -1;
		if (strncmp(s, "builtin:", 8) != 0 || s[8] == '\0')
			return cfg_expected(ctx, n, "%s", what);
		t->run_kind = CFG_RUN_BUILTIN;
		t->builtin = cfg_strdup(ctx, s + 8);
		return t->builtin == NULL ? -1 : 0;
	}
	if (n->type != YAML_SEQUENCE_NODE ||
	    n->data.sequence.items.top == n->data.sequence.items.start)
		return cfg_expected(ctx, n, "%s", what);
	count = (size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start);
	t->run_kind = CFG_RUN_EXEC;
	if ((t->argv = cfg_calloc(ctx, count + 1, sizeof(*t->argv))) == NULL)
		return -1;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	    it++) {
		snprintf(idx, sizeof(idx), "[%zu]", t->argc);
		old = cfg_path_push(ctx, idx);
		s = cfg_scalar(ctx, cfg_node(ctx, *it), "a string");
		/* argv[0] names the program: it cannot be empty. */
		if (s != NULL && t->argc == 0 && *s == '\0') {
			cfg_expected(ctx, cfg_node(ctx, *it), "a program");
			s = NULL;
		}
		cfg_path_pop(ctx, old);
		if (s == NULL || (t->argv[t->argc] = cfg_strdup(ctx, s)) ==
		    NULL)
			return -1;
		t->argc++;
	}
	return 0;
}

/* A duration, or true for Celery's 1 s base, or false (or 0) for none. */
static int
cfg_read_backoff(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	static const char what[] = "a duration such as 1s or 30s, or true "
	    "or false";
	struct cfg_task *t = obj;
	const char *s;
	int64_t	 ms;
	int	 b;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	if ((b = cfg_bool_word(s)) != -1)
		ms = b ? 1000 : CFG_UNSET;
	else if (cfg_parse_duration(s, &ms) == -1)
		return cfg_expected(ctx, n, "%s", what);
	t->retry_backoff_ms = ms == 0 ? CFG_UNSET : ms;
	return 0;
}

static int
cfg_task_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * Exception type names (Celery's autoretry_for) whose failures are
 * retried; "Exception" stands for any.  One name may be given alone.
 */
static int
cfg_read_autoretry(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	static const char what[] = "a list of exception type names";
	struct cfg_task *t = obj;
	yaml_node_item_t one, *items;
	yaml_node_t *e;
	const char *s;
	char	 idx[32];
	size_t	 count, i, old;
	int	 seq = n->type == YAML_SEQUENCE_NODE;

	if (seq) {
		items = n->data.sequence.items.start;
		count = (size_t)(n->data.sequence.items.top - items);
	} else if (n->type == YAML_SCALAR_NODE && !cfg_is_null(n)) {
		one = (yaml_node_item_t)(n - ctx->doc.nodes.start) + 1;
		items = &one;
		count = 1;
	} else
		return cfg_expected(ctx, n, "%s", what);
	if ((t->autoretry_for = cfg_calloc(ctx, count,
	    sizeof(*t->autoretry_for))) == NULL)
		return -1;
	for (i = 0; i < count; i++) {
		e = cfg_node(ctx, items[i]);
		snprintf(idx, sizeof(idx), "[%zu]", i);
		old = seq ? cfg_path_push(ctx, idx) : ctx->pathlen;
		if ((s = cfg_scalar(ctx, e, "an exception type name")) !=
		    NULL && !cfg_task_name_ok(s)) {
			cfg_expected(ctx, e, "an exception type name");
			s = NULL;
		}
		cfg_path_pop(ctx, old);
		if (s == NULL || (t->autoretry_for[i] = cfg_strdup(ctx, s)) ==
		    NULL)
			return -1;
		t->nautoretry++;
	}
	return 0;
}

static int
cfg_read_task(struct cfg_ctx *ctx, yaml_node_pair_t *pair, const char *name,
    size_t i, struct config *cfg)
{
	struct cfg_state *st = ctx->priv;
	yaml_node_pair_t *found[CFG_MAXKEYS];
	yaml_node_t *key = cfg_node(ctx, pair->key);
	struct cfg_task *t;

	if (!cfg_task_name_ok(name))
		return cfg_error(ctx, &key->start_mark, "invalid task name; "
		    "expected a Celery task name without blanks");
	t = &cfg->tasks[cfg->ntasks++];
	t->max_retries = 3;
	t->acks_late = CFG_UNSET;
	t->soft_time_limit_ms = t->time_limit_ms = CFG_UNSET;
	t->retry_backoff_ms = CFG_UNSET;
	t->retry_backoff_max_ms = 600 * 1000;
	cfg_limits_unset(&t->limits);
	t->line = (int)key->start_mark.line + 1;
	if ((t->name = cfg_strdup(ctx, name)) == NULL)
		return -1;
	if (cfg_walk(ctx, cfg_node(ctx, pair->value), &key->start_mark,
	    cfg_task_keys, t, found) == -1)
		return -1;
	st->tmarks[i].soft = cfg_found(cfg_task_keys, found,
	    "soft_time_limit");
	st->tmarks[i].hard = cfg_found(cfg_task_keys, found, "time_limit");
	st->tmarks[i].queue = cfg_found(cfg_task_keys, found, "queue");
	return 0;
}

static int
cfg_read_tasks(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	struct cfg_state *st = ctx->priv;
	size_t	 count = 0;

	if (cfg_entries(ctx, n, "Celery task names to tasks", NULL, &count) ==
	    -1)
		return -1;
	if ((cfg->tasks = cfg_calloc(ctx, count, sizeof(*cfg->tasks))) ==
	    NULL || (st->tmarks = cfg_calloc(ctx, count,
	    sizeof(*st->tmarks))) == NULL)
		return -1;
	return cfg_each_entry(ctx, n, cfg_read_task, cfg);
}

/*
 * Beat.
 */

static int
cfg_read_cron(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	static const char what[] = "a cron expression with 5 fields "
	    "(minute hour day-of-month month day-of-week)";
	struct cfg_beat_entry *e = obj;
	const char *s, *p;
	int	 fields = 0;

	if ((s = cfg_scalar(ctx, n, what)) == NULL)
		return -1;
	for (p = s; *p != '\0'; ) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		fields++;
		p += strcspn(p, " \t");
	}
	if (fields != 5)
		return cfg_expected(ctx, n, "%s", what);
	e->kind = CFG_BEAT_CRON;
	return (e->cron = cfg_strdup(ctx, s)) == NULL ? -1 : 0;
}

static int
cfg_read_args(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct cfg_beat_entry *e = obj;

	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_expected(ctx, n, "a list of arguments");
	return (e->args_json = cfg_json(ctx, n)) == NULL ? -1 : 0;
}

static int
cfg_read_kwargs(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct cfg_beat_entry *e = obj;

	if (n->type != YAML_MAPPING_NODE)
		return cfg_expected(ctx, n, "a mapping of keyword arguments");
	return (e->kwargs_json = cfg_json(ctx, n)) == NULL ? -1 : 0;
}

static int
cfg_read_entry(struct cfg_ctx *ctx, yaml_node_pair_t *pair, const char *name,
    size_t i, struct config *cfg)
{
	yaml_node_pair_t *found[CFG_MAXKEYS], *every, *cron, *later;
	yaml_node_t *key = cfg_node(ctx, pair->key);
	struct cfg_beat_entry *e;
	size_t	 old;
	int	 rc;

	e = &cfg->beat[cfg->nbeat++];
	e->line = (int)key->start_mark.line + 1;
	if ((e->name = cfg_strdup(ctx, name)) == NULL ||
	    cfg_walk(ctx, cfg_node(ctx, pair->value), &key->start_mark,
	    cfg_beat_keys, e, found) == -1)
		return -1;
	every = cfg_found(cfg_beat_keys, found, "every");
	cron = cfg_found(cfg_beat_keys, found, "cron");
	if (every != NULL && cron != NULL) {
		later = cfg_key_node(ctx, every)->start_mark.index >
		    cfg_key_node(ctx, cron)->start_mark.index ? every : cron;
		old = cfg_path_push(ctx, later == every ? "every" : "cron");
		rc = cfg_error(ctx, &cfg_key_node(ctx, later)->start_mark,
		    "every and cron exclude each other; expected one of them");
		cfg_path_pop(ctx, old);
		return rc;
	}
	if (every == NULL && cron == NULL)
		return cfg_error(ctx, &key->start_mark, "expected a schedule: "
		    "every or cron");
	if (every != NULL)
		e->kind = CFG_BEAT_EVERY;
	if ((e->timezone == NULL &&
	    (e->timezone = cfg_strdup(ctx, "UTC")) == NULL) ||
	    (e->args_json == NULL &&
	    (e->args_json = cfg_strdup(ctx, "[]")) == NULL) ||
	    (e->kwargs_json == NULL &&
	    (e->kwargs_json = cfg_strdup(ctx, "{}")) == NULL))
		return -1;
	return 0;
}

static int
cfg_read_beat(struct cfg_ctx *ctx, yaml_node_t *n, void *obj)
{
	struct config *cfg = obj;
	size_t	 count = 0;

	if (cfg_entries(ctx, n, "entry names to beat entries", NULL,
	    &count) == -1)
		return -1;
	if ((cfg->beat = cfg_calloc(ctx, count, sizeof(*cfg->beat))) == NULL)
		return -1;
	return cfg_each_entry(ctx, n, cfg_read_entry, cfg);
}

/*
 * Checks across keys, once the whole file is read.
 */

/* Set the key path to "section.name.key" for an error found late. */
static void
cfg_path_set(struct cfg_ctx *ctx, const char *section, const char *name,
    const char *key)
{
	cfg_path_pop(ctx, 0);
	cfg_path_push(ctx, section);
	cfg_path_push(ctx, name);
	cfg_path_push(ctx, key);
}

/* One side of a soft/hard pair: its value, key and owner. */
struct cfg_limit_side {
	int64_t		 ms;
	yaml_node_pair_t *pair;
	const char	*section;	/* "queues" or "tasks" */
	const char	*name;
};

static void
cfg_limit_side(struct cfg_limit_side *l, int64_t ms, yaml_node_pair_t *pair,
    const char *section, const char *name)
{
	l->ms = ms;
	l->pair = pair;
	l->section = section;
	l->name = name;
}

/*
 * soft_time_limit must fall before time_limit.  The two may come from a
 * task and from its queue; the error goes to whichever key comes later
 * in the file, since that is the one that broke the rule, and names the
 * other key's owner when that is not the same queue or task.
 */
static int
cfg_check_limits(struct cfg_ctx *ctx, const struct cfg_limit_side *soft,
    const struct cfg_limit_side *hard)
{
	const struct cfg_limit_side *bad, *other;
	char	 buf[32], from[300];
	yaml_node_t *k;

	if (soft->ms == CFG_UNSET || hard->ms == CFG_UNSET ||
	    soft->ms < hard->ms)
		return 0;
	if (cfg_key_node(ctx, soft->pair)->start_mark.index >
	    cfg_key_node(ctx, hard->pair)->start_mark.index)
		bad = soft, other = hard;
	else
		bad = hard, other = soft;
	from[0] = '\0';
	if (strcmp(other->section, bad->section) != 0)
		snprintf(from, sizeof(from), " of %s %s",
		    strcmp(other->section, "queues") == 0 ? "queue" : "task",
		    other->name);
	k = cfg_key_node(ctx, bad->pair);
	cfg_path_set(ctx, bad->section, bad->name, bad == soft ?
	    "soft_time_limit" : "time_limit");
	if (bad == soft)
		return cfg_error(ctx, &k->start_mark, "expected less than the "
		    "time_limit%s (%s)", from, cfg_fmt_ms(hard->ms, buf,
		    sizeof(buf)));
	return cfg_error(ctx, &k->start_mark, "expected more than the "
	    "soft_time_limit%s (%s)", from, cfg_fmt_ms(soft->ms, buf,
	    sizeof(buf)));
}

static int
cfg_validate(struct cfg_ctx *ctx, struct config *cfg)
{
	struct cfg_state *st = ctx->priv;
	struct cfg_limit_side soft, hard;
	struct cfg_queue *q;
	struct cfg_task *t;
	struct cfg_marks *qm, *tm;
	size_t	 i;

	for (i = 0; i < cfg->nqueues; i++) {
		q = &cfg->queues[i];
		qm = &st->qmarks[i];
		cfg_limit_side(&soft, q->soft_time_limit_ms, qm->soft,
		    "queues", q->name);
		cfg_limit_side(&hard, q->time_limit_ms, qm->hard, "queues",
		    q->name);
		if (cfg_check_limits(ctx, &soft, &hard) == -1)
			return -1;
	}
	for (i = 0; i < cfg->ntasks; i++) {
		t = &cfg->tasks[i];
		tm = &st->tmarks[i];
		if ((q = cfg_queue_find(cfg, t->queue)) == NULL) {
			cfg_path_set(ctx, "tasks", t->name, "queue");
			return cfg_error(ctx, &cfg_node(ctx,
			    tm->queue->value)->start_mark, "queue \"%s\" is "
			    "not defined in queues", t->queue);
		}
		/* The task's own limit if set, else its queue's. */
		qm = &st->qmarks[q - cfg->queues];
		if (t->soft_time_limit_ms != CFG_UNSET)
			cfg_limit_side(&soft, t->soft_time_limit_ms, tm->soft,
			    "tasks", t->name);
		else
			cfg_limit_side(&soft, q->soft_time_limit_ms, qm->soft,
			    "queues", q->name);
		if (t->time_limit_ms != CFG_UNSET)
			cfg_limit_side(&hard, t->time_limit_ms, tm->hard,
			    "tasks", t->name);
		else
			cfg_limit_side(&hard, q->time_limit_ms, qm->hard,
			    "queues", q->name);
		if (cfg_check_limits(ctx, &soft, &hard) == -1)
			return -1;
	}
	return 0;
}

/*
 * Environment.
 */

/* An empty variable counts as unset, as in a default file "REDIS_URL=". */
static const char *
cfg_getenv(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
cfg_replace(struct cfg_ctx *ctx, char **dst, const char *v)
{
	char	*s;

	if ((s = cfg_strdup(ctx, v)) == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int
cfg_apply_env(struct cfg_ctx *ctx, struct config *cfg)
{
	const char *v;
	int	 i;

	if ((v = cfg_getenv("ENVIRONMENT")) != NULL) {
		for (i = 0; cfg_env_names[i] != NULL; i++)
			if (strcmp(v, cfg_env_names[i]) == 0)
				break;
		if (cfg_env_names[i] == NULL)
			return cfg_error_nopos(ctx, "ENVIRONMENT: expected "
			    "development, test or production, got \"%.64s\"",
			    v);
		cfg->environment = (enum cfg_environment)i;
	}
	/* result_backend follows broker below unless the file set it. */
	if ((v = cfg_getenv("REDIS_URL")) != NULL &&
	    cfg_replace(ctx, &cfg->broker, v) == -1)
		return -1;
	if ((v = cfg_getenv("DATABASE_URL")) != NULL &&
	    cfg_replace(ctx, &cfg->database, v) == -1)
		return -1;
	return 0;
}

/*
 * The test environment wants short timeouts: a queue with no time_limit
 * gets one minute, unless a soft limit on it (its own or a task's) is
 * already longer, where a default would turn a valid file invalid.
 */
static void
cfg_test_time_limits(struct config *cfg)
{
	struct cfg_queue *q;
	size_t	 i, j;
	int	 ok;

	for (i = 0; i < cfg->nqueues; i++) {
		q = &cfg->queues[i];
		if (q->time_limit_ms != CFG_UNSET)
			continue;
		ok = q->soft_time_limit_ms < CFG_TEST_TIME_LIMIT_MS;
		for (j = 0; j < cfg->ntasks; j++)
			if (strcmp(cfg->tasks[j].queue, q->name) == 0 &&
			    cfg->tasks[j].soft_time_limit_ms >=
			    CFG_TEST_TIME_LIMIT_MS)
				ok = 0;
		if (ok)
			q->time_limit_ms = CFG_TEST_TIME_LIMIT_MS;
	}
}

static int
cfg_defaults(struct cfg_ctx *ctx, struct config *cfg)
{
	struct cfg_state *st = ctx->priv;
	char	 host[256];

	if (!st->level_set)
		cfg->log_level = cfg_env_defaults[cfg->environment].level;
	if (!st->target_set)
		cfg->log_target = cfg_env_defaults[cfg->environment].target;
	if (cfg->shutdown_timeout_ms == CFG_UNSET)
		cfg->shutdown_timeout_ms =
		    cfg_env_defaults[cfg->environment].shutdown_ms;
	if (cfg->environment == CFG_ENV_TEST)
		cfg_test_time_limits(cfg);
	if (cfg->broker == NULL &&
	    (cfg->broker = cfg_strdup(ctx, CFG_DEFAULT_BROKER)) == NULL)
		return -1;
	if (cfg->result_backend == NULL &&
	    (cfg->result_backend = cfg_strdup(ctx, cfg->broker)) == NULL)
		return -1;
	if (cfg->state_dir == NULL &&
	    (cfg->state_dir = cfg_strdup(ctx, LOCALSTATEDIR "/lib/celeriac")) ==
	    NULL)
		return -1;
	if (cfg->reports_dir == NULL) {
		size_t n = strlen(cfg->state_dir) + sizeof("/reports");
		if ((cfg->reports_dir = cfg_calloc(ctx, 1, n)) == NULL)
			return -1;
		snprintf(cfg->reports_dir, n, "%s/reports", cfg->state_dir);
	}
	if (cfg->http.max_body == 0)
		cfg->http.max_body = 64 * 1024;
	if (cfg->hostname == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		if ((cfg->hostname = cfg_strdup(ctx, host)) == NULL)
			return -1;
	}
	return 0;
}

static int
cfg_read(struct cfg_ctx *ctx, struct config *cfg)
{
	static const yaml_mark_t top = { 0, 0, 0 };
	yaml_node_t *root;

	if ((root = yaml_document_get_root_node(&ctx->doc)) == NULL)
		return cfg_error(ctx, &top, "expected a mapping at the top "
		    "level, got an empty file");
	if (root->type != YAML_MAPPING_NODE)
		return cfg_error(ctx, &top, "expected a mapping at the top "
		    "level, got %s", root->type == YAML_SEQUENCE_NODE ?
		    "a list" : "a scalar");
	return cfg_walk(ctx, root, &root->start_mark, cfg_top_keys, cfg, NULL);
}

struct config *
cfg_load(const char *path, char *err, size_t errlen)
{
	struct cfg_ctx ctx;
	struct cfg_state st;
	struct config *cfg;

	memset(&ctx, 0, sizeof(ctx));
	memset(&st, 0, sizeof(st));
	ctx.file = path;
	ctx.err = err;
	ctx.errlen = errlen;
	ctx.priv = &st;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((cfg = cfg_calloc(&ctx, 1, sizeof(*cfg))) == NULL)
		return NULL;
	cfg->environment = CFG_ENV_DEVELOPMENT;
	cfg->result_expires_ms = CFG_DAY_MS;
	cfg->shutdown_timeout_ms = CFG_UNSET;
	cfg->crash_limit = CFG_CRASH_LIMIT;
	cfg->crash_window_ms = CFG_CRASH_WINDOW_MS;
	if ((cfg->path = cfg_strdup(&ctx, path)) == NULL ||
	    cfg_yaml_open(&ctx) == -1 ||
	    cfg_read(&ctx, cfg) == -1 ||
	    cfg_validate(&ctx, cfg) == -1 ||
	    cfg_apply_env(&ctx, cfg) == -1 ||
	    cfg_defaults(&ctx, cfg) == -1) {
		cfg_free(cfg);
		cfg = NULL;
	}
	cfg_yaml_close(&ctx);
	free(st.qmarks);
	free(st.tmarks);
	return cfg;
}

void
cfg_free(struct config *cfg)
{
	struct cfg_task *t;
	struct cfg_beat_entry *e;
	size_t	 i, j;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nqueues; i++)
		free(cfg->queues[i].name);
	for (i = 0; i < cfg->ntasks; i++) {
		t = &cfg->tasks[i];
		for (j = 0; j < t->argc; j++)
			free(t->argv[j]);
		free(t->argv);
		for (j = 0; j < t->nautoretry; j++)
			free(t->autoretry_for[j]);
		free(t->autoretry_for);
		free(t->name);
		free(t->builtin);
		free(t->queue);
	}
	for (i = 0; i < cfg->nbeat; i++) {
		e = &cfg->beat[i];
		free(e->name);
		free(e->task);
		free(e->cron);
		free(e->timezone);
		free(e->args_json);
		free(e->kwargs_json);
		free(e->queue);
	}
	free(cfg->queues);
	free(cfg->tasks);
	free(cfg->beat);
	free(cfg->path);
	free(cfg->broker);
	free(cfg->result_backend);
	free(cfg->database);
	free(cfg->hostname);
	free(cfg->log_file);
	free(cfg->pidfile);
	free(cfg->user);
	free(cfg->group);
	free(cfg->state_dir);
	free(cfg->reports_dir);
	free(cfg->http.listen);
	free(cfg->http.monitor);
	free(cfg->http.token_file);
	free(cfg);
}

struct cfg_queue *
cfg_queue_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; cfg != NULL && i < cfg->nqueues; i++)
		if (strcmp(cfg->queues[i].name, name) == 0)
			return &cfg->queues[i];
	return NULL;
}

struct cfg_task *
cfg_task_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; cfg != NULL && i < cfg->ntasks; i++)
		if (strcmp(cfg->tasks[i].name, name) == 0)
			return &cfg->tasks[i];
	return NULL;
}

const char *
cfg_environment_name(enum cfg_environment env)
{
	if ((unsigned)env >= sizeof(cfg_env_names) / sizeof(cfg_env_names[0]) -
	    1)
		return "unknown";
	return cfg_env_names[env];
}
