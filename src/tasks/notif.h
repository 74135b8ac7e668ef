/*
 * notif.h - outgoing HTTP of the notification tasks (notifications.c),
 * also used by the reports for their completion callback.
 */
#ifndef CELERIAC_NOTIF_H
#define CELERIAC_NOTIF_H

#include <signal.h>
#include <stddef.h>

/* Environment variables the notification tasks read. */
#define NOTIF_ENV_SECRET	"CELERIAC_WEBHOOK_SECRET"
#define NOTIF_ENV_SMTP_URL	"CELERIAC_SMTP_URL"
#define NOTIF_ENV_SMTP_FROM	"CELERIAC_SMTP_FROM"

/* Outcomes of notif_post_json(). */
#define NOTIF_OK	0	/* 2xx */
#define NOTIF_NETWORK	1	/* no answer: worth a retry */
#define NOTIF_SERVER	2	/* 5xx, 408, 429: worth a retry */
#define NOTIF_CLIENT	3	/* any other status: the request is wrong */
#define NOTIF_USAGE	4	/* bad URL or scheme, out of memory */
#define NOTIF_STOPPED	5	/* *stop became set */

struct notif_reply {
	long	 code;		/* HTTP status, 0 without an answer */
	double	 secs;		/* duration of the exchange */
	char	 body[512];	/* start of the answer's body */
	int	 signed_;	/* the signature header was sent */
	int	 timeout;	/* NOTIF_NETWORK was a timeout */
};

/*
 * POST body (JSON) to url (http or https only).  secret: the HMAC key of
 * the X-Celeriac-Signature header; NULL takes $CELERIAC_WEBHOOK_SECRET,
 * "" sends no signature.  delivery names the delivery in a header (the
 * task id: the same on every retry).  The exchange stops after
 * timeout_ms, or soon after *stop is set.  Fills reply and err, returns
 * one of the NOTIF_* outcomes.
 */
int	notif_post_json(const char *url, const char *body, const char *secret,
	    const char *delivery, long timeout_ms, volatile sig_atomic_t *stop,
	    struct notif_reply *reply, char *err, size_t errlen);

#endif
