// SPDX-License-Identifier: GPL-2.0
/*
 * wlog: a crash-consistency workload and its checker.
 *
 * "wlog run" writes random ranges of a device (or file) with content that
 * names its writer, flushes at random moments, and records a journal of what
 * was submitted, acknowledged and flushed.  "wlog check" reads a device or
 * image back and verifies it against the journal at a point in time: every
 * sector holds the data of the newest write acknowledged before the point's
 * flush started, or of a later write, or (if nobody wrote it before the
 * point) the initial content; never older data, never garbage.
 *
 * Every 512-byte unit written by write ID at sector S holds a 32-byte header
 * "WLOG", le32 format 1, le64 seed, le64 ID, le64 S, then 480 bytes of a
 * stream derived from (seed, ID, S), so any sector read back identifies its
 * writer.  Writes that overlap are never in flight at the same time, so for
 * each sector a higher write id is a later write.
 *
 * Journal: a text file, one event per line in the order they happened
 * (sectors are 512 bytes):
 *	wlog-journal 1
 *	device PATH / seed S / region FIRST SECTORS / block-size BYTES / mode M
 *	submit ID FIRST NR	write ID was issued
 *	ack ID			its pwrite() returned
 *	flush-start K		flush K (fdatasync/fsync) was called
 *	flush-done K		and returned
 *	mark K NAME		the mark command for flush K returned
 *	end WRITES FLUSHES	the run completed (after its final flush)
 *
 * Usage: see usage() or README.md.  Exit status: 0 success, 1 check found
 * damage or the run failed, 2 usage error or unreadable input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECTOR		512
#define HDR_SIZE	32
#define FORMAT		1
#define MAX_THREADS	64
#define MAX_NAME	128
#define CHUNK		(1u << 20)
#define NEVER		UINT64_MAX	/* sequence number of an event that never happened */

extern char **environ;

static const char *prog = "wlog";

static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------ content */

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

/* The 512 bytes write @id puts at @sector. */
static void fill_sector(unsigned char *p, uint64_t seed, uint64_t id,
			uint64_t sector)
{
	uint64_t x = mix64(seed ^ mix64(id ^ mix64(sector)));
	int i;

	memcpy(p, "WLOG", 4);
	put_le(p + 4, FORMAT, 4);
	put_le(p + 8, seed, 8);
	put_le(p + 16, id, 8);
	put_le(p + 24, sector, 8);
	for (i = HDR_SIZE; i < SECTOR; i += 8) {
		x = mix64(x);
		put_le(p + i, x, 8);
	}
}

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Size in bytes and logical block size of a block device or regular file. */
static int fd_geometry(int fd, uint64_t *size, unsigned int *block)
{
	struct stat st;
	int bs;

	if (fstat(fd, &st))
		return -errno;
	*block = SECTOR;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) || ioctl(fd, BLKSSZGET, &bs))
			return -errno;
		*block = (unsigned int)bs;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		*v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		*v <<= 20, end++;
	return *end ? -1 : 0;
}

/* ------------------------------------------------------------ run */

struct run {
	const char *device;
	uint64_t seed, writes, first, sectors;	/* region: 512-byte sectors */
	uint64_t min_sectors, max_sectors, flush_every;
	unsigned int threads, block;		/* block: device logical block size */
	bool direct, use_fsync;
	const char *mark_dev, *on_flush, *mark_prefix;
	int fd;
	FILE *journal;

	pthread_mutex_t lock;		/* protects everything below, and the journal */
	pthread_cond_t changed;		/* an in-flight write completed */
	pthread_mutex_t flush_lock;	/* one flush (and its mark) at a time */
	uint64_t issued, flushes;
	uint64_t busy_first[MAX_THREADS], busy_nr[MAX_THREADS];	/* in flight */
	bool failed;
};

static void journal(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Caller holds r->lock (or is the only thread). */
static void journal(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(r->journal, fmt, ap);
	va_end(ap);
	fputc('\n', r->journal);
}

static uint64_t rnd(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

/* A random range: sizes spread evenly over powers of two, half of them 4 KiB aligned. */
static void pick_range(const struct run *r, uint64_t *rs, uint64_t *first,
		       uint64_t *nr)
{
	uint64_t unit = r->block / SECTOR, span, n, off;
	unsigned int bits = 0;

	if (rnd(rs) & 1 && unit < 8 && !(r->first % 8) && r->sectors >= 8)
		unit = 8;
	while ((r->max_sectors >> bits) > 1)
		bits++;
	span = 1ull << (rnd(rs) % (bits + 1));
	n = r->min_sectors + rnd(rs) % span;
	if (n > r->max_sectors)
		n = r->max_sectors;
	n = (n + unit - 1) / unit * unit;
	if (n > r->sectors / unit * unit)
		n = r->sectors / unit * unit;
	off = rnd(rs) % ((r->sectors - n) / unit + 1) * unit;
	*first = r->first + off;
	*nr = n;
}

static bool overlaps_busy(const struct run *r, uint64_t first, uint64_t nr)
{
	unsigned int t;

	for (t = 0; t < r->threads; t++)
		if (r->busy_nr[t] && first < r->busy_first[t] + r->busy_nr[t] &&
		    r->busy_first[t] < first + nr)
			return true;
	return false;
}

static int spawn_wait(char *const argv[])
{
	int status;
	pid_t pid;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ)) {
		err("cannot run %s", argv[0]);
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		err("%s %s failed (status %d)", argv[0], argv[1], status);
		return -1;
	}
	return 0;
}

/* Flush the device, then run the mark commands; one flush at a time. */
static int do_flush(struct run *r)
{
	char name[MAX_NAME + 32];
	uint64_t k;
	int ret = 0;

	pthread_mutex_lock(&r->flush_lock);
	pthread_mutex_lock(&r->lock);
	k = ++r->flushes;
	journal(r, "flush-start %" PRIu64, k);
	pthread_mutex_unlock(&r->lock);

	if (r->use_fsync ? fsync(r->fd) : fdatasync(r->fd)) {
		err("%s: flush %" PRIu64 ": %s", r->device, k, strerror(errno));
		ret = -1;
		goto out;
	}
	pthread_mutex_lock(&r->lock);
	journal(r, "flush-done %" PRIu64, k);
	pthread_mutex_unlock(&r->lock);

	snprintf(name, sizeof(name), "%s%" PRIu64, r->mark_prefix, k);
	if (r->mark_dev) {
		char *argv[] = { "dmsetup", "message", (char *)r->mark_dev, "0",
				 "mark", name, NULL };

		ret = spawn_wait(argv);
	}
	if (!ret && r->on_flush) {
		char *argv[] = { "/bin/sh", "-c", (char *)r->on_flush, "wlog",
				 name, NULL };

		ret = spawn_wait(argv);
	}
	if (!ret && (r->mark_dev || r->on_flush)) {
		pthread_mutex_lock(&r->lock);
		journal(r, "mark %" PRIu64 " %s", k, name);
		pthread_mutex_unlock(&r->lock);
	}
out:
	pthread_mutex_lock(&r->lock);
	if (ret)
		r->failed = true;
	fflush(r->journal);
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_unlock(&r->flush_lock);
	return ret;
}

struct worker {
	struct run *r;
	unsigned int slot;
	uint64_t rs;		/* random state */
	unsigned char *buf;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	uint64_t id, first, nr, s;
	ssize_t done;
	int tries;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		if (r->failed || r->issued >= r->writes) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		for (tries = 0;; tries++) {
			pick_range(r, &w->rs, &first, &nr);
			if (!overlaps_busy(r, first, nr))
				break;
			if (tries > 16)
				pthread_cond_wait(&r->changed, &r->lock);
		}
		id = ++r->issued;
		r->busy_first[w->slot] = first;
		r->busy_nr[w->slot] = nr;
		journal(r, "submit %" PRIu64 " %" PRIu64 " %" PRIu64, id, first, nr);
		pthread_mutex_unlock(&r->lock);

		for (s = 0; s < nr; s++)
			fill_sector(w->buf + s * SECTOR, r->seed, id, first + s);
		done = pwrite(r->fd, w->buf, nr * SECTOR, (off_t)(first * SECTOR));
		if (done != (ssize_t)(nr * SECTOR)) {
			err("%s: write %" PRIu64 " (%" PRIu64 "+%" PRIu64
			    " sectors) failed: %s", r->device, id, first, nr,
			    done < 0 ? strerror(errno) : "short write");
			pthread_mutex_lock(&r->lock);
			r->failed = true;
			r->busy_nr[w->slot] = 0;
			pthread_cond_broadcast(&r->changed);
			pthread_mutex_unlock(&r->lock);
			break;
		}

		pthread_mutex_lock(&r->lock);
		journal(r, "ack %" PRIu64, id);
		r->busy_nr[w->slot] = 0;
		pthread_cond_broadcast(&r->changed);
		pthread_mutex_unlock(&r->lock);

		if (r->flush_every && rnd(&w->rs) % r->flush_every == 0 &&
		    do_flush(r))
			break;
	}
	return NULL;
}

static int cmd_run(struct run *r, const char *journal_path)
{
	struct worker w[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	uint64_t size;
	unsigned int t;
	int ret = 1, e;

	r->fd = open(r->device, O_RDWR | O_CLOEXEC | (r->direct ? O_DIRECT : 0));
	if (r->fd < 0) {
		err("cannot open %s: %s", r->device, strerror(errno));
		return 2;
	}
	e = fd_geometry(r->fd, &size, &r->block);
	if (e) {
		err("%s: not a block device or file (%s)", r->device, strerror(-e));
		return 2;
	}
	if (r->block < SECTOR || r->block % SECTOR || r->block > 65536) {
		err("%s: unsupported logical block size %u", r->device, r->block);
		return 2;
	}
	if (!r->sectors)
		r->sectors = size / SECTOR > r->first ? size / SECTOR - r->first : 0;
	r->sectors -= r->sectors % (r->block / SECTOR);
	if (r->first > size / SECTOR || r->sectors > size / SECTOR - r->first ||
	    r->first % (r->block / SECTOR) || r->sectors < r->block / SECTOR) {
		err("%s: region %" PRIu64 "+%" PRIu64 " sectors does not fit the %"
		    PRIu64 "-byte device or its %u-byte blocks", r->device,
		    r->first, r->sectors, size, r->block);
		return 2;
	}
	r->journal = fopen(journal_path, "w");
	if (!r->journal) {
		err("cannot create journal %s: %s", journal_path, strerror(errno));
		return 2;
	}
	journal(r, "wlog-journal %d", FORMAT);
	journal(r, "device %s", r->device);
	journal(r, "seed %" PRIu64, r->seed);
	journal(r, "region %" PRIu64 " %" PRIu64, r->first, r->sectors);
	journal(r, "block-size %u", r->block);
	journal(r, "mode %s threads %u", r->direct ? "direct" : "buffered",
		r->threads);

	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->flush_lock, NULL);
	pthread_cond_init(&r->changed, NULL);
	for (t = 0; t < r->threads; t++) {
		w[t].r = r;
		w[t].slot = t;
		w[t].rs = mix64(r->seed * MAX_THREADS + t);
		if (posix_memalign((void **)&w[t].buf, 4096, r->max_sectors * SECTOR)) {
			err("out of memory");
			return 2;
		}
	}
	for (t = 0; t < r->threads; t++) {
		e = pthread_create(&tid[t], NULL, worker, &w[t]);
		if (e) {
			err("pthread_create: %s", strerror(e));
			exit(2);
		}
	}
	for (t = 0; t < r->threads; t++) {
		pthread_join(tid[t], NULL);
		free(w[t].buf);
	}
	if (!r->failed && !do_flush(r)) {
		journal(r, "end %" PRIu64 " %" PRIu64, r->issued, r->flushes);
		ret = 0;
	}
	if (fclose(r->journal)) {
		err("%s: %s", journal_path, strerror(errno));
		ret = 1;
	}
	close(r->fd);
	return ret;
}

/* ------------------------------------------------------------ journal */

struct jwrite {
	uint64_t first, nr;		/* 512-byte sectors */
	uint64_t submit, ack;		/* event sequence numbers (line numbers) */
};

struct jflush {
	uint64_t start, done;
};

struct jmark {
	uint64_t flush, seq;
	char name[MAX_NAME];
};

struct jrnl {
	uint64_t seed, first, sectors;
	struct jwrite *w;		/* w[1..nw] */
	uint64_t nw;
	struct jflush *f;		/* f[1..nf] */
	uint64_t nf;
	struct jmark *m;
	uint64_t nm;
	bool complete;			/* has the "end" line */
};

/* Room for elements 0..n of an array that grows to 2n at every power of two. */
static void *grow(void *p, uint64_t n, size_t size, bool *oom)
{
	void *q;

	if (n & (n - 1))
		return p;
	q = realloc(p, (size_t)(n * 2) * size);
	if (!q)
		*oom = true;
	return q ? q : p;
}

static void journal_free(struct jrnl *j)
{
	free(j->w);
	free(j->f);
	free(j->m);
}

static int journal_read(const char *path, struct jrnl *j)
{
	uint64_t seq = 0, a, b, c;
	char *line = NULL, name[MAX_NAME];
	bool have_region = false, have_seed = false, oom = false;
	size_t cap = 0;
	int ret = -1;
	FILE *f;

	memset(j, 0, sizeof(*j));
	f = fopen(path, "r");
	if (!f) {
		err("cannot open journal %s: %s", path, strerror(errno));
		return -1;
	}
	j->w = grow(NULL, 1, sizeof(*j->w), &oom);
	j->f = grow(NULL, 1, sizeof(*j->f), &oom);
	j->m = grow(NULL, 1, sizeof(*j->m), &oom);
	while (!oom && getline(&line, &cap, f) > 0) {
		seq++;
		if (seq == 1) {
			if (strcmp(line, "wlog-journal 1\n")) {
				err("%s: not a wlog journal (format 1)", path);
				goto out;
			}
		} else if (sscanf(line, "submit %" SCNu64 " %" SCNu64 " %" SCNu64,
				  &a, &b, &c) == 3) {
			if (a != j->nw + 1 || !c || b < j->first ||
			    c > j->sectors || b - j->first > j->sectors - c)
				goto bad;
			j->w = grow(j->w, ++j->nw, sizeof(*j->w), &oom);
			if (oom)
				break;
			j->w[a] = (struct jwrite){ b, c, seq, NEVER };
		} else if (sscanf(line, "ack %" SCNu64, &a) == 1) {
			if (!a || a > j->nw || j->w[a].ack != NEVER)
				goto bad;
			j->w[a].ack = seq;
		} else if (sscanf(line, "flush-start %" SCNu64, &a) == 1) {
			if (a != j->nf + 1 || (j->nf && j->f[j->nf].done == NEVER))
				goto bad;
			j->f = grow(j->f, ++j->nf, sizeof(*j->f), &oom);
			if (oom)
				break;
			j->f[a] = (struct jflush){ seq, NEVER };
		} else if (sscanf(line, "flush-done %" SCNu64, &a) == 1) {
			if (!a || a != j->nf || j->f[a].done != NEVER)
				goto bad;
			j->f[a].done = seq;
		} else if (sscanf(line, "mark %" SCNu64 " %127s", &a, name) == 2) {
			if (!a || a > j->nf || j->f[a].done == NEVER)
				goto bad;
			j->m = grow(j->m, ++j->nm, sizeof(*j->m), &oom);
			if (oom)
				break;
			j->m[j->nm - 1].flush = a;
			j->m[j->nm - 1].seq = seq;
			strcpy(j->m[j->nm - 1].name, name);
		} else if (sscanf(line, "seed %" SCNu64, &a) == 1) {
			j->seed = a;
			have_seed = true;
		} else if (sscanf(line, "region %" SCNu64 " %" SCNu64, &a, &b) == 2) {
			if (have_region || b > UINT64_MAX / SECTOR - a)
				goto bad;
			j->first = a;
			j->sectors = b;
			have_region = true;
		} else if (!strncmp(line, "end ", 4)) {
			j->complete = true;
		} else if (strncmp(line, "device ", 7) && strncmp(line, "mode ", 5) &&
			   strncmp(line, "block-size ", 11)) {
			goto bad;
		}
	}
	if (oom) {
		err("out of memory");
		goto out;
	}
	if (!have_seed || !have_region) {
		err("%s: no seed or region line", path);
		goto out;
	}
	ret = 0;
	goto out;
bad:
	err("%s: line %" PRIu64 " is not valid here: %s", path, seq, line);
out:
	free(line);
	fclose(f);
	if (ret)
		journal_free(j);
	return ret;
}

/* ------------------------------------------------------------ check */

enum { AFTER, BEFORE };

struct bound {
	const char *desc;	/* for messages */
	uint64_t flush;		/* AFTER: the flush whose start counts, 0 = none */
	uint64_t seq;		/* AFTER: acks before it count; BEFORE: submits before it */
};

/* Turn a point name into a sequence number for an --after or --before bound. */
static int resolve_bound(const struct jrnl *j, const char *p, int kind,
			 struct bound *b)
{
	uint64_t k = 0, i;

	b->desc = p;
	if (!strcmp(p, "start")) {
		b->flush = 0;
		b->seq = 0;
		return 0;
	}
	if (!strcmp(p, "end")) {
		if (kind == BEFORE) {
			b->seq = NEVER;
			return 0;
		}
		if (!j->complete) {
			err("the journal has no \"end\" line (run incomplete): use flush:K or mark:NAME");
			return -1;
		}
		k = j->nf;
	} else if (!strncmp(p, "flush:", 6)) {
		if (parse_u64(p + 6, &k) || !k || k > j->nf) {
			err("%s: the journal has flushes 1..%" PRIu64, p, j->nf);
			return -1;
		}
	} else if (!strncmp(p, "mark:", 5)) {
		for (i = 0; i < j->nm && strcmp(j->m[i].name, p + 5); i++)
			;
		if (i == j->nm) {
			err("%s: no such mark in the journal", p);
			return -1;
		}
		b->flush = j->m[i].flush;
		b->seq = kind == AFTER ? j->f[b->flush].start : j->m[i].seq;
		return 0;
	} else {
		err("bad point \"%s\": use start, end, flush:K or mark:NAME", p);
		return -1;
	}
	b->flush = k;
	b->seq = kind == AFTER ? j->f[k].start : j->f[k].done;
	if (b->seq == NEVER) {
		err("%s did not complete in the journal", p);
		return -1;
	}
	return 0;
}

struct checker {
	const struct jrnl *j;
	struct bound after, before;
	uint32_t *req;		/* per region sector: newest required write id, 0 none */
	uint64_t errors;		/* bad sectors */
	uint64_t ranges, max_errors;	/* reported lines, and their limit */
	uint64_t pending_first, pending_count;	/* bad sectors not printed yet */
	char pending_msg[512];
	uint64_t n_required;	/* sectors holding the newest required write */
	uint64_t n_newer;	/* a write newer than the required one */
	uint64_t n_early;	/* a write where none was required yet */
	uint64_t n_initial;	/* the initial content, none required */
};

static void report(struct checker *c, uint64_t sector, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print the pending range of bad sectors, if any. */
static void report_flush(struct checker *c)
{
	if (!c->pending_count)
		return;
	if (c->ranges++ < c->max_errors) {
		if (c->pending_count == 1)
			printf("sector %" PRIu64, c->pending_first);
		else
			printf("sectors %" PRIu64 "-%" PRIu64, c->pending_first,
			       c->pending_first + c->pending_count - 1);
		printf(" (byte %" PRIu64 "): %s\n", c->pending_first * SECTOR,
		       c->pending_msg);
	}
	c->pending_count = 0;
}

/* A bad sector; consecutive sectors with the same message become one line. */
static void report(struct checker *c, uint64_t sector, const char *fmt, ...)
{
	char msg[sizeof(c->pending_msg)];
	va_list ap;

	c->errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->pending_count && sector == c->pending_first + c->pending_count &&
	    !strcmp(msg, c->pending_msg)) {
		c->pending_count++;
		return;
	}
	report_flush(c);
	strcpy(c->pending_msg, msg);
	c->pending_first = sector;
	c->pending_count = 1;
}

static void describe_write(const struct jrnl *j, uint64_t id, char *buf, size_t len)
{
	const struct jwrite *w = &j->w[id];

	snprintf(buf, len, "write %" PRIu64 " (sectors %" PRIu64 "+%" PRIu64 ", %s)",
		 id, w->first, w->nr, w->ack == NEVER ? "never acknowledged" :
		 "acknowledged");
}

/* Which write of this journal wrote this sector at @sector?  0 if none. */
static uint64_t identify(const struct jrnl *j, const unsigned char *p,
			 uint64_t sector, unsigned char *tmp)
{
	uint64_t id;

	if (memcmp(p, "WLOG", 4) || get_le(p + 4, 4) != FORMAT ||
	    get_le(p + 8, 8) != j->seed || get_le(p + 24, 8) != sector)
		return 0;
	id = get_le(p + 16, 8);
	if (!id || id > j->nw || sector < j->w[id].first ||
	    sector - j->w[id].first >= j->w[id].nr)
		return 0;
	fill_sector(tmp, j->seed, id, sector);
	return memcmp(p, tmp, SECTOR) ? 0 : id;
}

/* The first 16 bytes in hex: 47 characters and a NUL. */
static void hexdump16(char out[48], const unsigned char *p)
{
	int i;

	for (i = 0; i < 16; i++)
		snprintf(out + 3 * i, 48 - 3 * i, i < 15 ? "%02x " : "%02x", p[i]);
}

static void check_sector(struct checker *c, uint64_t sector,
			 const unsigned char *p, const unsigned char *initial,
			 unsigned char *tmp)
{
	const struct jrnl *j = c->j;
	uint64_t req = c->req[sector - j->first], id;
	char a[128], b[128], hex[48];

	id = identify(j, p, sector, tmp);
	if (!id && !memcmp(p, initial, SECTOR)) {
		if (!req) {
			c->n_initial++;
			return;
		}
		describe_write(j, req, b, sizeof(b));
		report(c, sector, "lost: holds the initial content, but %s was "
		       "acknowledged before flush %" PRIu64 " started",
		       b, c->after.flush);
		return;
	}
	if (!id) {
		uint64_t claim = get_le(p + 16, 8), for_sector = get_le(p + 24, 8);

		hexdump16(hex, p);
		if (memcmp(p, "WLOG", 4) || get_le(p + 4, 4) != FORMAT)
			report(c, sector, "garbage: neither the initial content nor "
			       "data of any write (starts %s)", hex);
		else if (get_le(p + 8, 8) != j->seed)
			report(c, sector, "garbage: data of another wlog run (seed %"
			       PRIu64 ")", get_le(p + 8, 8));
		else if (for_sector != sector)
			report(c, sector, "misplaced: holds what write %" PRIu64
			       " wrote for sector %" PRIu64, claim, for_sector);
		else if (!claim || claim > j->nw || sector < j->w[claim].first ||
			 sector - j->w[claim].first >= j->w[claim].nr)
			report(c, sector, "garbage: claims to be data of write %" PRIu64
			       ", which did not write here per the journal", claim);
		else
			report(c, sector, "damaged: a corrupted copy of write %" PRIu64
			       "'s data", claim);
		return;
	}
	describe_write(j, id, a, sizeof(a));
	if (j->w[id].submit >= c->before.seq) {
		report(c, sector, "too new: holds %s, issued only after %s",
		       a, c->before.desc);
		return;
	}
	if (id < req) {
		describe_write(j, req, b, sizeof(b));
		report(c, sector, "stale: holds %s, but the later %s was "
		       "acknowledged before flush %" PRIu64 " started",
		       a, b, c->after.flush);
		return;
	}
	if (id == req)
		c->n_required++;
	else if (req)
		c->n_newer++;
	else
		c->n_early++;
}

static int open_input(const char *path, uint64_t *size, bool direct_ok)
{
	unsigned int block;
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	e = fd_geometry(fd, size, &block);
	if (e) {
		err("%s: not a block device or file (%s)", path, strerror(-e));
		close(fd);
		return -1;
	}
	/* Block devices: read what is on the disk, not the page cache. */
	if (direct_ok && !fstat(fd, &st) && S_ISBLK(st.st_mode)) {
		int dfd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);

		if (dfd >= 0) {
			close(fd);
			fd = dfd;
		}
	}
	return fd;
}

static int cmd_check(const char *jpath, const char *dev, const char *after,
		     const char *before, const char *initial_path,
		     uint64_t max_errors)
{
	struct checker c = { .max_errors = max_errors };
	unsigned char *buf = NULL, *ibuf = NULL, tmp[SECTOR];
	uint64_t dsize, isize = 0, id, s, done;
	int fd = -1, ifd = -1, ret = 2, e;
	struct jrnl j;

	if (journal_read(jpath, &j))
		return 2;
	c.j = &j;
	if (resolve_bound(&j, after, AFTER, &c.after) ||
	    resolve_bound(&j, before, BEFORE, &c.before))
		goto out;
	if (j.sectors > SIZE_MAX / sizeof(*c.req) || j.nw >= UINT32_MAX) {
		err("region or journal too large");
		goto out;
	}
	c.req = calloc(j.sectors ? j.sectors : 1, sizeof(*c.req));
	if (posix_memalign((void **)&buf, 4096, CHUNK) ||
	    posix_memalign((void **)&ibuf, 4096, CHUNK) || !c.req) {
		err("out of memory");
		goto out;
	}
	/* Ids grow with time for every sector, so the last one wins. */
	for (id = 1; id <= j.nw; id++)
		if (j.w[id].ack < c.after.seq)
			for (s = 0; s < j.w[id].nr; s++)
				c.req[j.w[id].first - j.first + s] = (uint32_t)id;

	fd = open_input(dev, &dsize, true);
	if (fd < 0)
		goto out;
	if (dsize / SECTOR < j.first + j.sectors) {
		err("%s has %" PRIu64 " bytes, the journal's region ends at byte %"
		    PRIu64, dev, dsize, (j.first + j.sectors) * SECTOR);
		goto out;
	}
	if (initial_path) {
		ifd = open_input(initial_path, &isize, false);
		if (ifd < 0)
			goto out;
	}
	memset(ibuf, 0, CHUNK);
	for (done = 0; done < j.sectors; done += CHUNK / SECTOR) {
		uint64_t n = j.sectors - done < CHUNK / SECTOR ?
			     j.sectors - done : CHUNK / SECTOR;
		uint64_t off = (j.first + done) * SECTOR, ilen = 0;

		e = read_full(fd, buf, n * SECTOR, off);
		if (e) {
			err("%s: read at byte %" PRIu64 ": %s", dev, off, strerror(-e));
			goto out;
		}
		if (ifd >= 0) {
			memset(ibuf, 0, CHUNK);
			if (off < isize)
				ilen = isize - off < n * SECTOR ? isize - off : n * SECTOR;
			e = read_full(ifd, ibuf, ilen, off);
			if (e) {
				err("%s: read at byte %" PRIu64 ": %s", initial_path,
				    off, strerror(-e));
				goto out;
			}
		}
		for (s = 0; s < n; s++)
			check_sector(&c, j.first + done + s, buf + s * SECTOR,
				     ibuf + s * SECTOR, tmp);
	}
	report_flush(&c);
	if (c.ranges > c.max_errors)
		printf("... and %" PRIu64 " more bad ranges\n", c.ranges - c.max_errors);
	printf("%s: %s after %s, before %s: %" PRIu64 " sectors checked: %"
	       PRIu64 " required data, %" PRIu64 " newer data, %" PRIu64
	       " data not yet required, %" PRIu64 " initial content, %" PRIu64
	       " bad\n", c.errors ? "FAIL" : "ok", dev, after, before, j.sectors,
	       c.n_required, c.n_newer, c.n_early, c.n_initial, c.errors);
	ret = c.errors ? 1 : 0;
out:
	if (fd >= 0)
		close(fd);
	if (ifd >= 0)
		close(ifd);
	free(buf);
	free(ibuf);
	free(c.req);
	journal_free(&j);
	return ret;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s run DEVICE --journal FILE [options]\n"
		"  --seed S           content and choice seed (default 1)\n"
		"  --writes N         number of writes (default 1000)\n"
		"  --threads T        concurrent writers, 1..%d (default 1)\n"
		"  --direct           O_DIRECT writes (default: buffered)\n"
		"  --first SECTOR     region start, 512-byte sectors (default 0)\n"
		"  --sectors N        region size (default: to the end of DEVICE)\n"
		"  --min-size BYTES   smallest write (default 512)\n"
		"  --max-size BYTES   largest write (default 256k)\n"
		"  --flush-every N    flush after 1 in N writes on average; 0: only\n"
		"                     the final flush (default 16)\n"
		"  --fsync            flush with fsync (default fdatasync)\n"
		"  --mark DMDEV       after each flush K: dmsetup message DMDEV 0 mark PREFIXK\n"
		"  --on-flush CMD     after each flush K: sh -c CMD wlog PREFIXK\n"
		"  --mark-prefix P    mark name prefix (default wlog-flush-)\n"
		"       %s check JOURNAL DEVICE [--at P | --after P [--before P]]\n"
		"                [--initial FILE] [--max-errors N]\n"
		"  P: start, end, flush:K or mark:NAME.  --after P: the image was taken\n"
		"  after P (writes acknowledged before P's flush started must be there);\n"
		"  --before P: taken before P (no write issued after P may be there).\n"
		"  --at P is both.  Default: --at end.  Unwritten sectors must equal\n"
		"  --initial FILE (zeros past its end), default zeros.\n"
		"Exit status: 0 ok, 1 damage found or run failed, 2 usage or input error.\n",
		prog, MAX_THREADS, prog);
}

static int need_arg(int argc, char **argv, int i)
{
	if (i + 1 >= argc) {
		err("%s needs a value", argv[i]);
		return -1;
	}
	return 0;
}

static int main_run(int argc, char **argv)
{
	struct run r = { .seed = 1, .writes = 1000, .threads = 1,
			 .flush_every = 16, .mark_prefix = "wlog-flush-" };
	uint64_t min = 512, max = 256 << 10, v = 0;
	const char *journal_path = NULL;
	int i;

	if (argc < 3 || argv[2][0] == '-') {
		usage(stderr);
		return 2;
	}
	r.device = argv[2];
	for (i = 3; i < argc; i++) {
		const char *o = argv[i];
		bool num = strcmp(o, "--direct") && strcmp(o, "--fsync") &&
			   strcmp(o, "--journal") && strcmp(o, "--mark") &&
			   strcmp(o, "--on-flush") && strcmp(o, "--mark-prefix");

		if (!strcmp(o, "--direct")) {
			r.direct = true;
			continue;
		}
		if (!strcmp(o, "--fsync")) {
			r.use_fsync = true;
			continue;
		}
		if (need_arg(argc, argv, i))
			return 2;
		i++;
		if (num && parse_u64(argv[i], &v)) {
			err("%s: \"%s\" is not a number", o, argv[i]);
			return 2;
		}
		if (!strcmp(o, "--journal"))
			journal_path = argv[i];
		else if (!strcmp(o, "--mark"))
			r.mark_dev = argv[i];
		else if (!strcmp(o, "--on-flush"))
			r.on_flush = argv[i];
		else if (!strcmp(o, "--mark-prefix") && strlen(argv[i]) < MAX_NAME - 20 &&
			 !strpbrk(argv[i], " \t\n"))
			r.mark_prefix = argv[i];
		else if (!strcmp(o, "--seed"))
			r.seed = v;
		else if (!strcmp(o, "--writes"))
			r.writes = v;
		else if (!strcmp(o, "--threads") && v >= 1 && v <= MAX_THREADS)
			r.threads = (unsigned int)v;
		else if (!strcmp(o, "--first"))
			r.first = v;
		else if (!strcmp(o, "--sectors"))
			r.sectors = v;
		else if (!strcmp(o, "--min-size"))
			min = v;
		else if (!strcmp(o, "--max-size"))
			max = v;
		else if (!strcmp(o, "--flush-every"))
			r.flush_every = v;
		else {
			err("unknown option or bad value: %s %s", o, argv[i]);
			return 2;
		}
	}
	if (!journal_path) {
		err("run needs --journal FILE");
		return 2;
	}
	if (min < SECTOR || min % SECTOR || max % SECTOR || max < min ||
	    max > (64u << 20)) {
		err("--min-size/--max-size: multiples of 512, min <= max <= 64M");
		return 2;
	}
	r.min_sectors = min / SECTOR;
	r.max_sectors = max / SECTOR;
	return cmd_run(&r, journal_path);
}

static int main_check(int argc, char **argv)
{
	const char *after = NULL, *before = NULL, *at = NULL, *initial = NULL;
	uint64_t max_errors = 10;
	int i;

	if (argc < 4 || argv[2][0] == '-' || argv[3][0] == '-') {
		usage(stderr);
		return 2;
	}
	for (i = 4; i < argc; i++) {
		const char *o = argv[i];

		if (need_arg(argc, argv, i))
			return 2;
		i++;
		if (!strcmp(o, "--at"))
			at = argv[i];
		else if (!strcmp(o, "--after"))
			after = argv[i];
		else if (!strcmp(o, "--before"))
			before = argv[i];
		else if (!strcmp(o, "--initial"))
			initial = argv[i];
		else if (strcmp(o, "--max-errors") || parse_u64(argv[i], &max_errors)) {
			err("unknown option or bad value: %s %s", o, argv[i]);
			return 2;
		}
	}
	if (at && (after || before)) {
		err("--at cannot be combined with --after/--before");
		return 2;
	}
	if (at)
		after = before = at;
	if (!after)
		after = "end";
	if (!before)
		before = "end";
	return cmd_check(argv[2], argv[3], after, before, initial, max_errors);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return main_run(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return main_check(argc, argv);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
