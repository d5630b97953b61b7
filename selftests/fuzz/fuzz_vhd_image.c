// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: a whole VHD image (a sparse image, see fuzz.h) opened
 * and mapped as kernel/vhdcrypt-vhd.c does it, through the shared decoders:
 * footer (at the end, or the copy at 0), dynamic header, layout, batmap
 * header, BAT with its load-time checks, then every virtual sector mapped
 * to an extent through the BAT and the sector bitmaps, and where the next
 * write would allocate a block.
 *
 * Invariants: every read lies inside the image device, every extent has a
 * length of at least one sector and no more than asked for, DATA extents
 * lie inside the image, the walk ends, and a new block overlaps nothing.
 * Work is bounded: images whose BAT exceeds FZ_MAX_BAT entries are
 * skipped, and the walk stops after FZ_MAX_EXTENTS extents.
 */
#include <vhdcrypt/vhd.h>

#include "fuzz.h"

#define FZ_MAX_BAT	4096
#define FZ_MAX_EXTENTS	4096

struct vhd {
	struct fz_image im;
	uint64_t sectors;		/* of the image device */
	struct vhd_footer f;
	struct vhd_header h;
	bool footer_at_end;
	uint32_t block_shift, bitmap_sectors;
	bool lsb_first;
	uint32_t bat_entries;
	uint32_t *bat;			/* host sector of each block */
	bool has_batmap;
	uint64_t batmap_offset;
	uint32_t batmap_sectors;
	uint64_t data_end;		/* sectors */
};

enum kind { EXT_LOWER, EXT_DATA };

struct extent {
	enum kind kind;
	uint64_t len, host;		/* sectors */
};

/* A metadata read; with FZ_FIX_CHECKSUMS its checksum is made right. */
static void read_sealed(struct vhd *v, uint64_t off, uint8_t *buf, size_t len,
			size_t csum_off)
{
	fz_image_read(&v->im, off, buf, len);
	if (v->im.flags & FZ_FIX_CHECKSUMS) {
		uint32_t sum = vhd_checksum(buf, len, csum_off);

		buf[csum_off] = sum >> 24;
		buf[csum_off + 1] = sum >> 16;
		buf[csum_off + 2] = sum >> 8;
		buf[csum_off + 3] = sum;
	}
}

/* vc_vhd_read_footer(): the footer at the end, else a dynamic copy at 0. */
static bool open_footer(struct vhd *v)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	const char *why = NULL;

	read_sealed(v, (v->sectors - 1) * 512, buf, sizeof(buf), 64);
	if (!vhd_footer_decode(buf, &v->f, &why)) {
		v->footer_at_end = true;
		return true;
	}
	CHECK_WHY(1, why);
	read_sealed(v, 0, buf, sizeof(buf), 64);
	return !vhd_footer_decode(buf, &v->f, &why) &&
	       v->f.type != VHD_TYPE_FIXED;
}

/* vc_vhd_read_batmap(): tapdisk's batmap, if its header is there. */
static void open_batmap(struct vhd *v)
{
	uint64_t off = vhd_batmap_header_offset(&v->h);
	uint8_t buf[VHD_BATMAP_HEADER_SIZE];
	struct vhd_batmap_header b;
	const char *why = NULL;

	if (!vhd_has_batmap(&v->f) || off % 512 ||
	    !vc_range_ok(off, VHD_BATMAP_HEADER_SIZE, v->im.size))
		return;
	fz_image_read(&v->im, off, buf, sizeof(buf));
	if (vhd_batmap_header_decode(buf, &b, &why)) {
		CHECK_WHY(1, why);
		return;
	}
	v->has_batmap = true;
	v->batmap_offset = b.map_offset;
	v->batmap_sectors = b.map_sectors;
}

/* What the kernel keeps clear of when it allocates (vc_vhd_metadata_end). */
static uint64_t metadata_end(const struct vhd *v)
{
	return vhd_metadata_end(&v->f, &v->h, v->has_batmap, v->batmap_offset,
				v->batmap_sectors, v->im.size);
}

/*
 * vc_vhd_check_blocks(): a block over metadata refuses writing. The answer
 * must be the exact overlap test, done here without overflow.
 */
static void check_block_overlap(const struct vhd *v, uint64_t sector,
				uint64_t span)
{
	struct vhd_extent m[VHD_MAX_METADATA];
	unsigned __int128 off = (unsigned __int128)sector << 9;
	unsigned __int128 end = off + ((unsigned __int128)span << 9);
	unsigned int n = vhd_metadata(&v->f, &v->h, v->has_batmap,
				      v->batmap_offset, v->batmap_sectors,
				      v->im.size, m);
	const char *what = vhd_overlap(m, n, sector << 9, span << 9);
	bool any = false;

	CHECK(n <= VHD_MAX_METADATA);
	for (unsigned int i = 0; i < n; i++) {
		CHECK(m[i].start < m[i].end && m[i].end <= v->im.size);
		CHECK(m[i].end <= metadata_end(v));
		any |= off < m[i].end && m[i].start < end;
	}
	CHECK(any == (what != NULL));
}

/* vc_vhd_load_bat(): every allocated block inside the image. */
static bool load_bat(struct vhd *v)
{
	uint64_t span = v->bitmap_sectors + (1ull << v->block_shift);
	uint64_t off = v->h.table_offset, start = off & ~511ull;
	size_t bytes = 4ull * v->bat_entries;
	size_t read = (off - start + bytes + 511) & ~511ull;
	uint8_t *buf = malloc(read ? read : 1);
	uint64_t end;

	if (!buf)
		abort();
	fz_image_read(&v->im, start, buf, read);
	v->bat = malloc(bytes ? bytes : 1);
	if (!v->bat)
		abort();
	end = metadata_end(v) >> 9;
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		uint32_t s = fz_be32(buf + (off - start) + 4 * i);

		v->bat[i] = s;
		if (s == VHD_BAT_UNUSED)
			continue;
		if (!vc_range_ok(s, span, v->sectors)) {
			free(buf);
			return false;
		}
		if (s + span > end)
			end = s + span;
		if (i < 64)
			check_block_overlap(v, s, span);
	}
	free(buf);
	v->data_end = end;
	return true;
}

/* vc_vhd_open() for dynamic and differencing disks. */
static bool open_dynamic(struct vhd *v)
{
	uint8_t buf[VHD_HEADER_SIZE];
	const char *why = NULL;
	size_t bat_bytes;

	if (!vc_range_ok(v->f.data_offset, VHD_HEADER_SIZE, v->im.size) ||
	    v->f.data_offset % 512)
		return false;
	read_sealed(v, v->f.data_offset, buf, sizeof(buf), 36);
	if (vhd_header_decode(buf, &v->h, &why) ||
	    vhd_layout_check(&v->f, &v->h, v->im.size, &why)) {
		CHECK_WHY(1, why);
		return false;
	}
	v->block_shift = vc_ilog2(vhd_block_sectors(&v->h));
	v->bitmap_sectors = vhd_bitmap_sectors(&v->h);
	v->lsb_first = vhd_bitmap_lsb_first(&v->f);
	v->bat_entries = vhd_bat_entries_used(&v->f, &v->h);
	CHECK(v->block_shift < 32);
	CHECK((uint64_t)v->bat_entries << v->block_shift >=
	      v->f.current_size >> 9);
	bat_bytes = 4ull * v->bat_entries;
	if (bat_bytes > (32u << 20) || v->bat_entries > FZ_MAX_BAT)
		return false;
	CHECK(fz_inside(v->im.size, v->h.table_offset, bat_bytes));
	open_batmap(v);
	return load_bat(v);
}

/* vc_vhd_bitmap_run(): sectors from @first sharing its presence. */
static uint32_t bitmap_run(struct vhd *v, uint32_t bat, uint32_t first,
			   uint32_t max, bool *present)
{
	uint64_t byte = (uint64_t)bat * 512 + first / 8;
	uint32_t limit = (512 - byte % 512) * 8 - first % 8, i;
	uint8_t sector[512];

	/* one cached 512-byte block, read as the cache reads it */
	fz_image_meta(&v->im, byte & ~511ull, sector, sizeof(sector));
	if (max > limit)
		max = limit;
	for (i = 0; i < max; i++) {
		uint32_t s = first + i;
		uint64_t b = byte % 512 + s / 8 - first / 8;
		bool p;

		CHECK(b < 512);
		p = vhd_bitmap_bit(sector[b], s, v->lsb_first);
		if (!i)
			*present = p;
		else if (p != *present)
			break;
	}
	return i;
}

/* vc_vhd_map(): at most @nr sectors from @vsec. */
static void map(struct vhd *v, uint64_t vsec, uint64_t nr, struct extent *e)
{
	uint64_t block = vsec >> v->block_shift;
	uint32_t in_block = vsec & ((1u << v->block_shift) - 1), bat;
	bool present;

	if (v->f.type == VHD_TYPE_FIXED) {
		e->kind = EXT_DATA;
		e->host = vsec;
		e->len = nr;
		return;
	}
	CHECK(block < v->bat_entries);
	if (nr > (1u << v->block_shift) - in_block)
		nr = (1u << v->block_shift) - in_block;
	bat = v->bat[block];
	e->len = nr;
	e->kind = EXT_LOWER;
	if (bat == VHD_BAT_UNUSED)
		return;
	e->len = bitmap_run(v, bat, in_block, nr, &present);
	if (present) {
		e->kind = EXT_DATA;
		e->host = (uint64_t)bat + v->bitmap_sectors + in_block;
	}
}

/* Map every virtual sector (up to the budget), as vc_lookup() would. */
static void walk(struct vhd *v)
{
	uint64_t vsectors = v->f.current_size >> 9, vsec = 0;
	unsigned int extents = 0;
	struct extent e;

	while (vsec < vsectors && extents++ < FZ_MAX_EXTENTS) {
		uint64_t nr = vsectors - vsec;

		map(v, vsec, nr, &e);
		CHECK(e.len >= 1 && e.len <= nr);
		if (e.kind == EXT_DATA)
			CHECK(fz_inside(v->sectors, e.host, e.len));
		vsec += e.len;
	}
}

/* [@off, @off + @len) bytes, where it lies inside the device, ends by @at. */
static void check_clear(const struct vhd *v, uint64_t at, uint64_t off,
			uint64_t len)
{
	if (len && off < v->im.size)
		CHECK(at * 512 >= (len < v->im.size - off ? off + len :
							   v->im.size));
}

/*
 * vc_vhd_allocate(): a new block goes after everything, its data 4 KiB
 * aligned, before the trailing footer; it must overlap no metadata and no
 * block.
 */
static void check_allocation(const struct vhd *v)
{
	uint64_t at = ((v->data_end + v->bitmap_sectors + 7) & ~7ull) -
		      v->bitmap_sectors;
	uint64_t span = v->bitmap_sectors + (1ull << v->block_shift);

	CHECK(v->data_end <= v->sectors);
	if (at + span > v->sectors - v->footer_at_end || at >= VHD_BAT_UNUSED)
		return;	/* -ENOSPC */
	check_clear(v, at, 0, VHD_FOOTER_SIZE);
	check_clear(v, at, v->f.data_offset, VHD_HEADER_SIZE);
	check_clear(v, at, v->h.table_offset, 4ull * v->h.max_bat_entries);
	if (v->has_batmap) {
		check_clear(v, at, vhd_batmap_header_offset(&v->h),
			    VHD_BATMAP_HEADER_SIZE);
		check_clear(v, at, v->batmap_offset,
			    (uint64_t)v->batmap_sectors * 512);
	}
	for (int i = 0; i < VHD_MAX_LOCATORS; i++)
		if (v->h.loc[i].code)
			check_clear(v, at, v->h.loc[i].data_offset,
				    vhd_locator_space(&v->h.loc[i]));
	for (uint32_t i = 0; i < v->bat_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			CHECK(at >= v->bat[i] + span);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct vhd v;

	memset(&v, 0, sizeof(v));
	if (!fz_image_parse(&v.im, d, n) || v.im.size < 512)
		return 0;
	v.sectors = v.im.size / 512;
	if (!open_footer(&v))
		return 0;
	if (v.f.type == VHD_TYPE_FIXED) {
		/* the disk, then the footer */
		if ((v.f.current_size >> 9) > v.sectors - 1)
			return 0;
	} else if (!open_dynamic(&v)) {
		free(v.bat);
		return 0;
	}
	walk(&v);
	if (v.f.type != VHD_TYPE_FIXED)
		check_allocation(&v);
	free(v.bat);
	return 0;
}
