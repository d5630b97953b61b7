/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types and byte-order helpers shared by the kernel module and userspace.
 *
 * The format headers in this directory use only what is defined here, so the
 * same decoders compile into dm-vhdcrypt.ko, vhdcryptsetup, the unit tests
 * and the fuzzers.
 */
#ifndef VHDCRYPT_TYPES_H
#define VHDCRYPT_TYPES_H

#ifdef __KERNEL__
#include <linux/bits.h>
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <asm/byteorder.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <endian.h>
#include <linux/types.h>	/* __be32 and friends */

#ifndef __force
#define __force
#endif

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

#ifndef BIT
#define BIT(n)		(1UL << (n))
#endif
#ifndef BIT_ULL
#define BIT_ULL(n)	(1ULL << (n))
#endif

#define be16_to_cpu(x) be16toh(x)
#define be32_to_cpu(x) be32toh(x)
#define be64_to_cpu(x) be64toh(x)
#define le32_to_cpu(x) le32toh(x)
#define le64_to_cpu(x) le64toh(x)
#define cpu_to_be16(x) htobe16(x)
#define cpu_to_be32(x) htobe32(x)
#define cpu_to_be64(x) htobe64(x)
#endif

/* Loads from possibly unaligned on-disk buffers. */
static inline u16 vc_get_be16(const void *p)
{
	u16 v;

	memcpy(&v, p, sizeof(v));
	return be16_to_cpu((__force __be16)v);
}

static inline u32 vc_get_be32(const void *p)
{
	u32 v;

	memcpy(&v, p, sizeof(v));
	return be32_to_cpu((__force __be32)v);
}

static inline u64 vc_get_be64(const void *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return be64_to_cpu((__force __be64)v);
}

static inline u32 vc_get_le32(const void *p)
{
	u32 v;

	memcpy(&v, p, sizeof(v));
	return le32_to_cpu((__force __le32)v);
}

static inline u64 vc_get_le64(const void *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return le64_to_cpu((__force __le64)v);
}

/* Stores to possibly unaligned on-disk buffers. */
static inline void vc_put_be16(void *p, u16 v)
{
	__be16 x = cpu_to_be16(v);

	memcpy(p, &x, sizeof(x));
}

static inline void vc_put_be32(void *p, u32 v)
{
	__be32 x = cpu_to_be32(v);

	memcpy(p, &x, sizeof(x));
}

static inline void vc_put_be64(void *p, u64 v)
{
	__be64 x = cpu_to_be64(v);

	memcpy(p, &x, sizeof(x));
}

/* True if @x is a power of two (0 is not). */
static inline bool vc_is_pow2(u64 x)
{
	return x && !(x & (x - 1));
}

/* log2 of a power of two. */
static inline unsigned int vc_ilog2(u64 x)
{
	unsigned int n = 0;

	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}

/* True if [off, off + len) lies inside [0, limit), without overflow. */
static inline bool vc_range_ok(u64 off, u64 len, u64 limit)
{
	return off <= limit && len <= limit - off;
}

#endif /* VHDCRYPT_TYPES_H */
