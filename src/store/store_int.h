/*
 * store_int.h - what the files of the job store share: the text form of
 * an event (one line of JSON, the same in memory, in the spill file and
 * in the batch sent to PostgreSQL) and the spill files.
 */
#ifndef CELERIAC_STORE_INT_H
#define CELERIAC_STORE_INT_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Caps that keep one event, and so one batch, a sane size. */
#define STORE_JSON_MAX		(256 * 1024)	/* params, result */
#define STORE_TEXT_MAX		4096		/* error message */
#define STORE_NAME_MAX		512		/* ids, names, host */

/* A growable byte buffer; err is set once an allocation failed. */
struct store_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 err;
};

void	store_buf_add(struct store_buf *, const void *, size_t);
void	store_buf_addc(struct store_buf *, char);
void	store_buf_addstr(struct store_buf *, const char *);
/* A JSON string (quotes included); invalid UTF-8 becomes U+FFFD. */
void	store_buf_json_str(struct store_buf *, const char *, size_t max);
void	store_buf_free(struct store_buf *);

/*
 * The line of an event, without the newline; malloc'd, NULL when out of
 * memory or without a task id.  Keys are the column names of the batch
 * statement: id task queue status retries t host pid params result etype
 * emsg; absent values are left out.
 */
char	*store_event_line(const struct store_event *);
/*
 * The same event stripped of what PostgreSQL may refuse (params, result,
 * error text): used when a line cannot be stored as it is.  NULL if the
 * line is not even JSON with an id.
 */
char	*store_event_degrade(const char *line);

/*
 * Spill files, <dir>/<who>.spool: one event line per line, appended
 * only, read back from an offset.  Each is held under flock(2) by the
 * process that writes or replays it, so that files left by a process
 * that died are adopted by exactly one other.
 */
struct spill {
	char	 path[PATH_MAX];
	int	 fd;		/* -1: none */
	off_t	 off;		/* replayed up to here */
	off_t	 end;		/* bytes in the file */
	int	 dirty;		/* written since the last fsync */
	int64_t	 synced_ms;
};

/* The spool directory under state_dir, or a private temporary one. */
int	spill_dir(char *dir, size_t len, const char *state_dir);
/*
 * Lock the spool files of dir nobody holds.  <who>.spool becomes *own
 * (fd -1 if it is held elsewhere); the others that hold events are
 * returned in *orphans, to replay and remove.
 */
int	spill_scan(const char *dir, const char *who, struct spill *own,
	    struct spill **orphans, size_t *norphans);
/* Make own writable: <who>.spool, or <who>.<pid>.spool if held. */
int	spill_create(struct spill *own, const char *dir, const char *who);
/* Append lines (a newline after each); all or nothing. */
int	spill_append(struct spill *, char *const *lines, size_t n);
/*
 * Read up to max lines (and about maxbytes) from the replay offset into
 * malloc'd lines; *next is the offset after them.  Lines that are not
 * JSON objects (a torn write) are skipped.  Returns the count or -1.
 */
ssize_t	spill_read(struct spill *, size_t max, size_t maxbytes,
	    char ***lines, off_t *next);
/*
 * Lines up to off are in the database.  When the whole file is, own is
 * truncated, and an orphan is removed (returns 1: close it).
 */
int	spill_consumed(struct spill *, off_t off, int own);
void	spill_sync(struct spill *, int force);
void	spill_close(struct spill *);

#define STORE_QMAX		10000		/* events in memory */
#define STORE_QBYTES		(64 << 20)	/* and their bytes */
#define STORE_BATCH		200		/* send once this many wait */
#define STORE_BATCH_MAX		1000		/* events in one statement */
#define STORE_BATCH_BYTES	(4 << 20)

enum store_state {
	ST_DOWN = 0,		/* no connection */
	ST_CONNECTING,
	ST_PREPARING,		/* the batch statement is being prepared */
	ST_READY,
	ST_BUSY			/* a batch is in flight */
};

/* The events being written, taken from a spill file or the queue. */
struct store_batch {
	char		**line;
	size_t		  n;
	size_t		  pos;		/* before it: written */
	size_t		  sent;		/* in the statement in flight */
	int		  solo;		/* one event per statement */
	int		  degraded;	/* line[pos] was stripped already */
	struct spill	 *from;		/* NULL: from the queue */
	off_t		  end;		/* from a spill: offset after it */
};

struct store {
	char			*url;
	char			 who[128];
	char			 host[256];	/* for store_record_task */
	pid_t			 owner;		/* the process that opened it */
	void			*conn;		/* PGconn */
	enum store_state	 state;
	short			 pq_events;	/* PQconnectPoll waits for */
	int64_t			 t_connect;
	int64_t			 next_try;
	int64_t			 backoff;
	int			 failing;	/* an outage was logged */
	int			 res_ok;	/* the command in flight: */
	char			 res_state[6];	/* its SQLSTATE */
	char			 res_msg[256];
	struct store_batch	 b;
	struct store_buf	 param;
	char			**q;		/* ring of STORE_QMAX lines */
	size_t			 qhead, qlen, qbytes;
	int64_t			 qsince;	/* when the oldest was queued */
	int			 spool_ok;
	char			 spool[PATH_MAX];
	struct spill		 own;
	struct spill		*orphans;
	size_t			 norphans;
	struct store_stats	 stats;
};

/* store.c: the batch, for flush.c. */
int	store_pending(const struct store *);
int	store_want(const struct store *, int force, int64_t now);
int	store_batch_fill(struct store *);
void	store_batch_advance(struct store *, size_t k);
void	store_batch_refused(struct store *, const char *why);
/* An outage: what is in memory goes to the spill file. */
void	store_spill_memory(struct store *, int closing);

/* flush.c: the connection. */
void	store_pump(struct store *, int64_t deadline_ms, int force);
void	store_disconnect(struct store *);

#endif
