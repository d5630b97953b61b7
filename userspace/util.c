// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - error reporting, exit codes, logging, small I/O and path
 * helpers.
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
		return VC_EXIT_DEVICE;
	case EEXIST:
	case EBUSY:
		return VC_EXIT_BUSY;
	default:		/* EINVAL, EMEDIUMTYPE (not an image, damaged), ENOTSUP ... */
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

void vc_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs(VC_PROG ": ", stderr);
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

char *vc_strndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

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

int vc_unhex(const char *s, unsigned char *out, size_t len)
{
	size_t i;

	if (strlen(s) != 2 * len)
		return -EINVAL;
	for (i = 0; i < 2 * len; i++) {
		int c = s[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = (c | 0x20) - 'a' + 10;
		else
			return -EINVAL;
		if (i & 1)
			out[i / 2] |= v;
		else
			out[i / 2] = v << 4;
	}
	return 0;
}

int vc_parse_u64(const char *s, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int vc_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, end[0] & ~0x20);
		if (!u || !*u || (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B")))
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		if (v > (UINT64_MAX >> shift))
			return -EINVAL;
		v <<= shift;
	}
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

int vc_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;
	ssize_t w;

	while (len) {
		w = pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= w;
		off += w;
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
	return vc_strndup(path, slash - path);
}

char *vc_path_clean(const char *path)
{
	char *out = vc_zalloc(strlen(path) + 2), *o = out;
	const char *p = path, *e;

	if (!out)
		return NULL;
	if (*p == '/')
		*o++ = '/';
	while (*p) {
		while (*p == '/')
			p++;
		e = strchrnul(p, '/');
		if (e - p == 1 && *p == '.') {
			p = e;
			continue;
		}
		if (e > p) {
			if (o > out && o[-1] != '/')
				*o++ = '/';
			memcpy(o, p, e - p);
			o += e - p;
		}
		p = e;
	}
	if (o == out)
		*o++ = '.';
	*o = '\0';
	return out;
}

char *vc_devt_name(dev_t dev)
{
	return vc_asprintf("%u:%u", major(dev), minor(dev));
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
