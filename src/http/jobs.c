/*
 * jobs.c - creating jobs so that none is lost, and the resender.
 *
 * A job is a row in PostgreSQL and a message on the broker.  Either may
 * be down when a request comes:
 *
 *   both up        row inserted as queued (with a pending event), message
 *                  sent, queued event written;
 *   broker down    the row goes back to pending; the resender sends it
 *                  when Redis answers again;
 *   database down  message sent, the row written later from the store's
 *                  spool (store_record);
 *   both down      the pending job goes to the spool, and the resender
 *                  sends it once the spool has reached the database.
 *
 * The row is inserted already claimed (status queued) so the resender,
 * which only takes pending rows (locked with FOR UPDATE SKIP LOCKED
 * while it sends them), never sends a message a request is sending: no
 * duplicates, even with several hosts sharing the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/message.h"
#include "broker/publish.h"
#include "broker/revoke.h"
#include "common/log.h"
#include "common/util.h"
#include "http/http_int.h"
#include "store/store.h"

#define HTTP_RESEND_MS		1000

static const char sql_insert[] =
	"WITH n AS (SELECT nextval(pg_get_serial_sequence('jobs', 'id')) "
	"AS id), "
	"j AS (INSERT INTO jobs (id, task_id, task_name, queue, job_type, "
	"params, status, retries, created_at, queued_at) "
	"SELECT n.id, $1, $2, $3, $4, "
	"jsonb_set($5::jsonb, '{kwargs,job_id}', to_jsonb(n.id)), "
	"'queued', 0, now(), now() FROM n RETURNING id, created_at), "
	"e AS (INSERT INTO job_events (job_id, status, at, detail) "
	"SELECT id, 'pending', created_at, $6::jsonb FROM j) "
	"SELECT id FROM j";

/*
 * The queued event bears the time the message was sent, taken before
 * the LPUSH: a worker's started event, written by the store in its own
 * time, can reach the table first but never sorts before it.
 */
static const char sql_queued_event[] =
	"INSERT INTO job_events (job_id, status, at, detail) "
	"VALUES ($1, 'queued', to_timestamp($3::double precision), $2::jsonb) "
	"ON CONFLICT DO NOTHING";

static const char sql_back_to_pending[] =
	"UPDATE jobs SET status = 'pending', queued_at = NULL "
	"WHERE id = $1 AND status = 'queued'";

/* Taken one at a time, locked until its message is on the broker. */
static const char sql_take[] =
	"SELECT id, task_id, task_name, queue, coalesce(params::text, '{}'), "
	"retries FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 "
	"FOR UPDATE SKIP LOCKED";

static const char sql_sent[] =
	"WITH u AS (UPDATE jobs SET status = 'queued', "
	"queued_at = to_timestamp($3::double precision) "
	"WHERE id = $1 RETURNING id) "
	"INSERT INTO job_events (job_id, status, at, detail) "
	"SELECT id, 'queued', to_timestamp($3::double precision), $2::jsonb "
	"FROM u ON CONFLICT DO NOTHING";

static struct {
	pthread_t	 th;
	int		 running;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
} R = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* The queue a task runs on (its configuration, else dflt). */
const char *
http_task_queue(const char *task, const char *dflt, int *priority)
{
	const struct cfg_task	*t = cfg_task_find(http.cfg, task);
	const struct cfg_queue	*q;
	const char		*name = t ? t->queue : dflt;

	q = cfg_queue_find(http.cfg, name);
	*priority = q ? q->priority : 0;
	return name;
}

/* Send one message; 0 or -1 (broker down). */
static int
send_message(const char *task_id, const char *task, const char *queue,
    json_object *args, json_object *kwargs, int retries)
{
	const struct cfg_queue	*q;
	struct msg_new		 mn;
	redisContext		*c;
	char			*env;
	int			 prio, rc = -1;

	memset(&mn, 0, sizeof(mn));
	q = cfg_queue_find(http.cfg, queue);
	prio = q ? q->priority : 0;
	mn.task = task;
	mn.id = task_id;
	mn.queue = queue;
	mn.args = args;
	mn.kwargs = kwargs;
	mn.priority = prio;
	mn.retries = retries;
	if ((env = msg_encode(&mn, NULL)) == NULL)
		return -1;
	if ((c = http_redis(HTTP_BROKER)) != NULL) {
		rc = publish_task(c, queue, prio, env);
		if (rc == -1)
			http_redis_check(HTTP_BROKER);
	}
	free(env);
	return rc;
}

static void
spool(const struct http_job *j, const char *params, enum store_status st)
{
	struct store_event e;

	memset(&e, 0, sizeof(e));
	e.task_id = j->task_id;
	e.task_name = j->task;
	e.queue = j->queue;
	e.status = st;
	e.time = now_unix();
	e.params_json = params;
	e.host = http.cfg->hostname;
	e.pid = getpid();
	pthread_mutex_lock(&http.store_mu);
	store_record(http.store, &e);
	pthread_mutex_unlock(&http.store_mu);
}

/*
 * Create the job j describes.  Returns 0 when it is accepted (sent, or
 * kept to be sent), -1 when it could be neither sent nor kept.
 */
int
http_job_submit(struct http_job *j)
{
	json_object	*p;
	PGresult	*res;
	const char	*v[6];
	char		*params, detail[300], idbuf[32], tbuf[32];
	double		 tsent;

	j->job_id = -1;
	j->broker_ok = j->db_ok = j->queued = 0;
	msg_uuid4(j->task_id);
	json_object_object_add(j->kwargs, "job_id", NULL);
	p = json_object_new_object();
	json_object_object_add(p, "args", json_object_get(j->args));
	json_object_object_add(p, "kwargs", json_object_get(j->kwargs));
	params = strdup(json_object_to_json_string_ext(p,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(p);
	if (params == NULL)
		return -1;

	if (http.has_db) {
		snprintf(detail, sizeof(detail), "{\"source\":\"api\","
		    "\"host\":\"%.200s\"}", http.cfg->hostname);
		v[0] = j->task_id;
		v[1] = j->task;
		v[2] = j->queue;
		v[3] = j->job_type;
		v[4] = params;
		v[5] = detail;
		if ((res = http_pg_query(sql_insert, 6, v, NULL)) != NULL) {
			if (PQntuples(res) == 1) {
				j->job_id = atoll(PQgetvalue(res, 0, 0));
				j->db_ok = 1;
				json_object_object_add(j->kwargs, "job_id",
				    json_object_new_int64(j->job_id));
			}
			PQclear(res);
		}
	}
	tsent = now_unix();
	j->broker_ok = send_message(j->task_id, j->task, j->queue, j->args,
	    j->kwargs, 0) == 0;
	j->queued = j->broker_ok;
	snprintf(idbuf, sizeof(idbuf), "%lld", j->job_id);
	snprintf(tbuf, sizeof(tbuf), "%.6f", tsent);
	v[0] = idbuf;
	if (j->db_ok && j->broker_ok) {
		v[1] = "{\"source\":\"api\"}";
		v[2] = tbuf;
		PQclear(http_pg_query(sql_queued_event, 3, v, NULL));
	} else if (j->db_ok) {
		PQclear(http_pg_query(sql_back_to_pending, 1, v, NULL));
		log_notice("http: broker unavailable; job %lld (task %s) kept "
		    "pending", j->job_id, j->task_id);
	} else if (http.has_db && http.store) {
		spool(j, params, j->broker_ok ? STORE_QUEUED : STORE_PENDING);
		log_notice("http: database unavailable; job of task %s "
		    "spooled (%s)", j->task_id, j->broker_ok ? "sent" :
		    "pending");
	} else if (!j->broker_ok) {
		free(params);
		return -1;
	}
	free(params);
	return 0;
}

static int
pg_command(const char *sql)
{
	PGresult *res = http_pg_query(sql, 0, NULL, NULL);

	PQclear(res);
	return res ? 0 : -1;
}

/*
 * Send one pending job of the database: 1 sent, 0 none (or the broker
 * is still down), -1 database trouble.  The row stays locked (FOR
 * UPDATE) while its message is sent, and turns queued in the same
 * transaction, so it is never seen queued before it is on the broker,
 * and another host's resender skips it meanwhile.
 */
static int
resend_one(void)
{
	PGresult	*res;
	json_object	*p, *args, *kwargs;
	const char	*v[3];
	char		 tbuf[32];
	int		 rc = 0;

	if (pg_command("BEGIN") == -1)
		return -1;
	if ((res = http_pg_query(sql_take, 0, NULL, NULL)) == NULL) {
		pg_command("ROLLBACK");
		return -1;
	}
	if (PQntuples(res) == 1) {
		p = json_tokener_parse(PQgetvalue(res, 0, 4));
		if (p == NULL || !json_object_object_get_ex(p, "args", &args) ||
		    !json_object_is_type(args, json_type_array))
			args = NULL;
		if (p == NULL || !json_object_object_get_ex(p, "kwargs",
		    &kwargs) || !json_object_is_type(kwargs, json_type_object))
			kwargs = NULL;
		snprintf(tbuf, sizeof(tbuf), "%.6f", now_unix());
		if (send_message(PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		    PQgetvalue(res, 0, 3), args, kwargs,
		    atoi(PQgetvalue(res, 0, 5))) == 0) {
			v[0] = PQgetvalue(res, 0, 0);
			v[1] = "{\"source\":\"resender\"}";
			v[2] = tbuf;
			PQclear(http_pg_query(sql_sent, 3, v, NULL));
			rc = 1;
		}
		json_object_put(p);
	}
	PQclear(res);
	if (pg_command(rc == 1 ? "COMMIT" : "ROLLBACK") == -1)
		return -1;
	return rc;
}

/* Send the pending jobs of the database; the number sent. */
static int
resend_pending(void)
{
	int n = 0;

	if (http_redis(HTTP_BROKER) == NULL || http_pg() == NULL)
		return 0;
	while (!http.stop && n < 1000 && resend_one() == 1)
		n++;
	if (n)
		log_notice("http: sent %d pending job%s", n, n == 1 ? "" : "s");
	return n;
}

static void *
resender_loop(void *arg)
{
	struct timespec ts;

	pthread_mutex_lock(&R.mu);
	while (!http.stop) {
		pthread_mutex_unlock(&R.mu);
		if (http.store) {
			pthread_mutex_lock(&http.store_mu);
			store_flush(http.store, 200);
			pthread_mutex_unlock(&http.store_mu);
		}
		if (http.has_db)
			(void)resend_pending();
		pthread_mutex_lock(&R.mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += HTTP_RESEND_MS / 1000;
		if (!http.stop)
			pthread_cond_timedwait(&R.cv, &R.mu, &ts);
	}
	pthread_mutex_unlock(&R.mu);
	http_conn_release();
	return NULL;
}

int
http_resender_start(void)
{
	if (pthread_create(&R.th, NULL, resender_loop, NULL) != 0)
		return -1;
	R.running = 1;
	return 0;
}

void
http_resender_stop(void)
{
	if (!R.running)
		return;
	pthread_mutex_lock(&R.mu);
	pthread_cond_broadcast(&R.cv);
	pthread_mutex_unlock(&R.mu);
	pthread_join(R.th, NULL);
	R.running = 0;
}

/* revoke --terminate of task_id; 0, or -1 when the broker is down. */
int
http_revoke(const char *task_id)
{
	redisContext *c;

	if ((c = http_redis(HTTP_BROKER)) == NULL)
		return -1;
	if (revoke_publish(c, task_id, 1, "SIGTERM", now_unix()) == -1) {
		http_redis_check(HTTP_BROKER);
		return -1;
	}
	return 0;
}
