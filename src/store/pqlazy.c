/*
 * pqlazy.c - the libpq functions the daemon's core calls, opening libpq
 * on first use.
 *
 * libpq brings libssl, libcrypto, Kerberos, LDAP and GnuTLS with it: a
 * dozen libraries whose relocations and constructors would cost the
 * master and every worker memory even with no database configured.  The
 * daemon is linked without it; these stand-ins load libpq.so.5 in the
 * process that first talks to PostgreSQL (a worker's store thread, the
 * control child) and call through.  They are hidden, so the modules,
 * linked against libpq themselves, call libpq directly.  The CLI and the
 * tests link libpq and not this file.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "common/celeriac.h"
#include "common/log.h"
#include "store/pg.h"

#define LIBPQ_SONAME	"libpq.so.5"

#define PQ_FUNCTIONS(X)							\
	X(PQclear) X(PQcmdTuples) X(PQconnectdbParams)			\
	X(PQconnectPoll) X(PQconnectStartParams) X(PQconsumeInput)	\
	X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQfinish)	\
	X(PQflush) X(PQgetResult) X(PQgetvalue) X(PQisBusy)		\
	X(PQntuples) X(PQresultErrorField) X(PQresultErrorMessage)	\
	X(PQresultStatus) X(PQsendPrepare) X(PQsendQueryPrepared)	\
	X(PQsetNoticeProcessor) X(PQsetnonblocking) X(PQsocket)	\
	X(PQstatus)

#define PQ_POINTER(f)	__typeof__(f) *f;
static struct {
	PQ_FUNCTIONS(PQ_POINTER)
} pq;
static pthread_once_t	pq_once = PTHREAD_ONCE_INIT;
static int		pq_loaded;
static char		pq_err[512];

static void
pq_load(void)
{
	void *h;

	if ((h = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(pq_err, sizeof(pq_err), "cannot load %s: %s",
		    LIBPQ_SONAME, dlerror());
		return;
	}
#define PQ_RESOLVE(f)							\
	if ((*(void **)&pq.f = dlsym(h, #f)) == NULL) {			\
		snprintf(pq_err, sizeof(pq_err), "%s: no symbol %s",	\
		    LIBPQ_SONAME, #f);					\
		return;							\
	}
	PQ_FUNCTIONS(PQ_RESOLVE)
#undef PQ_RESOLVE
	pq_loaded = 1;
}

/*
 * Called by the master when a database is configured, before it forks:
 * every child then shares one relocated copy of libpq and its libraries
 * instead of each making its own.  Returns -1 (logged) when libpq cannot
 * be loaded; the children that need it then stop with that message.
 */
int
pq_preload(void)
{
	pthread_once(&pq_once, pq_load);
	if (!pq_loaded)
		log_warnx("%s", pq_err);
	return pq_loaded ? 0 : -1;
}

/* The package depends on libpq5: a failure here is a broken
 * installation, not a state to run on. */
static inline void
pq_need(void)
{
	pthread_once(&pq_once, pq_load);
	if (!pq_loaded)
		fatal("%s", pq_err);
}

#define PQ()	(pq_need(), &pq)
#define HIDDEN	__attribute__((visibility("hidden")))

HIDDEN void
PQclear(PGresult *r)
{
	PQ()->PQclear(r);
}

HIDDEN char *
PQcmdTuples(PGresult *r)
{
	return PQ()->PQcmdTuples(r);
}

HIDDEN PGconn *
PQconnectdbParams(const char *const *k, const char *const *v, int x)
{
	return PQ()->PQconnectdbParams(k, v, x);
}

HIDDEN PostgresPollingStatusType
PQconnectPoll(PGconn *c)
{
	return PQ()->PQconnectPoll(c);
}

HIDDEN PGconn *
PQconnectStartParams(const char *const *k, const char *const *v, int x)
{
	return PQ()->PQconnectStartParams(k, v, x);
}

HIDDEN int
PQconsumeInput(PGconn *c)
{
	return PQ()->PQconsumeInput(c);
}

HIDDEN char *
PQerrorMessage(const PGconn *c)
{
	return PQ()->PQerrorMessage(c);
}

HIDDEN PGresult *
PQexec(PGconn *c, const char *q)
{
	return PQ()->PQexec(c, q);
}

HIDDEN PGresult *
PQexecParams(PGconn *c, const char *q, int n, const Oid *types,
    const char *const *values, const int *lengths, const int *formats,
    int resfmt)
{
	return PQ()->PQexecParams(c, q, n, types, values, lengths, formats,
	    resfmt);
}

HIDDEN void
PQfinish(PGconn *c)
{
	PQ()->PQfinish(c);
}

HIDDEN int
PQflush(PGconn *c)
{
	return PQ()->PQflush(c);
}

HIDDEN PGresult *
PQgetResult(PGconn *c)
{
	return PQ()->PQgetResult(c);
}

HIDDEN char *
PQgetvalue(const PGresult *r, int row, int col)
{
	return PQ()->PQgetvalue(r, row, col);
}

HIDDEN int
PQisBusy(PGconn *c)
{
	return PQ()->PQisBusy(c);
}

HIDDEN int
PQntuples(const PGresult *r)
{
	return PQ()->PQntuples(r);
}

HIDDEN char *
PQresultErrorField(const PGresult *r, int field)
{
	return PQ()->PQresultErrorField(r, field);
}

HIDDEN char *
PQresultErrorMessage(const PGresult *r)
{
	return PQ()->PQresultErrorMessage(r);
}

HIDDEN ExecStatusType
PQresultStatus(const PGresult *r)
{
	return PQ()->PQresultStatus(r);
}

HIDDEN int
PQsendPrepare(PGconn *c, const char *name, const char *q, int n,
    const Oid *types)
{
	return PQ()->PQsendPrepare(c, name, q, n, types);
}

HIDDEN int
PQsendQueryPrepared(PGconn *c, const char *name, int n,
    const char *const *values, const int *lengths, const int *formats,
    int resfmt)
{
	return PQ()->PQsendQueryPrepared(c, name, n, values, lengths, formats,
	    resfmt);
}

HIDDEN PQnoticeProcessor
PQsetNoticeProcessor(PGconn *c, PQnoticeProcessor fn, void *arg)
{
	return PQ()->PQsetNoticeProcessor(c, fn, arg);
}

HIDDEN int
PQsetnonblocking(PGconn *c, int arg)
{
	return PQ()->PQsetnonblocking(c, arg);
}

HIDDEN int
PQsocket(const PGconn *c)
{
	return PQ()->PQsocket(c);
}

HIDDEN ConnStatusType
PQstatus(const PGconn *c)
{
	return PQ()->PQstatus(c);
}
