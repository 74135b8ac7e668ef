/*
 * documents.c - documents.process(path): validate a document by its
 * content (not its name), checksum it and extract what its headers say.
 *
 * The file is mapped read-only and parsed in place; every read is
 * checked against the mapping's length, since the bytes come from
 * whoever uploaded the document.  Truncated files are caught by the
 * structure each format ends with (%%EOF, IEND, EOI), so a half-copied
 * upload fails instead of being recorded as good.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tasks/registry.h"

#define DOC_MAX_DEFAULT		(50LL * 1024 * 1024)
#define DOC_ERRMOD		"celeriac.errors"

struct doc_info {
	const char	*type;		/* MIME type */
	long		 pages;		/* PDF, -1 if unknown */
	long		 width, height;	/* images */
	char		 version[8];	/* PDF header version */
	char		 why[160];	/* what is wrong with it */
};

static uint32_t
doc_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* memmem over a bounded region, from the end. */
static const unsigned char *
doc_rfind(const unsigned char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	if (len < n)
		return NULL;
	for (i = len - n + 1; i-- > 0;)
		if (memcmp(p + i, needle, n) == 0)
			return p + i;
	return NULL;
}

static int
doc_delim(unsigned char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\f' || c == '/' || c == '>' || c == '<' || c == '[' ||
	    c == ']' || c == '(' || c == ')';
}

/*
 * Page count: the largest /Count of a /Type /Pages node is the root's;
 * without one (a damaged tree), count the /Type /Page objects.  Objects
 * packed in compressed object streams are not seen: then -1.
 */
static long
doc_pdf_pages(const unsigned char *p, size_t len)
{
	const unsigned char	*q, *end = p + len, *k;
	long			 best = -1, leaves = 0, v;
	size_t			 i;

	for (q = p; (q = memmem(q, (size_t)(end - q), "/Type", 5)) != NULL;
	    q += 5) {
		k = q + 5;
		while (k < end && (*k == ' ' || *k == '\r' || *k == '\n' ||
		    *k == '\t'))
			k++;
		if ((size_t)(end - k) < 5 || memcmp(k, "/Page", 5) != 0)
			continue;
		k += 5;
		if (k < end && *k == 's' && (k + 1 == end ||
		    doc_delim(k[1]))) {
			/* Look for /Count in the same dictionary. */
			const unsigned char *ds = q, *de;
			for (i = 0; i < 4096 && ds > p; i++, ds--)
				if (ds[-1] == '<' && ds > p + 1 &&
				    ds[-2] == '<')
					break;
			de = memmem(k, (size_t)(end - k), ">>", 2);
			if (de == NULL)
				continue;
			for (k = ds; (k = memmem(k, (size_t)(de - k),
			    "/Count", 6)) != NULL; k += 6) {
				v = strtol((const char *)k + 6, NULL, 10);
				if (v > best && v < 10000000)
					best = v;
			}
		} else if (k == end || doc_delim(*k))
			leaves++;
	}
	if (best >= 0)
		return best;
	return leaves > 0 ? leaves : -1;
}

static int
doc_pdf(const unsigned char *p, size_t len, struct doc_info *d)
{
	size_t tail = len > 2048 ? 2048 : len, n;

	d->type = "application/pdf";
	n = strspn((const char *)p + 5, "0123456789.");
	if (n == 0 || n >= sizeof(d->version)) {
		snprintf(d->why, sizeof(d->why), "PDF: bad header version");
		return -1;
	}
	memcpy(d->version, p + 5, n);
	d->version[n] = '\0';
	/* A complete file ends with startxref and %%EOF (a few bytes of
	 * trailing garbage are common and tolerated). */
	if (doc_rfind(p + len - tail, tail, "%%EOF") == NULL) {
		snprintf(d->why, sizeof(d->why),
		    "PDF truncated: no %%%%EOF marker at the end");
		return -1;
	}
	if (doc_rfind(p + len - tail, tail, "startxref") == NULL) {
		snprintf(d->why, sizeof(d->why),
		    "PDF damaged: no startxref before %%%%EOF");
		return -1;
	}
	d->pages = doc_pdf_pages(p, len);
	return 0;
}

/* Walks the chunks: a valid PNG starts with IHDR and ends with IEND. */
static int
doc_png(const unsigned char *p, size_t len, struct doc_info *d)
{
	size_t	 off = 8;
	uint32_t clen;
	int	 first = 1;

	d->type = "image/png";
	for (;;) {
		if (len - off < 12) {
			snprintf(d->why, sizeof(d->why),
			    "PNG truncated at byte %zu (no IEND chunk)", off);
			return -1;
		}
		clen = doc_be32(p + off);
		if (clen > 0x7fffffffU || clen > len - off - 12) {
			snprintf(d->why, sizeof(d->why),
			    "PNG truncated: chunk at byte %zu overruns the "
			    "file", off);
			return -1;
		}
		if (first) {
			if (memcmp(p + off + 4, "IHDR", 4) != 0 || clen != 13) {
				snprintf(d->why, sizeof(d->why),
				    "PNG damaged: first chunk is not IHDR");
				return -1;
			}
			d->width = doc_be32(p + off + 8);
			d->height = doc_be32(p + off + 12);
			if (d->width == 0 || d->height == 0) {
				snprintf(d->why, sizeof(d->why),
				    "PNG damaged: zero width or height");
				return -1;
			}
			first = 0;
		}
		if (memcmp(p + off + 4, "IEND", 4) == 0)
			return 0;
		off += 12 + clen;
	}
}

/* Walks the markers to a start-of-frame, and checks the end marker. */
static int
doc_jpeg(const unsigned char *p, size_t len, struct doc_info *d)
{
	size_t		 off = 2, seg;
	unsigned char	 m;

	d->type = "image/jpeg";
	while (off + 4 <= len) {
		if (p[off] != 0xFF) {
			snprintf(d->why, sizeof(d->why),
			    "JPEG damaged: no marker at byte %zu", off);
			return -1;
		}
		m = p[off + 1];
		if (m == 0xFF) {		/* fill byte */
			off++;
			continue;
		}
		seg = (size_t)p[off + 2] << 8 | p[off + 3];
		if (seg < 2 || off + 2 + seg > len)
			break;
		if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 &&
		    m != 0xCC) {
			if (seg < 7)
				break;
			d->height = (long)p[off + 5] << 8 | p[off + 6];
			d->width = (long)p[off + 7] << 8 | p[off + 8];
			/* The image data follows: it must end with EOI. */
			if (len < 2 || doc_rfind(p + len - (len > 64 ? 64 :
			    len), len > 64 ? 64 : len, "\xFF\xD9") == NULL) {
				snprintf(d->why, sizeof(d->why), "JPEG "
				    "truncated: no end-of-image marker");
				return -1;
			}
			if (d->width == 0 || d->height == 0) {
				snprintf(d->why, sizeof(d->why),
				    "JPEG damaged: zero width or height");
				return -1;
			}
			return 0;
		}
		off += 2 + seg;
	}
	snprintf(d->why, sizeof(d->why),
	    "JPEG truncated: no frame header before the end");
	return -1;
}

static int
doc_gif(const unsigned char *p, size_t len, struct doc_info *d)
{
	d->type = "image/gif";
	if (len < 14 || p[len - 1] != 0x3B) {
		snprintf(d->why, sizeof(d->why),
		    "GIF truncated: no trailer byte");
		return -1;
	}
	d->width = p[6] | p[7] << 8;
	d->height = p[8] | p[9] << 8;
	return 0;
}

/* The type by magic bytes, then that format's own checks. */
static int
doc_identify(const unsigned char *p, size_t len, struct doc_info *d)
{
	if (len >= 8 && memcmp(p, "%PDF-", 5) == 0)
		return doc_pdf(p, len, d);
	if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return doc_png(p, len, d);
	if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
		return doc_jpeg(p, len, d);
	if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 ||
	    memcmp(p, "GIF89a", 6) == 0))
		return doc_gif(p, len, d);
	snprintf(d->why, sizeof(d->why), "unsupported document type (not "
	    "PDF, PNG, JPEG or GIF by its content)");
	return -1;
}

static int
doc_sha256(const unsigned char *p, size_t len, char hex[65])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0, i;

	if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
	return 0;
}

static int
doc_open_fail(struct task_ctx *ctx, const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return task_fail(ctx, "FileNotFoundError", "builtins",
		    "[Errno %d] No such file or directory: '%s'", err, path);
	case EACCES:
	case EPERM:
		return task_fail(ctx, "PermissionError", "builtins",
		    "[Errno %d] Permission denied: '%s'", err, path);
	case ELOOP:
		return task_fail(ctx, "DocumentError", DOC_ERRMOD,
		    "%s: is a symbolic link", path);
	default:
		return task_fail(ctx, "OSError", "builtins", "[Errno %d] %s: "
		    "'%s'", err, strerror(err), path);
	}
}

/* process(path, max_size=None) */
static int
doc_process(struct task_ctx *ctx)
{
	struct doc_info	 d;
	struct stat	 st;
	const char	*path;
	unsigned char	*map;
	char		 hex[65];
	long long	 max = DOC_MAX_DEFAULT;
	json_object	*res;
	int		 fd, rc;

	if (!json_object_is_type(ctx->param[0], json_type_string))
		return task_fail(ctx, "TypeError", "builtins",
		    "path must be a string");
	path = json_object_get_string(ctx->param[0]);
	if (path[0] != '/')
		return task_fail(ctx, "ValueError", "builtins",
		    "path must be absolute: '%s'", path);
	if (ctx->param[1] != NULL) {
		if (!json_object_is_type(ctx->param[1], json_type_int) ||
		    (max = json_object_get_int64(ctx->param[1])) <= 0)
			return task_fail(ctx, "ValueError", "builtins",
			    "max_size must be a positive integer (bytes)");
	}
	/*
	 * O_NONBLOCK: a FIFO planted under the path must not hang the
	 * worker; O_NOFOLLOW: process what was uploaded, not a link out.
	 */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return doc_open_fail(ctx, path, errno);
	if (fstat(fd, &st) == -1) {
		rc = doc_open_fail(ctx, path, errno);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return task_fail(ctx, S_ISDIR(st.st_mode) ? "IsADirectoryError" :
		    "DocumentError", S_ISDIR(st.st_mode) ? "builtins" :
		    DOC_ERRMOD, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return task_fail(ctx, "DocumentError", DOC_ERRMOD,
		    "%s: empty file", path);
	}
	if (st.st_size > max) {
		close(fd);
		return task_fail(ctx, "DocumentError", DOC_ERRMOD,
		    "%s: %lld bytes, over the %lld-byte limit", path,
		    (long long)st.st_size, max);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return task_fail(ctx, "OSError", "builtins", "%s: cannot map: "
		    "%s", path, strerror(errno));
	memset(&d, 0, sizeof(d));
	d.pages = -1;
	rc = doc_identify(map, (size_t)st.st_size, &d);
	if (rc == 0 && doc_sha256(map, (size_t)st.st_size, hex) == -1) {
		snprintf(d.why, sizeof(d.why), "SHA-256 failed");
		rc = -1;
	}
	munmap(map, (size_t)st.st_size);
	if (rc == -1)
		return task_fail(ctx, "DocumentError", DOC_ERRMOD, "%s: %s",
		    path, d.why);

	res = json_object_new_object();
	json_object_object_add(res, "path", json_object_new_string(path));
	json_object_object_add(res, "size",
	    json_object_new_int64((int64_t)st.st_size));
	json_object_object_add(res, "sha256", json_object_new_string(hex));
	json_object_object_add(res, "content_type",
	    json_object_new_string(d.type));
	if (strcmp(d.type, "application/pdf") == 0) {
		json_object_object_add(res, "pdf_version",
		    json_object_new_string(d.version));
		json_object_object_add(res, "pages", d.pages >= 0 ?
		    json_object_new_int64(d.pages) : NULL);
	} else {
		json_object_object_add(res, "width",
		    json_object_new_int64(d.width));
		json_object_object_add(res, "height",
		    json_object_new_int64(d.height));
	}
	return task_succeed(ctx, res);
}

static const struct task_param p_process[] = {
	{ "path", 1 }, { "max_size", 0 }
};

const struct builtin_task task_documents_table[] = {
	{ "documents.process", doc_process, p_process, 2, 0,
	    "process(path, max_size=None): type, size, SHA-256 and metadata "
	    "of a PDF, PNG, JPEG or GIF" },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
