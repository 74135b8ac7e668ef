/*
 * spill.c - the job store's spill files.
 *
 * When PostgreSQL is away longer than the memory queue lasts, events go
 * to <state_dir>/spool/<who>.spool, one JSON line each, appended only.
 * Replay reads them back from an offset; a file is truncated (or, for one
 * adopted from a dead process, removed) only once all of it is in the
 * database.  Every file is held under flock(2) while a process writes or
 * replays it: the lock, not the name, says whose it is, so a process that
 * finds a file nobody holds adopts it, and a second daemon sharing the
 * directory writes beside the first instead of into its file.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "store/store_int.h"

#define SPILL_SUFFIX	".spool"
#define SPILL_SYNC_MS	1000
#define SPILL_CHUNK	65536

static int
mkdirs(const char *path, mode_t mode)
{
	char	tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
spill_dir(char *dir, size_t len, const char *state_dir)
{
	static int	 logged;
	struct stat	 st;
	const char	*tmp;

	if (state_dir != NULL && snprintf(dir, len, "%s/spool", state_dir) <
	    (int)len && mkdirs(dir, 0700) == 0 && access(dir, W_OK | X_OK) ==
	    0)
		return 0;
	if (!logged++)
		log_warn("job store: cannot use %s/spool for spill files; "
		    "using a temporary directory", state_dir ? state_dir : "?");
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp != '/')
		tmp = "/tmp";
	snprintf(dir, len, "%s/celeriac-spool-%u", tmp, (unsigned)getuid());
	/* A shared /tmp: the directory must be ours, not a planted one. */
	if ((mkdir(dir, 0700) == -1 && errno != EEXIST) ||
	    lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != getuid()) {
		log_warnx("job store: no usable spill directory (%s); events "
		    "will be kept in memory only", dir);
		return -1;
	}
	return 0;
}

/*
 * Open and lock path; 0 on success, -1 if it is held by someone else,
 * gone, or cannot be opened.  A file unlinked between open and lock (its
 * replay just finished elsewhere) is not taken.
 */
static int
spill_lock(struct spill *sp, const char *path, int create)
{
	struct stat	a, b;
	int		fd;

	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
	    (create ? O_CREAT : 0), 0600);
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || fstat(fd, &a) == -1 ||
	    stat(path, &b) == -1 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev || a.st_nlink == 0 || !S_ISREG(a.st_mode)) {
		close(fd);
		return -1;
	}
	memset(sp, 0, sizeof(*sp));
	snprintf(sp->path, sizeof(sp->path), "%s", path);
	sp->fd = fd;
	sp->end = a.st_size;
	sp->synced_ms = mono_ms();
	/* A torn last line must not swallow the next one appended. */
	if (a.st_size > 0) {
		char c;
		if (pread(fd, &c, 1, a.st_size - 1) == 1 && c != '\n' &&
		    write(fd, "\n", 1) == 1)
			sp->end++;
	}
	return 0;
}

int
spill_scan(const char *dir, const char *who, struct spill *own,
    struct spill **orphans, size_t *norphans)
{
	DIR		*d;
	struct dirent	*de;
	struct spill	 sp, *np;
	char		 path[PATH_MAX], mine[PATH_MAX];
	size_t		 len;

	own->fd = -1;
	*orphans = NULL;
	*norphans = 0;
	snprintf(mine, sizeof(mine), "%s" SPILL_SUFFIX, who);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= strlen(SPILL_SUFFIX) || strcmp(de->d_name + len -
		    strlen(SPILL_SUFFIX), SPILL_SUFFIX) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path) || spill_lock(&sp, path, 0) == -1)
			continue;
		if (strcmp(de->d_name, mine) == 0)
			*own = sp;
		else if (sp.end == 0) {
			unlink(sp.path);
			close(sp.fd);
		} else if ((np = reallocarray(*orphans, *norphans + 1,
		    sizeof(*np))) == NULL)
			close(sp.fd);
		else {
			*orphans = np;
			np[(*norphans)++] = sp;
			log_info("job store: replaying %s left by an earlier "
			    "process", sp.path);
		}
	}
	closedir(d);
	if (own->fd >= 0 && own->end > 0)
		log_info("job store: replaying %s", own->path);
	return 0;
}

int
spill_create(struct spill *own, const char *dir, const char *who)
{
	char path[PATH_MAX];

	if (own->fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s" SPILL_SUFFIX, dir, who);
	if (spill_lock(own, path, 1) == 0)
		return 0;
	/* Held by a process of another daemon sharing the directory. */
	snprintf(path, sizeof(path), "%s/%s.%d" SPILL_SUFFIX, dir, who,
	    (int)getpid());
	if (spill_lock(own, path, 1) == 0)
		return 0;
	log_warn("job store: cannot create a spill file in %s", dir);
	own->fd = -1;
	return -1;
}

static int
writev_all(int fd, struct iovec *iov, int cnt)
{
	ssize_t	n;

	while (cnt > 0) {
		if ((n = writev(fd, iov, cnt)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return 0;
}

int
spill_append(struct spill *sp, char *const *lines, size_t n)
{
	struct iovec	iov[512];
	off_t		end = sp->end;
	size_t		i = 0, k;
	int		cnt;

	while (i < n) {
		for (cnt = 0, k = 0; i < n && cnt + 2 <= 512; i++, k++) {
			iov[cnt].iov_base = lines[i];
			iov[cnt++].iov_len = strlen(lines[i]);
			end += iov[cnt - 1].iov_len + 1;
			iov[cnt].iov_base = (void *)"\n";
			iov[cnt++].iov_len = 1;
		}
		if (writev_all(sp->fd, iov, cnt) == -1) {
			/* All or nothing: the caller keeps the events. */
			int saved = errno;
			if (ftruncate(sp->fd, sp->end) == -1)
				log_warn("job store: ftruncate %s", sp->path);
			errno = saved;
			return -1;
		}
	}
	sp->end = end;
	sp->dirty = 1;
	return 0;
}

/*
 * Whether a line looks like an event: a torn write never does.  Anything
 * else PostgreSQL refuses is caught when the batch is written (see
 * store_batch_refused()), so replay need not parse every line.
 */
static int
is_event(const char *line, size_t len)
{
	return len > 8 && strncmp(line, "{\"id\":\"", 7) == 0 &&
	    line[len - 1] == '}';
}

ssize_t
spill_read(struct spill *sp, size_t max, size_t maxbytes, char ***linesp,
    off_t *next)
{
	struct store_buf	 b;
	char			 chunk[SPILL_CHUNK], **lines = NULL, **nl, *nlp;
	char			*line;
	off_t			 pos = sp->off, taken = sp->off;
	size_t			 n = 0, cap = 0, total = 0, start;
	ssize_t			 r = 0;
	int			 eof = 0;

	memset(&b, 0, sizeof(b));
	while (n < max && total < maxbytes && !eof) {
		if (pos < sp->end &&
		    (r = pread(sp->fd, chunk, sizeof(chunk), pos)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pos >= sp->end || r == 0) {
			/* A torn line at the end of a file of a dead writer. */
			eof = 1;
			if (b.len == 0)
				break;
			store_buf_addc(&b, '\n');
		} else {
			store_buf_add(&b, chunk, r);
			pos += r;
		}
		if (b.err)
			break;
		start = 0;
		while (n < max && total < maxbytes &&
		    (nlp = memchr(b.p + start, '\n', b.len - start)) != NULL) {
			*nlp = '\0';
			line = b.p + start;
			taken += nlp - line + (eof && nlp == b.p + b.len - 1 ?
			    0 : 1);
			start = nlp - b.p + 1;
			if (*line == '\0')
				continue;
			if (!is_event(line, nlp - line)) {
				log_warnx("job store: %s: skipping a line that "
				    "is not an event", sp->path);
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				if ((nl = reallocarray(lines, cap,
				    sizeof(*lines))) == NULL)
					goto fail;
				lines = nl;
			}
			if ((lines[n] = strdup(line)) == NULL)
				goto fail;
			total += nlp - line;
			n++;
		}
		memmove(b.p, b.p + start, b.len - start);
		b.len -= start;
	}
	store_buf_free(&b);
	if (taken > sp->end)
		taken = sp->end;
	if (n == 0 && r == -1) {
		free(lines);
		return -1;
	}
	*linesp = lines;
	*next = taken;
	return (ssize_t)n;
fail:
	while (n > 0)
		free(lines[--n]);
	free(lines);
	store_buf_free(&b);
	return -1;
}

int
spill_consumed(struct spill *sp, off_t off, int own)
{
	sp->off = off;
	if (sp->off < sp->end)
		return 0;
	if (!own) {
		unlink(sp->path);
		return 1;
	}
	if (ftruncate(sp->fd, 0) == -1) {
		log_warn("job store: ftruncate %s", sp->path);
		return 0;
	}
	sp->off = sp->end = 0;
	sp->dirty = 0;
	return 0;
}

void
spill_sync(struct spill *sp, int force)
{
	int64_t now;

	if (sp->fd < 0 || !sp->dirty)
		return;
	now = mono_ms();
	if (!force && now - sp->synced_ms < SPILL_SYNC_MS)
		return;
	if (fdatasync(sp->fd) == -1)
		log_warn("job store: fsync %s", sp->path);
	sp->dirty = 0;
	sp->synced_ms = now;
}

void
spill_close(struct spill *sp)
{
	if (sp->fd < 0)
		return;
	spill_sync(sp, 1);
	/* Nothing in it: leave no clutter (the lock is still ours). */
	if (sp->end == 0 || sp->off >= sp->end)
		unlink(sp->path);
	close(sp->fd);
	sp->fd = -1;
}
