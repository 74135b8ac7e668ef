/*
 * store.c - the job store as a worker (or any child) uses it: record
 * transitions without ever waiting on PostgreSQL, write them in batches.
 *
 * Events go to PostgreSQL in the order they were recorded: whatever sits
 * in a spill file is older than anything in memory, so spill files are
 * replayed first (files adopted from dead processes, then our own), then
 * the memory queue.  While the database is known to be away, new events
 * go straight to the spill file rather than waiting in memory: a worker
 * killed by a time limit during an outage then loses nothing either.
 * The connection side (flush.c) never blocks longer than asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "store/store_int.h"

#define STORE_CLOSE_MS		1000

struct store *
store_open(const struct config *cfg, const char *who)
{
	struct store	*s;
	char		*p;

	if (cfg == NULL || cfg->database == NULL || *cfg->database == '\0')
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->url = strdup(cfg->database)) == NULL ||
	    (s->q = calloc(STORE_QMAX, sizeof(*s->q))) == NULL) {
		log_warnx("job store: out of memory");
		if (s)
			free(s->url);
		free(s);
		return NULL;
	}
	/* who names a file: keep it one plain path component. */
	snprintf(s->who, sizeof(s->who), "%s", who && *who ? who : "store");
	for (p = s->who; *p; p++)
		if (*p == '/' || *p == '.' || (unsigned char)*p <= ' ')
			*p = '_';
	snprintf(s->host, sizeof(s->host), "%s", cfg->hostname ?
	    cfg->hostname : host_name());
	s->owner = getpid();
	s->own.fd = -1;
	s->backoff = 100;
	s->spool_ok = spill_dir(s->spool, sizeof(s->spool),
	    cfg->state_dir) == 0;
	if (s->spool_ok)
		spill_scan(s->spool, s->who, &s->own, &s->orphans,
		    &s->norphans);
	return s;
}

static size_t
q_at(const struct store *s, size_t i)
{
	return (s->qhead + i) % STORE_QMAX;
}

static void
q_pop(struct store *s, size_t k)
{
	s->qhead = q_at(s, k);
	s->qlen -= k;
	if (s->qlen == 0)
		s->qhead = 0;
	s->qsince = mono_ms();
}

int
store_pending(const struct store *s)
{
	return s->b.pos < s->b.n || s->norphans > 0 ||
	    (s->own.fd >= 0 && s->own.off < s->own.end) || s->qlen > 0;
}

int
store_want(const struct store *s, int force, int64_t now)
{
	if (s->b.pos < s->b.n || s->norphans > 0 ||
	    (s->own.fd >= 0 && s->own.off < s->own.end))
		return 1;
	if (s->qlen == 0)
		return 0;
	return force || s->qlen >= STORE_BATCH ||
	    now - s->qsince >= STORE_BATCH_MS;
}

static int
spill_lines(struct store *s, char *const *lines, size_t n)
{
	if (!s->spool_ok || spill_create(&s->own, s->spool, s->who) == -1)
		return -1;
	if (spill_append(&s->own, lines, n) == -1) {
		if (!s->stats.spill_errors++)
			log_warn("job store: cannot write %s", s->own.path);
		return -1;
	}
	s->stats.spilled += n;
	return 0;
}

/*
 * Move the memory queue to the spill file, oldest first.  On failure the
 * events stay in memory.
 */
static void
spill_queue(struct store *s)
{
	char	*lines[256];
	size_t	 i, k;

	while (s->qlen > 0) {
		for (k = 0; k < s->qlen && k < 256; k++)
			lines[k] = s->q[q_at(s, k)];
		if (spill_lines(s, lines, k) == -1)
			return;
		for (i = 0; i < k; i++) {
			s->qbytes -= strlen(lines[i]);
			free(lines[i]);
		}
		q_pop(s, k);
	}
}

static void
batch_clear(struct store_batch *b)
{
	size_t i;

	for (i = b->pos; i < b->n; i++)
		free(b->line[i]);
	free(b->line);
	memset(b, 0, sizeof(*b));
}

/*
 * The database went away: a batch taken from the queue and the queue go
 * to the spill file, in that order, which is their age.  A batch older
 * than what the file already holds stays in memory (it is sent first),
 * except at exit, where appending it last is the lesser harm: a jobs row
 * does not depend on the order its events are written in (see the batch
 * statement), only the order of equal-time events would.
 */
void
store_spill_memory(struct store *s, int closing)
{
	struct store_batch *b = &s->b;

	if (b->from == NULL && b->pos < b->n && b->sent == 0 &&
	    (closing || s->own.fd < 0 || s->own.off >= s->own.end)) {
		if (spill_lines(s, b->line + b->pos, b->n - b->pos) == -1)
			return;
		batch_clear(b);
	}
	spill_queue(s);
}

void
store_record(struct store *s, const struct store_event *e)
{
	char *line;

	if (s == NULL)
		return;
	if ((line = store_event_line(e)) == NULL) {
		s->stats.dropped++;
		log_warnx("job store: cannot record %s of %s",
		    store_status_name(e->status), e->task_id ? e->task_id :
		    "(no id)");
		return;
	}
	if (s->qlen == STORE_QMAX) {
		/* Neither the database nor a spill file: the oldest goes. */
		if (s->stats.dropped++ % 1000 == 0)
			log_errx("job store: queue full and no spill file; "
			    "%llu events lost", s->stats.dropped);
		s->qbytes -= strlen(s->q[s->qhead]);
		free(s->q[s->qhead]);
		q_pop(s, 1);
	}
	if (s->qlen == 0)
		s->qsince = mono_ms();
	s->q[q_at(s, s->qlen)] = line;
	s->qlen++;
	s->qbytes += strlen(line);
	s->stats.recorded++;
	if (s->failing)
		store_spill_memory(s, 0);
	else if (s->qlen == STORE_QMAX || s->qbytes > STORE_QBYTES)
		spill_queue(s);
	store_pump(s, mono_ms(), 0);
	spill_sync(&s->own, 0);
}

/* A spill file is in the database up to end. */
static void
spill_done(struct store *s, struct spill *sp, off_t end)
{
	if (spill_consumed(sp, end, sp == &s->own) == 1) {
		close(sp->fd);
		memmove(s->orphans, s->orphans + 1, (s->norphans - 1) *
		    sizeof(*s->orphans));
		s->norphans--;
	}
}

int
store_batch_fill(struct store *s)
{
	struct store_batch	*b = &s->b;
	struct spill		*sp;
	ssize_t			 n;
	size_t			 k, bytes;
	off_t			 next;

	if (b->pos < b->n)
		return 0;
	batch_clear(b);
	while (s->norphans > 0 || (s->own.fd >= 0 && s->own.off <
	    s->own.end)) {
		sp = s->norphans > 0 ? &s->orphans[0] : &s->own;
		n = spill_read(sp, STORE_BATCH_MAX, STORE_BATCH_BYTES,
		    &b->line, &next);
		if (n == -1) {
			log_warn("job store: cannot read %s", sp->path);
			return -1;
		}
		if (n > 0) {
			b->n = n;
			b->from = sp;
			b->end = next;
			return 0;
		}
		/* Nothing readable up to its end. */
		free(b->line);
		b->line = NULL;
		spill_done(s, sp, sp->end);
	}
	if (s->qlen == 0)
		return 0;
	k = s->qlen < STORE_BATCH_MAX ? s->qlen : STORE_BATCH_MAX;
	if ((b->line = calloc(k, sizeof(*b->line))) == NULL)
		return -1;
	for (k = 0, bytes = 0; k < s->qlen && k < STORE_BATCH_MAX &&
	    bytes < STORE_BATCH_BYTES; k++) {
		b->line[k] = s->q[q_at(s, k)];
		bytes += strlen(b->line[k]);
	}
	b->n = k;
	s->qbytes -= bytes;
	q_pop(s, k);
	return 0;
}

/* The next k events of the batch are written (or given up). */
void
store_batch_advance(struct store *s, size_t k)
{
	struct store_batch	*b = &s->b;
	struct spill		*sp;
	off_t			 end;

	while (k-- > 0 && b->pos < b->n)
		free(b->line[b->pos++]);
	b->sent = 0;
	b->degraded = 0;
	if (b->pos < b->n)
		return;
	sp = b->from;
	end = b->end;
	batch_clear(b);
	if (sp != NULL)
		spill_done(s, sp, end);
}

/*
 * PostgreSQL refused the data of the batch (not the connection, not the
 * schema): find the event by sending them one by one, store it without
 * its parameters, result and error text, and if even that is refused,
 * log it and go on.  One bad event never holds up the others.
 */
void
store_batch_refused(struct store *s, const char *why)
{
	struct store_batch	*b = &s->b;
	char			*line, *id;

	if (b->sent > 1) {
		log_warnx("job store: a batch of %zu events was refused (%s); "
		    "writing them one by one", b->sent, why);
		b->solo = 1;
		b->sent = 0;
		return;
	}
	line = b->line[b->pos];
	id = strstr(line, "\"id\":");
	if (!b->degraded && (line = store_event_degrade(line)) != NULL) {
		log_warnx("job store: event %.80s refused (%s); storing it "
		    "without its data", id ? id : "?", why);
		free(b->line[b->pos]);
		b->line[b->pos] = line;
		b->degraded = 1;
		b->sent = 0;
		return;
	}
	log_errx("job store: dropping an event PostgreSQL refuses (%s): "
	    "%.300s", why, b->line[b->pos]);
	s->stats.dropped++;
	store_batch_advance(s, 1);
}

void
store_flush(struct store *s, int timeout_ms)
{
	if (s == NULL)
		return;
	store_pump(s, mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), 1);
	spill_sync(&s->own, 0);
}

void
store_close(struct store *s)
{
	size_t left, i;

	/*
	 * A child forked after store_open() that exits through exit(3)
	 * must not end the parent's session nor spill its events twice.
	 */
	if (s == NULL || getpid() != s->owner)
		return;
	store_pump(s, mono_ms() + STORE_CLOSE_MS, 1);
	/* What the database did not take waits in the spill file. */
	s->b.sent = 0;
	store_spill_memory(s, 1);
	if (s->stats.spilled || s->stats.dropped)
		log_info("job store: %llu events recorded, %llu written, "
		    "%llu spilled, %llu lost", s->stats.recorded,
		    s->stats.written, s->stats.spilled, s->stats.dropped);
	left = s->qlen + (s->b.from == NULL ? s->b.n - s->b.pos : 0);
	if (left > 0)
		log_errx("job store: %zu events lost at exit (no database, no "
		    "spill file)", left);
	store_disconnect(s);
	batch_clear(&s->b);
	for (i = 0; i < s->qlen; i++)
		free(s->q[q_at(s, i)]);
	free(s->q);
	spill_close(&s->own);
	for (i = 0; i < s->norphans; i++)
		close(s->orphans[i].fd);
	free(s->orphans);
	store_buf_free(&s->param);
	free(s->url);
	free(s);
}

void
store_get_stats(const struct store *s, struct store_stats *st)
{
	size_t i;

	if (s == NULL) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = s->stats;
	st->queued = s->qlen + (s->b.from == NULL ? s->b.n - s->b.pos : 0);
	st->spill_bytes = s->own.fd >= 0 ? s->own.end - s->own.off : 0;
	for (i = 0; i < s->norphans; i++)
		st->spill_bytes += s->orphans[i].end - s->orphans[i].off;
	st->connected = s->state == ST_READY || s->state == ST_BUSY;
}
