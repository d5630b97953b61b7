// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for every decoder in include/vhdcrypt/.
 *
 * The input is read as the head of an image file:
 *   - VHD: footer at 0 (and in the last 512 bytes), dynamic header at 512 and
 *     at footer.data_offset, BAT, batmap header at its computed offset and at
 *     1536, parent locators;
 *   - qcow2: the first cluster is the first min(size, 64 KiB) bytes; header
 *     extensions are walked to the end; the L1 table and L2 tables are
 *     decoded where they lie inside the input.
 * The last 32 bytes also serve as fuzzed parameters: an image size, an L1
 * entry, an L2 entry and an extended-L2 bitmap. When the qcow2 header does
 * not decode, L1/L2 entries are decoded for a header with a fuzzed
 * cluster_bits (9..21), version and extended-L2 flag.
 *
 * Every structure is copied into a heap buffer of exactly the size the
 * decoder is given, so ASan catches any read past it. Decoders must never
 * crash, loop forever or trip a sanitizer, and what they accept must satisfy
 * the format's invariants (checked with abort()).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vhdcrypt/vhd.h>
#include <vhdcrypt/qcow2.h>

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

static volatile unsigned int sink;

/* Touch every byte the caller claims is in bounds. */
static void touch(const uint8_t *p, size_t len)
{
	unsigned int s = 0;

	for (size_t i = 0; i < len; i++)
		s += p[i];
	sink += s;
}

/* An exact-size heap copy of d[off, off + len), zero-padded past the end. */
static uint8_t *slice(const uint8_t *d, size_t n, uint64_t off, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		abort();
	memset(p, 0, len);
	if (off < n)
		memcpy(p, d + off, n - off < len ? n - off : len);
	return p;
}

static bool inside(size_t n, uint64_t off, uint64_t len)
{
	return off <= n && len <= n - off;
}

static uint64_t tail_u64(const uint8_t *d, size_t n, unsigned int k)
{
	uint64_t v = 0;

	if (n < 8 * (k + 1))
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | d[n - 8 * (k + 1) + i];
	return v;
}

static uint64_t be64_at(const uint8_t *d, uint64_t off)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | d[off + i];
	return v;
}

static uint32_t be32_at(const uint8_t *d, uint64_t off)
{
	return (uint32_t)d[off] << 24 | (uint32_t)d[off + 1] << 16 |
	       (uint32_t)d[off + 2] << 8 | d[off + 3];
}

/* ------------------------------------------------------------------ VHD */

static bool fuzz_footer(const uint8_t *d, size_t n, uint64_t off,
			struct vhd_footer *f)
{
	uint8_t *b = slice(d, n, off, VHD_FOOTER_SIZE);
	const char *why = NULL;
	int r = vhd_footer_decode(b, f, &why);

	CHECK_WHY(r, why);
	if (!r) {
		CHECK(r == 0);
		CHECK(!memcmp(b, "conectix", 8));
		CHECK(f->type == VHD_TYPE_FIXED || f->type == VHD_TYPE_DYNAMIC ||
		      f->type == VHD_TYPE_DIFF);
		CHECK(f->current_size % 512 == 0);
		CHECK(f->current_size <= VHD_MAX_SECTORS * 512);
		CHECK(f->version >> 16 == 1);
		CHECK(f->type == VHD_TYPE_FIXED ||
		      f->data_offset != VHD_NO_OFFSET);
		CHECK(f->checksum == vhd_checksum(b, 512, 64) ||
		      vhd_old_tap_hidden(f));
		if (vhd_bitmap_lsb_first(f))
			CHECK(vhd_creator_is_tap(f));
		if (vhd_has_batmap(f))
			CHECK(vhd_creator_is_tap(f) &&
			      f->type != VHD_TYPE_FIXED);
	} else {
		CHECK(r == -EINVAL);
	}
	free(b);
	return !r;
}

static bool fuzz_header(const uint8_t *d, size_t n, uint64_t off,
			struct vhd_header *h)
{
	uint8_t *b = slice(d, n, off, VHD_HEADER_SIZE);
	const char *why = NULL;
	int r = vhd_header_decode(b, h, &why);

	CHECK_WHY(r, why);
	if (!r) {
		CHECK(!memcmp(b, "cxsparse", 8));
		CHECK(h->version == VHD_VERSION_1_0);
		CHECK(h->block_size >= 512 && vc_is_pow2(h->block_size));
		CHECK(h->table_offset % 4 == 0);
		CHECK(h->checksum == vhd_checksum(b, 1024, 36));
		CHECK(vhd_block_sectors(h) * 512ull == h->block_size);
		CHECK(vhd_bitmap_sectors(h) >= 1);
		CHECK(vhd_bitmap_sectors(h) * 512ull * 8 >=
		      vhd_block_sectors(h));
		CHECK((vhd_bitmap_sectors(h) - 1) * 512ull * 8 <
		      vhd_block_sectors(h));
		for (int i = 0; i < VHD_MAX_LOCATORS; i++) {
			uint64_t space = vhd_locator_space(&h->loc[i]);

			CHECK(space >= h->loc[i].data_space);
			if (inside(n, h->loc[i].data_offset, space) &&
			    h->loc[i].data_len <= space)
				touch(d + h->loc[i].data_offset,
				      h->loc[i].data_len);
		}
	} else {
		CHECK(r == -EINVAL);
	}
	free(b);
	return !r;
}

static void fuzz_batmap(const uint8_t *d, size_t n, uint64_t off)
{
	uint8_t *b = slice(d, n, off, VHD_BATMAP_HEADER_SIZE);
	struct vhd_batmap_header m;
	const char *why = NULL;
	int r = vhd_batmap_header_decode(b, &m, &why);

	CHECK_WHY(r, why);
	if (!r) {
		CHECK(!memcmp(b, "tdbatmap", 8));
		CHECK(m.version <= 0x00010002);
		CHECK(m.keyhash_set == b[29]);
		CHECK(!memcmp(m.nonce, b + 30, 32));
		CHECK(!memcmp(m.hash, b + 62, 32));
	} else {
		CHECK(r == -EINVAL);
	}
	free(b);
}

static void fuzz_layout(const uint8_t *d, size_t n, const struct vhd_footer *f,
			const struct vhd_header *h, uint64_t image_bytes)
{
	const char *why = NULL;
	int r = vhd_layout_check(f, h, image_bytes, &why);
	uint64_t used = vhd_bat_entries_used(f, h);
	uint64_t bm;

	CHECK_WHY(r, why);
	CHECK(used <= VHD_MAX_SECTORS);
	if (r)
		return;
	CHECK(used <= h->max_bat_entries);
	CHECK(f->data_offset + VHD_HEADER_SIZE <= image_bytes);
	CHECK(f->data_offset + VHD_HEADER_SIZE >= f->data_offset);
	CHECK(h->table_offset + 4ull * h->max_bat_entries <= image_bytes);
	CHECK(h->table_offset + 4ull * h->max_bat_entries >= h->table_offset);

	bm = vhd_batmap_header_offset(h);
	CHECK(bm >= h->table_offset + 4ull * h->max_bat_entries);
	CHECK(bm - h->table_offset - 4ull * h->max_bat_entries < 512);
	CHECK((bm - h->table_offset) % 512 == 0);
	if (vhd_has_batmap(f) && inside(n, bm, VHD_BATMAP_HEADER_SIZE))
		fuzz_batmap(d, n, bm);

	/* BAT entries in the input, their bitmaps and first data sectors */
	for (uint64_t i = 0; i < used && i < 64; i++) {
		uint64_t pos = h->table_offset + 4 * i, bmp, data;
		uint32_t blk;

		if (!inside(n, pos, 4))
			break;
		blk = be32_at(d, pos);
		if (blk == VHD_BAT_UNUSED)
			continue;
		bmp = (uint64_t)blk * 512;
		data = bmp + (uint64_t)vhd_bitmap_sectors(h) * 512;
		CHECK(data > bmp);
		if (inside(n, bmp, 1)) {
			bool lsb = vhd_bitmap_lsb_first(f);

			for (uint32_t s = 0; s < 8; s++)
				sink += vhd_bitmap_bit(d[bmp], s, lsb);
		}
	}
}

static void fuzz_vhd(const uint8_t *d, size_t n)
{
	struct vhd_footer f, tf;
	struct vhd_header h, h2;
	bool fok, tok = false, hok, h2ok = false;
	uint64_t fuzz_size = tail_u64(d, n, 0);

	fok = fuzz_footer(d, n, 0, &f);
	if (n >= 1024)
		tok = fuzz_footer(d, n, n - 512, &tf);
	hok = fuzz_header(d, n, 512, &h);
	fuzz_batmap(d, n, 1536);
	fuzz_batmap(d, n, 2048);

	if (fok && f.type != VHD_TYPE_FIXED && f.data_offset != 512 &&
	    inside(n, f.data_offset, VHD_HEADER_SIZE))
		h2ok = fuzz_header(d, n, f.data_offset, &h2);

	if (fok && hok) {
		fuzz_layout(d, n, &f, &h, n);
		fuzz_layout(d, n, &f, &h, fuzz_size);
		fuzz_layout(d, n, &f, &h, ~0ull);
	}
	if (fok && h2ok) {
		fuzz_layout(d, n, &f, &h2, n);
		fuzz_layout(d, n, &f, &h2, fuzz_size);
	}
	if (tok && hok)
		fuzz_layout(d, n, &tf, &h, fuzz_size);

	/* bit order: MSB-first bit i is LSB-first bit 7 - i */
	if (n) {
		for (uint32_t i = 0; i < 16; i++)
			CHECK(vhd_bitmap_bit(d[0], i, false) ==
			      vhd_bitmap_bit(d[0], 7 - (i & 7), true));
	}
}

/* ---------------------------------------------------------------- qcow2 */

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

	CHECK(be32_at(c, 0) == QCOW2_MAGIC);
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
		CHECK(inside(len, doff, dlen));
		CHECK(off >= doff + dlen && off - doff - dlen < 8);
		CHECK(off > prev);
		touch(c + doff, dlen);
		if (type == QCOW2_EXT_FDE && dlen >= 16)
			sink += (unsigned int)(be64_at(c, doff) +
					       be64_at(c, doff + 8));
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

		if (!inside(n, pos, 8))
			break;
		if (!fuzz_l1_entry(h, be64_at(d, pos), &l2_off) || !l2_off)
			continue;
		for (uint64_t j = 0; j < cs / esz && budget; j++, budget--) {
			uint64_t e = l2_off + j * esz;

			if (!inside(n, e, esz))
				break;
			fuzz_l2_entry(h, be64_at(d, e),
				      esz == 16 ? be64_at(d, e + 8) : 0,
				      (uint32_t)j);
		}
	}
}

static void fuzz_qcow2(const uint8_t *d, size_t n)
{
	size_t len = n < 65536 ? n : 65536;
	uint8_t *c = slice(d, n, 0, len);
	struct qcow2_header h;
	const char *why = NULL;
	uint64_t fuzz_size = tail_u64(d, n, 0);
	uint64_t l1e = tail_u64(d, n, 1), l2e = tail_u64(d, n, 2);
	uint64_t bitmap = tail_u64(d, n, 3);
	u64 l2_off;
	int r;

	r = qcow2_header_decode(c, len, &h, &why);
	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL || r == -EOPNOTSUPP);

	/* the iterator on its own, from a fuzzed start */
	fuzz_extensions(c, len, (size_t)(fuzz_size % (len + 16)));

	if (r) {
		/* a header with a fuzzed cluster size for L1/L2 decoding */
		uint8_t p = n ? d[0] : 0, q = n > 1 ? d[1] : 0;

		memset(&h, 0, sizeof(h));
		h.cluster_bits = 9 + p % 13;
		h.version = 2 + (q & 1);
		if (h.version == 3 && (q & 2) && h.cluster_bits >= 14)
			h.incompatible_features = QCOW2_INCOMPAT_EXTL2;
		for (size_t i = 0; i + 16 <= n && i < 64 * 16; i += 16) {
			uint64_t e = be64_at(d, i), b = be64_at(d, i + 8);

			fuzz_l1_entry(&h, e, &l2_off);
			fuzz_l2_entry(&h, e, b, (uint32_t)(i / 16));
		}
		fuzz_l1_entry(&h, l1e, &l2_off);
		fuzz_l2_entry(&h, l2e, bitmap, (uint32_t)(l1e >> 59));
		free(c);
		return;
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
				if (inside(len, h.backing_file_offset,
					   h.backing_file_size))
					touch(c + h.backing_file_offset,
					      h.backing_file_size);
			}
		}
	}

	fuzz_tables(d, n, &h);
	fuzz_l1_entry(&h, l1e, &l2_off);
	for (uint32_t sc = 0; sc < QCOW2_SUBCLUSTERS; sc += 7)
		fuzz_l2_entry(&h, l2e, bitmap, sc);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_vhd(data, size);
	fuzz_qcow2(data, size);
	return 0;
}
