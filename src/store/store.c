/*
 * store.c - placeholder until the job store lands: records nothing.
 */
#include <stddef.h>

#include "store/store.h"

struct store *
store_open(const struct config *cfg, const char *who)
{
	return NULL;
}

void
store_close(struct store *s)
{
}

void
store_record(struct store *s, const struct store_event *e)
{
}

void
store_flush(struct store *s, int timeout_ms)
{
}

const char *
store_status_name(enum store_status st)
{
	static const char *names[] = { "pending", "queued", "started",
	    "retrying", "succeeded", "failed", "revoked" };

	return (unsigned)st < 7 ? names[st] : "?";
}
