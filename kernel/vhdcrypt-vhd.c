// SPDX-License-Identifier: GPL-2.0
/*
 * VHD images for dm-vhdcrypt: fixed, dynamic and differencing disks.
 *
 * A dynamic or differencing disk is split into blocks (a power of two, 2 MiB
 * by default). The BAT gives each allocated block's host sector; the block
 * starts with a sector bitmap, then its data. A sector whose bitmap bit is
 * clear is not in this image: it comes from the parent (the backing device)
 * or reads as zeros. Its bytes in the image are not data, and for an
 * encrypted image not ciphertext, so they are never read.
 */
#include <linux/slab.h>

#include <vhdcrypt/vhd.h>

#include "vhdcrypt.h"

struct vc_vhd {
	struct vhd_footer footer;
	struct vhd_header header;
	u32 block_shift;	/* log2(sectors per block) */
	u32 bitmap_sectors;	/* sectors of bitmap before each block's data */
	bool lsb_first;		/* bitmap bit order of tapdisk 0.1 images */
};

/* The footer is at the end; dynamic disks keep a copy at offset 0. */
static int vc_vhd_read_footer(struct vc_target *vc, struct vc_vhd *v,
			      u8 *buf)
{
	const char *why, *why0;
	int r;

	if (vc->image_sectors < 1) {
		vc->ti->error = "image is too small for a VHD";
		return -EINVAL;
	}
	r = vc_read_image(vc, vc->image_sectors - 1, buf, VHD_FOOTER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the VHD footer";
		return r;
	}
	if (!vhd_footer_decode(buf, &v->footer, &why))
		return 0;

	r = vc_read_image(vc, 0, buf, VHD_FOOTER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the VHD footer copy";
		return r;
	}
	if (!vhd_footer_decode(buf, &v->footer, &why0) &&
	    v->footer.type != VHD_TYPE_FIXED) {
		DMWARN("%s: footer at the end of the image: %s; using the copy at offset 0",
		       dm_table_device_name(vc->ti->table), why);
		return 0;
	}
	vc_set_error(vc, why);
	return -EINVAL;
}

/*
 * Every allocated block must lie inside the image: this catches truncated
 * images at load time instead of failing reads later.
 */
static int vc_vhd_check_bat(struct vc_target *vc, struct vc_vhd *v)
{
	u64 entries = vhd_bat_entries_used(&v->footer, &v->header);
	u64 block_end = (u64)v->bitmap_sectors + (1ull << v->block_shift);
	struct dm_buffer *b;
	const u8 *p;
	u64 i;
	int r;

	vc_meta_prefetch(vc, v->header.table_offset, entries * 4);
	for (i = 0; i < entries; i++) {
		u32 bat;

		r = vc_meta_get(vc, v->header.table_offset + i * 4, true, &b,
				&p);
		if (r) {
			vc->ti->error = "cannot read the VHD BAT";
			return r;
		}
		bat = vc_get_be32(p);
		vc_meta_put(b);
		if (bat != VHD_BAT_UNUSED &&
		    !vc_range_ok(bat, block_end, vc->image_sectors)) {
			DMERR("%s: VHD block %llu at sector %u is outside the image (%llu sectors)",
			      dm_table_device_name(vc->ti->table), i, bat,
			      (u64)vc->image_sectors);
			vc->ti->error = "VHD block lies outside the image (truncated?)";
			return -EINVAL;
		}
		if (!(i & 1023))
			cond_resched();
	}
	return 0;
}

static int vc_vhd_open(struct vc_target *vc)
{
	struct vc_vhd *v;
	const char *why;
	u8 *buf;
	int r;

	v = kzalloc(sizeof(*v), GFP_KERNEL);
	buf = kmalloc(VHD_HEADER_SIZE, GFP_KERNEL);
	if (!v || !buf) {
		vc->ti->error = "cannot allocate VHD state";
		r = -ENOMEM;
		goto out;
	}
	vc->fmt_data = v;

	r = vc_vhd_read_footer(vc, v, buf);
	if (r)
		goto out;
	vc->virtual_sectors = v->footer.current_size >> SECTOR_SHIFT;

	if (v->footer.type == VHD_TYPE_FIXED) {
		if (vc->virtual_sectors > vc->image_sectors - 1) {
			vc->ti->error = "fixed VHD is shorter than its disk size";
			r = -EINVAL;
		}
		goto out;
	}

	if (!vc_range_ok(v->footer.data_offset, VHD_HEADER_SIZE,
			 vc_image_bytes(vc)) ||
	    (v->footer.data_offset & (SECTOR_SIZE - 1))) {
		vc->ti->error = "VHD dynamic header lies outside the image";
		r = -EINVAL;
		goto out;
	}
	r = vc_read_image(vc, v->footer.data_offset >> SECTOR_SHIFT, buf,
			  VHD_HEADER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the VHD dynamic header";
		goto out;
	}
	r = vhd_header_decode(buf, &v->header, &why);
	if (!r)
		r = vhd_layout_check(&v->footer, &v->header,
				     vc_image_bytes(vc), &why);
	if (r) {
		vc_set_error(vc, why);
		goto out;
	}
	v->block_shift = vc_ilog2(vhd_block_sectors(&v->header));
	v->bitmap_sectors = vhd_bitmap_sectors(&v->header);
	v->lsb_first = vhd_bitmap_lsb_first(&v->footer);

	r = vc_meta_create(vc);
	if (r) {
		vc->ti->error = "cannot create the metadata cache";
		goto out;
	}
	r = vc_vhd_check_bat(vc, v);
out:
	kfree(buf);
	return r;
}

static void vc_vhd_close(struct vc_target *vc)
{
	kfree(vc->fmt_data);
	vc->fmt_data = NULL;
}

/*
 * Count the sectors from @first (inside the block) that share the bitmap
 * state of @first, up to @max, without leaving the cached bitmap sector.
 */
static int vc_vhd_bitmap_run(struct vc_target *vc, struct vc_vhd *v, u32 bat,
			     u32 first, u32 max, bool may_block, bool *present,
			     u32 *run)
{
	u64 byte = ((u64)bat << SECTOR_SHIFT) + first / 8;
	/* bits left in this 512-byte bitmap sector */
	u32 limit = (SECTOR_SIZE - (byte & (SECTOR_SIZE - 1))) * 8 - first % 8;
	struct dm_buffer *b;
	const u8 *p;
	u32 i;
	int r;

	r = vc_meta_get(vc, byte, may_block, &b, &p);
	if (r)
		return r;
	max = min(max, limit);
	*present = vhd_bitmap_bit(p[0], first, v->lsb_first);
	for (i = 1; i < max; i++) {
		u32 s = first + i;

		if (vhd_bitmap_bit(p[s / 8 - first / 8], s, v->lsb_first) !=
		    *present)
			break;
	}
	vc_meta_put(b);
	*run = i;
	return 0;
}

static int vc_vhd_map(struct vc_target *vc, sector_t vsec, sector_t nr,
		      bool may_block, struct vc_extent *ext)
{
	struct vc_vhd *v = vc->fmt_data;
	u64 block = vsec >> v->block_shift;
	u32 in_block = vsec & ((1u << v->block_shift) - 1);
	struct dm_buffer *b;
	bool present;
	const u8 *p;
	u32 bat, run;
	int r;

	if (v->footer.type == VHD_TYPE_FIXED) {
		ext->kind = VC_EXT_DATA;
		ext->host_sector = vsec;
		ext->len = nr;
		return 0;
	}

	nr = min_t(sector_t, nr, (1u << v->block_shift) - in_block);
	r = vc_meta_get(vc, v->header.table_offset + block * 4, may_block, &b,
			&p);
	if (r)
		return r;
	bat = vc_get_be32(p);
	vc_meta_put(b);

	if (bat == VHD_BAT_UNUSED) {
		ext->kind = VC_EXT_LOWER;
		ext->len = nr;
		return 0;
	}
	/* Checked at load time; the BAT is not written behind our back. */
	r = vc_vhd_bitmap_run(vc, v, bat, in_block, nr, may_block, &present,
			      &run);
	if (r)
		return r;
	ext->len = run;
	if (present) {
		ext->kind = VC_EXT_DATA;
		ext->host_sector = (sector_t)bat + v->bitmap_sectors + in_block;
	} else {
		ext->kind = VC_EXT_LOWER;
	}
	return 0;
}

static void vc_vhd_status(struct vc_target *vc, char *result,
			  unsigned int maxlen, unsigned int *szp)
{
	static const char * const types[] = {
		[VHD_TYPE_FIXED] = "fixed",
		[VHD_TYPE_DYNAMIC] = "dynamic",
		[VHD_TYPE_DIFF] = "differencing",
	};
	struct vc_vhd *v = vc->fmt_data;
	unsigned int sz = *szp;

	DMEMIT(" vhd_type:%s", types[v->footer.type]);
	if (v->footer.type != VHD_TYPE_FIXED)
		DMEMIT(" block_size:%u", v->header.block_size);
	*szp = sz;
}

const struct vc_format vc_format_vhd = {
	.name = "vhd",
	.open = vc_vhd_open,
	.close = vc_vhd_close,
	.map = vc_vhd_map,
	.status = vc_vhd_status,
};
