/*
 * worker.c - the fetch -> run -> acknowledge loop of one slot.
 *
 * Order at start-up matters: limits and privileges are applied by the
 * supervisor before worker_main() runs; here we only connect (never
 * before fork, so no connection is shared), recover the slot, announce
 * readiness, and loop.
 */
#include <sys/prctl.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/deadletter.h"
#include "broker/eta.h"
#include "broker/message.h"
#include "broker/result.h"
#include "broker/retry.h"
#include "broker/revoke.h"
#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"
#include "worker/execute.h"
#include "worker/recover.h"
#include "worker/worker.h"

volatile sig_atomic_t worker_stop;
volatile sig_atomic_t worker_soft;
static volatile sig_atomic_t worker_reopen;
static int wake_pipe[2] = { -1, -1 };
static struct sb_slot *my_slot;
static struct store *exit_store;

/* Every exit() of a worker writes or spills what the store holds. */
static void
close_store(void)
{
	store_close(exit_store);
	exit_store = NULL;
}

#define ETA_TOLERANCE_S		0.002
/* Celery's default_retry_delay when no back-off is configured. */
#define RETRY_DEFAULT_DELAY_MS	(180 * 1000)

static void
worker_signal(int sig)
{
	int saved = errno;

	if (sig == SIGALRM)
		worker_soft = 1;
	else if (sig == SIGUSR1)
		worker_reopen = 1;
	else if (my_slot != NULL && my_slot->kill_reason == SB_KILL_REVOKE) {
		/* revoke --terminate: the master asked for this task to
		 * end now, not after it finishes. */
		signal(sig, SIG_DFL);
		raise(sig);
	} else
		worker_stop = 1;
	/* Async-signal-safe; wakes a worker blocked in poll(). */
	(void)!write(wake_pipe[1], "", 1);
	errno = saved;
}

static void
worker_signals(void)
{
	struct sigaction sa;

	child_signals(worker_signal);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = worker_signal;	/* the soft time limit */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
}

void
worker_notify(struct worker *w)
{
	/* A full pipe means the master already has a wake-up pending. */
	if (w->notify_fd >= 0)
		(void)!write(w->notify_fd, "w", 1);
}

static void
worker_disconnect(struct worker *w)
{
	if (w->backend && w->backend != w->broker)
		redisFree(w->backend);
	if (w->broker)
		redisFree(w->broker);
	w->broker = w->backend = NULL;
	w->fetch.cmd = NULL;
	if (w->fetch.sub) {
		redisFree(w->fetch.sub);
		w->fetch.sub = NULL;
	}
}

int
worker_connect(struct worker *w)
{
	char	err[256];
	int	delay = 100, logged = 0;

	worker_disconnect(w);
	for (;;) {
		w->broker = redis_connect(&w->broker_url, 2000, err,
		    sizeof(err));
		if (w->broker != NULL) {
			if (redis_url_same_server(&w->broker_url,
			    &w->backend_url))
				w->backend = w->broker;
			else
				w->backend = redis_connect(&w->backend_url,
				    2000, err, sizeof(err));
			if (w->backend != NULL)
				break;
			redisFree(w->broker);
			w->broker = NULL;
		}
		if (!logged++)
			log_warnx("%s; retrying", err);
		if (worker_stop && w->slot->state != SB_BUSY)
			return -1;
		usleep(delay * 1000);
		if ((delay *= 2) > 5000)
			delay = 5000;
	}
	if (logged) {
		log_notice("connected to the broker again");
		w->slot->broker_reconnects++;
	}
	w->fetch.cmd = w->broker;
	w->fetch.sha[0] = '\0';
	return 0;
}

void
worker_finish(struct worker *w, const char *task_id, const char *meta)
{
	int rc, delay = 100;
	redisReply *r;

	for (;;) {
		if (w->broker == NULL && worker_connect(w) == -1) {
			/* Asked to stop while Redis is away: the message stays
			 * in the processing list and is recovered later. */
			log_warnx("stopping with the result of %s unsaved; "
			    "the slot's next owner will handle it", task_id);
			exit(EXIT_CLEAN);
		}
		if (meta == NULL) {
			r = redis_command(w->broker, "DEL %s", w->processing);
			rc = r ? 0 : -1;
			if (r)
				freeReplyObject(r);
		} else if (w->backend == w->broker) {
			rc = result_store(w->broker, task_id, meta,
			    w->result_ttl_s, w->processing);
		} else {
			rc = result_store(w->backend, task_id, meta,
			    w->result_ttl_s, NULL);
			if (rc == 0) {
				r = redis_command(w->broker, "DEL %s",
				    w->processing);
				rc = r ? 0 : -1;
				if (r)
					freeReplyObject(r);
			}
		}
		if (rc == 0)
			return;
		log_warnx("cannot store the result of %s; keeping it and "
		    "retrying", task_id);
		worker_disconnect(w);
		usleep(delay * 1000);
		if ((delay *= 2) > 5000)
			delay = 5000;
	}
}

/*
 * The normal end of a task: keep the result for the next fetch, so the
 * result, the acknowledgement and the next fetch share one round trip.
 */
static void
finish_later(struct worker *w, const char *task_id, char *meta)
{
	w->pend = 1;
	snprintf(w->pend_id, sizeof(w->pend_id), "%s", task_id);
	w->pend_meta = meta;		/* ours now */
}

static void
pending_clear(struct worker *w)
{
	free(w->pend_meta);
	free(w->pend_raw);
	w->pend_meta = w->pend_raw = NULL;
	w->pend = 0;
}

/* Store a pending result now (before waiting, exiting, recovering). */
static void
flush_pending(struct worker *w)
{
	if (!w->pend)
		return;
	worker_finish(w, w->pend_id, w->pend_meta);
	pending_clear(w);
}

/*
 * After a pipelined result+fetch whose replies were lost: the server may
 * have run all of it, part, or nothing.  Store the result (idempotent),
 * remove exactly our finished message, and put back at the front of the
 * queue anything the fetch may have moved in that we never saw.
 */
static const char repair_lua[] =
	"redis.call('LREM', KEYS[1], 0, ARGV[1])\n"
	"local rest = redis.call('LRANGE', KEYS[1], 0, -1)\n"
	"for i = #rest, 1, -1 do redis.call('RPUSH', KEYS[2], rest[i]) end\n"
	"redis.call('DEL', KEYS[1])\n"
	"return #rest\n";

static void
pipeline_repair(struct worker *w)
{
	redisReply	*r;
	int		 delay = 100;

	for (;;) {
		if (w->broker == NULL && worker_connect(w) == -1)
			exit(EXIT_CLEAN);	/* recovered by the next owner */
		if (w->pend_meta == NULL || result_store(w->backend,
		    w->pend_id, w->pend_meta, w->result_ttl_s, NULL) == 0) {
			r = redis_command(w->broker, "EVAL %s 2 %s %s %b",
			    repair_lua, w->processing, w->queue->name,
			    w->pend_raw, w->pend_rawlen);
			if (r != NULL) {
				if (r->integer > 0)
					log_notice("returned %lld unseen "
					    "message(s) to %s after a broker "
					    "error", r->integer,
					    w->queue->name);
				freeReplyObject(r);
				break;
			}
		}
		worker_disconnect(w);
		usleep(delay * 1000);
		if ((delay *= 2) > 5000)
			delay = 5000;
	}
	pending_clear(w);
}

/*
 * Fetch the next message, storing the pending result in the same
 * round trip when the result backend is the broker's server.
 */
static int
fetch_next(struct worker *w, char **raw, size_t *len, char **from)
{
	char	 key[192], ttl[32];
	int	 n = 0, ok, rc;

	if (!w->pend || w->backend != w->broker) {
		flush_pending(w);
		return fetch_try(&w->fetch, raw, len, from);
	}
	if (w->pend_meta) {
		/* Argument vectors with known lengths: hiredis then copies
		 * instead of parsing a format string per command. */
		const char	*multi[] = { "MULTI" }, *exec[] = { "EXEC" };
		const char	*set[4], *pub[3], *del[2];
		size_t		 setl[4], publ[3], dell[2];
		size_t		 ml = strlen(w->pend_meta);
		int		 k;

		k = snprintf(key, sizeof(key), RESULT_KEY_PREFIX "%s",
		    w->pend_id);
		snprintf(ttl, sizeof(ttl), "%lld", (long long)w->result_ttl_s);
		redisAppendCommandArgv(w->broker, 1, multi, NULL);
		if (w->result_ttl_s > 0) {
			set[0] = "SETEX"; setl[0] = 5;
			set[1] = key; setl[1] = k;
			set[2] = ttl; setl[2] = strlen(ttl);
			set[3] = w->pend_meta; setl[3] = ml;
			redisAppendCommandArgv(w->broker, 4, set, setl);
		} else {
			set[0] = "SET"; setl[0] = 3;
			set[1] = key; setl[1] = k;
			set[2] = w->pend_meta; setl[2] = ml;
			redisAppendCommandArgv(w->broker, 3, set, setl);
		}
		pub[0] = "PUBLISH"; publ[0] = 7;
		pub[1] = key; publ[1] = k;
		pub[2] = w->pend_meta; publ[2] = ml;
		redisAppendCommandArgv(w->broker, 3, pub, publ);
		del[0] = "DEL"; dell[0] = 3;
		del[1] = w->processing; dell[1] = strlen(w->processing);
		redisAppendCommandArgv(w->broker, 2, del, dell);
		redisAppendCommandArgv(w->broker, 1, exec, NULL);
		n = 5;
	} else {
		redisAppendCommand(w->broker, "DEL %s", w->processing);
		n = 1;
	}
	rc = fetch_try_after(&w->fetch, n, &ok, raw, len, from);
	if (ok && !w->broker->err) {
		pending_clear(w);
		return rc;
	}
	if (rc == 1) {
		free(*raw);
		*raw = NULL;
		if (from) {
			free(*from);
			*from = NULL;
		}
	}
	log_warnx("broker error after task %s; repairing", w->pend_id);
	worker_disconnect(w);
	pipeline_repair(w);
	return 0;
}

static void
soft_timer(int64_t ms)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void
store_failure(struct worker *w, const struct task_msg *m, const char *status,
    const char *type, const char *module, json_object *exc_message,
    const char *tb)
{
	char *meta;

	meta = msg_result_failure(status, m->id, type, module, exc_message, tb,
	    m->parent_id);
	worker_finish(w, m->id, meta);
	free(meta);
}

static void
refuse(struct worker *w, const char *raw, size_t len, const char *reason,
    const char *id, const char *task, const char *exc_type,
    const char *exc_module)
{
	json_object	*em;
	char		*meta;
	int		 delay = 100;

	log_warnx("refused message %s%s%s on queue %s: %s", id ? id : "",
	    task && *task ? " " : "", task ? task : "", w->queue->name, reason);
	if (id && *id) {
		em = json_object_new_array();
		json_object_array_add(em, json_object_new_string(reason));
		meta = msg_result_failure("FAILURE", id, exc_type, exc_module,
		    em, NULL, NULL);
		json_object_put(em);
		/* The result first: the dead letter then acknowledges. */
		while (result_store(w->backend, id, meta, w->result_ttl_s,
		    NULL) == -1) {
			worker_connect(w);
			usleep(delay * 1000);
		}
		free(meta);
	}
	while (dead_letter_push(w->broker, w->queue->name, reason, id, task,
	    raw, len, w->processing) == -1) {
		if (worker_connect(w) == -1)
			exit(EXIT_CLEAN);
		usleep(delay * 1000);
	}
}

static void
task_progress(struct task_ctx *ctx, json_object *meta)
{
	struct worker	*w = ctx->progress_arg;
	char		*text;

	if ((text = msg_result_state("PROGRESS", ctx->id, meta)) == NULL)
		return;
	/* Best effort: progress is a hint, the final state is what counts. */
	if (w->backend == NULL ||
	    result_store(w->backend, ctx->id, text, w->result_ttl_s, NULL) == -1)
		log_debug("progress of %s not stored", ctx->id);
	free(text);
}

/* Task events, sent only while enabled (config or enable_events). */
static int
events_on(struct worker *w)
{
	if (w->sb == NULL || !w->sb->task_events)
		return 0;
	if (w->ev.node[0] == '\0') {
		events_init(&w->ev, w->cfg, w->sb->master_pid);
		/* Sending happens beside the task, never in its way. */
		if (events_start_thread(&w->ev) == -1)
			log_warnx("events: no sender thread; sending inline");
	}
	return 1;
}

/* task-failed or task-retried: the exception's repr and the traceback. */
static void
event_exception(struct worker *w, const char *type, const char *id,
    const char *exc_type, const char *msg, const char *tb)
{
	char buf[1200];

	if (!events_on(w))
		return;
	snprintf(buf, sizeof(buf), "%s('%s')", exc_type, msg ? msg : "");
	events_begin(&w->ev, id);
	events_str(&w->ev, "exception", buf);
	events_str(&w->ev, "traceback", tb ? tb : "");
	events_end(&w->ev, type);
}

/* The same from what the task raised: its first argument is the message. */
static void
event_failed(struct worker *w, const char *type, const char *id,
    const struct task_ctx *ctx)
{
	const char *msg = "";

	if (ctx->exc_message && json_object_array_length(ctx->exc_message))
		msg = json_object_get_string(json_object_array_get_idx(
		    ctx->exc_message, 0));
	event_exception(w, type, id, ctx->exc_type, msg, ctx->traceback);
}

/* task-received and task-started, queued together (task.multi). */
static void
event_begin(struct worker *w, const struct task_msg *m)
{
	struct events	*e = &w->ev;
	char		 eta[48], expires[48];

	if (!events_on(w))
		return;
	if (m->eta > 0)
		msg_format_iso8601(m->eta, eta, sizeof(eta));
	if (m->expires > 0)
		msg_format_iso8601(m->expires, expires, sizeof(expires));
	events_begin(e, m->id);
	events_str(e, "name", m->task);
	events_str(e, "args", m->argsrepr ? m->argsrepr : "()");
	events_str(e, "kwargs", m->kwargsrepr ? m->kwargsrepr : "{}");
	events_str(e, "root_id", m->root_id);
	events_str(e, "parent_id", m->parent_id);
	events_int(e, "retries", m->retries);
	events_str(e, "eta", m->eta > 0 ? eta : NULL);
	events_str(e, "expires", m->expires > 0 ? expires : NULL);
	events_end(e, "task-received");
	events_begin(e, m->id);
	events_end(e, "task-started");
}

static void
event_succeeded(struct worker *w, const char *id, json_object *result,
    int64_t run_us)
{
	char *repr;

	if (!events_on(w))
		return;
	repr = msg_pyrepr(result);
	events_begin(&w->ev, id);
	events_str(&w->ev, "result", repr ? repr : "None");
	events_secs(&w->ev, "runtime", run_us);
	events_end(&w->ev, "task-succeeded");
	free(repr);
}

static void
event_revoked(struct worker *w, const char *id, int expired)
{
	if (!events_on(w))
		return;
	events_begin(&w->ev, id);
	events_bool(&w->ev, "terminated", 0);
	events_str(&w->ev, "signum", NULL);
	events_bool(&w->ev, "expired", expired);
	events_end(&w->ev, "task-revoked");
}

static void
event_rejected(struct worker *w, const char *id)
{
	if (!events_on(w))
		return;
	events_begin(&w->ev, id);
	events_bool(&w->ev, "requeue", 0);
	events_end(&w->ev, "task-rejected");
}

/* How long each recent task name took: quick ones batch their events. */
#define QUICK_TASK_S	((double)STORE_BATCH_MS / 1000)

static int
ran_quickly(const struct worker *w, const char *task)
{
	int i;

	for (i = 0; i < WORKER_RATE_SLOTS; i++)
		if (strcmp(w->ran[i].task, task) == 0)
			return w->ran[i].secs < QUICK_TASK_S;
	return 0;
}

static void
remember_run(struct worker *w, const char *task, double secs)
{
	int i;

	for (i = 0; i < WORKER_RATE_SLOTS; i++)
		if (strcmp(w->ran[i].task, task) == 0)
			break;
	if (i == WORKER_RATE_SLOTS) {
		i = w->ran_next++ % WORKER_RATE_SLOTS;
		snprintf(w->ran[i].task, sizeof(w->ran[i].task), "%s", task);
	}
	w->ran[i].secs = secs;
}

/*
 * Rate limit set by remote control: a task started too soon after the
 * previous one waits in the delayed set, not in this process.
 */
static double
rate_wait(struct worker *w, const char *task, double rate, double now)
{
	int	i, free_i = -1;

	for (i = 0; i < WORKER_RATE_SLOTS; i++) {
		if (w->rate[i].task[0] == '\0') {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (strcmp(w->rate[i].task, task) != 0)
			continue;
		if (now - w->rate[i].last < 1.0 / rate)
			return w->rate[i].last + 1.0 / rate;
		w->rate[i].last = now;
		return 0;
	}
	if (free_i >= 0) {
		snprintf(w->rate[free_i].task, sizeof(w->rate[free_i].task),
		    "%s", task);
		w->rate[free_i].last = now;
	}
	return 0;
}

static int
wants_retry(const struct exec_target *t, const struct task_ctx *ctx)
{
	size_t i;

	if (ctx->retry)
		return 1;
	if (t->ct == NULL)
		return 0;
	for (i = 0; i < t->ct->nautoretry; i++)
		if (strcmp(t->ct->autoretry_for[i], ctx->exc_type) == 0 ||
		    strcmp(t->ct->autoretry_for[i], "Exception") == 0)
			return 1;
	return 0;
}

/*
 * Celery's retry: RETRY state with the exception, and the same task
 * re-published with retries + 1 and an eta (here straight into the
 * delayed set, which is where our worker would put it anyway).
 */
static void
retry(struct worker *w, const struct task_msg *m, const struct exec_target *t,
    const struct task_ctx *ctx, double secs)
{
	char	*meta, *env;
	int64_t	 delay;
	double	 eta;

	delay = retry_delay_ms(m->retries, t->ct ? t->ct->retry_backoff_ms : 0,
	    t->ct ? t->ct->retry_backoff_max_ms : 0, RETRY_DEFAULT_DELAY_MS,
	    (double)random() / ((double)RAND_MAX + 1));
	eta = now_unix() + delay / 1000.0;
	meta = msg_result_failure("RETRY", m->id, ctx->exc_type,
	    ctx->exc_module[0] ? ctx->exc_module : NULL, ctx->exc_message,
	    ctx->traceback, m->parent_id);
	if (meta && result_store(w->backend, m->id, meta, w->result_ttl_s,
	    NULL) == -1)
		log_warnx("cannot store RETRY for %s", m->id);
	free(meta);
	if ((env = msg_encode_retry(m, eta)) == NULL) {
		log_warnx("cannot build the retry of %s", m->id);
		worker_finish(w, m->id, NULL);
		return;
	}
	while (eta_defer(w->broker, env, strlen(env), eta, w->processing) == -1)
		if (worker_connect(w) == -1)
			exit(EXIT_CLEAN);
	if (w->next_eta == 0 || eta < w->next_eta)
		w->next_eta = eta;
	log_info("task %s[%s] retry %d of %d in %.3fs: %s", m->task, m->id,
	    m->retries + 1, t->max_retries, delay / 1000.0, ctx->exc_type);
	sb_task_end(w->slot, m->task, SB_RETRIED, secs);
	free(env);
}

/*
 * Run one message.  Sets *keep_raw when the message's result is left
 * pending (see finish_later): the caller then hands raw over.
 */
static void
handle(struct worker *w, char *raw, size_t len, int *keep_raw)
{
	struct task_msg		 m;
	struct exec_target	 t;
	struct task_ctx		 ctx;
	char			 err[512], id[64], task[256], *meta = NULL;
	json_object		*em;
	enum exec_status	 st;
	int64_t			 soft_ms, hard_ms, t0, run_us;
	const struct sb_task_limit *lim;
	double			 secs;
	int			 rc;

	if (msg_decode(raw, len, &m, err, sizeof(err)) == -1) {
		dead_letter_peek_ids(raw, len, id, sizeof(id), task,
		    sizeof(task));
		refuse(w, raw, len, err, id, task,
		    strstr(err, "refused") ? "ContentDisallowed" :
		    "MalformedMessage",
		    strstr(err, "refused") ? "kombu.exceptions" :
		    "celeriac.errors");
		return;
	}
	/* Expired, or revoked: REVOKED, never run (Celery's reasons). */
	if ((m.expires > 0 && now_unix() > m.expires) ||
	    revset_has(&w->revoked, m.id, now_unix())) {
		int expired = m.expires > 0 && now_unix() > m.expires;
		em = json_object_new_array();
		json_object_array_add(em, json_object_new_string(expired ?
		    "expired" : "revoked"));
		store_failure(w, &m, "REVOKED", "TaskRevokedError",
		    "celery.exceptions", em, NULL);
		store_record_task(w->store, STORE_REVOKED, m.id, m.task,
		    w->queue->name, m.retries, m.args, m.kwargs, NULL,
		    "TaskRevokedError", em);
		json_object_put(em);
		log_info("task %s[%s] %s; not run", m.task, m.id,
		    expired ? "expired" : "revoked");
		event_revoked(w, m.id, expired);
		msg_clear(&m);
		return;
	}
	if (m.eta > now_unix() + ETA_TOLERANCE_S) {
		/* Parked in Redis, not in our memory: it survives us. */
		while (eta_defer(w->broker, raw, len, m.eta, w->processing) ==
		    -1)
			if (worker_connect(w) == -1)
				exit(EXIT_CLEAN);
		if (w->next_eta == 0 || m.eta < w->next_eta)
			w->next_eta = m.eta;
		log_debug("task %s[%s] due in %.3fs; parked", m.task, m.id,
		    m.eta - now_unix());
		store_record_task(w->store, STORE_QUEUED, m.id, m.task,
		    w->queue->name, m.retries, m.args, m.kwargs, NULL, NULL,
		    NULL);
		msg_clear(&m);
		return;
	}
	st = exec_resolve(w->cfg, w->queue, m.task, &t, err, sizeof(err));
	if (st == EXEC_QUEUE_REFUSED) {
		event_rejected(w, m.id);
		store_record_task(w->store, STORE_FAILED, m.id, m.task,
		    w->queue->name, m.retries, m.args, m.kwargs, NULL,
		    "QueueNotAllowed", NULL);
		refuse(w, raw, len, err, m.id, m.task, "QueueNotAllowed",
		    "celeriac.errors");
		msg_clear(&m);
		return;
	}
	if (st == EXEC_NOT_REGISTERED) {
		log_warnx("received unregistered task %s[%s]", m.task, m.id);
		em = json_object_new_array();
		json_object_array_add(em, json_object_new_string(m.task));
		store_failure(w, &m, "FAILURE", "NotRegistered",
		    "celery.exceptions", em, NULL);
		store_record_task(w->store, STORE_FAILED, m.id, m.task,
		    w->queue->name, m.retries, m.args, m.kwargs, NULL,
		    "NotRegistered", em);
		json_object_put(em);
		event_exception(w, "task-failed", m.id, "NotRegistered",
		    m.task, "");
		msg_clear(&m);
		return;
	}

	/* Remote-control overrides, then the Celery header, win. */
	if ((lim = sb_limit_find(w->sb, m.task)) != NULL) {
		double until;
		if (lim->soft_ms > 0)
			t.soft_ms = lim->soft_ms;
		if (lim->hard_ms > 0)
			t.hard_ms = lim->hard_ms;
		if (lim->rate > 0 &&
		    (until = rate_wait(w, m.task, lim->rate, now_unix())) > 0) {
			while (eta_defer(w->broker, raw, len, until,
			    w->processing) == -1)
				if (worker_connect(w) == -1)
					exit(EXIT_CLEAN);
			if (w->next_eta == 0 || until < w->next_eta)
				w->next_eta = until;
			msg_clear(&m);
			return;
		}
	}
	soft_ms = m.soft_time_limit > 0 ? (int64_t)(m.soft_time_limit * 1000) :
	    t.soft_ms;
	hard_ms = m.time_limit > 0 ? (int64_t)(m.time_limit * 1000) : t.hard_ms;

	memset(&ctx, 0, sizeof(ctx));
	ctx.id = m.id;
	ctx.name = m.task;
	ctx.cfg = w->cfg;
	ctx.queue = w->queue->name;
	ctx.retries = m.retries;
	ctx.args = m.args;
	ctx.kwargs = m.kwargs;
	ctx.soft_timeout = &worker_soft;
	ctx.progress = task_progress;
	ctx.progress_arg = w;

	sb_task_begin(w->slot, m.id, m.task, hard_ms);
	sb_set_state(w->slot, SB_BUSY);
	/* The master needs to know only when it has a deadline to keep. */
	if (hard_ms > 0)
		worker_notify(w);
	proctitle_set("celeriacd: worker %s busy %s", w->name, m.task);
	log_debug("task %s[%s] received", m.task, m.id);
	event_begin(w, &m);
	store_record_task(w->store, STORE_STARTED, m.id, m.task,
	    w->queue->name, m.retries, m.args, m.kwargs, NULL, NULL, NULL);
	/* A long task must show as started while it runs, and nothing is
	 * sent during a built-in task: send now (without waiting) unless
	 * this task was quick last time, when the event can join the batch
	 * (sent when full, STORE_BATCH_MS old, or when the worker idles).
	 * A flush per task made batches of a few tasks and cost PostgreSQL
	 * a third more CPU per task. */
	if (!ran_quickly(w, m.task))
		store_flush(w->store, 0);
	if (w->cfg->track_started && !m.ignore_result && !t.ignore_result) {
		json_object *info = json_object_new_object();
		json_object_object_add(info, "pid",
		    json_object_new_int(getpid()));
		json_object_object_add(info, "hostname",
		    json_object_new_string(w->cfg->hostname ?
		    w->cfg->hostname : host_name()));
		meta = msg_result_state("STARTED", m.id, info);
		json_object_put(info);
		if (result_store(w->backend, m.id, meta, w->result_ttl_s,
		    NULL) == -1)
			log_warnx("cannot store STARTED for %s", m.id);
		free(meta);
	}

	worker_soft = 0;
	if (soft_ms > 0)
		soft_timer(soft_ms);
	t0 = mono_us();
	rc = exec_run(&t, &ctx);
	run_us = mono_us() - t0;
	secs = run_us / 1e6;
	remember_run(w, m.task, secs);
	if (soft_ms > 0)
		soft_timer(0);

	if (rc == 0) {
		meta = (m.ignore_result || t.ignore_result) ? NULL :
		    msg_result_success(m.id, ctx.result, m.parent_id);
		log_debug("task %s[%s] succeeded in %.6fs", m.task, m.id,
		    secs);
		store_record_task(w->store, STORE_SUCCEEDED, m.id, m.task,
		    w->queue->name, m.retries, NULL, NULL, ctx.result, NULL,
		    NULL);
	} else if (wants_retry(&t, &ctx) && m.retries < t.max_retries) {
		event_failed(w, "task-retried", m.id, &ctx);
		store_record_task(w->store, STORE_RETRYING, m.id, m.task,
		    w->queue->name, m.retries, NULL, NULL, NULL, ctx.exc_type,
		    ctx.exc_message);
		retry(w, &m, &t, &ctx, secs);
		task_ctx_clear(&ctx);
		msg_clear(&m);
		return;
	} else {
		meta = msg_result_failure("FAILURE", m.id, ctx.exc_type,
		    ctx.exc_module[0] ? ctx.exc_module : NULL, ctx.exc_message,
		    ctx.traceback, m.parent_id);
		store_record_task(w->store, STORE_FAILED, m.id, m.task,
		    w->queue->name, m.retries, NULL, NULL, NULL, ctx.exc_type,
		    ctx.exc_message);
		log_notice("task %s[%s] failed in %.6fs: %s: %s", m.task, m.id,
		    secs, ctx.exc_type, ctx.exc_message ?
		    json_object_to_json_string_ext(ctx.exc_message, JSON_C_TO_STRING_PLAIN) : "");
	}
	if (rc != 0 && wants_retry(&t, &ctx)) {
		/* Out of retries: the result says FAILURE and the message
		 * is kept for a person to look at. */
		char why[128];
		snprintf(why, sizeof(why), "retries exhausted (%d)",
		    m.retries);
		if (result_store(w->backend, m.id, meta, w->result_ttl_s,
		    NULL) == -1)
			log_warnx("cannot store the result of %s", m.id);
		while (dead_letter_push(w->broker, w->queue->name, why, m.id,
		    m.task, raw, len, w->processing) == -1)
			if (worker_connect(w) == -1)
				exit(EXIT_CLEAN);
	} else {
		finish_later(w, m.id, meta);
		meta = NULL;
		*keep_raw = 1;
	}
	free(meta);
	if (rc == 0)
		event_succeeded(w, m.id, ctx.result, run_us);
	else
		event_failed(w, "task-failed", m.id, &ctx);
	sb_task_end(w->slot, m.task, rc == 0 ? SB_SUCCEEDED : SB_FAILED, secs);
	task_ctx_clear(&ctx);
	msg_clear(&m);
}

static void
on_control(void *arg, const char *channel, const char *payload, size_t len)
{
	struct worker	*w = arg;
	char		 id[128];
	int		 terminate, signo;

	if (revoke_parse(payload, id, sizeof(id), &terminate, &signo)) {
		revset_add(&w->revoked, id, now_unix() + REVOKE_TTL_S);
		log_debug("revoked %s", id);
	}
}

/*
 * Move due delayed messages, at their due time and at least once a
 * second (another worker, or another host, may have parked them); the
 * scan returns the set's next due time, so every idle worker knows it.
 * Returns how long the idle wait may last.
 */
static int
idle_timeout(struct worker *w)
{
	double	now = now_unix(), next, d;

	if (now - w->last_eta_scan >= 1.0 ||
	    (w->next_eta > 0 && now >= w->next_eta)) {
		w->last_eta_scan = now;
		if (eta_move_due(w->broker, now, &next) == -1)
			return 100;
		w->next_eta = next;
	}
	if (w->next_eta <= 0)
		return 1000;
	d = (w->next_eta - now_unix()) * 1000;
	return d < 0 ? 0 : d > 1000 ? 1000 : (int)d + 1;
}

static void
worker_idle(struct worker *w, int announce)
{
	sb_set_state(w->slot, SB_IDLE);
	proctitle_set("celeriacd: worker %s idle", w->name);
	/* Readiness is announced once; the rest the master reads itself. */
	if (announce)
		worker_notify(w);
}

static int
worker_over_limits(struct worker *w)
{
	int64_t rss;

	if (w->max_tasks > 0 && w->done >= w->max_tasks) {
		log_info("recycling after %llu tasks",
		    (unsigned long long)w->done);
		return 1;
	}
	/* /proc costs three system calls: once a second is enough,
	 * unless a memory limit must be checked after every task. */
	if (w->queue->max_memory_per_child <= 0 &&
	    mono_ms() - w->rss_at < 1000)
		return 0;
	w->rss_at = mono_ms();
	rss = proc_rss(getpid());
	w->slot->rss = rss;
	if (w->queue->max_memory_per_child > 0 &&
	    rss > w->queue->max_memory_per_child) {
		log_info("recycling: resident memory %lld bytes is over "
		    "max_memory_per_child", (long long)rss);
		return 1;
	}
	return 0;
}

void
worker_main(const struct worker_args *a)
{
	struct worker	 w;
	char		 err[256], *raw, *from;
	size_t		 len;
	int		 rc, recovered, keep;

	memset(&w, 0, sizeof(w));
	w.sb = a->sb;
	w.cfg = a->cfg;
	w.queue = a->queue;
	w.index = a->index;
	w.slot = a->slot;
	w.notify_fd = a->notify_fd;
	w.result_ttl_s = a->cfg->result_expires_ms / 1000;
	snprintf(w.name, sizeof(w.name), "%s#%d", a->queue->name, a->index);
	snprintf(w.processing, sizeof(w.processing),
	    "celeriac.processing.%s.%s.%d", a->cfg->hostname ?
	    a->cfg->hostname : host_name(), a->queue->name, a->index);

	{
		char ident[160];
		snprintf(ident, sizeof(ident), "worker %s", w.name);
		log_set_ident(ident);
	}
	proctitle_set("celeriacd: worker %s starting", w.name);
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_warn("pipe");
		exit(EXIT_CRASH);
	}
	worker_signals();
	if (a->queue->max_tasks_per_child > 0) {
		/* Up to 10% more, so a pool started together does not
		 * recycle together. */
		uint64_t mx = a->queue->max_tasks_per_child;
		srandom(getpid() ^ (unsigned)mono_us());
		w.max_tasks = mx + (mx >= 10 ? random() % (mx / 10 + 1) : 0);
	}
	if (redis_url_parse(a->cfg->broker, &w.broker_url, err,
	    sizeof(err)) == -1 ||
	    redis_url_parse(a->cfg->result_backend ? a->cfg->result_backend :
	    a->cfg->broker, &w.backend_url, err, sizeof(err)) == -1) {
		log_errx("%s", err);
		exit(EXIT_NORESPAWN);
	}
	if (fetch_init(&w.fetch, NULL, &w.broker_url, a->queue->name,
	    w.processing) == -1) {
		log_errx("out of memory");
		exit(EXIT_CRASH);
	}
	w.fetch.extra_channels[w.fetch.nextra++] = CONTROL_CHANNEL;
	w.fetch.on_message = on_control;
	w.fetch.cb_arg = &w;
	my_slot = w.slot;
	{
		char who[160];
		snprintf(who, sizeof(who), "worker-%s-%d", a->queue->name,
		    a->index);
		w.store = exit_store = store_open(a->cfg, who);
		atexit(close_store);
	}
	if (worker_connect(&w) == -1)
		exit(EXIT_CLEAN);
	{
		/* Hosts that recover a dead host's lists find them here. */
		redisReply *r = redis_command(w.broker, "HSET %s %s %s",
		    "celeriac.processing", w.processing, a->cfg->hostname ?
		    a->cfg->hostname : host_name());
		if (r)
			freeReplyObject(r);
		/* Declare the queue as a Celery worker does, so kombu's
		 * restores and tools find its binding. */
		r = redis_command(w.broker, "SADD _kombu.binding.%s %s"
		    MSG_SEP MSG_SEP "%s", a->queue->name, a->queue->name,
		    a->queue->name);
		if (r)
			freeReplyObject(r);
	}
	revoke_load(w.broker, &w.revoked, now_unix());
	recovered = recover_slot(&w) == 0;
	if (!recovered)
		log_warnx("recovery of %s incomplete; will retry",
		    w.processing);
	fetch_subscribe(&w.fetch);
	worker_idle(&w, 1);
	log_debug("ready, consuming %s", a->queue->name);

	while (!worker_stop) {
		if (worker_reopen) {
			worker_reopen = 0;
			log_reopen();
		}
		if (getppid() == 1) {
			log_warnx("the master is gone; exiting");
			break;
		}
		if (w.broker == NULL && worker_connect(&w) == -1)
			break;
		/* Never fetch on top of a message not yet recovered. */
		if (!recovered && !(recovered = recover_slot(&w) == 0)) {
			worker_disconnect(&w);
			usleep(100 * 1000);
			continue;
		}
		rc = fetch_next(&w, &raw, &len, &from);
		if (rc == -1) {
			worker_disconnect(&w);
			continue;
		}
		if (rc == 0) {
			char drain[64];
			flush_pending(&w);
			events_flush(&w.ev);
			store_flush(w.store, 20);
			fetch_wait(&w.fetch, idle_timeout(&w), wake_pipe[0]);
			while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
				;
			continue;
		}
		free(from);
		/* A revoke may wait unread on the subscription. */
		fetch_poll_messages(&w.fetch);
		keep = 0;
		handle(&w, raw, len, &keep);
		if (keep) {
			w.pend_raw = raw;
			w.pend_rawlen = len;
		} else
			free(raw);
		w.done++;
		if (worker_over_limits(&w)) {
			flush_pending(&w);
			events_close(&w.ev);
			worker_disconnect(&w);
			fetch_free(&w.fetch);
			exit(EXIT_RECYCLE);
		}
		worker_idle(&w, 0);
	}
	flush_pending(&w);
	events_close(&w.ev);
	sb_set_state(w.slot, SB_STOPPING);
	worker_disconnect(&w);
	fetch_free(&w.fetch);
	log_debug("stopped after %llu tasks", (unsigned long long)w.done);
	exit(EXIT_CLEAN);
}
