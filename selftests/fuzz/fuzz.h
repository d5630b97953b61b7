/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the libFuzzer harnesses in this directory.
 *
 * Harnesses check invariants with CHECK(), which aborts (a crash for
 * libFuzzer). Loads here are written independently of types.h, so a
 * harness does not trust the code it tests.
 *
 * Whole-image harnesses read a sparse image (struct fz_image), so a 2 TiB
 * disk fits in a few KiB of input:
 *
 *   u8 flags (FZ_FIX_CHECKSUMS), be56 image size in bytes (rounded down
 *   to 512, at most FZ_MAX_IMAGE), then chunks: be32 sector, be16 length,
 *   length bytes of data
 *
 * Everything no chunk covers reads as zeros; a later chunk wins.
 * img2seed.py turns an image file into this form.
 */
#ifndef VHDCRYPT_FUZZ_H
#define VHDCRYPT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* A failing decoder must say why. */
#define CHECK_WHY(r, why)						\
	do {								\
		if (r)							\
			CHECK((why) != NULL && (why)[0] != '\0');	\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's own plumbing: no coverage feedback, no traced compares. */
#ifdef __clang__
#define FZ_PLUMBING __attribute__((no_sanitize("coverage")))
#else
#define FZ_PLUMBING
#endif

static volatile unsigned int fz_sink;

/* Touch every byte a decoder claims is in bounds (ASan checks it). */
static inline FZ_PLUMBING void fz_touch(const uint8_t *p, size_t len)
{
	unsigned int s = 0;

	for (size_t i = 0; i < len; i++)
		s += p[i];
	fz_sink += s;
}

static inline bool fz_inside(uint64_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

/* An exact-size heap copy of d[off, off + len), zero-padded past the end. */
static inline FZ_PLUMBING uint8_t *fz_slice(const uint8_t *d, size_t n, uint64_t off,
				size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		abort();
	memset(p, 0, len);
	if (off < n)
		memcpy(p, d + off, n - off < len ? n - off : len);
	return p;
}

static inline uint32_t fz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t fz_be64(const uint8_t *p)
{
	return (uint64_t)fz_be32(p) << 32 | fz_be32(p + 4);
}

/* The k-th big-endian u64 from the end of the input: fuzzed parameters. */
static inline uint64_t fz_tail_u64(const uint8_t *d, size_t n, unsigned int k)
{
	return n >= 8 * (k + 1) ? fz_be64(d + n - 8 * (k + 1)) : 0;
}

/* ------------------------------------------------------------ images */

#define FZ_MAX_IMAGE	(1ull << 41)	/* 2 TiB */
#define FZ_MAX_CHUNKS	256
/*
 * The harness makes checksums right before decoding, as anyone who crafts
 * a hostile image would: mutations then reach what lies behind them.
 */
#define FZ_FIX_CHECKSUMS	0x01

struct fz_chunk {
	uint64_t off;		/* bytes */
	uint32_t len;
	const uint8_t *data;
};

struct fz_image {
	uint64_t size;		/* bytes, a multiple of 512 */
	unsigned int flags;	/* FZ_FIX_CHECKSUMS */
	unsigned int nr;
	struct fz_chunk chunk[FZ_MAX_CHUNKS];
	uint64_t read_bytes;	/* work done, for the harness's bound */
};

/* False if the input is too short to hold an image size. */
static inline bool fz_image_parse(struct fz_image *im, const uint8_t *d,
				  size_t n)
{
	size_t pos = 8;

	if (n < 8)
		return false;
	im->flags = d[0];
	im->size = (fz_be64(d) & ((1ull << 56) - 1)) % (FZ_MAX_IMAGE + 1) &
		   ~511ull;
	im->nr = 0;
	im->read_bytes = 0;
	while (im->nr < FZ_MAX_CHUNKS && n - pos >= 6) {
		struct fz_chunk *c = &im->chunk[im->nr++];

		c->off = (uint64_t)fz_be32(d + pos) << 9;
		c->len = (uint32_t)d[pos + 4] << 8 | d[pos + 5];
		pos += 6;
		if (c->len > n - pos)
			c->len = n - pos;
		c->data = d + pos;
		pos += c->len;
	}
	return true;
}

/* Image bytes [off, off + len): zeros where no chunk is, as a sparse file. */
static inline FZ_PLUMBING void fz_image_copy(struct fz_image *im, uint64_t off, void *buf,
				 size_t len)
{
	memset(buf, 0, len);
	im->read_bytes += len;
	for (unsigned int i = 0; i < im->nr; i++) {
		const struct fz_chunk *c = &im->chunk[i];
		uint64_t a = off > c->off ? off : c->off;
		uint64_t b = off + len < c->off + c->len ? off + len :
							   c->off + c->len;

		if (a < b)
			memcpy((uint8_t *)buf + (a - off), c->data + (a - c->off),
			       b - a);
	}
}

/* A read of the image device: it must lie inside the device. */
static inline void fz_image_read(struct fz_image *im, uint64_t off, void *buf,
				 size_t len)
{
	CHECK(fz_inside(im->size, off, len));
	fz_image_copy(im, off, buf, len);
}

/* A metadata cache read: blocks past the end of the device read as zeros. */
static inline void fz_image_meta(struct fz_image *im, uint64_t off, void *buf,
				 size_t len)
{
	if (off >= im->size) {
		memset(buf, 0, len);
		return;
	}
	CHECK(fz_inside(im->size, off, len));
	fz_image_copy(im, off, buf, len);
}

#endif /* VHDCRYPT_FUZZ_H */
