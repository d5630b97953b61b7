// SPDX-License-Identifier: GPL-2.0
/*
 * replay-log: list and replay a dm-log-writes log.
 *
 * Log format (drivers/md/dm-log-writes.c): all integers little-endian, in
 * units of the log's sector size S (the logical block size of the logged
 * device, stored in the superblock).  Sector 0 holds the superblock
 * {u64 magic, u64 version, u64 nr_entries, u32 sectorsize}.  Each entry is
 * one S-byte header {u64 sector, u64 nr_sectors, u64 flags, u64 data_len}
 * followed, unless it is a discard, by nr_sectors * S bytes of data.  A
 * mark's name is the data_len bytes right after the 32-byte header, inside
 * the header sector.  The superblock's nr_entries is rewritten after every
 * FUA and mark entry (and at target removal, which logs the mark
 * "dm-log-writes-end"), so it counts the entries this tool trusts.
 *
 * Usage: see usage() or README.md.  Exit status: 0 success, 1 bad log, bad
 * target or I/O error, 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#define LOG_MAGIC	0x6a736677736872ULL
#define LOG_VERSION	1
#define LOG_FLUSH	(1u << 0)
#define LOG_FUA		(1u << 1)
#define LOG_DISCARD	(1u << 2)
#define LOG_MARK	(1u << 3)
#define LOG_METADATA	(1u << 4)
#define ENTRY_HDR_SIZE	32		/* bytes of struct log_write_entry */
#define MAX_SECTOR_SIZE	65536
#define COPY_CHUNK	(1u << 20)

struct log {
	const char *path;
	int fd;
	uint64_t size;		/* bytes */
	uint32_t sector_size;	/* bytes per log sector */
	uint64_t nr_entries;
	uint64_t next_index;	/* index of the entry at next_pos */
	uint64_t next_pos;	/* byte offset of its header */
	unsigned char *hdr;	/* one sector */
};

struct entry {
	uint64_t index;
	uint64_t pos;		/* bytes: header offset in the log */
	uint64_t sector;	/* log sectors on the logged device */
	uint64_t nr_sectors;	/* log sectors */
	uint64_t flags;
	uint64_t data_pos;	/* bytes: data offset in the log */
	const char *mark;	/* NUL-terminated, inside log->hdr */
};

/* Where a replay stops: entries [from, stop) are replayed. */
enum point_kind { POINT_INDEX, POINT_MARK, POINT_FLUSH, POINT_END };

struct point {
	enum point_kind kind;
	uint64_t n;		/* POINT_INDEX: the index, POINT_FLUSH: k */
	const char *mark;
};

static const char *prog = "replay-log";

static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
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

static int write_full(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Size in bytes of a regular file or block device. */
static int fd_size(int fd, uint64_t *size, bool *is_blockdev)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	*is_blockdev = S_ISBLK(st.st_mode);
	if (*is_blockdev)
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int log_open(struct log *l, const char *path)
{
	unsigned char sb[512];
	uint64_t magic, version;
	bool blk;
	int r;

	memset(l, 0, sizeof(*l));
	l->path = path;
	l->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0) {
		err("cannot open log %s: %s", path, strerror(errno));
		return -1;
	}
	r = fd_size(l->fd, &l->size, &blk);
	if (r) {
		err("%s: not a file or block device (%s)", path, strerror(-r));
		return -1;
	}
	if (l->size < sizeof(sb) || read_full(l->fd, sb, sizeof(sb), 0)) {
		err("%s: cannot read the superblock (log is %" PRIu64 " bytes)",
		    path, l->size);
		return -1;
	}
	magic = get_le64(sb);
	version = get_le64(sb + 8);
	l->nr_entries = get_le64(sb + 16);
	l->sector_size = (uint32_t)sb[24] | (uint32_t)sb[25] << 8 |
			 (uint32_t)sb[26] << 16 | (uint32_t)sb[27] << 24;
	if (magic != LOG_MAGIC) {
		err("%s: not a dm-log-writes log (magic %#" PRIx64 ", expected %#llx); "
		    "was the log device zeroed before the target was created?",
		    path, magic, LOG_MAGIC);
		return -1;
	}
	if (version != LOG_VERSION) {
		err("%s: unsupported log version %" PRIu64, path, version);
		return -1;
	}
	if (l->sector_size < 512 || l->sector_size > MAX_SECTOR_SIZE ||
	    (l->sector_size & (l->sector_size - 1))) {
		err("%s: bad sector size %u in the superblock", path, l->sector_size);
		return -1;
	}
	if (l->size < l->sector_size ||
	    l->nr_entries > (l->size - l->sector_size) / l->sector_size) {
		err("%s: superblock claims %" PRIu64 " entries but the log has only %"
		    PRIu64 " bytes: truncated or corrupt", path, l->nr_entries, l->size);
		return -1;
	}
	l->hdr = malloc(l->sector_size + 1);
	if (!l->hdr) {
		err("out of memory");
		return -1;
	}
	l->next_pos = l->sector_size;
	return 0;
}

static void log_close(struct log *l)
{
	free(l->hdr);
	if (l->fd >= 0)
		close(l->fd);
}

/*
 * Read the next entry header.  Returns 1 with *e filled, 0 after the last
 * entry, -1 (error printed) on a truncated or corrupt log.  e->mark stays
 * valid until the next call.
 */
static int log_next(struct log *l, struct entry *e)
{
	uint64_t data_len, data_bytes, left;
	unsigned char *h = l->hdr;

	if (l->next_index >= l->nr_entries)
		return 0;
	e->index = l->next_index;
	e->pos = l->next_pos;
	if (l->size - e->pos < l->sector_size ||
	    read_full(l->fd, h, l->sector_size, e->pos)) {
		err("%s: truncated: entry %" PRIu64 " (header at byte %" PRIu64
		    ") is beyond the end of the log (%" PRIu64 " bytes)",
		    l->path, e->index, e->pos, l->size);
		return -1;
	}
	e->sector = get_le64(h);
	e->nr_sectors = get_le64(h + 8);
	e->flags = get_le64(h + 16);
	data_len = get_le64(h + 24);
	e->data_pos = e->pos + l->sector_size;
	e->mark = NULL;

	if (e->flags & LOG_MARK) {
		if (data_len > l->sector_size - ENTRY_HDR_SIZE) {
			err("%s: corrupt: entry %" PRIu64 " (byte %" PRIu64
			    ") is a mark of %" PRIu64 " bytes", l->path,
			    e->index, e->pos, data_len);
			return -1;
		}
		h[ENTRY_HDR_SIZE + data_len] = '\0';
		e->mark = (const char *)h + ENTRY_HDR_SIZE;
	}
	/* As the kernel: a discard has no data, anything else nr_sectors. */
	left = (l->size - e->data_pos) / l->sector_size;
	if (!(e->flags & LOG_DISCARD) && e->nr_sectors > left) {
		err("%s: truncated: entry %" PRIu64 " (byte %" PRIu64 ") has %"
		    PRIu64 " sectors of data, the log ends after %" PRIu64,
		    l->path, e->index, e->pos, e->nr_sectors, left);
		return -1;
	}
	if (e->nr_sectors > UINT64_MAX / MAX_SECTOR_SIZE ||
	    e->sector > UINT64_MAX / MAX_SECTOR_SIZE - e->nr_sectors) {
		err("%s: corrupt: entry %" PRIu64 " (byte %" PRIu64
		    ") has sector %" PRIu64 " + %" PRIu64, l->path, e->index,
		    e->pos, e->sector, e->nr_sectors);
		return -1;
	}
	data_bytes = (e->flags & LOG_DISCARD) ? 0 : e->nr_sectors * l->sector_size;
	l->next_pos = e->data_pos + data_bytes;
	l->next_index++;
	return 1;
}

/* Position the log before entry @index (headers are walked from 0). */
static int log_seek(struct log *l, uint64_t index)
{
	struct entry e;

	if (index > l->nr_entries) {
		err("%s: entry %" PRIu64 " does not exist (the log has %" PRIu64
		    " entries)", l->path, index, l->nr_entries);
		return -1;
	}
	if (index < l->next_index) {
		l->next_index = 0;
		l->next_pos = l->sector_size;
	}
	while (l->next_index < index)
		if (log_next(l, &e) != 1)
			return -1;
	return 0;
}

static void print_flags(FILE *f, uint64_t flags)
{
	static const char *const names[] = {
		"FLUSH", "FUA", "DISCARD", "MARK", "METADATA" };
	const char *sep = "";
	unsigned int i;

	if (!flags) {
		fputc('-', f);
		return;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (flags & (1u << i)) {
			fprintf(f, "%s%s", sep, names[i]);
			sep = "|";
		}
	}
	if (flags >> i)
		fprintf(f, "%s%#" PRIx64, sep, flags >> i << i);
}

/* A mark name, with bytes outside printable ASCII and '\' as \xNN. */
static void print_mark(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c > ' ' && c < 0x7f && c != '\\')
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
}

static int cmd_list(struct log *l, char what)
{
	struct entry e;
	int r;

	if (what == 'l')
		printf("# index sector nr_sectors flags [mark]  (sectors of %u bytes)\n",
		       l->sector_size);
	while ((r = log_next(l, &e)) == 1) {
		if (what == 'f' && (e.flags & LOG_FLUSH)) {
			printf("%" PRIu64 "\n", e.index);
		} else if (what == 'm' && e.mark) {
			printf("%" PRIu64 " ", e.index);
			print_mark(stdout, e.mark);
			putchar('\n');
		} else if (what == 'l') {
			printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " ", e.index,
			       e.sector, e.nr_sectors);
			print_flags(stdout, e.flags);
			if (e.mark) {
				putchar(' ');
				print_mark(stdout, e.mark);
			}
			putchar('\n');
		}
	}
	return r ? 1 : 0;
}

static int cmd_info(struct log *l)
{
	uint64_t writes = 0, write_sectors = 0, flushes = 0, fua = 0;
	uint64_t discards = 0, marks = 0, meta = 0;
	struct entry e;
	int r;

	while ((r = log_next(l, &e)) == 1) {
		if (e.flags & LOG_FLUSH)
			flushes++;
		if (e.flags & LOG_FUA)
			fua++;
		if (e.flags & LOG_METADATA)
			meta++;
		if (e.flags & LOG_MARK)
			marks++;
		else if (e.flags & LOG_DISCARD)
			discards++;
		else if (e.nr_sectors) {
			writes++;
			write_sectors += e.nr_sectors;
		}
	}
	printf("log: %s\nsector size: %u\nentries: %" PRIu64 "\n"
	       "bytes used: %" PRIu64 " of %" PRIu64 "\n"
	       "writes: %" PRIu64 " (%" PRIu64 " sectors)\nflushes: %" PRIu64
	       "\nfua: %" PRIu64 "\ndiscards: %" PRIu64 "\nmarks: %" PRIu64
	       "\nmetadata: %" PRIu64 "\n", l->path, l->sector_size,
	       l->nr_entries, l->next_pos, l->size, writes, write_sectors,
	       flushes, fua, discards, marks, meta);
	return r ? 1 : 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int parse_point(const char *s, struct point *p)
{
	memset(p, 0, sizeof(*p));
	if (!strcmp(s, "end")) {
		p->kind = POINT_END;
	} else if (!strncmp(s, "mark:", 5) && s[5]) {
		p->kind = POINT_MARK;
		p->mark = s + 5;
	} else if (!strncmp(s, "flush:", 6)) {
		p->kind = POINT_FLUSH;
		if (parse_u64(s + 6, &p->n) || !p->n)
			return -1;
	} else {
		p->kind = POINT_INDEX;
		if (parse_u64(s, &p->n))
			return -1;
	}
	return 0;
}

/* The first entry index not to replay for point @p, searching from @from. */
static int resolve_point(struct log *l, const struct point *p, uint64_t from,
			 uint64_t *stop)
{
	uint64_t flushes = 0;
	struct entry e;
	int r;

	switch (p->kind) {
	case POINT_END:
		*stop = l->nr_entries;
		return 0;
	case POINT_INDEX:
		if (p->n > l->nr_entries) {
			err("%s: entry %" PRIu64 " does not exist (the log has %"
			    PRIu64 " entries)", l->path, p->n, l->nr_entries);
			return -1;
		}
		*stop = p->n;
		return 0;
	case POINT_MARK:
	case POINT_FLUSH:
		break;
	}
	if (p->kind == POINT_FLUSH && log_seek(l, 0))
		return -1;
	while ((r = log_next(l, &e)) == 1) {
		if (p->kind == POINT_MARK ? e.mark && !strcmp(e.mark, p->mark) :
		    (e.flags & LOG_FLUSH) && ++flushes == p->n) {
			*stop = e.index + 1;
			return 0;
		}
	}
	if (!r) {
		if (p->kind == POINT_MARK)
			err("%s: no mark \"%s\" at or after entry %" PRIu64,
			    l->path, p->mark, from);
		else
			err("%s: the log has only %" PRIu64 " flushes, not %" PRIu64,
			    l->path, flushes, p->n);
	}
	return -1;
}

static int zero_range(int fd, bool is_blockdev, unsigned char *buf,
		      uint64_t off, uint64_t len)
{
	if (!is_blockdev &&
	    !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)len))
		return 0;
	memset(buf, 0, COPY_CHUNK);
	while (len) {
		size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		int r = write_full(fd, buf, n, off);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Replay from the log's current entry up to, not including, entry @stop. */
static int replay(struct log *l, const char *target, uint64_t stop,
		  bool verbose)
{
	uint64_t from = l->next_index;
	uint64_t tsize, writes = 0, discards = 0, bytes = 0;
	unsigned char *buf = NULL;
	bool is_blockdev;
	struct entry e;
	int fd, r, ret = 1;

	fd = open(target, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err("cannot open target %s: %s", target, strerror(errno));
		return 1;
	}
	r = fd_size(fd, &tsize, &is_blockdev);
	if (r) {
		err("%s: not a file or block device (%s)", target, strerror(-r));
		goto out;
	}
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		err("out of memory");
		goto out;
	}
	while (l->next_index < stop) {
		uint64_t off, len, done;

		if (log_next(l, &e) != 1)
			goto out;
		if ((e.flags & LOG_MARK) || !e.nr_sectors)
			continue;
		off = e.sector * l->sector_size;
		len = e.nr_sectors * l->sector_size;
		if (off > tsize || len > tsize - off) {
			err("entry %" PRIu64 " writes bytes %" PRIu64 "..%" PRIu64
			    " but %s has only %" PRIu64 " bytes", e.index, off,
			    off + len - 1, target, tsize);
			goto out;
		}
		if (e.flags & LOG_DISCARD) {
			r = zero_range(fd, is_blockdev, buf, off, len);
			discards++;
		} else {
			for (done = 0, r = 0; !r && done < len; done += COPY_CHUNK) {
				size_t n = len - done < COPY_CHUNK ?
					   (size_t)(len - done) : COPY_CHUNK;

				r = read_full(l->fd, buf, n, e.data_pos + done);
				if (r) {
					err("%s: cannot read entry %" PRIu64 ": %s",
					    l->path, e.index, strerror(-r));
					goto out;
				}
				r = write_full(fd, buf, n, off + done);
			}
			writes++;
		}
		if (r) {
			err("%s: cannot replay entry %" PRIu64 " at byte %" PRIu64
			    ": %s", target, e.index, off, strerror(-r));
			goto out;
		}
		bytes += len;
	}
	if (fdatasync(fd)) {
		err("%s: fdatasync: %s", target, strerror(errno));
		goto out;
	}
	if (verbose)
		fprintf(stderr, "%s: replayed entries %" PRIu64 "..%" PRIu64
			" onto %s: %" PRIu64 " writes, %" PRIu64
			" discards, %" PRIu64 " bytes\n", prog, from, stop,
			target, writes, discards, bytes);
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

static int cmd_replay(struct log *l, const char *target, uint64_t from,
		      const char *to, const struct point *point, bool verbose)
{
	uint64_t from_pos, stop;

	if (log_seek(l, from))
		return 1;
	from_pos = l->next_pos;
	if (resolve_point(l, point, from, &stop))
		return 1;
	if (stop < from) {
		err("--to %s is entry %" PRIu64 ", before --from %" PRIu64,
		    to, stop, from);
		return 1;
	}
	/* Back to entry @from without walking the headers again. */
	l->next_index = from;
	l->next_pos = from_pos;
	return replay(l, target, stop, verbose);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s info LOG             superblock and entry counts\n"
		"       %s list LOG             one line per entry: index sector nr_sectors flags [mark]\n"
		"       %s flushes LOG          indices of the FLUSH entries\n"
		"       %s marks LOG            index and name of every mark\n"
		"       %s replay LOG TARGET --to POINT [--from M] [-v]\n"
		"            replay entries M (default 0) up to, not including, POINT's\n"
		"            stop onto TARGET (an existing file or block device)\n"
		"POINT:  N           entries M..N-1\n"
		"        mark:NAME   up to and including the first mark NAME at or after M\n"
		"        flush:K     up to and including the K-th FLUSH entry of the log (K >= 1)\n"
		"        end         every entry\n"
		"Sectors are in units of the log's sector size (see info).  Discards are\n"
		"replayed as zeroes (a hole in a regular file).  Exit status: 0 ok,\n"
		"1 bad log, target or I/O error, 2 usage error.\n",
		prog, prog, prog, prog, prog);
}

int main(int argc, char **argv)
{
	const char *cmd, *target = NULL, *to = NULL;
	uint64_t from = 0;
	bool verbose = false;
	struct point point;
	struct log l;
	int i, ret;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "replay")) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		target = argv[3];
		for (i = 4; i < argc; i++) {
			if (!strcmp(argv[i], "-v")) {
				verbose = true;
			} else if (!strcmp(argv[i], "--to") && i + 1 < argc) {
				to = argv[++i];
			} else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
				if (parse_u64(argv[++i], &from)) {
					err("bad --from \"%s\": need an entry index", argv[i]);
					return 2;
				}
			} else {
				err("unknown or incomplete option \"%s\"", argv[i]);
				return 2;
			}
		}
		if (!to || parse_point(to, &point)) {
			err("replay needs --to N, mark:NAME, flush:K (K >= 1) or end");
			return 2;
		}
	} else if (argc != 3 || (strcmp(cmd, "info") && strcmp(cmd, "list") &&
				 strcmp(cmd, "flushes") && strcmp(cmd, "marks"))) {
		usage(stderr);
		return 2;
	}

	if (log_open(&l, argv[2])) {
		log_close(&l);
		return 1;
	}
	if (!strcmp(cmd, "info")) {
		ret = cmd_info(&l);
	} else if (!strcmp(cmd, "list")) {
		ret = cmd_list(&l, 'l');
	} else if (!strcmp(cmd, "flushes")) {
		ret = cmd_list(&l, 'f');
	} else if (!strcmp(cmd, "marks")) {
		ret = cmd_list(&l, 'm');
	} else {
		ret = cmd_replay(&l, target, from, to, &point, verbose);
	}
	if (fflush(stdout) || ferror(stdout)) {
		err("cannot write the output: %s", strerror(errno));
		ret = 1;
	}
	log_close(&l);
	return ret;
}
