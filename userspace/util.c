// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - error reporting, exit codes, small I/O and key helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

int vc_verbose;
int vc_debug;

static char vc_errbuf[1024];
static int vc_errexit = -1;	/* explicit exit code, -1 = map from errno */

static void vc_vfail(int exit_code, const char *fmt, va_list ap)
{
	if (vc_errbuf[0])
		return;		/* the first (innermost) message is the useful one */
	vsnprintf(vc_errbuf, sizeof(vc_errbuf), fmt, ap);
	vc_errexit = exit_code;
}

int vc_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vc_vfail(-1, fmt, ap);
	va_end(ap);
	return err;
}

int vc_fail_exit(int exit_code, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vc_vfail(exit_code, fmt, ap);
	va_end(ap);
	return err;
}

const char *vc_last_error(void)
{
	return vc_errbuf;
}

void vc_clear_error(void)
{
	vc_errbuf[0] = '\0';
	vc_errexit = -1;
}

int vc_errno_to_exit(int err)
{
	switch (-err) {
	case 0:
		return VC_EXIT_OK;
	case EPERM:
	case EACCES:
	case ENOKEY:
	case EKEYREJECTED:
		return VC_EXIT_PERM;
	case ENOMEM:
		return VC_EXIT_NOMEM;
	case ENODEV:
	case ENOTBLK:
	case ENXIO:
	case ENOENT:
	case EMEDIUMTYPE:
		return VC_EXIT_DEVICE;
	case EEXIST:
	case EBUSY:
		return VC_EXIT_BUSY;
	default:
		return VC_EXIT_PARAM;
	}
}

int vc_exit_code(int err)
{
	if (err == 0)
		return VC_EXIT_OK;
	if (vc_errexit >= 0 && vc_errbuf[0])
		return vc_errexit;
	return vc_errno_to_exit(err);
}

void vc_log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!vc_debug)
		return;
	va_start(ap, fmt);
	fputs("# ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void vc_log_verbose(const char *fmt, ...)
{
	va_list ap;

	if (!vc_verbose && !vc_debug)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void *vc_zalloc(size_t len)
{
	void *p = calloc(1, len ? len : 1);

	if (!p)
		vc_fail(-ENOMEM, "out of memory");
	return p;
}

char *vc_strdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		vc_fail(-ENOMEM, "out of memory");
	return p;
}

char *vc_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

struct vc_key *vc_key_new(size_t len)
{
	struct vc_key *k = vc_zalloc(sizeof(*k));

	if (!k)
		return NULL;
	k->data = vc_safe_alloc(len ? len : 1);
	if (!k->data) {
		free(k);
		vc_fail(-ENOMEM, "out of memory (locked memory for a key)");
		return NULL;
	}
	k->len = len;
	return k;
}

struct vc_key *vc_key_dup(const struct vc_key *k)
{
	struct vc_key *n = vc_key_new(k->len);

	if (n)
		memcpy(n->data, k->data, k->len);
	return n;
}

void vc_key_free(struct vc_key *k)
{
	if (!k)
		return;
	vc_safe_free(k->data);	/* wipes */
	free(k);
}

int vc_read_secret_file(const char *path, size_t max, struct vc_key **out)
{
	struct vc_key *k = NULL, *n;
	size_t cap = 4096, len = 0;
	int fd, r = 0;
	ssize_t got;

	*out = NULL;
	if (!strcmp(path, "-"))
		fd = STDIN_FILENO;
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(errno == EACCES ? -EACCES : -EINVAL,
			       "cannot open key file %s: %s; check the path given to --key-file",
			       path, strerror(errno));
	k = vc_key_new(cap);
	if (!k) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= max + 1) {
				r = vc_fail(-EINVAL, "key file %s is larger than %zu bytes",
					    path, max);
				goto out;
			}
			n = vc_key_new(cap * 2);
			if (!n) {
				r = -ENOMEM;
				goto out;
			}
			memcpy(n->data, k->data, len);
			vc_key_free(k);
			k = n;
			cap *= 2;
		}
		got = read(fd, k->data + len, cap - len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = vc_fail(-EIO, "cannot read key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		len += got;
	}
	if (len > max) {
		r = vc_fail(-EINVAL, "key file %s is larger than %zu bytes", path, max);
		goto out;
	}
	k->len = len;
	*out = k;
	k = NULL;
out:
	vc_key_free(k);
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

void vc_hex(char *out, const unsigned char *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int vc_parse_ulong(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int vc_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	ssize_t r;

	while (len) {
		r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;	/* short file */
		p += r;
		off += r;
		len -= r;
	}
	return 0;
}

int vc_fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -ENOTBLK;
	*size = st.st_size;
	return 0;
}

char *vc_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return vc_strdup(".");
	if (slash == path)
		return vc_strdup("/");
	return strndup(path, slash - path);
}

void vc_devt_str(char *buf, size_t len, dev_t dev)
{
	snprintf(buf, len, "%u:%u", major(dev), minor(dev));
}

int vc_parse_devt(const char *s, dev_t *dev)
{
	unsigned int ma, mi;
	char c;

	if (sscanf(s, "%u:%u%c", &ma, &mi, &c) != 2)
		return -EINVAL;
	*dev = makedev(ma, mi);
	return 0;
}
