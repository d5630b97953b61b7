// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for include/vhdcrypt/qcow2.h: header (v2 and v3), layout,
 * header extensions, L1 and L2 entries (standard, compressed, extended).
 *
 * Headers are built here from QEMU's docs/interop/qcow2.txt; expected values
 * (L1 sizes, compressed descriptors) are worked out independently of the
 * decoder. Real images made by qemu-img/qemu-io are decoded at the end.
 */
#include "unit.h"
#include <vhdcrypt/qcow2.h>
#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define BUF_LEN 65536

static uint8_t hbuf[BUF_LEN];

/* L1 entries that cover @size: one L1 entry maps cluster * cluster/esz. */
static uint64_t ref_l1_entries(uint32_t cb, bool extl2, uint64_t size)
{
	uint64_t per_l1 = (1ull << cb) * ((1ull << cb) / (extl2 ? 16 : 8));

	return size / per_l1 + (size % per_l1 != 0);
}

/*
 * A valid header in hbuf: refcount table in cluster 1, L1 table in
 * cluster 3, just large enough for @size.
 */
static void make_qcow2(uint32_t version, uint32_t cb, uint64_t size)
{
	uint8_t *b = hbuf;

	memset(b, 0, BUF_LEN);
	put_be32(b, 0x514649fb);
	put_be32(b + 4, version);
	put_be32(b + 20, cb);
	put_be64(b + 24, size);
	put_be32(b + 36, (uint32_t)ref_l1_entries(cb, false, size));
	put_be64(b + 40, 3ull << cb);
	put_be64(b + 48, 1ull << cb);
	put_be32(b + 56, 1);
	if (version >= 3) {
		put_be32(b + 96, 4);
		put_be32(b + 100, 104);
	}
}

static void set_incompat(uint64_t bits)
{
	put_be64(hbuf + 72, bits);
}

static void set_header_length(uint32_t len)
{
	put_be32(hbuf + 100, len);
}

static int decode_len(size_t len, struct qcow2_header *h, const char **why)
{
	*why = NULL;
	return qcow2_header_decode(hbuf, len, h, why);
}

static int decode(struct qcow2_header *h, const char **why)
{
	return decode_len(BUF_LEN, h, why);
}

#define assert_header_ok()						\
	do {								\
		struct qcow2_header h_;					\
		const char *w_;						\
		assert_decoded(decode(&h_, &w_), w_);			\
	} while (0)

#define assert_header_rejected(err)					\
	do {								\
		struct qcow2_header h_;					\
		const char *w_;						\
		assert_rejected(decode(&h_, &w_), (err), w_);		\
	} while (0)

/* ---- header ---- */

static void test_v2_valid(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(2, 16, 64 * MiB);
	put_be64(hbuf + 8, 0x1000);
	put_be32(hbuf + 16, 11);
	put_be32(hbuf + 60, 2);
	put_be64(hbuf + 64, 0x50000);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.backing_file_offset, 0x1000);
	assert_int_equal(h.backing_file_size, 11);
	assert_int_equal(h.cluster_bits, 16);
	assert_int_equal(h.size, 64 * MiB);
	assert_int_equal(h.crypt_method, 0);
	assert_int_equal(h.l1_size, 1);
	assert_int_equal(h.l1_table_offset, 0x30000);
	assert_int_equal(h.refcount_table_offset, 0x10000);
	assert_int_equal(h.refcount_table_clusters, 1);
	assert_int_equal(h.nb_snapshots, 2);
	assert_int_equal(h.snapshots_offset, 0x50000);
	/* v2: refcount order 4, header length 72, no features */
	assert_int_equal(h.refcount_order, 4);
	assert_int_equal(h.header_length, 72);
	assert_int_equal(h.incompatible_features, 0);
	assert_int_equal(h.compression_type, 0);
	assert_int_equal(qcow2_cluster_size(&h), 65536);
	assert_false(qcow2_extended_l2(&h));
	assert_int_equal(qcow2_l2_entry_size(&h), 8);
	assert_int_equal(qcow2_l2_bits(&h), 13);
	assert_int_equal(qcow2_subcluster_bits(&h), 16);
	assert_int_equal(qcow2_l1_entries_needed(&h), 1);
}

static void test_v2_ignores_v3_fields(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(2, 16, 64 * MiB);
	/* in v2 these bytes are extensions or backing name, not fields */
	memset(hbuf + 72, 0xff, 40);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.incompatible_features, 0);
	assert_int_equal(h.refcount_order, 4);
	assert_int_equal(h.header_length, 72);
	assert_int_equal(h.compression_type, 0);
}

static void test_v3_valid(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(3, 16, 1 * GiB);
	set_incompat(QCOW2_INCOMPAT_DIRTY);
	put_be64(hbuf + 80, 1 | 1ull << 63);	/* lazy refcounts + unknown */
	put_be64(hbuf + 88, 3 | 1ull << 40);	/* autoclear, unknown too */
	put_be32(hbuf + 96, 6);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.version, 3);
	assert_int_equal(h.size, 1 * GiB);
	assert_int_equal(h.l1_size, 2);
	assert_int_equal(h.incompatible_features, 1);
	assert_int_equal(h.compatible_features, 1 | 1ull << 63);
	assert_int_equal(h.autoclear_features, 3 | 1ull << 40);
	assert_int_equal(h.refcount_order, 6);
	assert_int_equal(h.header_length, 104);
	assert_int_equal(h.compression_type, 0);
	assert_int_equal(qcow2_l1_entries_needed(&h), 2);
}

static void test_bad_magic_and_short(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	assert_rejected(decode_len(103, &h, &why), -EINVAL, why);
	assert_rejected(decode_len(72, &h, &why), -EINVAL, why);
	assert_rejected(decode_len(0, &h, &why), -EINVAL, why);
	assert_decoded(decode_len(104, &h, &why), why);
	hbuf[3] = 0xfa;
	assert_header_rejected(-EINVAL);
	memcpy(hbuf, "QFI\xfc", 4);
	assert_header_rejected(-EINVAL);
	memcpy(hbuf, "conectix", 8);
	assert_header_rejected(-EINVAL);
}

static void test_version(void **state)
{
	static const uint32_t bad[] = { 0, 1, 4, 5, 0x300, 0xffffffff };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be32(hbuf + 4, bad[i]);
		assert_header_rejected(-EOPNOTSUPP);
	}
}

static void test_cluster_bits(void **state)
{
	static const uint32_t bad[] = { 0, 1, 8, 22, 31, 32, 63, 64, 65,
					0xffffffff };
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (uint32_t v = 2; v <= 3; v++) {
			make_qcow2(v, 16, 64 * MiB);
			put_be32(hbuf + 20, bad[i]);
			put_be64(hbuf + 40, 0);
			assert_header_rejected(-EINVAL);
		}
	}
	for (uint32_t v = 2; v <= 3; v++) {
		make_qcow2(v, 9, 64 * MiB);
		assert_decoded(decode(&h, &why), why);
		assert_int_equal(qcow2_cluster_size(&h), 512);
		assert_int_equal(h.l1_size, 2048);	/* 32 KiB per entry */
		assert_int_equal(qcow2_l2_bits(&h), 6);
		make_qcow2(v, 21, 64 * MiB);
		assert_decoded(decode(&h, &why), why);
		assert_int_equal(qcow2_cluster_size(&h), 2 * MiB);
		assert_int_equal(qcow2_l2_bits(&h), 18);
	}
}

static void test_header_length(void **state)
{
	static const uint32_t bad[] = { 0, 72, 96, 100, 103, 105, 108, 111,
					0x80000000u, 0xfffffff8u };
	static const uint32_t good[] = { 104, 112, 120, 4096, 65536 };
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		set_header_length(bad[i]);
		assert_header_rejected(-EINVAL);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		set_header_length(good[i]);
		assert_decoded(decode(&h, &why), why);
		assert_int_equal(h.header_length, good[i]);
	}
	/* the header must fit in the first cluster */
	make_qcow2(3, 9, 64 * MiB);
	set_header_length(512);
	assert_header_ok();
	set_header_length(520);
	assert_header_rejected(-EINVAL);
	make_qcow2(3, 16, 64 * MiB);
	set_header_length(65544);
	assert_header_rejected(-EINVAL);
	/* a longer header than the bytes given: compression_type is missing */
	make_qcow2(3, 16, 64 * MiB);
	set_header_length(112);
	assert_rejected(decode_len(104, &h, &why), -EINVAL, why);
	assert_decoded(decode_len(105, &h, &why), why);
}

static void test_incompatible_features(void **state)
{
	static const unsigned int unknown[] = { 5, 6, 31, 32, 62, 63 };

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	set_incompat(QCOW2_INCOMPAT_DIRTY);
	assert_header_ok();
	set_incompat(QCOW2_INCOMPAT_CORRUPT);
	assert_header_rejected(-EINVAL);
	set_incompat(QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY);
	assert_header_rejected(-EINVAL);
	set_incompat(QCOW2_INCOMPAT_DATA_FILE);
	assert_header_rejected(-EOPNOTSUPP);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		set_incompat(1ull << unknown[i]);
		assert_header_rejected(-EOPNOTSUPP);
		set_incompat(1ull << unknown[i] | QCOW2_INCOMPAT_DIRTY);
		assert_header_rejected(-EOPNOTSUPP);
	}
	/* unknown compatible and autoclear bits are fine */
	set_incompat(0);
	put_be64(hbuf + 80, ~0ull);
	put_be64(hbuf + 88, ~0ull);
	assert_header_ok();
}

static void test_compression_type(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	/* zstd with its feature bit */
	make_qcow2(3, 16, 64 * MiB);
	set_incompat(QCOW2_INCOMPAT_COMPRESSION);
	set_header_length(112);
	hbuf[104] = QCOW2_COMPRESSION_ZSTD;
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZSTD);

	/* zstd without the bit */
	set_incompat(0);
	assert_header_rejected(-EINVAL);
	set_incompat(QCOW2_INCOMPAT_DIRTY);
	assert_header_rejected(-EINVAL);

	/* unknown types */
	set_incompat(QCOW2_INCOMPAT_COMPRESSION);
	hbuf[104] = 2;
	assert_header_rejected(-EOPNOTSUPP);
	hbuf[104] = 0xff;
	assert_header_rejected(-EOPNOTSUPP);

	/* explicit zlib (0) without the bit */
	set_incompat(0);
	hbuf[104] = 0;
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZLIB);

	/* byte 104 is not a field when header_length is 104 */
	set_header_length(104);
	hbuf[104] = QCOW2_COMPRESSION_ZSTD;
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZLIB);

	/* nor in version 2 */
	make_qcow2(2, 16, 64 * MiB);
	hbuf[104] = QCOW2_COMPRESSION_ZSTD;
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZLIB);
}

/*
 * qcow2.txt, compression_type: "If the incompatible bit 'Compression type'
 * is set: the field must be present and non-zero". QEMU refuses such images
 * ("Compression type incompatible feature bit must not be set").
 */
static void test_compression_bit_without_type(void **state)
{
	(void)state;
	/* bit set, field present but zlib */
	make_qcow2(3, 16, 64 * MiB);
	set_incompat(QCOW2_INCOMPAT_COMPRESSION);
	set_header_length(112);
	hbuf[104] = QCOW2_COMPRESSION_ZLIB;
	assert_header_rejected(-EINVAL);
	/* bit set, field absent */
	set_header_length(104);
	assert_header_rejected(-EINVAL);
}

static void test_extended_l2(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (uint32_t cb = 9; cb <= 13; cb++) {
		make_qcow2(3, cb, 64 * MiB);
		set_incompat(QCOW2_INCOMPAT_EXTL2);
		put_be32(hbuf + 36, 1u << 20);
		assert_header_rejected(-EINVAL);
	}
	make_qcow2(3, 14, 64 * MiB);
	set_incompat(QCOW2_INCOMPAT_EXTL2);
	put_be32(hbuf + 36, (uint32_t)ref_l1_entries(14, true, 64 * MiB));
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(qcow2_subcluster_bits(&h), 9);

	make_qcow2(3, 16, 512 * MiB);
	set_incompat(QCOW2_INCOMPAT_EXTL2);
	/* 64 KiB clusters, 4096 entries per L2: 256 MiB per L1 entry */
	assert_int_equal(ref_l1_entries(16, true, 512 * MiB), 2);
	put_be32(hbuf + 36, 1);
	assert_header_rejected(-EINVAL);
	put_be32(hbuf + 36, 2);
	assert_decoded(decode(&h, &why), why);
	assert_true(qcow2_extended_l2(&h));
	assert_int_equal(qcow2_l2_entry_size(&h), 16);
	assert_int_equal(qcow2_l2_bits(&h), 12);
	assert_int_equal(qcow2_subcluster_bits(&h), 11);
	assert_int_equal(qcow2_l1_entries_needed(&h), 2);

	make_qcow2(3, 21, 64 * MiB);
	set_incompat(QCOW2_INCOMPAT_EXTL2 | QCOW2_INCOMPAT_DIRTY);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(qcow2_subcluster_bits(&h), 16);
}

static void test_refcount_order(void **state)
{
	static const uint32_t bad[] = { 7, 8, 64, 0xffffffff };
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (uint32_t o = 0; o <= 6; o++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be32(hbuf + 96, o);
		assert_decoded(decode(&h, &why), why);
		assert_int_equal(h.refcount_order, o);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be32(hbuf + 96, bad[i]);
		assert_header_rejected(-EINVAL);
	}
}

static void test_crypt_method(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (uint32_t m = 0; m <= 2; m++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be32(hbuf + 32, m);
		assert_decoded(decode(&h, &why), why);
		assert_int_equal(h.crypt_method, m);
	}
	make_qcow2(2, 16, 64 * MiB);
	put_be32(hbuf + 32, QCOW2_CRYPT_AES);
	assert_header_ok();
	put_be32(hbuf + 32, 3);
	assert_header_rejected(-EOPNOTSUPP);
	put_be32(hbuf + 32, 0xffffffff);
	assert_header_rejected(-EOPNOTSUPP);
}

static void test_size_not_sector_multiple(void **state)
{
	static const uint64_t bad[] = { 1, 256, 511, 513, 64 * MiB + 1,
					64 * MiB - 1, 0xffffffffffffffffull };
	struct qcow2_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be64(hbuf + 24, bad[i]);
		put_be32(hbuf + 36, 4);
		assert_header_rejected(-EINVAL);
	}
	make_qcow2(3, 16, 0);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.l1_size, 0);
	make_qcow2(3, 16, 512);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.l1_size, 1);
}

static void test_l1_too_small(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	put_be32(hbuf + 36, 0);
	assert_header_rejected(-EINVAL);
	/* 1 TiB of 64 KiB clusters: 512 MiB per L1 entry, 2048 entries */
	make_qcow2(3, 16, 1024 * GiB);
	assert_int_equal(get_be32(hbuf + 36), 2048);
	assert_header_ok();
	put_be32(hbuf + 36, 2047);
	assert_header_rejected(-EINVAL);
	make_qcow2(3, 16, 1024 * GiB + 512);
	assert_int_equal(get_be32(hbuf + 36), 2049);
	assert_header_ok();
	put_be32(hbuf + 36, 2048);
	assert_header_rejected(-EINVAL);
	/* a larger L1 than needed is fine */
	make_qcow2(3, 16, 64 * MiB);
	put_be32(hbuf + 36, 1000);
	assert_decoded(decode(&h, &why), why);
	assert_int_equal(h.l1_size, 1000);
}

static void test_l1_too_large(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	/* QEMU: at most 32 MiB of L1 table = 4 Mi entries */
	make_qcow2(3, 16, 64 * MiB);
	put_be32(hbuf + 36, 4u << 20);
	assert_decoded(decode(&h, &why), why);
	put_be32(hbuf + 36, (4u << 20) + 1);
	assert_header_rejected(-EINVAL);
	put_be32(hbuf + 36, 0x20000000);	/* 8 * this wraps in 32 bits */
	assert_header_rejected(-EINVAL);
	put_be32(hbuf + 36, 0xffffffff);
	assert_header_rejected(-EINVAL);

	/* so the virtual size is bounded: 128 GiB with 512-byte clusters */
	make_qcow2(3, 9, 128 * GiB);
	assert_int_equal(get_be32(hbuf + 36), 4u << 20);
	assert_header_ok();
	make_qcow2(3, 9, 128 * GiB + 512);
	put_be32(hbuf + 36, 4u << 20);
	assert_header_rejected(-EINVAL);
	/* and 2 EiB with 2 MiB clusters */
	make_qcow2(3, 21, 1ull << 61);
	assert_int_equal(get_be32(hbuf + 36), 4u << 20);
	assert_header_ok();
	make_qcow2(3, 21, (1ull << 61) + 512);
	put_be32(hbuf + 36, 4u << 20);
	assert_header_rejected(-EINVAL);
	make_qcow2(3, 21, 1ull << 63);
	put_be32(hbuf + 36, 4u << 20);
	assert_header_rejected(-EINVAL);
}

/*
 * A virtual size near 2^64 wraps the rounding in qcow2_l1_entries_needed()
 * ((size + 2^shift - 1) >> shift) to a small value, so a 16 EiB disk with
 * an empty L1 table is accepted.
 */
static void test_size_overflow(void **state)
{
	(void)state;
	for (uint32_t cb = 9; cb <= 21; cb += 4) {
		make_qcow2(3, cb, 0xfffffffffffffe00ull);
		put_be32(hbuf + 36, 0);
		assert_header_rejected(-EINVAL);
		put_be32(hbuf + 36, 4u << 20);
		assert_header_rejected(-EINVAL);
	}
}

static void test_l1_alignment(void **state)
{
	struct qcow2_header h;
	const char *why;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	put_be64(hbuf + 40, 0x30000 + 512);
	assert_header_rejected(-EINVAL);
	put_be64(hbuf + 40, 0x38000);
	assert_header_rejected(-EINVAL);
	put_be64(hbuf + 40, 0x30008);
	assert_header_rejected(-EINVAL);
	put_be64(hbuf + 40, 0xffffffffffff0000ull);
	assert_decoded(decode(&h, &why), why);	/* layout_check's job */
	make_qcow2(2, 9, 64 * MiB);
	put_be64(hbuf + 40, 512 * 7);
	assert_header_ok();
	put_be64(hbuf + 40, 512 * 7 + 8);
	assert_header_rejected(-EINVAL);
	make_qcow2(3, 21, 64 * MiB);
	put_be64(hbuf + 40, 1 * MiB);
	assert_header_rejected(-EINVAL);
	put_be64(hbuf + 40, 4 * MiB);
	assert_header_ok();
}

/* ---- layout ---- */

static int layout(uint64_t image_bytes)
{
	struct qcow2_header h;
	const char *why;
	int r;

	assert_decoded(decode(&h, &why), why);
	why = NULL;
	r = qcow2_layout_check(&h, image_bytes, &why);
	if (r)
		assert_non_null(why);
	return r;
}

static void test_layout(void **state)
{
	(void)state;
	/* L1: 2048 entries (16 KiB) at 0x30000 */
	make_qcow2(3, 16, 1024 * GiB);
	assert_int_equal(layout(0x30000 + 16 * KiB), 0);
	assert_int_equal(layout(1 * GiB), 0);
	assert_int_not_equal(layout(0x30000 + 16 * KiB - 1), 0);
	assert_int_not_equal(layout(0x30000), 0);
	assert_int_not_equal(layout(0), 0);
	/* near 2^64: no wrap-around */
	put_be64(hbuf + 40, 0xffffffffffff0000ull);
	assert_int_equal(layout(0xffffffffffffffffull), 0);
	assert_int_not_equal(layout(0xffffffffffff3fffull), 0);
	assert_int_not_equal(layout(0xffffffffffff0000ull), 0);
	put_be64(hbuf + 40, 1ull << 62);
	assert_int_not_equal(layout(1ull << 62), 0);
	/* an empty L1 anywhere inside */
	make_qcow2(3, 16, 0);
	assert_int_equal(layout(0x30000), 0);
}

static void test_layout_backing(void **state)
{
	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	put_be64(hbuf + 8, 0x200);
	put_be32(hbuf + 16, 20);
	assert_int_equal(layout(1 * MiB), 0);
	/* the name may end exactly at the end of the first cluster */
	put_be64(hbuf + 8, 65536 - 20);
	assert_int_equal(layout(1 * MiB), 0);
	put_be64(hbuf + 8, 65536 - 19);
	assert_int_not_equal(layout(1 * MiB), 0);
	put_be64(hbuf + 8, 65536);
	put_be32(hbuf + 16, 0);
	assert_int_equal(layout(1 * MiB), 0);
	put_be64(hbuf + 8, 65537);
	assert_int_not_equal(layout(1 * MiB), 0);
	put_be64(hbuf + 8, 0xffffffffffffffffull);
	put_be32(hbuf + 16, 0xffffffff);
	assert_int_not_equal(layout(0xffffffffffffffffull), 0);
	/* no backing file: the size field is undefined and ignored */
	put_be64(hbuf + 8, 0);
	put_be32(hbuf + 16, 0xffffffff);
	assert_int_equal(layout(1 * MiB), 0);
	/* small clusters */
	make_qcow2(2, 9, 64 * MiB);
	put_be64(hbuf + 8, 72);
	put_be32(hbuf + 16, 440);
	assert_int_equal(layout(1 * MiB), 0);
	put_be32(hbuf + 16, 441);
	assert_int_not_equal(layout(1 * MiB), 0);
}

/* ---- header extensions ---- */

static size_t put_ext(uint8_t *b, size_t off, uint32_t type, uint32_t len,
		      uint8_t fill)
{
	put_be32(b + off, type);
	put_be32(b + off + 4, len);
	memset(b + off + 8, fill, len);
	return off + 8 + ((len + 7) / 8) * 8;
}

struct ext {
	uint32_t type;
	size_t data_off;
	uint32_t len;
};

/* Walk all extensions; returns the iterator's final result. */
static int walk(const uint8_t *b, size_t len, size_t start, struct ext *out,
		int max, int *n)
{
	size_t off = start;
	int r;

	*n = 0;
	for (;;) {
		struct ext e = { 0 };
		const char *why = NULL;

		r = qcow2_extension_next(b, len, &off, &e.type, &e.data_off,
					 &e.len, &why);
		if (r < 0)
			assert_non_null(why);
		if (r != 1)
			return r;
		assert_true(*n < max);
		assert_true(e.data_off + e.len <= len);
		out[(*n)++] = e;
	}
}

static void test_ext_normal_list(void **state)
{
	struct ext e[8];
	size_t off = 104;
	int n;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	off = put_ext(hbuf, off, QCOW2_EXT_BACKING_FORMAT, 5, 'q');
	off = put_ext(hbuf, off, QCOW2_EXT_FEATURE_TABLE, 48 * 3, 0);
	off = put_ext(hbuf, off, QCOW2_EXT_FDE, 16, 0);
	put_be64(hbuf + off - 16, 0x50000);
	put_be64(hbuf + off - 8, 0x1f9000);
	off = put_ext(hbuf, off, 0x12345678, 0, 0);	/* unknown, empty */
	off = put_ext(hbuf, off, QCOW2_EXT_DATA_FILE, 9, 'd');
	put_ext(hbuf, off, QCOW2_EXT_END, 0, 0);

	assert_int_equal(walk(hbuf, BUF_LEN, 104, e, 8, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(e[0].type, QCOW2_EXT_BACKING_FORMAT);
	assert_int_equal(e[0].data_off, 112);
	assert_int_equal(e[0].len, 5);
	assert_memory_equal(hbuf + e[0].data_off, "qqqqq", 5);
	assert_int_equal(e[1].type, QCOW2_EXT_FEATURE_TABLE);
	assert_int_equal(e[1].data_off, 112 + 8 + 8);	/* 5 padded to 8 */
	assert_int_equal(e[1].len, 144);
	assert_int_equal(e[2].type, QCOW2_EXT_FDE);
	assert_int_equal(e[2].data_off, 128 + 144 + 8);
	assert_int_equal(e[2].len, 16);
	assert_int_equal(get_be64(hbuf + e[2].data_off), 0x50000);
	assert_int_equal(get_be64(hbuf + e[2].data_off + 8), 0x1f9000);
	assert_int_equal(e[3].type, 0x12345678);
	assert_int_equal(e[3].len, 0);
	assert_int_equal(e[4].type, QCOW2_EXT_DATA_FILE);
	assert_int_equal(e[4].data_off, 280 + 16 + 8 + 8);
	assert_int_equal(e[4].len, 9);

	/* the same walk from a v2 header (extensions start at 72) */
	memset(hbuf + 72, 0, 64);
	off = put_ext(hbuf, 72, QCOW2_EXT_BACKING_FORMAT, 3, 'r');
	put_ext(hbuf, off, QCOW2_EXT_END, 0, 0);
	assert_int_equal(walk(hbuf, BUF_LEN, 72, e, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].data_off, 80);
}

static void test_ext_end_marker(void **state)
{
	struct ext e[2];
	size_t off, data_off = 777;
	uint32_t type = 1, len = 1;
	const char *why = NULL;
	int n;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	assert_int_equal(walk(hbuf, BUF_LEN, 104, e, 2, &n), 0);
	assert_int_equal(n, 0);
	/* the end marker's length does not matter */
	put_be32(hbuf + 108, 0xffffffff);
	off = 104;
	assert_int_equal(qcow2_extension_next(hbuf, BUF_LEN, &off, &type,
					      &data_off, &len, &why), 0);
	assert_int_equal(type, 0);
	assert_int_equal(off, 104);
	/* an end marker in the last 8 bytes of the cluster */
	memset(hbuf, 0, BUF_LEN);
	off = BUF_LEN - 8;
	assert_int_equal(qcow2_extension_next(hbuf, BUF_LEN, &off, &type,
					      &data_off, &len, &why), 0);
}

static void test_ext_truncated(void **state)
{
	struct ext e[4];
	size_t off;
	int n;

	(void)state;
	/* data runs past the buffer by one byte */
	make_qcow2(3, 9, 64 * MiB);
	off = put_ext(hbuf, 104, QCOW2_EXT_BACKING_FORMAT, 5, 'q');
	put_be32(hbuf + off, QCOW2_EXT_FEATURE_TABLE);
	put_be32(hbuf + off + 4, 512 - off - 8 + 1);
	assert_int_equal(walk(hbuf, 512, 104, e, 4, &n), -EINVAL);
	assert_int_equal(n, 1);
	/* exactly to the end of the buffer, then nothing: no end marker */
	put_be32(hbuf + off + 4, 512 - off - 8);
	assert_int_equal(walk(hbuf, 512, 104, e, 4, &n), -EINVAL);
	assert_int_equal(n, 2);
	/* room for the extension and its end marker */
	put_be32(hbuf + off + 4, 512 - off - 16);
	memset(hbuf + 504, 0, 8);
	assert_int_equal(walk(hbuf, 512, 104, e, 4, &n), 0);
	assert_int_equal(n, 2);
	/* an odd length whose padding would cross the end */
	put_be32(hbuf + off + 4, 512 - off - 8 - 3);
	assert_int_equal(walk(hbuf, 512, 104, e, 4, &n), -EINVAL);
	assert_int_equal(n, 2);
	/* a header too short for an extension header */
	assert_int_equal(walk(hbuf, 109, 104, e, 4, &n), -EINVAL);
	assert_int_equal(walk(hbuf, 7, 0, e, 4, &n), -EINVAL);
	assert_int_equal(walk(hbuf, 0, 0, e, 4, &n), -EINVAL);
	/* a start offset past the buffer */
	assert_int_equal(walk(hbuf, 512, 512, e, 4, &n), -EINVAL);
	assert_int_equal(walk(hbuf, 512, 100000, e, 4, &n), -EINVAL);
	assert_int_equal(walk(hbuf, 512, (size_t)-1, e, 4, &n), -EINVAL);
	assert_int_equal(walk(hbuf, 512, (size_t)-8, e, 4, &n), -EINVAL);
}

static void test_ext_huge_length(void **state)
{
	static const uint32_t lens[] = { 0xffffffff, 0xfffffff9, 0x80000000,
					 65536, 65536 - 104 - 7 };
	struct ext e[4];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		make_qcow2(3, 16, 64 * MiB);
		put_be32(hbuf + 104, QCOW2_EXT_BITMAPS);
		put_be32(hbuf + 108, lens[i]);
		assert_int_equal(walk(hbuf, BUF_LEN, 104, e, 4, &n), -EINVAL);
		assert_int_equal(n, 0);
	}
}

/* Extensions of length 0 back to back: the walk must still end. */
static void test_ext_terminates(void **state)
{
	static struct ext e[BUF_LEN / 8];
	int n;

	(void)state;
	make_qcow2(3, 16, 64 * MiB);
	for (size_t off = 104; off < BUF_LEN; off += 8)
		put_ext(hbuf, off, 0x1000 + (uint32_t)off, 0, 0);
	assert_int_equal(walk(hbuf, BUF_LEN, 104, e, BUF_LEN / 8, &n), -EINVAL);
	assert_int_equal(n, (BUF_LEN - 104) / 8);
}

/* ---- L1 entries ---- */

static struct qcow2_header hdr(uint32_t version, uint32_t cb, uint64_t incompat)
{
	struct qcow2_header h;
	const char *why;

	make_qcow2(version, cb, 64 * MiB);
	if (version == 3)
		set_incompat(incompat);
	put_be32(hbuf + 36, 1u << 20);
	assert_decoded(decode(&h, &why), why);
	return h;
}

static int l1(const struct qcow2_header *h, uint64_t entry, u64 *off)
{
	const char *why = NULL;
	int r;

	*off = 0x5a5a5a5a;
	r = qcow2_l1_decode(h, entry, off, &why);
	if (r)
		assert_non_null(why);
	return r;
}

static void test_l1_decode(void **state)
{
	struct qcow2_header h = hdr(3, 16, 0);
	static const unsigned int reserved[] = { 0, 1, 8, 56, 57, 61, 62 };
	u64 off;

	(void)state;
	assert_int_equal(l1(&h, 0, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(l1(&h, 1ull << 63, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(l1(&h, 0x50000, &off), 0);
	assert_int_equal(off, 0x50000);
	assert_int_equal(l1(&h, 1ull << 63 | 0x50000, &off), 0);
	assert_int_equal(off, 0x50000);
	/* the largest offset: bits 16..55 */
	assert_int_equal(l1(&h, 0x00ffffffffff0000ull, &off), 0);
	assert_int_equal(off, 0x00ffffffffff0000ull);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		assert_int_equal(l1(&h, 0x50000 | 1ull << reserved[i], &off),
				 -EINVAL);
		assert_int_equal(l1(&h, 1ull << reserved[i], &off), -EINVAL);
	}
	/* alignment to the cluster */
	assert_int_equal(l1(&h, 0x50200, &off), -EINVAL);
	assert_int_equal(l1(&h, 0x58000, &off), -EINVAL);
	assert_int_equal(l1(&h, 0x10000000200ull, &off), -EINVAL);
	h = hdr(2, 9, 0);
	assert_int_equal(l1(&h, 0x200, &off), 0);
	assert_int_equal(off, 0x200);
	assert_int_equal(l1(&h, 0x100, &off), -EINVAL);
	h = hdr(3, 21, 0);
	assert_int_equal(l1(&h, 0x600000, &off), 0);
	assert_int_equal(l1(&h, 0x700000, &off), -EINVAL);
}

/* ---- L2 entries ---- */

static int l2(const struct qcow2_header *h, uint64_t entry, uint64_t bitmap,
	      uint32_t sc, struct qcow2_map *m)
{
	const char *why = NULL;
	int r;

	memset(m, 0x5a, sizeof(*m));
	r = qcow2_l2_decode(h, entry, bitmap, sc, m, &why);
	if (r)
		assert_non_null(why);
	return r;
}

static void test_l2_standard(void **state)
{
	struct qcow2_header h;
	struct qcow2_map m;

	(void)state;
	for (uint32_t v = 2; v <= 3; v++) {
		h = hdr(v, 16, 0);
		assert_int_equal(l2(&h, 0, 0, 0, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);
		assert_int_equal(m.host_offset, 0);
		assert_int_equal(m.compressed_bytes, 0);
		/* offset 0 with COPIED: still unallocated without a data file */
		assert_int_equal(l2(&h, 1ull << 63, 0, 0, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);
		assert_int_equal(l2(&h, 0x70000, 0, 0, &m), 0);
		assert_int_equal(m.kind, QCOW2_DATA);
		assert_int_equal(m.host_offset, 0x70000);
		assert_int_equal(l2(&h, 1ull << 63 | 0x70000, 0, 5, &m), 0);
		assert_int_equal(m.kind, QCOW2_DATA);
		assert_int_equal(m.host_offset, 0x70000);	/* no subclusters */
		assert_int_equal(l2(&h, 0x00ffffffffff0000ull, 0, 0, &m), 0);
		assert_int_equal(m.host_offset, 0x00ffffffffff0000ull);
		/* the bitmap argument means nothing without extended L2 */
		assert_int_equal(l2(&h, 0x70000, ~0ull, 3, &m), 0);
		assert_int_equal(m.kind, QCOW2_DATA);
		assert_int_equal(m.host_offset, 0x70000);
	}
}

static void test_l2_zero_flag(void **state)
{
	struct qcow2_header h;
	struct qcow2_map m;

	(void)state;
	h = hdr(3, 16, 0);
	assert_int_equal(l2(&h, 1, 0, 0, &m), 0);
	assert_int_equal(m.kind, QCOW2_ZERO);
	/* preallocated zero cluster */
	assert_int_equal(l2(&h, 0x70000 | 1, 0, 0, &m), 0);
	assert_int_equal(m.kind, QCOW2_ZERO);
	assert_int_equal(l2(&h, 1ull << 63 | 0x70000 | 1, 0, 0, &m), 0);
	assert_int_equal(m.kind, QCOW2_ZERO);
	/* v2 has no zero flag: bit 0 is reserved */
	h = hdr(2, 16, 0);
	assert_int_equal(l2(&h, 1, 0, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 0x70000 | 1, 0, 0, &m), -EINVAL);
	/* nor with extended L2 entries */
	h = hdr(3, 16, QCOW2_INCOMPAT_EXTL2);
	assert_int_equal(l2(&h, 1, 0, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 0x70000 | 1, 1, 0, &m), -EINVAL);
}

static void test_l2_misaligned(void **state)
{
	struct qcow2_header h = hdr(3, 16, 0);
	struct qcow2_map m;

	(void)state;
	assert_int_equal(l2(&h, 0x70200, 0, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 0x78000, 0, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 1ull << 63 | 0x7fe00, 0, 0, &m), -EINVAL);
	/* a preallocated zero cluster's offset must be aligned too */
	assert_int_equal(l2(&h, 0x70200 | 1, 0, 0, &m), -EINVAL);
	h = hdr(3, 9, 0);
	assert_int_equal(l2(&h, 0x70200, 0, 0, &m), 0);
	assert_int_equal(m.host_offset, 0x70200);
}

static void test_l2_reserved_bits(void **state)
{
	struct qcow2_header h = hdr(3, 16, 0);
	struct qcow2_map m;

	(void)state;
	for (unsigned int bit = 1; bit <= 8; bit++) {
		assert_int_equal(l2(&h, 0x70000 | 1ull << bit, 0, 0, &m),
				 -EINVAL);
		assert_int_equal(l2(&h, 1ull << bit, 0, 0, &m), -EINVAL);
	}
	for (unsigned int bit = 56; bit <= 61; bit++) {
		assert_int_equal(l2(&h, 0x70000 | 1ull << bit, 0, 0, &m),
				 -EINVAL);
		assert_int_equal(l2(&h, 1ull << bit, 0, 0, &m), -EINVAL);
	}
}

/* Compressed descriptors, worked out by hand from the spec's bit layout. */
static const struct {
	uint32_t cb;
	uint64_t entry;
	uint64_t offset;
	uint64_t bytes;
} compressed[] = {
	/* cb 9: x = 61, offset bits 0-60 (56-60 must be 0), 1 sector bit */
	{ 9, 0x6000123456789abcull, 0x123456789abcull, 2 * 512 - 0xbc },
	{ 9, 0x4000123456789abcull, 0x123456789abcull, 512 - 0xbc },
	{ 9, 0x40ffffffffffffffull, 0xffffffffffffffull, 1 },
	{ 9, 0x4000000000000000ull, 0, 512 },
	/* cb 16: x = 54, offset bits 0-53, 8 sector bits 54-61 */
	{ 16, 0x69523456789abdefull, 0x123456789abdefull, 166 * 512 - 0x1ef },
	{ 16, 0x7fffffffffffffffull, 0x3fffffffffffffull, 256 * 512 - 511 },
	{ 16, 0x4000000000000200ull, 0x200, 512 },
	{ 16, 0x4040000000030000ull, 0x30000, 2 * 512 },
	/* cb 21: x = 49, offset bits 0-48, 13 sector bits 49-61 */
	{ 21, 0x7fff23456789abcdull, 0x123456789abcdull, 8192 * 512 - 0x1cd },
	{ 21, 0x646923456789abcdull, 0x123456789abcdull, 0x1235 * 512 - 0x1cd },
	{ 21, 0x4001ffffffffffffull, 0x1ffffffffffffull, 1 },
	{ 21, 0x4002000000001000ull, 0x1000, 2 * 512 },
};

static void test_l2_compressed(void **state)
{
	struct qcow2_header h;
	struct qcow2_map m;

	(void)state;
	for (size_t i = 0; i < sizeof(compressed) / sizeof(compressed[0]);
	     i++) {
		for (uint32_t v = 2; v <= 3; v++) {
			h = hdr(v, compressed[i].cb, 0);
			if (l2(&h, compressed[i].entry, 0, 0, &m))
				fail_msg("entry %zu rejected", i);
			assert_int_equal(m.kind, QCOW2_COMPRESSED);
			assert_int_equal(m.host_offset, compressed[i].offset);
			assert_int_equal(m.compressed_bytes,
					 compressed[i].bytes);
			/* COPIED is never set on compressed clusters */
			assert_int_equal(l2(&h, compressed[i].entry | 1ull << 63,
					    0, 0, &m), -EINVAL);
		}
	}
	/* cb 9: offset bits 56..60 must be zero */
	h = hdr(3, 9, 0);
	for (unsigned int bit = 56; bit <= 60; bit++)
		assert_int_equal(l2(&h, 1ull << 62 | 1ull << bit, 0, 0, &m),
				 -EINVAL);
	/* cb 12: x = 58, bits 56, 57 belong to the offset */
	h = hdr(3, 12, 0);
	assert_int_equal(l2(&h, 1ull << 62 | 1ull << 57, 0, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 1ull << 62 | 1ull << 58, 0, 0, &m), 0);
	assert_int_equal(m.host_offset, 0);
	assert_int_equal(m.compressed_bytes, 1024);
	/* cb 16: the same bits are sector counts there */
	h = hdr(3, 16, 0);
	assert_int_equal(l2(&h, 1ull << 62 | 1ull << 56, 0, 0, &m), 0);
	assert_int_equal(m.compressed_bytes, 5 * 512);
	/* the zero flag is just an offset bit of a compressed cluster */
	assert_int_equal(l2(&h, 1ull << 62 | 1, 0, 0, &m), 0);
	assert_int_equal(m.host_offset, 1);
	assert_int_equal(m.compressed_bytes, 511);
}

static void test_l2_compressed_extended(void **state)
{
	struct qcow2_header h = hdr(3, 16, QCOW2_INCOMPAT_EXTL2);
	struct qcow2_map m;

	(void)state;
	assert_int_equal(l2(&h, 0x69523456789abdefull, 0, 7, &m), 0);
	assert_int_equal(m.kind, QCOW2_COMPRESSED);
	assert_int_equal(m.host_offset, 0x123456789abdefull);
	assert_int_equal(m.compressed_bytes, 166 * 512 - 0x1ef);
	/* compressed clusters have no subclusters: the bitmap is reserved */
	assert_int_equal(l2(&h, 0x69523456789abdefull, 1, 0, &m), -EINVAL);
	assert_int_equal(l2(&h, 0x69523456789abdefull, 1ull << 32, 0, &m),
			 -EINVAL);
	assert_int_equal(l2(&h, 0x69523456789abdefull, 1ull << 63, 0, &m),
			 -EINVAL);
}

static void test_l2_extended(void **state)
{
	struct qcow2_header h = hdr(3, 16, QCOW2_INCOMPAT_EXTL2);
	struct qcow2_map m;
	const uint64_t host = 0x70000;

	(void)state;
	/* 64 KiB clusters: 32 subclusters of 2 KiB */
	for (uint32_t sc = 0; sc < 32; sc++) {
		uint64_t alloc = 1ull << sc, zero = 1ull << (sc + 32);
		uint64_t other = sc ? 1 : 2;	/* another subcluster's bit */

		assert_int_equal(l2(&h, host, alloc, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_DATA);
		assert_int_equal(m.host_offset, host + sc * 2048);
		assert_int_equal(l2(&h, 1ull << 63 | host, alloc, sc, &m), 0);
		assert_int_equal(m.host_offset, host + sc * 2048);

		assert_int_equal(l2(&h, host, zero, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_ZERO);
		assert_int_equal(l2(&h, 0, zero, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_ZERO);

		assert_int_equal(l2(&h, host, 0, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);
		assert_int_equal(l2(&h, 0, 0, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);
		assert_int_equal(l2(&h, host, other, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);
		assert_int_equal(l2(&h, host, other << 32, sc, &m), 0);
		assert_int_equal(m.kind, QCOW2_UNALLOCATED);

		/* allocated and zero at once */
		assert_int_equal(l2(&h, host, alloc | zero, sc, &m), -EINVAL);
		/* allocated without a host cluster */
		assert_int_equal(l2(&h, 0, alloc, sc, &m), -EINVAL);
		assert_int_equal(l2(&h, 1ull << 63, alloc, sc, &m), -EINVAL);
	}
	/* 16 KiB clusters: 512-byte subclusters */
	h = hdr(3, 14, QCOW2_INCOMPAT_EXTL2);
	assert_int_equal(l2(&h, 0xc000, 1u << 31, 31, &m), 0);
	assert_int_equal(m.host_offset, 0xc000 + 31 * 512);
	/* 2 MiB clusters: 64 KiB subclusters */
	h = hdr(3, 21, QCOW2_INCOMPAT_EXTL2);
	assert_int_equal(l2(&h, 0x600000, 1u << 5, 5, &m), 0);
	assert_int_equal(m.host_offset, 0x600000 + 5 * 65536);
	assert_int_equal(l2(&h, 0x610000, 1u << 5, 5, &m), -EINVAL);
}

/* ---- real images ---- */

struct qimg {
	const char *path;
	uint64_t file_size;
	struct qcow2_header h;
	size_t cl;		/* bytes of the first cluster read */
	uint8_t *first;		/* the first cluster (up to 64 KiB) */
};

static int load_qimg(const char *name, struct qimg *q)
{
	const char *why = NULL;
	int r;

	q->path = strdup(unit_image(name));
	assert_non_null(q->path);
	q->file_size = unit_file_size(q->path);
	q->first = calloc(1, BUF_LEN);
	assert_non_null(q->first);
	q->cl = unit_read_at(q->path, 0, q->first, BUF_LEN);
	r = qcow2_header_decode(q->first, q->cl, &q->h, &why);
	if (r)
		return r;
	if (q->cl > qcow2_cluster_size(&q->h))
		q->cl = qcow2_cluster_size(&q->h);
	/* again with exactly the first cluster */
	assert_decoded(qcow2_header_decode(q->first, q->cl, &q->h, &why), why);
	why = NULL;
	if (qcow2_layout_check(&q->h, q->file_size, &why))
		fail_msg("%s: %s", name, why);
	assert_true(qcow2_l1_entries_needed(&q->h) <= q->h.l1_size);
	return 0;
}

static void free_qimg(struct qimg *q)
{
	free((void *)q->path);
	free(q->first);
}

/* Find extension @type; returns its data offset or 0. */
static size_t find_ext(const struct qimg *q, uint32_t type, uint32_t *len)
{
	struct ext e[32];
	int n;

	assert_int_equal(walk(q->first, q->cl, q->h.header_length, e, 32, &n),
			 0);
	for (int i = 0; i < n; i++)
		if (e[i].type == type) {
			*len = e[i].len;
			return e[i].data_off;
		}
	return 0;
}

static uint64_t read_be64_at(const char *path, uint64_t off)
{
	uint8_t b[8];

	assert_int_equal(unit_read_at(path, off, b, 8), 8);
	return get_be64(b);
}

/* Map guest byte @vbyte (in the first L1 entry's range). */
static int map_guest(const struct qimg *q, uint64_t vbyte, struct qcow2_map *m)
{
	uint32_t cb = q->h.cluster_bits;
	uint64_t l1e, entry, bitmap = 0, pos;
	u64 l2_off;
	uint64_t l1_index = vbyte >> (cb + qcow2_l2_bits(&q->h));
	uint64_t l2_index = (vbyte >> cb) &
			    ((1ull << qcow2_l2_bits(&q->h)) - 1);
	uint32_t sc = (vbyte & (qcow2_cluster_size(&q->h) - 1)) >>
		      qcow2_subcluster_bits(&q->h);
	const char *why = NULL;

	assert_true(l1_index < q->h.l1_size);
	l1e = read_be64_at(q->path, q->h.l1_table_offset + 8 * l1_index);
	assert_decoded(qcow2_l1_decode(&q->h, l1e, &l2_off, &why), why);
	if (!l2_off) {
		m->kind = QCOW2_UNALLOCATED;
		return 0;
	}
	assert_true(vc_range_ok(l2_off, qcow2_cluster_size(&q->h),
				q->file_size));
	pos = l2_off + l2_index * qcow2_l2_entry_size(&q->h);
	entry = read_be64_at(q->path, pos);
	if (qcow2_extended_l2(&q->h))
		bitmap = read_be64_at(q->path, pos + 8);
	return qcow2_l2_decode(&q->h, entry, bitmap, sc, m, &why);
}

static void expect_data(const struct qimg *q, uint64_t vbyte, uint8_t pattern)
{
	struct qcow2_map m;
	uint8_t b[512];

	assert_int_equal(map_guest(q, vbyte, &m), 0);
	assert_int_equal(m.kind, QCOW2_DATA);
	assert_true(m.host_offset % 512 == 0);
	/* host_offset is the subcluster (or cluster) start */
	unit_read_at(q->path, m.host_offset +
		     (vbyte & ((1ull << qcow2_subcluster_bits(&q->h)) - 1)),
		     b, 512);
	for (int i = 0; i < 512; i++)
		if (b[i] != pattern)
			fail_msg("guest %llu: byte %d is %#x, not %#x",
				 (unsigned long long)vbyte, i, b[i], pattern);
}

static void expect_kind(const struct qimg *q, uint64_t vbyte,
			enum qcow2_kind kind)
{
	struct qcow2_map m;

	assert_int_equal(map_guest(q, vbyte, &m), 0);
	assert_int_equal(m.kind, kind);
}

/* A compressed cluster of @pattern bytes at guest @vbyte. */
static void expect_compressed(const struct qimg *q, uint64_t vbyte,
			      uint8_t pattern)
{
	uint64_t cs = qcow2_cluster_size(&q->h);
	struct qcow2_map m;
	uint8_t *in;

	assert_int_equal(map_guest(q, vbyte, &m), 0);
	assert_int_equal(m.kind, QCOW2_COMPRESSED);
	assert_true(m.compressed_bytes > 0);
	/* the last sector may end past EOF, but not past its cluster */
	assert_true(m.host_offset + m.compressed_bytes <=
		    (q->file_size + cs - 1) / cs * cs);
	assert_true(m.compressed_bytes <= 2 * cs);
	in = calloc(1, m.compressed_bytes);
	assert_non_null(in);
	unit_read_at(q->path, m.host_offset, in, m.compressed_bytes);
	if (q->h.compression_type == QCOW2_COMPRESSION_ZSTD) {
		/* a zstd frame starts here: magic 0xfd2fb528 (LE) */
		assert_int_equal(in[0], 0x28);
		assert_int_equal(in[1], 0xb5);
		assert_int_equal(in[2], 0x2f);
		assert_int_equal(in[3], 0xfd);
	} else {
#ifdef HAVE_ZLIB
		/* raw deflate: inflate it and compare */
		uint8_t *out = malloc(cs);
		z_stream z = { 0 };

		assert_non_null(out);
		assert_int_equal(inflateInit2(&z, -15), Z_OK);
		z.next_in = in;
		z.avail_in = (uInt)m.compressed_bytes;
		z.next_out = out;
		z.avail_out = (uInt)cs;
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, cs);
		inflateEnd(&z);
		for (uint64_t i = 0; i < cs; i++)
			if (out[i] != pattern)
				fail_msg("decompressed byte %llu is %#x",
					 (unsigned long long)i, out[i]);
		free(out);
#else
		(void)pattern;
#endif
	}
	free(in);
}

static void test_image_v2(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-v2.qcow2", &q), 0);
	assert_int_equal(q.h.version, 2);
	assert_int_equal(q.h.cluster_bits, 16);
	assert_int_equal(q.h.header_length, 72);
	assert_int_equal(q.h.size, 64 * MiB);
	expect_data(&q, 0, 0x11);
	expect_data(&q, 65536 - 512, 0x11);
	expect_kind(&q, 65536, QCOW2_UNALLOCATED);
	expect_compressed(&q, 131072, 0x22);
	expect_kind(&q, 63 * MiB, QCOW2_UNALLOCATED);
	free_qimg(&q);
}

static void test_image_v3(void **state)
{
	struct qimg q;
	uint32_t len = 0;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-v3.qcow2", &q), 0);
	assert_int_equal(q.h.version, 3);
	assert_int_equal(q.h.header_length, 112);
	assert_int_equal(q.h.incompatible_features, 0);
	assert_int_equal(q.h.refcount_order, 4);
	assert_int_not_equal(find_ext(&q, QCOW2_EXT_FEATURE_TABLE, &len), 0);
	assert_int_equal(len % 48, 0);
	expect_data(&q, 512, 0x33);
	expect_kind(&q, 65536, QCOW2_ZERO);
	expect_compressed(&q, 131072 + 4096, 0x44);
	expect_kind(&q, 196608, QCOW2_UNALLOCATED);
	free_qimg(&q);
}

static void test_image_cluster_512(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-c512.qcow2", &q), 0);
	assert_int_equal(q.h.cluster_bits, 9);
	expect_data(&q, 0, 0x55);
	expect_kind(&q, 512, QCOW2_UNALLOCATED);
	expect_compressed(&q, 1024, 0x66);
	/* further L1 entries: 32 KiB each */
	expect_data(&q, 5 * MiB, 0x67);
	free_qimg(&q);
}

static void test_image_cluster_2m(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-c2m.qcow2", &q), 0);
	assert_int_equal(q.h.cluster_bits, 21);
	expect_data(&q, 0, 0x77);
	expect_data(&q, 2 * MiB - 512, 0x77);
	expect_compressed(&q, 2 * MiB, 0x88);
	expect_kind(&q, 4 * MiB, QCOW2_UNALLOCATED);
	free_qimg(&q);
}

static void test_image_extended_l2(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-extl2.qcow2", &q), 0);
	assert_true(qcow2_extended_l2(&q.h));
	assert_int_equal(q.h.cluster_bits, 16);
	assert_int_equal(qcow2_subcluster_bits(&q.h), 11);
	/* 4 KiB written at 0: subclusters 0 and 1 */
	expect_data(&q, 0, 0x99);
	expect_data(&q, 2048 + 1024, 0x99);
	expect_kind(&q, 4096, QCOW2_UNALLOCATED);
	/* write -z 8k 2k: subcluster 4 */
	expect_kind(&q, 8192, QCOW2_ZERO);
	expect_kind(&q, 10240, QCOW2_UNALLOCATED);
	expect_compressed(&q, 65536, 0xaa);
	expect_compressed(&q, 65536 + 31 * 2048, 0xaa);
	free_qimg(&q);
}

static void test_image_zstd(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-zstd.qcow2", &q), 0);
	assert_true(q.h.incompatible_features & QCOW2_INCOMPAT_COMPRESSION);
	assert_int_equal(q.h.compression_type, QCOW2_COMPRESSION_ZSTD);
	expect_compressed(&q, 0, 0xbb);
	free_qimg(&q);
}

static void test_image_luks(void **state)
{
	struct qimg q;
	uint32_t len = 0;
	size_t off;
	uint64_t luks_off, luks_len;
	uint8_t magic[6];

	(void)state;
	SKIP_WITHOUT_IMAGES();
	if (access(unit_image("q-luks.qcow2"), F_OK)) {
		/* qemu-img cannot time PBKDF2 in some sandboxes */
		print_message("# qemu-img could not make a LUKS image\n");
		skip();
	}
	assert_int_equal(load_qimg("q-luks.qcow2", &q), 0);
	assert_int_equal(q.h.crypt_method, QCOW2_CRYPT_LUKS);
	off = find_ext(&q, QCOW2_EXT_FDE, &len);
	assert_int_not_equal(off, 0);
	assert_int_equal(len, 16);
	luks_off = get_be64(q.first + off);
	luks_len = get_be64(q.first + off + 8);
	assert_int_equal(luks_off % qcow2_cluster_size(&q.h), 0);
	assert_true(vc_range_ok(luks_off, luks_len, q.file_size));
	unit_read_at(q.path, luks_off, magic, 6);
	assert_memory_equal(magic, "LUKS\xba\xbe", 6);
	free_qimg(&q);
}

static void test_image_backing(void **state)
{
	struct qimg q;
	uint32_t len = 0;
	size_t off;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-backing.qcow2", &q), 0);
	assert_int_equal(q.h.backing_file_size, strlen("q-v3.qcow2"));
	assert_memory_equal(q.first + q.h.backing_file_offset, "q-v3.qcow2",
			    q.h.backing_file_size);
	off = find_ext(&q, QCOW2_EXT_BACKING_FORMAT, &len);
	assert_int_not_equal(off, 0);
	assert_int_equal(len, 5);
	assert_memory_equal(q.first + off, "qcow2", 5);
	/* the extensions end before the backing file name */
	assert_true(off + len <= q.h.backing_file_offset);
	free_qimg(&q);
}

static void test_image_data_file(void **state)
{
	struct qimg q;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	assert_int_equal(load_qimg("q-datafile.qcow2", &q), -EOPNOTSUPP);
	free_qimg(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_valid),
		cmocka_unit_test(test_v2_ignores_v3_fields),
		cmocka_unit_test(test_v3_valid),
		cmocka_unit_test(test_bad_magic_and_short),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_cluster_bits),
		cmocka_unit_test(test_header_length),
		cmocka_unit_test(test_incompatible_features),
		cmocka_unit_test(test_compression_type),
		cmocka_unit_test(test_compression_bit_without_type),
		cmocka_unit_test(test_extended_l2),
		cmocka_unit_test(test_refcount_order),
		cmocka_unit_test(test_crypt_method),
		cmocka_unit_test(test_size_not_sector_multiple),
		cmocka_unit_test(test_l1_too_small),
		cmocka_unit_test(test_l1_too_large),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_l1_alignment),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_layout_backing),
		cmocka_unit_test(test_ext_normal_list),
		cmocka_unit_test(test_ext_end_marker),
		cmocka_unit_test(test_ext_truncated),
		cmocka_unit_test(test_ext_huge_length),
		cmocka_unit_test(test_ext_terminates),
		cmocka_unit_test(test_l1_decode),
		cmocka_unit_test(test_l2_standard),
		cmocka_unit_test(test_l2_zero_flag),
		cmocka_unit_test(test_l2_misaligned),
		cmocka_unit_test(test_l2_reserved_bits),
		cmocka_unit_test(test_l2_compressed),
		cmocka_unit_test(test_l2_compressed_extended),
		cmocka_unit_test(test_l2_extended),
		cmocka_unit_test(test_image_v2),
		cmocka_unit_test(test_image_v3),
		cmocka_unit_test(test_image_cluster_512),
		cmocka_unit_test(test_image_cluster_2m),
		cmocka_unit_test(test_image_extended_l2),
		cmocka_unit_test(test_image_zstd),
		cmocka_unit_test(test_image_luks),
		cmocka_unit_test(test_image_backing),
		cmocka_unit_test(test_image_data_file),
	};

	return cmocka_run_group_tests_name("qcow2", tests, NULL, NULL);
}
