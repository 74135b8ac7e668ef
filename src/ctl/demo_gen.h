/*
 * demo_gen.h - the sample data of `celeriac demo-data` (demo_gen.c):
 * clients, contracts, premium instalments and claims as COPY text rows,
 * all a function of the seed.
 */
#ifndef CELERIAC_DEMO_GEN_H
#define CELERIAC_DEMO_GEN_H

#include <stddef.h>
#include <stdint.h>

#define DEMO_MAXC		4		/* contracts per client */

struct demo_contract {
	int64_t		 id;
	int		 branch, product, status;
	int		 start, end;		/* days since 1970; end -1: open */
	double		 premium;
};

struct demo_client {
	int64_t		 id;
	const char	*first, *last, *city, *postcode, *street;
	int		 number, birth, since;
	char		 email[128], phone[24];
	int		 ncontracts;
	struct demo_contract c[DEMO_MAXC];
};

/* Where rows go: one COPY text line (tab-separated, '\n'-terminated). */
struct demo_sink {
	void	(*line)(void *arg, const char *line, size_t len);
	void	*arg;
};

/* Client id (from 1) and its contracts, numbered from *next_contract. */
void	demo_client(uint64_t seed, int64_t id, int64_t *next_contract,
	    struct demo_client *);
/* COPY rows, in the column order of demo_data.c's COPY statements. */
void	demo_client_row(struct demo_sink *, const struct demo_client *);
void	demo_contract_row(struct demo_sink *, const struct demo_client *,
	    const struct demo_contract *);
void	demo_premium_rows(struct demo_sink *, uint64_t seed,
	    const struct demo_contract *);
void	demo_claim_rows(struct demo_sink *, uint64_t seed,
	    const struct demo_contract *, int64_t *next_claim);

#endif
