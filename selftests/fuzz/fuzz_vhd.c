// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the VHD structures of include/vhdcrypt/vhd.h, one
 * at a time. The input is read as the head of an image file: footer at 0
 * and in the last 512 bytes, dynamic header at 512 and at the footer's
 * data_offset, BAT, batmap header (OpenXT's key hash) at its computed
 * offset and at 1536 and 2048, parent locators, sector bitmaps. The last 8
 * bytes also serve as a fuzzed image size.
 *
 * Each structure is copied into a heap buffer of exactly the size its
 * decoder is given, so ASan catches any read past it; what a decoder
 * accepts must satisfy the format's invariants.
 */
#include <vhdcrypt/vhd.h>

#include "fuzz.h"

static bool fuzz_footer(const uint8_t *d, size_t n, uint64_t off,
			struct vhd_footer *f)
{
	uint8_t *b = fz_slice(d, n, off, VHD_FOOTER_SIZE);
	const char *why = NULL;
	int r = vhd_footer_decode(b, f, &why);

	CHECK_WHY(r, why);
	if (!r) {
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

static void fuzz_locators(const uint8_t *d, size_t n,
			  const struct vhd_header *h)
{
	for (int i = 0; i < VHD_MAX_LOCATORS; i++) {
		const struct vhd_parent_locator *l = &h->loc[i];
		uint64_t space = vhd_locator_space(l);

		CHECK(space >= l->data_space);
		CHECK(l->data_space >= 512 || space % 512 == 0);
		/* the bytes the tool reads, when they are in the input */
		if (l->data_len <= space && fz_inside(n, l->data_offset,
						      l->data_len))
			fz_touch(d + l->data_offset, l->data_len);
	}
}

static bool fuzz_header(const uint8_t *d, size_t n, uint64_t off,
			struct vhd_header *h)
{
	uint8_t *b = fz_slice(d, n, off, VHD_HEADER_SIZE);
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
		CHECK(vc_ilog2(vhd_block_sectors(h)) < 32);
		CHECK(1ull << vc_ilog2(vhd_block_sectors(h)) ==
		      vhd_block_sectors(h));
		fuzz_locators(d, n, h);
	} else {
		CHECK(r == -EINVAL);
	}
	free(b);
	return !r;
}

static void fuzz_batmap(const uint8_t *d, size_t n, uint64_t off)
{
	uint8_t *b = fz_slice(d, n, off, VHD_BATMAP_HEADER_SIZE);
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

/* Sector bitmaps: one bit per sector, MSB first except tapdisk 0.1. */
static void fuzz_bitmap(const uint8_t *d, size_t n, uint64_t off,
			const struct vhd_header *h, bool lsb)
{
	uint32_t sectors = vhd_block_sectors(h);

	for (uint32_t s = 0; s < sectors && s < 64; s++) {
		uint64_t byte = off + s / 8;
		bool bit;

		if (!fz_inside(n, byte, 1))
			break;
		bit = vhd_bitmap_bit(d[byte], s, lsb);
		CHECK(bit == !!(d[byte] & (lsb ? 1 << (s % 8) :
						 0x80 >> (s % 8))));
		fz_sink += bit;
	}
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
	CHECK(fz_inside(image_bytes, f->data_offset, VHD_HEADER_SIZE));
	CHECK(fz_inside(image_bytes, h->table_offset,
			4ull * h->max_bat_entries));

	bm = vhd_batmap_header_offset(h);
	CHECK(bm >= h->table_offset + 4ull * h->max_bat_entries);
	CHECK(bm - h->table_offset - 4ull * h->max_bat_entries < 512);
	CHECK((bm - h->table_offset) % 512 == 0);
	if (vhd_has_batmap(f) && fz_inside(n, bm, VHD_BATMAP_HEADER_SIZE))
		fuzz_batmap(d, n, bm);

	/* BAT entries in the input and their bitmaps */
	for (uint64_t i = 0; i < used && i < 16; i++) {
		uint64_t pos = h->table_offset + 4 * i, bmp, data;
		uint32_t blk;

		if (!fz_inside(n, pos, 4))
			break;
		blk = fz_be32(d + pos);
		if (blk == VHD_BAT_UNUSED)
			continue;
		bmp = (uint64_t)blk * 512;
		data = bmp + (uint64_t)vhd_bitmap_sectors(h) * 512;
		CHECK(data > bmp);
		fuzz_bitmap(d, n, bmp, h, vhd_bitmap_lsb_first(f));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct vhd_footer f, tf;
	struct vhd_header h, h2;
	bool fok, tok = false, hok, h2ok = false;
	uint64_t fuzz_size = fz_tail_u64(d, n, 0);

	fok = fuzz_footer(d, n, 0, &f);
	if (n >= 1024)
		tok = fuzz_footer(d, n, n - 512, &tf);
	hok = fuzz_header(d, n, 512, &h);
	fuzz_batmap(d, n, 1536);
	fuzz_batmap(d, n, 2048);

	if (fok && f.type != VHD_TYPE_FIXED && f.data_offset != 512 &&
	    fz_inside(n, f.data_offset, VHD_HEADER_SIZE))
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
	return 0;
}
