// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - secrets in locked pages excluded from core dumps; key files
 * through crypt_keyfile_device_read().
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "secret.h"
#include "util.h"

#define VC_KEYFILE_MAX (8u << 20)	/* libcryptsetup's limit without a size */

/*
 * Secrets get pages of their own: mlock()ed so they are never swapped, and
 * MADV_DONTDUMP so no core dump (the kernel's, or gdb's gcore) holds them.
 * libcryptsetup's allocator cannot do the second: its buffers share heap
 * pages with everything else. The mapping's length is kept in front.
 */
struct vc_safe_hdr {
	size_t map_len;
	size_t pad;		/* keeps data 16-byte aligned */
	unsigned char data[];
};

void *vc_safe_alloc(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), map_len;
	struct vc_safe_hdr *h;

	if (len > SIZE_MAX - sizeof(*h) - page)
		return NULL;
	map_len = (sizeof(*h) + len + page - 1) / page * page;
	h = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return NULL;
	/* before a byte is written; without it the buffer is refused */
	if (madvise(h, map_len, MADV_DONTDUMP)) {
		munmap(h, map_len);
		return NULL;
	}
	mlock(h, map_len);	/* best effort, as libcryptsetup: RLIMIT_MEMLOCK may refuse */
	h->map_len = map_len;
	return h->data;
}

void vc_safe_free(void *p)
{
	struct vc_safe_hdr *h;
	size_t map_len;

	if (!p)
		return;
	h = (struct vc_safe_hdr *)((unsigned char *)p - offsetof(struct vc_safe_hdr, data));
	map_len = h->map_len;
	explicit_bzero(h, map_len);
	munmap(h, map_len);
}

void vc_safe_memzero(void *p, size_t len)
{
	explicit_bzero(p, len);
}

char *vc_safe_strdup(const char *str)
{
	size_t len = strlen(str) + 1;
	char *p = vc_safe_alloc(len);

	if (!p) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(p, str, len);
	return p;
}

struct vc_secret *vc_secret_new(size_t len)
{
	struct vc_secret *s = vc_zalloc(sizeof(*s));

	if (!s)
		return NULL;
	s->data = vc_safe_alloc(len ? len : 1);
	if (!s->data) {
		free(s);
		vc_fail(-ENOMEM, "out of memory (locked memory for a key)");
		return NULL;
	}
	memset(s->data, 0, len ? len : 1);
	s->len = len;
	return s;
}

struct vc_secret *vc_secret_dup(const struct vc_secret *s)
{
	struct vc_secret *n = vc_secret_new(s->len);

	if (n)
		memcpy(n->data, s->data, s->len);
	return n;
}

void vc_secret_free(struct vc_secret *s)
{
	if (!s)
		return;
	vc_safe_free(s->data);	/* wipes */
	free(s);
}

/* What a file is, for messages libcryptsetup's reader cannot give. */
static int vc_keyfile_stat(const char *path, uint64_t *size)
{
	struct stat st;
	int fd, r = 0;

	*size = UINT64_MAX;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (S_ISREG(st.st_mode))
		*size = st.st_size;
	close(fd);
	return r;
}

int vc_secret_read_file(const char *path, const char *what, uint64_t offset, size_t size,
			struct vc_secret **out, uint64_t *file_size)
{
	bool is_stdin = !strcmp(path, "-");
	const char *shown = is_stdin ? "standard input" : path;
	uint64_t fsize = UINT64_MAX;
	char *buf = NULL;
	size_t got = 0;
	int r;

	*out = NULL;
	if (!is_stdin) {
		r = vc_keyfile_stat(path, &fsize);
		if (file_size)
			*file_size = fsize;
		if (r == -EISDIR)
			r = -EINVAL;
		if (r)
			return what ? vc_fail(r == -EACCES ? -EACCES : -EINVAL,
					      "cannot open key file %s: %s; check the path given "
					      "to %s", path, strerror(-r), what) : r;
		if (fsize != UINT64_MAX && (offset > fsize || (size && size > fsize - offset)))
			return what ? vc_fail(-EINVAL, "key file %s holds %llu bytes; %s asks for "
					      "%zu from byte %llu", path, (unsigned long long)fsize,
					      what, size, (unsigned long long)offset) : -EINVAL;
		if (fsize != UINT64_MAX && !size && fsize - offset > VC_KEYFILE_MAX)
			return what ? vc_fail(-EINVAL, "key file %s is larger than 8 MiB; "
					      "--keyfile-size reads a part of it", path) : -EINVAL;
	} else if (file_size) {
		*file_size = UINT64_MAX;
	}
	/* libcryptsetup does not read "-"; /dev/stdin is the same input */
	r = crypt_keyfile_device_read(NULL, is_stdin ? "/dev/stdin" : path, &buf, &got,
				      offset, size, 0);
	if (r < 0) {
		if (r == -ENOMEM)
			return vc_fail(-ENOMEM, "out of memory reading key file %s", shown);
		if (!what)
			return -EINVAL;
		if (size)
			return vc_fail(-EINVAL, "cannot read %zu bytes from key file %s", size,
				       shown);
		/* a regular file was checked above: this is a pipe or a device */
		return vc_fail(-EINVAL, "cannot read key file %s: it is empty, or larger than "
			       "8 MiB (--keyfile-size reads a part of it)", shown);
	}
	if (!buf) {	/* an empty file */
		*out = vc_secret_new(0);
		return *out ? 0 : -ENOMEM;
	}
	/* into pages of our own; libcryptsetup's buffer is wiped when freed */
	*out = vc_secret_new(got);
	if (*out)
		memcpy((*out)->data, buf, got);
	crypt_safe_free(buf);
	return *out ? 0 : -ENOMEM;
}
