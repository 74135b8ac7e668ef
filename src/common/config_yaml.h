/*
 * config_yaml.h - the YAML side of the configuration loader, shared by
 * config.c (the schema: which keys exist and what they mean) and
 * config_yaml.c (how a YAML document is read and checked against a
 * schema).  Nothing outside these two files includes it.
 */
#ifndef CELERIAC_CONFIG_YAML_H
#define CELERIAC_CONFIG_YAML_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

struct cfg_ctx;

/* What a schema key holds, i.e. how its value is read and stored. */
enum cfg_kind {
	CFG_K_STR,		/* char *, non-empty */
	CFG_K_BOOL,		/* int 0/1 */
	CFG_K_INT,		/* int within [min, max] */
	CFG_K_INT64,		/* int64_t within [min, max] */
	CFG_K_DURATION,		/* int64_t milliseconds within [min, max] */
	CFG_K_SECONDS,		/* int64_t seconds (a duration rounded up) */
	CFG_K_SIZE,		/* int64_t bytes within [min, max] */
	CFG_K_MAP,		/* a nested mapping read with sub at off */
	CFG_K_FN		/* anything else: fn(ctx, value, obj) */
};

#define CFG_KEY_REQUIRED	0x1

typedef int (*cfg_key_fn)(struct cfg_ctx *, yaml_node_t *, void *);

/*
 * One key of a mapping.  A table of these, ended by a NULL name, is the
 * schema of one mapping; the offsets are into the object the mapping is
 * read into.
 */
struct cfg_key {
	const char	*name;
	enum cfg_kind	 kind;
	size_t		 off;
	int64_t		 min, max;
	int		 flags;
	cfg_key_fn	 fn;		/* CFG_K_FN */
	const struct cfg_key *sub;	/* CFG_K_MAP */
};

#define CFG_MAXKEYS	24		/* keys in the largest table */

/*
 * The state of one cfg_load(): the document, the error buffer and the
 * dotted path of the key being read, which every error message starts
 * with.  config.c keeps its own bookkeeping behind priv.
 */
struct cfg_ctx {
	const char	*file;
	char		*err;
	size_t		 errlen;
	int		 failed;
	yaml_document_t	 doc;
	int		 have_doc;
	char		 path[1024];
	size_t		 pathlen;
	void		*priv;
};

/* Load the file into ctx->doc; -1 with ctx->err set on failure. */
int		 cfg_yaml_open(struct cfg_ctx *);
void		 cfg_yaml_close(struct cfg_ctx *);

/* Record the first error, at mark, prefixed with the key path; -1. */
int		 cfg_error(struct cfg_ctx *, const yaml_mark_t *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
/* Same, for an error with no position in the file. */
int		 cfg_error_nopos(struct cfg_ctx *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/* An error that is the value's fault: "expected <what>, got <value>". */
int		 cfg_expected(struct cfg_ctx *, yaml_node_t *, const char *,
		    ...) __attribute__((format(printf, 3, 4)));

size_t		 cfg_path_push(struct cfg_ctx *, const char *);
void		 cfg_path_pop(struct cfg_ctx *, size_t);

yaml_node_t	*cfg_node(struct cfg_ctx *, int id);
int		 cfg_is_null(const yaml_node_t *);
const char	*cfg_scalar(struct cfg_ctx *, yaml_node_t *, const char *);
/* 1 or 0 for true/false, yes/no, on/off in any case; -1 otherwise. */
int		 cfg_bool_word(const char *);
int		 cfg_get_bool(struct cfg_ctx *, yaml_node_t *, int *);
int		 cfg_get_word(struct cfg_ctx *, yaml_node_t *,
		    const char *const *, const char *, int *);
char		*cfg_get_str(struct cfg_ctx *, yaml_node_t *);
char		*cfg_strdup(struct cfg_ctx *, const char *);
void		*cfg_calloc(struct cfg_ctx *, size_t, size_t);

/*
 * Return the name of pair i of a mapping after checking it is a scalar
 * and not a duplicate of an earlier key; NULL after an error.
 */
const char	*cfg_pair_name(struct cfg_ctx *, yaml_node_t *, size_t);
size_t		 cfg_map_len(const yaml_node_t *);

/*
 * Read a mapping into obj following keys.  found, if not NULL, receives
 * for each key of the table its pair in the document (or NULL), for the
 * checks that span several keys.  A missing required key is reported at
 * where, the key that names the mapping.
 */
int		 cfg_walk(struct cfg_ctx *, yaml_node_t *, const yaml_mark_t *,
		    const struct cfg_key *, void *, yaml_node_pair_t **);

/* Compact JSON text of a node, as Python's yaml.safe_load would see it. */
char		*cfg_json(struct cfg_ctx *, yaml_node_t *);

#endif
