// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for how vhdcryptsetup gets keys (userspace/, linked as
 * for fuzz_tool): the option value parsers, the key file reader and the
 * OpenXT key lookup. The first input byte selects the target, the rest is
 * its data:
 *
 *   0  vc_parse_u64()      string (--keyfile-offset, --keyfile-size, slots)
 *   1  vc_parse_size()     string (--size, --cluster-size)
 *   2  vc_fmt_parse()      string (--type, qcow2 backing formats)
 *   3  vc_keydirs_parse()  string (--key-dir, $TAPDISK*_CRYPTO_KEYDIR)
 *   4  vc_secret_read_file()  u8 flags, be64 offset, be32 size, be32 file
 *                          size, file contents (on a memfd)
 *   5  vc_openxt_find_key()   a key directory list, an image path and up to
 *                          FZ_MAX_ENTRIES files, directories and symlinks
 *                          in two key directories (below)
 *   6  vc_openxt_check_key()  u8 flags, nonce[32], hash[32], the key
 *   7  vc_unhex()          u8 length, string (--nonce, --hash)
 *
 * Each result is checked against a model written here from the documented
 * rules (util.h, secret.h, scheme-openxt.h, vhdcryptsetup.8), not from the
 * code: what is accepted, what is returned, which key file wins.
 *
 * Files live in a per-process directory under $TMPDIR (made on first use,
 * emptied after every input, removed at exit); key files for the reader are
 * memfds, read through /proc/self/fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <openssl/evp.h>

#include "image.h"
#include "scheme-openxt.h"
#include "secret.h"
#include "util.h"

#include "fuzz.h"

#define FZ_KEY_MAX	(8u << 20)	/* secret.h, --keyfile-size */
#define FZ_MAX_ENTRIES	8
#define FZ_MAX_PATH	120		/* the image path for the basename */
#define FZ_MAX_NAME	100		/* a fuzzed file name (part) */
#define FZ_SUFFIX	",aes-xts-plain,"

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated heap copy (cut at the first NUL byte). */
static FZ_PLUMBING char *fz_str(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

/* ------------------------------------------------------------ numbers */

/* Decimal digits only, no sign or space, and it fits: the value or false. */
static bool model_u64(const char *s, const char **end, unsigned long long *v)
{
	unsigned long long m = 0;
	const char *p = s;

	while (*p >= '0' && *p <= '9') {
		unsigned int dig = (unsigned int)(*p - '0');

		if (m > (ULLONG_MAX - dig) / 10)
			return false;
		m = m * 10 + dig;
		p++;
	}
	*end = p;
	*v = m;
	return p != s;
}

static void t_u64(const char *s)
{
	unsigned long long v = 0, m, v2 = 0;
	const char *end;
	bool ok = model_u64(s, &end, &m) && !*end;
	char buf[32];
	int r;

	r = vc_parse_u64(s, &v);
	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == ok);
	if (r)
		return;
	CHECK(v == m);
	snprintf(buf, sizeof(buf), "%llu", v);
	CHECK(!vc_parse_u64(buf, &v2) && v2 == v);
	CHECK(vc_parse_u64(NULL, &v2) == -EINVAL);
}

/*
 * "123", then an optional unit K, M, G, T (powers of 1024; the letter in
 * either case) alone or followed by "iB" or "B"; the bytes must fit 64 bits.
 */
static void t_size(const char *s)
{
	static const char units[] = "KMGT";
	static const char *const tails[] = { "", "B", "iB" };
	unsigned long long m;
	uint64_t v = 0, v2;
	const char *end, *u;
	unsigned int shift = 0;
	bool ok;
	char buf[40];
	int r;

	ok = model_u64(s, &end, &m);
	if (ok && *end) {
		u = *end ? memchr(units, *end >= 'a' ? *end - 32 : *end, 4) : NULL;
		ok = u && (!strcmp(end + 1, "") || !strcmp(end + 1, "B") ||
			   !strcmp(end + 1, "iB"));
		if (ok) {
			shift = 10 * (unsigned int)(u - units + 1);
			ok = m <= UINT64_MAX >> shift;
		}
	}
	r = vc_parse_size(s, &v);
	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == ok);
	if (r)
		return;
	CHECK(v == (uint64_t)m << shift);
	/* every way of writing v parses back to v */
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	CHECK(!vc_parse_size(buf, &v2) && v2 == v);
	for (unsigned int k = 1; k <= 4; k++) {
		if (v & ((1ull << (10 * k)) - 1))
			break;
		for (unsigned int t = 0; t < 3; t++) {
			snprintf(buf, sizeof(buf), "%llu%c%s",
				 (unsigned long long)(v >> (10 * k)),
				 units[k - 1] | (t == 1 ? 0x20 : 0), tails[t]);
			CHECK(!vc_parse_size(buf, &v2) && v2 == v);
		}
	}
	/* one more unit step overflows or is refused */
	if (shift < 40 && m && m > UINT64_MAX >> (shift + 10)) {
		snprintf(buf, sizeof(buf), "%llu%c", m, units[shift / 10]);
		CHECK(vc_parse_size(buf, &v2) == -EINVAL);
	}
}

/* vhd (or vpc), qcow2, raw: exactly these names. */
static void t_fmt(const char *s)
{
	enum vc_fmt f = VC_FMT_UNKNOWN, f2 = VC_FMT_UNKNOWN;
	enum vc_fmt want = !strcmp(s, "vhd") || !strcmp(s, "vpc") ? VC_FMT_VHD :
			   !strcmp(s, "qcow2") ? VC_FMT_QCOW2 :
			   !strcmp(s, "raw") ? VC_FMT_RAW : VC_FMT_UNKNOWN;
	int r = vc_fmt_parse(s, &f);

	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == (want != VC_FMT_UNKNOWN));
	if (r)
		return;
	CHECK(f == want);
	CHECK(!vc_fmt_parse(vc_fmt_name(f), &f2) && f2 == f);
}

/* Comma-separated, in order, empty elements skipped (vhdcryptsetup.8). */
static void t_keydirs(const char *s)
{
	struct vc_keydirs kd;
	const char *p = s;
	int i = 0, r;

	r = vc_keydirs_parse(s, "--key-dir", &kd);
	CHECK(r == 0);
	CHECK(kd.list && !strcmp(kd.list, s));
	CHECK(kd.source && !strcmp(kd.source, "--key-dir"));
	CHECK(kd.n >= 0);
	for (;;) {
		size_t len = strcspn(p, ",");

		if (len) {
			CHECK(i < kd.n);
			CHECK(strlen(kd.dirs[i]) == len && !memcmp(kd.dirs[i], p, len));
			i++;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	CHECK(i == kd.n);
	vc_keydirs_free(&kd);
	CHECK(!kd.dirs && !kd.n && !kd.list && !kd.source);
}

/* Exactly 2 * len hex digits, either case. */
static void t_unhex(const uint8_t *d, size_t n)
{
	size_t len = n ? d[0] % 72 : 0, slen;
	char *s = fz_str(d + !!n, n - !!n), *back;
	unsigned char *out = malloc(len ? len : 1), *mine = malloc(len ? len : 1);
	bool ok;
	int r;

	if (!out || !mine)
		abort();
	slen = strlen(s);
	ok = slen == 2 * len;
	for (size_t i = 0; ok && i < slen; i++) {
		int c = s[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			ok = false, v = 0;
		if (i % 2)
			mine[i / 2] |= (unsigned char)v;
		else
			mine[i / 2] = (unsigned char)(v << 4);
	}
	r = vc_unhex(s, out, len);
	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == ok);
	if (!r) {
		CHECK(!memcmp(out, mine, len));
		back = malloc(2 * len + 1);
		if (!back)
			abort();
		vc_hex(back, out, len);
		CHECK(strlen(back) == 2 * len && !strcasecmp(back, s));
		free(back);
	}
	free(mine);
	free(out);
	free(s);
}

/* ------------------------------------------------------------ key files */

/* What an output pointer holds before the call: it must be overwritten. */
static struct vc_secret fz_poison;

static char fz_root[PATH_MAX];	/* the per-process directory */
static char fz_dir[2][PATH_MAX];	/* key directories d0, d1 */

static FZ_PLUMBING void fz_root_remove(void)
{
	char p[PATH_MAX + 16];

	if (!fz_root[0])
		return;
	rmdir(fz_dir[0]);
	rmdir(fz_dir[1]);
	snprintf(p, sizeof(p), "%s/file", fz_root);
	unlink(p);
	rmdir(fz_root);
	fz_root[0] = '\0';
}

/* root/d0, root/d1 (key directories), root/file (not a directory). */
static FZ_PLUMBING void fz_root_make(void)
{
	const char *tmp = getenv("TMPDIR");
	char p[PATH_MAX + 16];
	int fd;

	if (fz_root[0])
		return;
	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(fz_root, sizeof(fz_root), "%s/vhdcrypt-fuzz-keys.XXXXXX", tmp);
	if (!mkdtemp(fz_root) || strchr(fz_root, ',')) {
		fprintf(stderr, "fuzz_keys: no temporary directory in %s\n", tmp);
		abort();
	}
	atexit(fz_root_remove);
	for (int i = 0; i < 2; i++) {
		snprintf(fz_dir[i], sizeof(fz_dir[i]), "%s/d%d", fz_root, i);
		if (mkdir(fz_dir[i], 0700))
			abort();
	}
	snprintf(p, sizeof(p), "%s/file", fz_root);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	close(fd);
}

/*
 * Reader: u8 flags, be64 offset, be32 size, be32 file size, contents.
 * Offset and size are taken relative to the file unless a flag asks for
 * them raw; the size stays in --keyfile-size's range (0 to 8 MiB). The file
 * may be extended with a hole, up to 64 KiB or (slow) a little past 8 MiB.
 */
#define RF_WHAT		0x01	/* what names the option (messages) */
#define RF_RAW_SIZE	0x02
#define RF_RAW_OFFSET	0x04
#define RF_EXTEND	0x08
#define RF_NO_FSIZE	0x10	/* file_size NULL */
#define RF_DIR		0x20	/* the path is a directory */
#define RF_MISSING	0x40	/* the path does not exist */
#define RF_BIG		0x80	/* a hole up to 8 MiB + 8 KiB, not 64 KiB */

/* The key holds the file's bytes from off: the contents, then the hole. */
static bool rf_data_ok(const struct vc_secret *k, const uint8_t *c, size_t clen,
		       uint64_t off)
{
	static const uint8_t zero[4096];
	size_t head = off < clen ? clen - off : 0, i;

	if (head > k->len)
		head = k->len;
	if (head && memcmp(k->data, c + off, head))
		return false;
	for (i = head; i < k->len; i += sizeof(zero)) {
		size_t l = k->len - i < sizeof(zero) ? k->len - i : sizeof(zero);

		if (memcmp(k->data + i, zero, l))
			return false;
	}
	return true;
}

static void t_read_file(const uint8_t *d, size_t n)
{
	uint8_t *h = fz_slice(d, n, 0, 17);
	const uint8_t *c = n > 17 ? d + 17 : d;
	size_t clen = n > 17 ? n - 17 : 0, size;
	unsigned int flags = h[0];
	uint64_t off = fz_be64(h + 1), flen = clen, fsize = 12345;
	uint32_t raw_size = fz_be32(h + 9), ext = fz_be32(h + 13);
	const char *what = flags & RF_WHAT ? "--key-file" : NULL;
	struct vc_secret *k = &fz_poison;
	char path[PATH_MAX + 32];
	bool ok;
	int fd, r;

	free(h);
	if (flags & RF_EXTEND) {
		ext %= flags & RF_BIG ? FZ_KEY_MAX + 8192 + 1 : 65536;
		if (ext > flen)
			flen = ext;
	}
	size = flags & RF_RAW_SIZE ? raw_size % (FZ_KEY_MAX + 1) : raw_size % (flen + 2);
	if (!(flags & RF_RAW_OFFSET))
		off %= flen + 2;

	fd = memfd_create("fuzz-key", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)flen) ||
	    (clen && pwrite(fd, c, clen, 0) != (ssize_t)clen))
		abort();
	if (flags & (RF_DIR | RF_MISSING)) {
		fz_root_make();
		snprintf(path, sizeof(path), "%s%s", fz_root,
			 flags & RF_DIR ? "/d0" : "/missing");
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}

	vc_clear_error();
	r = vc_secret_read_file(path, what, off, size, &k,
				flags & RF_NO_FSIZE ? NULL : &fsize);
	if (flags & (RF_DIR | RF_MISSING)) {
		CHECK(r < 0 && !k);
		if (!what)
			CHECK(r == (flags & RF_DIR ? -EINVAL : -ENOENT));
		if (!(flags & RF_NO_FSIZE))
			CHECK(fsize == UINT64_MAX);
	} else {
		/* exactly size bytes from off; with size 0 the rest, at most 8 MiB */
		ok = off <= flen && (size ? size <= flen - off : flen - off <= FZ_KEY_MAX);
		CHECK((r == 0) == ok);
		if (!(flags & RF_NO_FSIZE))
			CHECK(fsize == flen);
		if (!r) {
			CHECK(k && k->data);
			CHECK(k->len == (size ? size : flen - off));
			/* the 8 MiB limit is for whole files; --keyfile-size may ask more */
			CHECK(size || k->len <= FZ_KEY_MAX);
			CHECK(rf_data_ok(k, c, clen, off));
		} else {
			CHECK(!k);
			CHECK(r == -EINVAL);
		}
	}
	/* a lookup records no message, an option's reader says why */
	if (r && what)
		CHECK(vc_last_error()[0] != '\0');
	if (!what)
		CHECK(vc_last_error()[0] == '\0');
	vc_secret_free(k);
	close(fd);
}

/* ------------------------------------------------------------ OpenXT lookup */

/*
 * Input: u8 count and u8 selectors[4] for the key directory list (d0, d1,
 * a missing directory, a regular file, an empty element, d1 with a slash),
 * u8 length; the image path (its basename names the key); then entries:
 *
 *   u8 b (bit 0: d0/d1; bits 1-2: file, directory, symlink, file;
 *         bits 3-4: name <base>,aes-xts-plain,512.key, ...256.key, a
 *         fuzzed name, <base> + a fuzzed tail)
 *   u8 name length, be16 content length (symlink: the target entry),
 *   the name bytes, the content bytes
 */
enum { ENT_FILE, ENT_DIR, ENT_LINK };
enum { KD_D0, KD_D1, KD_MISSING, KD_NOTDIR, KD_EMPTY, KD_D1_SLASH };

struct fz_ent {
	int dir, type;
	char name[NAME_MAX + 1];
	const uint8_t *data;
	size_t len;
	int target;		/* a link: an entry, or -1 (dangling) */
};

static struct fz_ent fz_ent[FZ_MAX_ENTRIES];
static int fz_nent;

static int ent_find(int dir, const char *name)
{
	for (int i = 0; i < fz_nent; i++)
		if (fz_ent[i].dir == dir && !strcmp(fz_ent[i].name, name))
			return i;
	return -1;
}

static FZ_PLUMBING void ent_name(char *out, const char *base, const uint8_t *raw, size_t rlen,
				 unsigned int kind)
{
	size_t bl = strlen(base), i;

	if (kind < 2) {
		snprintf(out, NAME_MAX + 1, "%s" FZ_SUFFIX "%d.key", base, kind ? 256 : 512);
		return;
	}
	if (kind == 2)
		bl = 0;
	memcpy(out, base, bl);
	for (i = 0; i < rlen; i++)
		out[bl + i] = raw[i] == '/' || !raw[i] ? '_' : (char)raw[i];
	out[bl + rlen] = '\0';
	if (!out[0] || !strcmp(out, ".") || !strcmp(out, ".."))
		strcat(out, "_");
}

static FZ_PLUMBING void ent_make(const struct fz_ent *e)
{
	char p[2 * PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", fz_dir[e->dir], e->name);
	if (e->type == ENT_DIR) {
		if (mkdir(p, 0700))
			abort();
	} else if (e->type == ENT_LINK) {
		char t[2 * PATH_MAX];

		if (e->target >= 0)
			snprintf(t, sizeof(t), "%s/%s", fz_dir[fz_ent[e->target].dir],
				 fz_ent[e->target].name);
		else
			snprintf(t, sizeof(t), "%s/missing/%s", fz_root, e->name);
		if (symlink(t, p))
			abort();
	} else {
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || (e->len && write(fd, e->data, e->len) != (ssize_t)e->len))
			abort();
		close(fd);
	}
}

/* Remove every entry; the key directories must then be empty. */
static FZ_PLUMBING void ent_clean(void)
{
	char p[2 * PATH_MAX];

	for (int i = 0; i < fz_nent; i++) {
		snprintf(p, sizeof(p), "%s/%s", fz_dir[fz_ent[i].dir], fz_ent[i].name);
		if (fz_ent[i].type == ENT_DIR ? rmdir(p) : unlink(p))
			abort();
	}
	fz_nent = 0;
	for (int i = 0; i < 2; i++) {
		DIR *dir = opendir(fz_dir[i]);
		struct dirent *de;

		if (!dir)
			abort();
		while ((de = readdir(dir)))
			CHECK(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."));
		closedir(dir);
	}
}

/* Last path component, cut at the first ".vhd", truncated to fit. */
static void check_basename(const char *path, const char *base, size_t cap)
{
	const char *last = strrchr(path, '/');
	char small[9];
	size_t len = strlen(base);

	last = last ? last + 1 : path;
	CHECK(len < cap);
	CHECK(!strncmp(base, last, len));
	CHECK(!strchr(base, '/'));
	CHECK(!strstr(base, ".vhd"));
	CHECK(last[len] == '\0' || !strncmp(last + len, ".vhd", 4) || len == cap - 1);
	for (size_t c = 1; c <= sizeof(small); c++) {
		vc_openxt_basename(path, small, c);
		CHECK(strlen(small) == (len < c - 1 ? len : c - 1));
		CHECK(!strncmp(small, base, strlen(small)));
	}
}

static void t_find_key(const uint8_t *d, size_t n)
{
	static const int bits[2] = { 512, 256 };
	uint8_t *h = fz_slice(d, n, 0, 6);
	size_t pos = 6, plen;
	char list[4 * (PATH_MAX + 8)] = "", *ipath, base[NAME_MAX + 1], *path = NULL;
	char *note = NULL, want_path[2 * PATH_MAX];
	int nsel = h[0] % 5, kind[4], nkd = 0, want_r = -ENOENT, want_e = -1, want_s = 0;
	bool want_note = false;
	struct vc_secret *key = &fz_poison;
	struct vc_keydirs kd;
	int r;

	fz_root_make();
	/* the key directory list */
	for (int i = 0; i < nsel; i++) {
		static const char *const sub[] = { "/d0", "/d1", "/missing", "/file", NULL,
						   "/d1/" };
		int k = h[1 + i] % 6;

		if (i)
			strcat(list, ",");
		if (sub[k]) {
			strcat(list, fz_root);
			strcat(list, sub[k]);
			kind[nkd++] = k;
		}
	}
	/* the image path and its basename */
	plen = h[5] % (FZ_MAX_PATH + 1);
	if (pos > n)
		pos = n;
	if (plen > n - pos)
		plen = n - pos;
	ipath = fz_str(d + pos, plen);
	pos += plen;
	free(h);
	vc_openxt_basename(ipath, base, sizeof(base));
	check_basename(ipath, base, sizeof(base));
	free(ipath);

	/* the entries of d0 and d1 */
	while (fz_nent < FZ_MAX_ENTRIES && n - pos >= 4) {
		struct fz_ent *e = &fz_ent[fz_nent];
		unsigned int b = d[pos], nl = d[pos + 1] % (FZ_MAX_NAME + 1);
		size_t cl = (size_t)d[pos + 2] << 8 | d[pos + 3];

		pos += 4;
		if (nl > n - pos)
			nl = n - pos;
		e->dir = b & 1;
		e->type = (b >> 1) & 3;
		if (e->type == 3)
			e->type = ENT_FILE;
		ent_name(e->name, base, d + pos, (b >> 3) & 3 ? nl : 0, (b >> 3) & 3);
		if ((b >> 3) & 3)
			pos += nl;
		e->data = NULL;
		e->len = 0;
		e->target = -1;
		if (e->type == ENT_FILE) {
			if (cl > n - pos)
				cl = n - pos;
			e->data = d + pos;
			e->len = cl;
			pos += cl;
		} else if (e->type == ENT_LINK) {
			int t = (int)(cl % (FZ_MAX_ENTRIES + 1));

			e->target = t < fz_nent && fz_ent[t].type != ENT_LINK ? t : -1;
		}
		if (ent_find(e->dir, e->name) >= 0)
			continue;	/* the first one of a name is kept */
		ent_make(e);
		fz_nent++;
	}

	/*
	 * The model: for 512 then 256 bits, the first directory holding the
	 * name (after a symlink) wins; a regular file of at least bits/8
	 * bytes is the key, a shorter one is noted and skipped, anything else
	 * skipped. A missing directory is skipped; a file in the list stops
	 * the lookup (ENOTDIR).
	 */
	for (int s = 0; s < 2 && want_r == -ENOENT && want_e < 0; s++) {
		char name[NAME_MAX + 1];
		int e = -1, kdi = -1;

		snprintf(name, sizeof(name), "%s" FZ_SUFFIX "%d.key", base, bits[s]);
		for (int i = 0; i < nkd; i++) {
			if (kind[i] == KD_NOTDIR) {
				want_r = -ENOTDIR;
				break;
			}
			if (kind[i] == KD_MISSING)
				continue;
			e = ent_find(kind[i] == KD_D0 ? 0 : 1, name);
			if (e >= 0 && fz_ent[e].type == ENT_LINK)
				e = fz_ent[e].target;
			if (e >= 0) {
				kdi = i;
				break;
			}
		}
		if (want_r != -ENOENT || e < 0 || fz_ent[e].type != ENT_FILE)
			continue;
		if (fz_ent[e].len >= (size_t)bits[s] / 8) {
			want_r = 0;
			want_e = e;
			want_s = bits[s] / 8;
			snprintf(want_path, sizeof(want_path), "%s%s/%s", fz_root,
				 kind[kdi] == KD_D0 ? "/d0" : kind[kdi] == KD_D1 ? "/d1" : "/d1/",
				 name);
		} else {
			want_note = true;
		}
	}

	CHECK(vc_keydirs_parse(list, "--key-dir", &kd) == 0 && kd.n == nkd);
	r = vc_openxt_find_key(&kd, base, &key, &path, &note);
	CHECK(r == want_r);
	CHECK(!!note == want_note);
	if (!r) {
		CHECK(key && path);
		CHECK(!strcmp(path, want_path));
		CHECK(key->len == (size_t)want_s);
		CHECK(!memcmp(key->data, fz_ent[want_e].data, key->len));
	} else {
		CHECK(!key && !path);
	}
	vc_secret_free(key);
	free(path);
	free(note);
	vc_keydirs_free(&kd);
	ent_clean();
}

/* ------------------------------------------------------------ key hash */

#define CK_SET		0x01	/* cookie 1 */
#define CK_FIX_HASH	0x02	/* the right hash, as a key creator writes it */

static void t_check_key(const uint8_t *d, size_t n)
{
	uint8_t *h = fz_slice(d, n, 0, 65);
	const uint8_t *kb = n > 65 ? d + 65 : d;
	size_t klen = n > 65 ? n - 65 : 0;
	unsigned char ref[32], out[32], *buf = malloc(32 + klen);
	unsigned int rlen = 0;
	struct vc_keyhash kh;
	struct vc_secret *key = vc_secret_new(klen);
	int r, want;

	if (!buf || !key)
		abort();
	memcpy(key->data, kb, klen);
	/* SHA256(nonce || key), computed here in one go */
	memcpy(buf, h + 1, 32);
	memcpy(buf + 32, kb, klen);
	if (EVP_Digest(buf, 32 + klen, ref, &rlen, EVP_sha256(), NULL) != 1 || rlen != 32)
		abort();
	memset(&kh, 0, sizeof(kh));
	kh.set = h[0] & CK_SET;
	memcpy(kh.nonce, h + 1, 32);
	memcpy(kh.hash, h[0] & CK_FIX_HASH ? ref : h + 33, 32);
	want = kh.set && !memcmp(ref, kh.hash, 32) ? 0 : -ENOKEY;

	r = vc_openxt_check_key(&kh, key);
	CHECK(r == want);
	CHECK(key->len == klen && !memcmp(key->data, kb, klen));
	CHECK(vc_openxt_hash(kh.nonce, key, out) == 0 && !memcmp(out, ref, 32));
	vc_secret_free(key);
	free(buf);
	free(h);
}

/* ------------------------------------------------------------ entry */

static void quiet(int level, const char *msg, void *usrptr)
{
	(void)level;
	(void)msg;
	(void)usrptr;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	crypt_set_log_callback(NULL, quiet, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char *s;

	if (!n)
		return 0;
	switch (d[0] % 8) {
	case 4:
		t_read_file(d + 1, n - 1);
		return 0;
	case 5:
		t_find_key(d + 1, n - 1);
		return 0;
	case 6:
		t_check_key(d + 1, n - 1);
		return 0;
	case 7:
		t_unhex(d + 1, n - 1);
		return 0;
	}
	s = fz_str(d + 1, n - 1);
	switch (d[0] % 8) {
	case 0:
		t_u64(s);
		break;
	case 1:
		t_size(s);
		break;
	case 2:
		t_fmt(s);
		break;
	case 3:
		t_keydirs(s);
		break;
	}
	free(s);
	return 0;
}
