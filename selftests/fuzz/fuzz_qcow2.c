// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the qcow2 structures of include/vhdcrypt/qcow2.h,
 * one at a time. The input is read as the head of an image file:
 *   - the first cluster is the first min(size, 64 KiB) bytes: header, every
 *     header extension (also from a fuzzed start), backing file name;
 *   - the L1 table, L2 tables (extended too) and compressed cluster
 *     descriptors, the refcount table and refcount blocks, the snapshot
 *     table (as the module walks it for its overlap check), where they lie
 *     inside the input.
 * The last 32 bytes also serve as fuzzed parameters: an image size, an L1
 * entry, an L2 entry and an extended-L2 bitmap. When the header does not
 * decode, entries are decoded for a header with a fuzzed cluster size,
 * version, extended-L2 flag and refcount width.
 *
 * Structures are copied into exact-size heap buffers, so ASan catches any
 * read past them; what a decoder accepts must satisfy the format's
 * invariants.
 */
#include <vhdcrypt/qcow2.h>

#include "fuzz.h"

static void check_map(const struct qcow2_header *h, uint64_t entry,
		      uint64_t bitmap, uint32_t sc, int r,
		      const struct qcow2_map *m)
{
	uint64_t cs = qcow2_cluster_size(h);

	CHECK(r == 0 || r == -EINVAL);
	if (r)
		return;
	switch (m->kind) {
	case QCOW2_COMPRESSED: {
		uint32_t x = 62 - (h->cluster_bits - 8);

		CHECK(entry & QCOW2_OFLAG_COMPRESSED);
		CHECK(!(entry & QCOW2_OFLAG_COPIED));
		CHECK(!qcow2_extended_l2(h) || !bitmap);
		CHECK(m->host_offset < 1ull << 56);
		CHECK(m->host_offset == (entry & ((1ull << x) - 1)));
		CHECK(m->compressed_bytes >= 1);
		/* at most 2^(cluster_bits - 8) sectors */
		CHECK(m->compressed_bytes <= (cs >> 8) * 512);
		CHECK((m->compressed_bytes + (m->host_offset & 511)) % 512 ==
		      0);
		break;
	}
	case QCOW2_DATA:
		CHECK(!(entry & QCOW2_OFLAG_COMPRESSED));
		CHECK(m->host_offset != 0);
		CHECK((entry & QCOW2_OFFSET_MASK) != 0);
		CHECK(m->host_offset % (1ull << qcow2_subcluster_bits(h)) == 0);
		CHECK(m->host_offset - (entry & QCOW2_OFFSET_MASK) < cs);
		CHECK((entry & QCOW2_OFFSET_MASK) % cs == 0);
		if (qcow2_extended_l2(h))
			CHECK((bitmap >> sc & 1) && !(bitmap >> (sc + 32) & 1));
		else
			CHECK(!(entry & QCOW2_OFLAG_ZERO));
		break;
	case QCOW2_ZERO:
		CHECK(h->version == 3);
		CHECK(!(entry & QCOW2_OFLAG_COMPRESSED));
		if (qcow2_extended_l2(h))
			CHECK(bitmap >> (sc + 32) & 1);
		else
			CHECK(entry & QCOW2_OFLAG_ZERO);
		break;
	case QCOW2_UNALLOCATED:
		CHECK(!(entry & QCOW2_OFLAG_COMPRESSED));
		if (qcow2_extended_l2(h))
			CHECK(!(bitmap >> sc & 1) && !(bitmap >> (sc + 32) & 1));
		else
			CHECK(!(entry & QCOW2_OFFSET_MASK) &&
			      !(entry & QCOW2_OFLAG_ZERO));
		break;
	default:
		CHECK(0 && "unknown kind");
	}
	CHECK(!(entry & QCOW2_L2_RESERVED) || m->kind == QCOW2_COMPRESSED);
}

static void fuzz_l2_entry(const struct qcow2_header *h, uint64_t entry,
			  uint64_t bitmap, uint32_t sc)
{
	struct qcow2_map m;
	const char *why = NULL;
	int r;

	/* the caller (kernel, tool) passes a subcluster index below 32 */
	sc %= QCOW2_SUBCLUSTERS;
	r = qcow2_l2_decode(h, entry, qcow2_extended_l2(h) ? bitmap : 0, sc,
			    &m, &why);
	CHECK_WHY(r, why);
	check_map(h, entry, qcow2_extended_l2(h) ? bitmap : 0, sc, r, &m);
	/* the bitmap argument is meaningless without extended L2 entries */
	if (!qcow2_extended_l2(h)) {
		struct qcow2_map m2;
		int r2;

		why = NULL;
		r2 = qcow2_l2_decode(h, entry, bitmap, sc, &m2, &why);
		CHECK(r2 == r);
		if (!r)
			CHECK(m2.kind == m.kind &&
			      m2.host_offset == m.host_offset &&
			      m2.compressed_bytes == m.compressed_bytes);
	}
}

static bool fuzz_l1_entry(const struct qcow2_header *h, uint64_t entry,
			  u64 *l2_off)
{
	const char *why = NULL;
	int r = qcow2_l1_decode(h, entry, l2_off, &why);

	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL);
	if (r)
		return false;
	CHECK(!(entry & QCOW2_L1_RESERVED));
	CHECK(*l2_off == (entry & QCOW2_OFFSET_MASK));
	CHECK(*l2_off % qcow2_cluster_size(h) == 0);
	return true;
}

static void check_header(const uint8_t *c, size_t len,
			 const struct qcow2_header *h)
{
	uint32_t cb = h->cluster_bits;

	CHECK(fz_be32(c) == QCOW2_MAGIC);
	CHECK(h->version == 2 || h->version == 3);
	CHECK(cb >= 9 && cb <= 21);
	CHECK(h->header_length >= (h->version == 2 ? 72 : 104));
	CHECK(h->header_length <= qcow2_cluster_size(h));
	CHECK(h->header_length % 8 == 0);
	if (h->header_length > 104)
		CHECK(len > 104);
	CHECK(!(h->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED));
	CHECK(h->compression_type == QCOW2_COMPRESSION_ZLIB ||
	      h->compression_type == QCOW2_COMPRESSION_ZSTD);
	if (h->compression_type != QCOW2_COMPRESSION_ZLIB)
		CHECK(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION);
	/* qcow2.txt: the bit needs a present, non-zero compression_type */
	if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)
		CHECK(h->compression_type != QCOW2_COMPRESSION_ZLIB);
	if (qcow2_extended_l2(h))
		CHECK(cb >= 14);
	CHECK(h->refcount_order <= 6);
	CHECK(h->crypt_method <= QCOW2_CRYPT_LUKS);
	CHECK(h->size % 512 == 0);
	CHECK((uint64_t)h->l1_size * 8 <= QCOW2_MAX_L1_BYTES);
	CHECK(qcow2_l1_entries_needed(h) <= h->l1_size);
	/* the L1 table really covers the disk (no wrap-around) */
	CHECK(h->size <= (uint64_t)h->l1_size << (cb + qcow2_l2_bits(h)));
	CHECK(h->l1_table_offset % qcow2_cluster_size(h) == 0);
	CHECK(qcow2_l2_entry_size(h) * (1ull << qcow2_l2_bits(h)) ==
	      qcow2_cluster_size(h));
	CHECK(qcow2_subcluster_bits(h) >= 9);
}

static void fuzz_extensions(const uint8_t *c, size_t len, size_t start)
{
	size_t off = start;
	unsigned int steps = 0;

	for (;;) {
		uint32_t type = 0, dlen = 0;
		size_t doff = 0, prev = off;
		const char *why = NULL;
		int r = qcow2_extension_next(c, len, &off, &type, &doff, &dlen,
					     &why);

		CHECK(r == -EINVAL || r == 0 || r == 1);
		CHECK_WHY(r < 0, why);
		if (r != 1) {
			CHECK(off == prev);
			if (!r)
				CHECK(type == QCOW2_EXT_END);
			break;
		}
		CHECK(type != QCOW2_EXT_END);
		CHECK(doff == prev + 8);
		CHECK(fz_inside(len, doff, dlen));
		CHECK(off >= doff + dlen && off - doff - dlen < 8);
		CHECK(off > prev);
		fz_touch(c + doff, dlen);
		if (type == QCOW2_EXT_FDE) {
			u64 fde_off = 0, fde_len = 0;

			why = NULL;
			r = qcow2_fde_decode(c + doff, dlen, &fde_off, &fde_len,
					     &why);
			CHECK(r == 0 || r == -EINVAL);
			CHECK_WHY(r < 0, why);
			CHECK(r < 0 || (dlen >= 16 &&
					fde_off == fz_be64(c + doff) &&
					fde_len == fz_be64(c + doff + 8)));
		}
		/* each step moves on by at least 8 bytes */
		CHECK(++steps <= len / 8 + 1);
	}
}

static void fuzz_tables(const uint8_t *d, size_t n,
			const struct qcow2_header *h)
{
	uint64_t cs = qcow2_cluster_size(h);
	uint32_t esz = qcow2_l2_entry_size(h);
	unsigned int budget = 512;

	for (uint64_t i = 0; i < h->l1_size && i < 64; i++) {
		uint64_t pos = h->l1_table_offset + 8 * i;
		u64 l2_off;

		if (!fz_inside(n, pos, 8))
			break;
		if (!fuzz_l1_entry(h, fz_be64(d + pos), &l2_off) || !l2_off)
			continue;
		for (uint64_t j = 0; j < cs / esz && budget; j++, budget--) {
			uint64_t e = l2_off + j * esz;

			if (!fz_inside(n, e, esz))
				break;
			fuzz_l2_entry(h, fz_be64(d + e),
				      esz == 16 ? fz_be64(d + e + 8) : 0,
				      (uint32_t)j);
		}
	}
}

/*
 * Refcounts of the block at @blk (@len bytes of it in the input): each read
 * and write stays inside the bytes of its own refcount, and sub-byte widths
 * leave their neighbours alone.
 */
static void fuzz_refblock(const struct qcow2_header *h, const uint8_t *blk,
			  size_t len, uint64_t seed)
{
	uint64_t cs = qcow2_cluster_size(h), max = qcow2_refcount_max(h);
	uint64_t per_block = 1ull << qcow2_refblock_bits(h);
	uint32_t width = 1u << h->refcount_order, bytes = (width + 7) / 8;

	CHECK(per_block * width == cs * 8);
	for (unsigned int k = 0; k < 16; k++) {
		uint64_t i = (seed >> (k * 4) ^ k * 0x9e3779b97f4a7c15ull) %
			     per_block;
		uint64_t byte = qcow2_refcount_byte(h, i), v, w, nb;
		uint8_t *p;

		CHECK(byte + bytes <= cs);
		p = fz_slice(blk, len, byte, bytes);
		v = qcow2_refcount_get(h, p, i);
		CHECK(v <= max);
		w = (v + seed) & max;
		/* a neighbour sharing the byte, for widths below 8 bits */
		nb = width < 8 ? i ^ 1 : i;
		v = qcow2_refcount_get(h, p, nb);
		qcow2_refcount_set(h, p, i, w);
		CHECK(qcow2_refcount_get(h, p, i) == w);
		if (nb != i)
			CHECK(qcow2_refcount_get(h, p, nb) == v);
		free(p);
	}
}

/* The refcount table in the input, and the blocks it points at. */
static void fuzz_refcounts(const uint8_t *d, size_t n,
			   const struct qcow2_header *h, uint64_t seed)
{
	uint64_t cs = qcow2_cluster_size(h);
	uint64_t entries = ((uint64_t)h->refcount_table_clusters << h->cluster_bits) / 8;

	for (uint64_t i = 0; i < entries && i < 16; i++) {
		uint64_t pos = h->refcount_table_offset + 8 * i, entry;
		u64 block;
		const char *why = NULL;
		int r;

		if (!fz_inside(n, pos, 8))
			break;
		entry = fz_be64(d + pos);
		r = qcow2_reftable_decode(h, entry, &block, &why);
		CHECK_WHY(r, why);
		CHECK(r == 0 || r == -EINVAL);
		if (r || !block)
			continue;
		CHECK(block == entry && block % cs == 0);
		if (block < n)
			fuzz_refblock(h, d + block, n - block, seed);
	}
}

/* The snapshot table, entry by entry, as the module walks it. */
static void fuzz_snapshots(const uint8_t *d, size_t n,
			   const struct qcow2_header *h)
{
	uint64_t cs = qcow2_cluster_size(h), off = h->snapshots_offset;
	const char *why = NULL;
	int r;

	r = qcow2_snapshots_check(h, &why);
	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL);
	if (r)
		return;
	CHECK(h->nb_snapshots <= QCOW2_MAX_SNAPSHOTS);
	for (uint32_t i = 0; i < h->nb_snapshots && i < 256; i++) {
		struct qcow2_snapshot s;
		uint8_t *p;

		if (!fz_inside(n, off, QCOW2_SNAPSHOT_FIXED))
			break;
		p = fz_slice(d, n, off, QCOW2_SNAPSHOT_FIXED);
		why = NULL;
		r = qcow2_snapshot_decode(h, p, &s, &why);
		free(p);
		CHECK_WHY(r, why);
		CHECK(r == 0 || r == -EINVAL);
		if (r)
			return;
		CHECK(s.entry_bytes % 8 == 0);
		CHECK(s.entry_bytes >= QCOW2_SNAPSHOT_FIXED);
		CHECK(s.entry_bytes <= QCOW2_SNAPSHOT_FIXED +
				       QCOW2_MAX_SNAPSHOT_EXTRA + 2 * 65535 + 7);
		CHECK((uint64_t)s.l1_size * 8 <= QCOW2_MAX_L1_BYTES);
		CHECK(s.l1_table_offset % cs == 0);
		off += s.entry_bytes;
	}
}

/* Entries decoded for a made-up header: cluster size etc. from @d. */
static void fuzz_entries(const uint8_t *d, size_t n, uint64_t l1e,
			 uint64_t l2e, uint64_t bitmap)
{
	uint8_t p = n ? d[0] : 0, q = n > 1 ? d[1] : 0;
	struct qcow2_header h;
	const char *why;
	u64 l2_off;

	memset(&h, 0, sizeof(h));
	h.cluster_bits = 9 + p % 13;
	h.version = 2 + (q & 1);
	h.refcount_order = (q >> 2) % 7;
	if (h.version == 3 && (q & 2) && h.cluster_bits >= 14)
		h.incompatible_features = QCOW2_INCOMPAT_EXTL2;
	for (size_t i = 0; i + 16 <= n && i < 64 * 16; i += 16) {
		uint64_t e = fz_be64(d + i), b = fz_be64(d + i + 8);

		fuzz_l1_entry(&h, e, &l2_off);
		fuzz_l2_entry(&h, e, b, (uint32_t)(i / 16));
		fz_sink += !qcow2_reftable_decode(&h, e, &l2_off, &why);
	}
	fuzz_l1_entry(&h, l1e, &l2_off);
	fuzz_l2_entry(&h, l2e, bitmap, (uint32_t)(l1e >> 59));
	fuzz_refblock(&h, d, n, l2e);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	size_t len = n < 65536 ? n : 65536;
	uint8_t *c = fz_slice(d, n, 0, len);
	struct qcow2_header h;
	const char *why = NULL;
	uint64_t fuzz_size = fz_tail_u64(d, n, 0);
	uint64_t l1e = fz_tail_u64(d, n, 1), l2e = fz_tail_u64(d, n, 2);
	uint64_t bitmap = fz_tail_u64(d, n, 3);
	u64 l2_off;
	int r;

	r = qcow2_header_decode(c, len, &h, &why);
	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL || r == -EOPNOTSUPP);

	/* the iterator on its own, from a fuzzed start */
	fuzz_extensions(c, len, (size_t)(fuzz_size % (len + 16)));
	if (r) {
		fuzz_entries(d, n, l1e, l2e, bitmap);
		free(c);
		return 0;
	}

	check_header(c, len, &h);
	fuzz_extensions(c, len, h.header_length);
	{
		uint64_t limits[4] = {
			n, fuzz_size, ~0ull,
			/* like the kernel: the file rounded up to a cluster */
			(n + qcow2_cluster_size(&h) - 1) &
				~(qcow2_cluster_size(&h) - 1),
		};

		for (int i = 0; i < 4; i++) {
			why = NULL;
			r = qcow2_layout_check(&h, limits[i], &why);
			CHECK_WHY(r, why);
			if (r)
				continue;
			CHECK(vc_range_ok(h.l1_table_offset, 8ull * h.l1_size,
					  limits[i]));
			if (h.backing_file_offset) {
				CHECK(h.backing_file_offset +
				      h.backing_file_size <=
				      qcow2_cluster_size(&h));
				if (fz_inside(len, h.backing_file_offset,
					      h.backing_file_size))
					fz_touch(c + h.backing_file_offset,
						 h.backing_file_size);
			}
		}
	}

	fuzz_tables(d, n, &h);
	fuzz_refcounts(d, n, &h, l2e);
	fuzz_snapshots(d, n, &h);
	fuzz_l1_entry(&h, l1e, &l2_off);
	for (uint32_t sc = 0; sc < QCOW2_SUBCLUSTERS; sc += 7)
		fuzz_l2_entry(&h, l2e, bitmap, sc);
	free(c);
	return 0;
}
