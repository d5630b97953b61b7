/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the cmocka unit tests of include/vhdcrypt/.
 *
 * Images made by qemu-img and the OpenXT fixtures are found through the
 * environment: VHDCRYPT_UNIT_IMAGES names the directory the Makefile filled.
 * Tests that need it skip when it is not set.
 */
#ifndef VHDCRYPT_UNIT_H
#define VHDCRYPT_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, (uint32_t)v);
}

/* Independent big-endian load, so the tests do not rely on types.h. */
static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The image directory, or NULL (the caller then skips). */
static inline const char *unit_image_dir(void)
{
	const char *d = getenv("VHDCRYPT_UNIT_IMAGES");

	return d && *d ? d : NULL;
}

#define SKIP_WITHOUT_IMAGES()						\
	do {								\
		if (!unit_image_dir()) {				\
			print_message("# VHDCRYPT_UNIT_IMAGES not set\n"); \
			skip();						\
		}							\
	} while (0)

/* Path of an image in the image directory (static buffer). */
static inline const char *unit_image(const char *name)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", unit_image_dir(), name);
	return path;
}

static inline uint64_t unit_file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/*
 * Read @len bytes at @off of @path into @buf. Bytes past the end of the file
 * read as zeros; returns the number of bytes that came from the file.
 */
static inline size_t unit_read_at(const char *path, uint64_t off, void *buf,
				  size_t len)
{
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("cannot open %s", path);
	memset(buf, 0, len);
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got,
				  (off_t)(off + got));

		if (n < 0)
			fail_msg("cannot read %s", path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got;
}

/* A decoder result: 0, or the expected negative errno with a reason. */
#define assert_decoded(r, why)						\
	do {								\
		int r_ = (r);						\
		if (r_)							\
			fail_msg("decoder failed (%d): %s", r_, why);	\
	} while (0)

#define assert_rejected(r, err, why)					\
	do {								\
		int r_ = (r);						\
		if (r_ != (err))					\
			fail_msg("expected %d, got %d", (err), r_);	\
		assert_non_null(why);					\
		assert_true(strlen(why) > 0);				\
	} while (0)

#endif /* VHDCRYPT_UNIT_H */
