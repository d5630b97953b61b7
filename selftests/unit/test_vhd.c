// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for include/vhdcrypt/vhd.h: footer, dynamic header, layout,
 * sector bitmaps, tapdisk batmap header and parent locators.
 *
 * Test data is built here byte by byte from the format description in
 * shared/specs/openxt-vhd.md section 2 (checksums computed independently),
 * and read from real images made by qemu-img and by the OpenXT tools.
 */
#include "unit.h"
#include <vhdcrypt/vhd.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define NO_OFF 0xffffffffffffffffull

/* Ones' complement of the byte sum, the checksum field counted as zero. */
static uint32_t ref_checksum(const uint8_t *buf, size_t len, size_t field)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (i < field || i > field + 3)
			sum += buf[i];
	return ~sum;
}

static void seal_footer(uint8_t *b)
{
	put_be32(b + 64, ref_checksum(b, 512, 64));
}

static void seal_header(uint8_t *b)
{
	put_be32(b + 36, ref_checksum(b, 1024, 36));
}

/* A valid footer: @type, @size bytes, creator @app/@ver. */
static void make_footer(uint8_t *b, uint32_t type, uint64_t size,
			const char *app, uint32_t ver)
{
	memset(b, 0, 512);
	memcpy(b, "conectix", 8);
	put_be32(b + 8, 2);
	put_be32(b + 12, 0x00010000);
	put_be64(b + 16, type == 2 ? NO_OFF : 512);
	put_be32(b + 24, 0x2f000000);
	memcpy(b + 28, app, 4);
	put_be32(b + 32, ver);
	put_be32(b + 36, 0x5769326b);
	put_be64(b + 40, size);
	put_be64(b + 48, size);
	put_be32(b + 56, 963u << 16 | 8 << 8 | 17);
	put_be32(b + 60, type);
	for (int i = 0; i < 16; i++)
		b[68 + i] = 0xa0 + i;
	seal_footer(b);
}

/* A valid dynamic header: BAT at @table, @entries entries of @block bytes. */
static void make_header(uint8_t *b, uint64_t table, uint32_t entries,
			uint32_t block)
{
	memset(b, 0, 1024);
	memcpy(b, "cxsparse", 8);
	put_be64(b + 8, NO_OFF);
	put_be64(b + 16, table);
	put_be32(b + 24, 0x00010000);
	put_be32(b + 28, entries);
	put_be32(b + 32, block);
	seal_header(b);
}

static int footer(const uint8_t *b, struct vhd_footer *f, const char **why)
{
	*why = NULL;
	return vhd_footer_decode(b, f, why);
}

static int header(const uint8_t *b, struct vhd_header *h, const char **why)
{
	*why = NULL;
	return vhd_header_decode(b, h, why);
}

/* ---- footer ---- */

static void test_checksum_helper(void **state)
{
	uint8_t b[512] = { 0 };

	(void)state;
	assert_int_equal(vhd_checksum(b, 512, 64), 0xffffffffu);
	b[0] = 1;
	b[64] = 0xff;	/* inside the skipped field */
	b[511] = 2;
	assert_int_equal(vhd_checksum(b, 512, 64), ~3u);
	assert_int_equal(vhd_checksum(b, 512, 64), ref_checksum(b, 512, 64));
}

static void test_footer_valid_dynamic(void **state)
{
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	assert_int_equal(f.features, 2);
	assert_int_equal(f.version, 0x00010000);
	assert_int_equal(f.data_offset, 512);
	assert_int_equal(f.timestamp, 0x2f000000);
	assert_memory_equal(f.creator_app, "tap", 4);
	assert_int_equal(f.creator_version, 0x00010003);
	assert_int_equal(f.creator_os, 0x5769326b);
	assert_int_equal(f.original_size, 64 * MiB);
	assert_int_equal(f.current_size, 64 * MiB);
	assert_int_equal(f.geometry, 963u << 16 | 8 << 8 | 17);
	assert_int_equal(f.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(f.checksum, get_be32(b + 64));
	assert_int_equal(f.uuid[0], 0xa0);
	assert_int_equal(f.uuid[15], 0xaf);
	assert_int_equal(f.saved_state, 0);
	assert_int_equal(f.hidden, 0);
	assert_true(vhd_creator_is_tap(&f));

	make_footer(b, VHD_TYPE_DIFF, 64 * MiB, "vpc ", 0x00050003);
	assert_decoded(footer(b, &f, &why), why);
	assert_int_equal(f.type, VHD_TYPE_DIFF);
	assert_false(vhd_creator_is_tap(&f));
}

static void test_footer_fixed_vs_dynamic_offset(void **state)
{
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	/* fixed: data_offset all ones */
	make_footer(b, VHD_TYPE_FIXED, 8 * MiB, "qemu", 0x00050003);
	assert_decoded(footer(b, &f, &why), why);
	assert_int_equal(f.data_offset, NO_OFF);

	/* dynamic and differencing disks need a header offset */
	make_footer(b, VHD_TYPE_DYNAMIC, 8 * MiB, "qemu", 0x00050003);
	put_be64(b + 16, NO_OFF);
	seal_footer(b);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);

	make_footer(b, VHD_TYPE_DIFF, 8 * MiB, "tap", 0x00010003);
	put_be64(b + 16, NO_OFF);
	seal_footer(b);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);

	/* a header offset other than 512 is decoded as is */
	make_footer(b, VHD_TYPE_DYNAMIC, 8 * MiB, "qemu", 0x00050003);
	put_be64(b + 16, 0x12345600);
	seal_footer(b);
	assert_decoded(footer(b, &f, &why), why);
	assert_int_equal(f.data_offset, 0x12345600);
}

static void test_footer_bad_cookie(void **state)
{
	static const char *const cookies[] = {
		"conectiX", "Conectix", "\0onectix", "cxsparse", "tdbatmap",
	};
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cookies) / sizeof(cookies[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
		memcpy(b, cookies[i], 8);
		seal_footer(b);
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
	}
}

static void test_footer_bad_checksum(void **state)
{
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;
	uint32_t good;

	(void)state;
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
	good = get_be32(b + 64);
	put_be32(b + 64, good + 1);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);
	put_be32(b + 64, good - 1);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);
	put_be32(b + 64, ~good);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);

	/* every byte is covered, the reserved area included */
	put_be32(b + 64, good);
	assert_decoded(footer(b, &f, &why), why);
	for (int off = 8; off < 512; off += 37) {
		if (off >= 64 && off < 68)
			continue;
		b[off] ^= 0x10;
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
		b[off] ^= 0x10;
	}
	b[511] ^= 1;
	assert_rejected(footer(b, &f, &why), -EINVAL, why);
}

/* Set the hidden byte the way old td-util did: checksum left alone. */
static void hide_like_old_tdutil(uint8_t *b, uint8_t hidden)
{
	b[85] = hidden;
}

static void test_footer_old_tap_hidden(void **state)
{
	static const struct {
		const char *app;
		uint32_t ver;
		bool tolerated;
	} cases[] = {
		{ "tap", 0x00000001, true },	/* tap 0.1 */
		{ "tap", 0x00010001, true },	/* tap 1.1 */
		{ "tap", 0x00010002, false },
		{ "tap", 0x00010003, false },
		{ "tap", 0x00000002, false },
		{ "tap", 0x00020001, false },
		{ "qemu", 0x00000001, false },
		{ "vpc ", 0x00010001, false },
	};
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, cases[i].app,
			    cases[i].ver);
		hide_like_old_tdutil(b, 1);
		if (cases[i].tolerated) {
			assert_decoded(footer(b, &f, &why), why);
			assert_int_equal(f.hidden, 1);
			assert_true(vhd_old_tap_hidden(&f));
		} else {
			assert_rejected(footer(b, &f, &why), -EINVAL, why);
		}

		/* a hidden byte included in the checksum is always fine */
		make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, cases[i].app,
			    cases[i].ver);
		b[85] = 1;
		seal_footer(b);
		assert_decoded(footer(b, &f, &why), why);
		assert_int_equal(f.hidden, 1);
	}

	/* the tolerance is exactly the hidden byte, nothing more */
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010001);
	hide_like_old_tdutil(b, 1);
	put_be32(b + 64, get_be32(b + 64) + 1);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);

	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00000001);
	hide_like_old_tdutil(b, 1);
	b[100] = 1;	/* another byte changed behind the checksum */
	assert_rejected(footer(b, &f, &why), -EINVAL, why);

	/* a wrong checksum with hidden = 0 stays wrong for old tap too */
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00000001);
	put_be32(b + 64, get_be32(b + 64) + 1);
	assert_rejected(footer(b, &f, &why), -EINVAL, why);
}

static void test_footer_type(void **state)
{
	static const uint32_t bad[] = { 0, 1, 5, 6, 0x100, 0x02000000,
					0xffffffff };
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	for (uint32_t t = 2; t <= 4; t++) {
		make_footer(b, t, 64 * MiB, "tap", 0x00010003);
		assert_decoded(footer(b, &f, &why), why);
		assert_int_equal(f.type, t);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
		put_be32(b + 60, bad[i]);
		seal_footer(b);
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
	}
}

static void test_footer_version(void **state)
{
	static const uint32_t bad[] = { 0, 0x00000001, 0x00020000, 0xffff0000,
					0x00000100 };
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
		put_be32(b + 12, bad[i]);
		seal_footer(b);
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
	}
}

static void test_footer_size_not_sector_multiple(void **state)
{
	static const uint64_t bad[] = { 1, 511, 513, 64 * MiB + 1,
					64 * MiB - 256, 0xffffffffffffffffull };
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, bad[i], "tap", 0x00010003);
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
	}
	make_footer(b, VHD_TYPE_DYNAMIC, 0, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	make_footer(b, VHD_TYPE_FIXED, 512, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
}

static void test_footer_size_limit(void **state)
{
	static const uint64_t bad[] = {
		2040 * GiB + 512, 2041 * GiB, 2048 * GiB, 1ull << 63,
		0xfffffffffffffe00ull,
	};
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	/* 0xff000000 sectors = 2040 GiB: the largest size QEMU opens */
	make_footer(b, VHD_TYPE_DYNAMIC, 2040 * GiB, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	assert_int_equal(f.current_size, 0xff000000ull * 512);
	make_footer(b, VHD_TYPE_FIXED, 2039 * GiB, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_footer(b, VHD_TYPE_DYNAMIC, bad[i], "tap", 0x00010003);
		assert_rejected(footer(b, &f, &why), -EINVAL, why);
	}
	/* only current_size counts, not original_size */
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010003);
	put_be64(b + 40, 4096 * GiB);
	seal_footer(b);
	assert_decoded(footer(b, &f, &why), why);
}

/* ---- dynamic header ---- */

static void test_header_valid(void **state)
{
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	make_header(b, 1536, 32, 2 * MiB);
	for (int i = 0; i < 16; i++)
		b[40 + i] = 0x50 + i;
	put_be32(b + 56, 0x2f001234);
	b[64] = 0;
	b[65] = 'p';
	b[575] = 0x77;
	for (int i = 0; i < 8; i++) {
		uint8_t *l = b + 576 + 24 * i;

		put_be32(l, VHD_PLAT_MACX + i);
		put_be32(l + 4, 1 + i);
		put_be32(l + 8, 100 + i);
		put_be32(l + 12, 0xdeadbeef);	/* reserved */
		put_be64(l + 16, 0x10000ull * (i + 1));
	}
	seal_header(b);
	assert_decoded(header(b, &h, &why), why);
	assert_int_equal(h.table_offset, 1536);
	assert_int_equal(h.version, 0x00010000);
	assert_int_equal(h.max_bat_entries, 32);
	assert_int_equal(h.block_size, 2 * MiB);
	assert_int_equal(h.checksum, get_be32(b + 36));
	assert_int_equal(h.parent_uuid[0], 0x50);
	assert_int_equal(h.parent_uuid[15], 0x5f);
	assert_int_equal(h.parent_timestamp, 0x2f001234);
	assert_int_equal(h.parent_name[1], 'p');
	assert_int_equal(h.parent_name[511], 0x77);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(h.loc[i].code, VHD_PLAT_MACX + i);
		assert_int_equal(h.loc[i].data_space, 1 + i);
		assert_int_equal(h.loc[i].data_len, 100 + i);
		assert_int_equal(h.loc[i].data_offset, 0x10000ull * (i + 1));
	}
	assert_int_equal(vhd_block_sectors(&h), 4096);
	assert_int_equal(vhd_bitmap_sectors(&h), 1);
}

static void test_header_bad_cookie(void **state)
{
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	make_header(b, 1536, 32, 2 * MiB);
	memcpy(b, "conectix", 8);
	seal_header(b);
	assert_rejected(header(b, &h, &why), -EINVAL, why);
	make_header(b, 1536, 32, 2 * MiB);
	b[7] = 'E';
	seal_header(b);
	assert_rejected(header(b, &h, &why), -EINVAL, why);
}

static void test_header_data_offset(void **state)
{
	static const uint64_t bad[] = { 0, 512, 0x7fffffffffffffffull,
					0xfffffffffffffffeull,
					0xffffffff00000000ull };
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_header(b, 1536, 32, 2 * MiB);
		put_be64(b + 8, bad[i]);
		seal_header(b);
		assert_rejected(header(b, &h, &why), -EINVAL, why);
	}
}

static void test_header_checksum(void **state)
{
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;
	uint32_t good;

	(void)state;
	make_header(b, 1536, 32, 2 * MiB);
	good = get_be32(b + 36);
	put_be32(b + 36, good + 1);
	assert_rejected(header(b, &h, &why), -EINVAL, why);
	put_be32(b + 36, good);
	for (int off = 8; off < 1024; off += 41) {
		if (off >= 36 && off < 40)
			continue;
		b[off] ^= 0x01;
		assert_rejected(header(b, &h, &why), -EINVAL, why);
		b[off] ^= 0x01;
	}
	b[1023] = 1;	/* reserved tail is covered too */
	assert_rejected(header(b, &h, &why), -EINVAL, why);
	/* the footer checksum field position (64) is not special here */
	make_header(b, 1536, 32, 2 * MiB);
	b[64] = 1;
	assert_rejected(header(b, &h, &why), -EINVAL, why);
}

static void test_header_version(void **state)
{
	static const uint32_t bad[] = { 0, 0x00010001, 0x00020000, 0x00000001,
					0x00001000 };
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_header(b, 1536, 32, 2 * MiB);
		put_be32(b + 24, bad[i]);
		seal_header(b);
		assert_rejected(header(b, &h, &why), -EINVAL, why);
	}
}

static void test_header_block_size(void **state)
{
	static const uint32_t bad[] = { 0, 1, 2, 256, 511, 513, 1000, 3 * MiB,
					2 * MiB + 512, 0x80000001u,
					0xffffffffu };
	static const uint32_t good[] = { 512, 1024, 4096, 2 * MiB, 4 * MiB,
					 0x80000000u };
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_header(b, 1536, 32, bad[i]);
		assert_rejected(header(b, &h, &why), -EINVAL, why);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		make_header(b, 1536, 32, good[i]);
		assert_decoded(header(b, &h, &why), why);
		assert_int_equal(h.block_size, good[i]);
	}
}

static void test_header_bat_alignment(void **state)
{
	static const uint64_t bad[] = { 1, 2, 3, 1537, 1538, 1539,
					0xffffffffffffffffull };
	static const uint64_t good[] = { 0, 4, 8, 1536, 1540, 0x1000000000ull };
	uint8_t b[1024];
	struct vhd_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_header(b, bad[i], 32, 2 * MiB);
		assert_rejected(header(b, &h, &why), -EINVAL, why);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		make_header(b, good[i], 32, 2 * MiB);
		assert_decoded(header(b, &h, &why), why);
		assert_int_equal(h.table_offset, good[i]);
	}
}

static void test_block_and_bitmap_sectors(void **state)
{
	static const struct {
		uint32_t block;
		uint32_t sectors;
		uint32_t bitmap_sectors;
	} cases[] = {
		/* bitmap bytes = ceil(sectors / 8), rounded up to sectors */
		{ 512, 1, 1 },
		{ 4096, 8, 1 },
		{ 2 * 1024 * 1024, 4096, 1 },		/* 512 bytes */
		{ 4 * 1024 * 1024, 8192, 2 },		/* 1024 bytes */
		{ 8 * 1024 * 1024, 16384, 4 },
		{ 0x80000000u, 4194304, 1024 },		/* 524288 bytes */
	};
	struct vhd_header h = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h.block_size = cases[i].block;
		assert_int_equal(vhd_block_sectors(&h), cases[i].sectors);
		assert_int_equal(vhd_bitmap_sectors(&h),
				 cases[i].bitmap_sectors);
	}
}

/* ---- layout ---- */

struct layout {
	struct vhd_footer f;
	struct vhd_header h;
};

static void make_layout(struct layout *l, uint64_t size, uint64_t table,
			uint32_t entries, uint32_t block)
{
	uint8_t fb[512], hb[1024];
	const char *why;

	make_footer(fb, VHD_TYPE_DYNAMIC, size, "tap", 0x00010003);
	make_header(hb, table, entries, block);
	assert_decoded(footer(fb, &l->f, &why), why);
	assert_decoded(header(hb, &l->h, &why), why);
}

static int layout(const struct layout *l, uint64_t image_bytes)
{
	const char *why = NULL;
	int r = vhd_layout_check(&l->f, &l->h, image_bytes, &why);

	if (r)
		assert_non_null(why);
	return r;
}

static void test_layout_ok(void **state)
{
	struct layout l;

	(void)state;
	/* vhd-util create 64 MiB: footer, header, BAT at 1536, batmap, footer */
	make_layout(&l, 64 * MiB, 1536, 32, 2 * MiB);
	assert_int_equal(vhd_bat_entries_used(&l.f, &l.h), 32);
	assert_int_equal(layout(&l, 3584), 0);
	/* the BAT may end exactly at the end of the image */
	assert_int_equal(layout(&l, 1536 + 128), 0);
	/* a pre-sized, larger BAT */
	make_layout(&l, 64 * MiB, 1536, 1024, 2 * MiB);
	assert_int_equal(layout(&l, 1536 + 4096), 0);
	/* the last block may be partial: 65 MiB needs 33 blocks */
	make_layout(&l, 65 * MiB, 1536, 33, 2 * MiB);
	assert_int_equal(vhd_bat_entries_used(&l.f, &l.h), 33);
	assert_int_equal(layout(&l, 1 * MiB), 0);
	/* empty disk, empty BAT */
	make_layout(&l, 0, 1536, 0, 2 * MiB);
	assert_int_equal(vhd_bat_entries_used(&l.f, &l.h), 0);
	assert_int_equal(layout(&l, 1536), 0);
}

static void test_layout_header_outside(void **state)
{
	struct layout l;

	(void)state;
	make_layout(&l, 64 * MiB, 1536, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 1535), 0);
	assert_int_not_equal(layout(&l, 1024), 0);
	assert_int_not_equal(layout(&l, 512), 0);
	assert_int_not_equal(layout(&l, 0), 0);
	l.f.data_offset = 1 * MiB - 1023;
	assert_int_not_equal(layout(&l, 1 * MiB), 0);
	l.f.data_offset = 1 * MiB - 1024;
	assert_int_equal(layout(&l, 1 * MiB), 0);
	/* no wrap-around near 2^64 */
	l.f.data_offset = 0xfffffffffffffe00ull;
	assert_int_not_equal(layout(&l, 0xffffffffffffffffull), 0);
	l.f.data_offset = 0xffffffffffffff00ull;
	assert_int_not_equal(layout(&l, 0xffffffffffffffffull), 0);
}

static void test_layout_bat_too_small(void **state)
{
	struct layout l;

	(void)state;
	make_layout(&l, 64 * MiB, 1536, 31, 2 * MiB);
	assert_int_not_equal(layout(&l, 1 * MiB), 0);
	make_layout(&l, 64 * MiB + 512, 1536, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 1 * MiB), 0);
	make_layout(&l, 64 * MiB, 1536, 0, 2 * MiB);
	assert_int_not_equal(layout(&l, 1 * MiB), 0);
	/* 2040 GiB of 512-byte blocks: 0xff000000 entries needed */
	make_layout(&l, 2040 * GiB, 1536, 0xfeffffffu, 512);
	assert_int_not_equal(layout(&l, 0xffffffffffffffffull), 0);
	make_layout(&l, 2040 * GiB, 1536, 0xff000000u, 512);
	assert_int_equal(vhd_bat_entries_used(&l.f, &l.h), 0xff000000u);
	assert_int_equal(layout(&l, 0xffffffffffffffffull), 0);
	make_layout(&l, 1 * MiB, 1536, 2048, 512);
	assert_int_equal(layout(&l, 1536 + 8192), 0);
}

static void test_layout_bat_outside(void **state)
{
	struct layout l;

	(void)state;
	make_layout(&l, 64 * MiB, 1536, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 1536 + 127), 0);
	make_layout(&l, 64 * MiB, 1 * MiB, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 1 * MiB), 0);
	assert_int_not_equal(layout(&l, 1 * MiB + 64), 0);
	assert_int_equal(layout(&l, 1 * MiB + 128), 0);
	/* the whole declared BAT counts, not only the used entries */
	make_layout(&l, 64 * MiB, 1536, 1024, 2 * MiB);
	assert_int_not_equal(layout(&l, 1536 + 128), 0);
	/* huge BAT or BAT offset: no overflow */
	make_layout(&l, 64 * MiB, 1536, 0xffffffffu, 2 * MiB);
	assert_int_not_equal(layout(&l, 16 * GiB), 0);
	assert_int_equal(layout(&l, 1536 + 4ull * 0xffffffffu), 0);
	make_layout(&l, 64 * MiB, 0xfffffffffffffffcull, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 0xffffffffffffffffull), 0);
	make_layout(&l, 64 * MiB, 0xffffffffffffffc0ull, 32, 2 * MiB);
	assert_int_not_equal(layout(&l, 0xffffffffffffffffull), 0);
	make_layout(&l, 64 * MiB, 0xffffffffffffff00ull, 32, 2 * MiB);
	assert_int_equal(layout(&l, 0xffffffffffffffffull), 0);
	assert_int_not_equal(layout(&l, 0xffffffffffffff7full), 0);
}

/* ---- bitmaps ---- */

static void test_bitmap_bit_order(void **state)
{
	(void)state;
	/* MSB first: sector i is 0x80 >> (i & 7) */
	for (uint32_t i = 0; i < 64; i++) {
		assert_true(vhd_bitmap_bit(0x80 >> (i & 7), i, false));
		assert_false(vhd_bitmap_bit((uint8_t)~(0x80 >> (i & 7)), i,
					    false));
		assert_true(vhd_bitmap_bit(1 << (i & 7), i, true));
		assert_false(vhd_bitmap_bit((uint8_t)~(1 << (i & 7)), i, true));
	}
	assert_true(vhd_bitmap_bit(0x80, 0, false));
	assert_false(vhd_bitmap_bit(0x80, 0, true));
	assert_true(vhd_bitmap_bit(0x01, 7, false));
	assert_false(vhd_bitmap_bit(0x01, 7, true));
	assert_true(vhd_bitmap_bit(0x01, 0, true));
	assert_true(vhd_bitmap_bit(0x80, 7, true));
	assert_true(vhd_bitmap_bit(0x20, 4097 * 8 + 2, false));
	assert_false(vhd_bitmap_bit(0x00, 5, false));
	assert_true(vhd_bitmap_bit(0xff, 4095, true));
}

static void test_bitmap_lsb_first_creators(void **state)
{
	uint8_t b[512];
	struct vhd_footer f;
	const char *why;

	(void)state;
	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00000001);
	assert_decoded(footer(b, &f, &why), why);
	assert_true(vhd_bitmap_lsb_first(&f));
	assert_false(vhd_has_batmap(&f));

	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "tap", 0x00010001);
	assert_decoded(footer(b, &f, &why), why);
	assert_false(vhd_bitmap_lsb_first(&f));
	assert_true(vhd_has_batmap(&f));

	make_footer(b, VHD_TYPE_DIFF, 64 * MiB, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	assert_false(vhd_bitmap_lsb_first(&f));
	assert_true(vhd_has_batmap(&f));

	make_footer(b, VHD_TYPE_FIXED, 64 * MiB, "tap", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	assert_false(vhd_has_batmap(&f));

	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "qemu", 0x00000001);
	assert_decoded(footer(b, &f, &why), why);
	assert_false(vhd_bitmap_lsb_first(&f));
	assert_false(vhd_has_batmap(&f));

	make_footer(b, VHD_TYPE_DYNAMIC, 64 * MiB, "win ", 0x00010003);
	assert_decoded(footer(b, &f, &why), why);
	assert_false(vhd_has_batmap(&f));
}

/* ---- batmap ---- */

static void test_batmap_header_offset(void **state)
{
	struct vhd_header h = { 0 };

	(void)state;
	/* 64 MiB, 2 MiB blocks: 32 entries = 128 bytes, padded to 512 */
	h.table_offset = 1536;
	h.max_bat_entries = 32;
	assert_int_equal(vhd_batmap_header_offset(&h), 0x800);
	h.max_bat_entries = 128;	/* exactly one sector */
	assert_int_equal(vhd_batmap_header_offset(&h), 2048);
	h.max_bat_entries = 129;
	assert_int_equal(vhd_batmap_header_offset(&h), 2560);
	h.max_bat_entries = 0;
	assert_int_equal(vhd_batmap_header_offset(&h), 1536);
	/* 2039 GiB: 1043968 entries = 4175872 bytes = 8156 sectors */
	h.max_bat_entries = 1043968;
	assert_int_equal(vhd_batmap_header_offset(&h), 1536 + 4175872);
	/* 2040 GiB: 1044480 entries */
	h.max_bat_entries = 1044480;
	assert_int_equal(vhd_batmap_header_offset(&h), 1536 + 4177920);
	/* the largest BAT: no 32-bit overflow */
	h.max_bat_entries = 0xffffffffu;
	assert_int_equal(vhd_batmap_header_offset(&h),
			 1536 + 0x400000000ull);
	h.table_offset = 0x100000000ull;
	h.max_bat_entries = 1;
	assert_int_equal(vhd_batmap_header_offset(&h), 0x100000200ull);
}

static void make_batmap(uint8_t *b, uint64_t map_off, uint32_t map_secs,
			uint32_t version, uint8_t keyhash)
{
	memset(b, 0, 512);
	memcpy(b, "tdbatmap", 8);
	put_be64(b + 8, map_off);
	put_be32(b + 16, map_secs);
	put_be32(b + 20, version);
	put_be32(b + 24, 0xfffffffe);
	b[28] = 0;
	b[29] = keyhash;
	for (int i = 0; i < 32; i++) {
		b[30 + i] = 0x10 + i;	/* nonce */
		b[62 + i] = 0xc0 + i;	/* hash */
	}
	b[94] = 0x55;	/* reserved: not part of the keyhash */
}

static void test_batmap_decode(void **state)
{
	uint8_t b[512];
	struct vhd_batmap_header m;
	const char *why = NULL;

	(void)state;
	make_batmap(b, 2560, 1, 0x00010002, 1);
	b[28] = 7;
	assert_decoded(vhd_batmap_header_decode(b, &m, &why), why);
	assert_int_equal(m.map_offset, 2560);
	assert_int_equal(m.map_sectors, 1);
	assert_int_equal(m.version, 0x00010002);
	assert_int_equal(m.checksum, 0xfffffffe);
	assert_int_equal(m.marker, 7);
	assert_int_equal(m.keyhash_set, 1);
	for (int i = 0; i < 32; i++) {
		assert_int_equal(m.nonce[i], 0x10 + i);
		assert_int_equal(m.hash[i], 0xc0 + i);
	}

	make_batmap(b, 2560, 1, 0x00010001, 0);
	assert_decoded(vhd_batmap_header_decode(b, &m, &why), why);
	assert_int_equal(m.keyhash_set, 0);
	assert_int_equal(m.version, 0x00010001);
}

static void test_batmap_reject(void **state)
{
	static const uint32_t bad[] = { 0x00010003, 0x00020000, 0xffffffff };
	uint8_t b[512];
	struct vhd_batmap_header m;
	const char *why;

	(void)state;
	make_batmap(b, 2560, 1, 0x00010002, 1);
	memcpy(b, "tdbatmaP", 8);
	why = NULL;
	assert_rejected(vhd_batmap_header_decode(b, &m, &why), -EINVAL, why);
	memcpy(b, "conectix", 8);
	why = NULL;
	assert_rejected(vhd_batmap_header_decode(b, &m, &why), -EINVAL, why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_batmap(b, 2560, 1, bad[i], 1);
		why = NULL;
		assert_rejected(vhd_batmap_header_decode(b, &m, &why), -EINVAL,
				why);
	}
}

/* ---- parent locators ---- */

static void test_locator_space(void **state)
{
	static const struct {
		uint32_t space;
		uint64_t bytes;
	} cases[] = {
		{ 0, 0 },
		{ 1, 512 },		/* sectors below 512 */
		{ 2, 1024 },
		{ 511, 511 * 512 },
		{ 512, 512 },		/* bytes from 512 (libvhd writes this) */
		{ 513, 513 },
		{ 4096, 4096 },
		{ 0xffffffffu, 0xffffffffull },
	};
	struct vhd_parent_locator l = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		l.data_space = cases[i].space;
		assert_int_equal(vhd_locator_space(&l), cases[i].bytes);
	}
}

/* ---- real images ---- */

struct image {
	uint64_t file_size;
	struct vhd_footer f;	/* the trailing footer */
	struct vhd_header h;
	bool has_header;
};

static void load_image(const char *name, struct image *im)
{
	const char *path = unit_image(name);
	uint8_t fb[512], fb0[512], hb[1024];
	const char *why;

	im->file_size = unit_file_size(path);
	assert_true(im->file_size >= 512);
	assert_int_equal(unit_read_at(path, im->file_size - 512, fb, 512), 512);
	assert_decoded(footer(fb, &im->f, &why), why);
	im->has_header = im->f.type != VHD_TYPE_FIXED;
	if (!im->has_header)
		return;
	/* dynamic disks keep an identical copy at offset 0 */
	unit_read_at(path, 0, fb0, 512);
	assert_memory_equal(fb, fb0, 512);
	assert_int_equal(unit_read_at(path, im->f.data_offset, hb, 1024), 1024);
	assert_decoded(header(hb, &im->h, &why), why);
	why = NULL;
	if (vhd_layout_check(&im->f, &im->h, im->file_size, &why))
		fail_msg("%s: %s", name, why);
}

static void test_qemu_vpc_dynamic(void **state)
{
	struct image im;
	uint8_t buf[512], bat[4];
	uint32_t blk;
	uint64_t data;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	load_image("qemu-dynamic.vhd", &im);
	assert_int_equal(im.f.type, VHD_TYPE_DYNAMIC);
	assert_memory_equal(im.f.creator_app, "qemu", 4);
	assert_false(vhd_has_batmap(&im.f));
	assert_false(vhd_bitmap_lsb_first(&im.f));
	assert_int_equal(im.f.data_offset, 512);
	/* QEMU rounds 64 MiB up to whole CHS cylinders */
	assert_true(im.f.current_size >= 64 * MiB);
	assert_int_equal(im.h.table_offset, 1536);
	assert_int_equal(im.h.block_size, 2 * MiB);
	assert_true(im.h.max_bat_entries >= 32);

	/* qemu-io wrote 0x5a at virtual 4 MiB + 4 KiB: block 2, sector 8 */
	unit_read_at(unit_image("qemu-dynamic.vhd"), im.h.table_offset + 4 * 2,
		     bat, 4);
	blk = get_be32(bat);
	assert_int_not_equal(blk, VHD_BAT_UNUSED);
	unit_read_at(unit_image("qemu-dynamic.vhd"), (uint64_t)blk * 512, buf,
		     512);
	assert_true(vhd_bitmap_bit(buf[1], 8, vhd_bitmap_lsb_first(&im.f)));
	data = ((uint64_t)blk + vhd_bitmap_sectors(&im.h) + 8) * 512;
	unit_read_at(unit_image("qemu-dynamic.vhd"), data, buf, 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], 0x5a);
	/* block 0 was not written */
	unit_read_at(unit_image("qemu-dynamic.vhd"), im.h.table_offset, bat, 4);
	assert_int_equal(get_be32(bat), VHD_BAT_UNUSED);
}

static void test_qemu_vpc_fixed(void **state)
{
	struct image im;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	load_image("qemu-fixed.vhd", &im);
	assert_int_equal(im.f.type, VHD_TYPE_FIXED);
	assert_int_equal(im.f.data_offset, NO_OFF);
	assert_int_equal(im.f.current_size, im.file_size - 512);
	assert_false(vhd_has_batmap(&im.f));
}

static void test_qemu_vpc_force_size(void **state)
{
	struct image im;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	load_image("qemu-forcesize.vhd", &im);
	assert_int_equal(im.f.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(im.f.current_size, 10 * MiB);
	assert_int_equal(vhd_bat_entries_used(&im.f, &im.h), 5);
}

static const struct openxt_image {
	const char *name;
	uint32_t type;
	uint64_t size;
	int keyhash;	/* 1 own key hash, 0 none */
	bool nonce;	/* a non-zero nonce */
	const char *parent;
} openxt_images[] = {
	{ "plain.vhd", VHD_TYPE_DYNAMIC, 96 * MiB, 0, false, NULL },
	{ "aes256xts.vhd", VHD_TYPE_DYNAMIC, 100 * MiB, 1, false, NULL },
	{ "aes256xts-nonce.vhd", VHD_TYPE_DYNAMIC, 64 * MiB, 1, true, NULL },
	{ "aes128xts.vhd", VHD_TYPE_DYNAMIC, 72 * MiB, 1, false, NULL },
	{ "aes128xts-nonce.vhd", VHD_TYPE_DYNAMIC, 88 * MiB, 1, true, NULL },
	{ "parent.vhd", VHD_TYPE_DYNAMIC, 80 * MiB, 1, true, NULL },
	{ "child-own.vhd", VHD_TYPE_DIFF, 80 * MiB, 1, false, "parent.vhd" },
	{ "child-inherit.vhd", VHD_TYPE_DIFF, 80 * MiB, 0, false,
	  "parent.vhd" },
	{ "grandchild.vhd", VHD_TYPE_DIFF, 80 * MiB, 1, true,
	  "child-inherit.vhd" },
	{ "big.vhd", VHD_TYPE_DYNAMIC, 2039 * GiB, 1, false, NULL },
};

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void check_openxt(const struct openxt_image *x)
{
	char name[256];
	const char *path;
	struct image im, parent;
	struct vhd_batmap_header m;
	uint8_t b[512];
	uint64_t off;
	const char *why = NULL;
	int locators = 0;

	snprintf(name, sizeof(name), "openxt/%s", x->name);
	load_image(name, &im);
	path = unit_image(name);
	assert_int_equal(im.f.type, x->type);
	assert_int_equal(im.f.current_size, x->size);
	assert_memory_equal(im.f.creator_app, "tap", 4);
	assert_int_equal(im.f.creator_version, 0x00010003);
	assert_false(vhd_bitmap_lsb_first(&im.f));
	assert_true(vhd_has_batmap(&im.f));
	assert_int_equal(im.f.data_offset, 512);
	assert_int_equal(im.h.table_offset, 1536);
	assert_int_equal(im.h.block_size, 2 * MiB);
	assert_int_equal(im.h.max_bat_entries, x->size / (2 * MiB));
	assert_int_equal(vhd_bitmap_sectors(&im.h), 1);

	off = vhd_batmap_header_offset(&im.h);
	assert_int_equal(off, 1536 + ((4ull * im.h.max_bat_entries + 511) &
				      ~511ull));
	if (x->size == 64 * MiB)
		assert_int_equal(off, 0x800);
	assert_int_equal(unit_read_at(path, off, b, 512), 512);
	assert_decoded(vhd_batmap_header_decode(b, &m, &why), why);
	assert_int_equal(m.version, 0x00010002);
	assert_int_equal(m.map_offset, off + 512);
	/* one bit per block, in whole sectors */
	assert_int_equal(m.map_sectors,
			 (im.h.max_bat_entries + 8 * 512 - 1) / (8 * 512));
	assert_int_equal(m.keyhash_set, x->keyhash);
	if (x->keyhash) {
		assert_false(all_zero(m.hash, 32));
		assert_int_equal(all_zero(m.nonce, 32), !x->nonce);
	} else {
		assert_true(all_zero(m.hash, 32));
	}

	/* parent locators */
	for (int i = 0; i < VHD_MAX_LOCATORS; i++) {
		const struct vhd_parent_locator *l = &im.h.loc[i];

		if (!l->code)
			continue;
		locators++;
		assert_true(l->code == VHD_PLAT_MACX ||
			    l->code == VHD_PLAT_W2KU ||
			    l->code == VHD_PLAT_W2RU);
		assert_true(l->data_len > 0);
		assert_true(l->data_len <= vhd_locator_space(l));
		assert_true(vc_range_ok(l->data_offset, vhd_locator_space(l),
					im.file_size));
		if (l->code == VHD_PLAT_MACX) {
			char uri[512] = { 0 };
			char want[300];

			assert_true(l->data_len < sizeof(uri));
			unit_read_at(path, l->data_offset, uri, l->data_len);
			snprintf(want, sizeof(want), "file://./%s", x->parent);
			assert_string_equal(uri, want);
		}
	}
	if (!x->parent) {
		assert_int_equal(locators, 0);
		return;
	}
	assert_int_equal(locators, 3);
	/* the child names its parent by the parent footer's uuid */
	snprintf(name, sizeof(name), "openxt/%s", x->parent);
	load_image(name, &parent);
	assert_memory_equal(im.h.parent_uuid, parent.f.uuid, 16);
	assert_int_equal(parent.f.current_size, im.f.current_size);
}

static void test_openxt_fixtures(void **state)
{
	(void)state;
	SKIP_WITHOUT_IMAGES();
	for (size_t i = 0; i < sizeof(openxt_images) / sizeof(openxt_images[0]);
	     i++) {
		print_message("# %s\n", openxt_images[i].name);
		check_openxt(&openxt_images[i]);
	}
}

/* The big image: a 4 MiB BAT and a batmap header behind it. */
static void test_openxt_big_bat(void **state)
{
	struct image im;

	(void)state;
	SKIP_WITHOUT_IMAGES();
	load_image("openxt/big.vhd", &im);
	assert_int_equal(im.h.max_bat_entries, 1043968);
	assert_int_equal(vhd_bat_entries_used(&im.f, &im.h), 1043968);
	assert_int_equal(vhd_batmap_header_offset(&im.h), 1536 + 4175872);
	/* a byte less and the BAT no longer fits */
	assert_int_not_equal(vhd_layout_check(&im.f, &im.h,
					      1536 + 4175872 - 1,
					      &(const char *){ NULL }), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_helper),
		cmocka_unit_test(test_footer_valid_dynamic),
		cmocka_unit_test(test_footer_fixed_vs_dynamic_offset),
		cmocka_unit_test(test_footer_bad_cookie),
		cmocka_unit_test(test_footer_bad_checksum),
		cmocka_unit_test(test_footer_old_tap_hidden),
		cmocka_unit_test(test_footer_type),
		cmocka_unit_test(test_footer_version),
		cmocka_unit_test(test_footer_size_not_sector_multiple),
		cmocka_unit_test(test_footer_size_limit),
		cmocka_unit_test(test_header_valid),
		cmocka_unit_test(test_header_bad_cookie),
		cmocka_unit_test(test_header_data_offset),
		cmocka_unit_test(test_header_checksum),
		cmocka_unit_test(test_header_version),
		cmocka_unit_test(test_header_block_size),
		cmocka_unit_test(test_header_bat_alignment),
		cmocka_unit_test(test_block_and_bitmap_sectors),
		cmocka_unit_test(test_layout_ok),
		cmocka_unit_test(test_layout_header_outside),
		cmocka_unit_test(test_layout_bat_too_small),
		cmocka_unit_test(test_layout_bat_outside),
		cmocka_unit_test(test_bitmap_bit_order),
		cmocka_unit_test(test_bitmap_lsb_first_creators),
		cmocka_unit_test(test_batmap_header_offset),
		cmocka_unit_test(test_batmap_decode),
		cmocka_unit_test(test_batmap_reject),
		cmocka_unit_test(test_locator_space),
		cmocka_unit_test(test_qemu_vpc_dynamic),
		cmocka_unit_test(test_qemu_vpc_fixed),
		cmocka_unit_test(test_qemu_vpc_force_size),
		cmocka_unit_test(test_openxt_fixtures),
		cmocka_unit_test(test_openxt_big_bat),
	};

	return cmocka_run_group_tests_name("vhd", tests, NULL, NULL);
}
