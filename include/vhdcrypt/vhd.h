/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VHD on-disk format: footer, dynamic-disk header, BAT, sector bitmaps and the
 * tapdisk batmap header (which holds OpenXT's key hash).
 *
 * All integers on disk are big-endian. The decoders are pure functions over
 * byte buffers: they never trust a field until it has been checked, and on
 * failure they return -EINVAL with a short reason in *why.
 */
#ifndef VHDCRYPT_VHD_H
#define VHDCRYPT_VHD_H

#include "types.h"

#define VHD_SECTOR_SIZE		512
#define VHD_SECTOR_SHIFT	9
#define VHD_FOOTER_SIZE		512
#define VHD_HEADER_SIZE		1024
#define VHD_BATMAP_HEADER_SIZE	512
#define VHD_BAT_UNUSED		0xffffffffu
#define VHD_NO_OFFSET		0xffffffffffffffffull
#define VHD_VERSION_1_0		0x00010000u
/* QEMU's limit: 2040 GiB, in 512-byte sectors. */
#define VHD_MAX_SECTORS		0xff000000ull
#define VHD_MIN_BLOCK_SIZE	512u

enum vhd_disk_type {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFF = 4,
};

/* Parent locator platform codes. */
#define VHD_PLAT_MACX	0x4d616358u	/* "MacX": UTF-8 file:// URI */
#define VHD_PLAT_W2KU	0x57326b75u	/* "W2ku": absolute path, UTF-16LE */
#define VHD_PLAT_W2RU	0x57327275u	/* "W2ru": relative path, UTF-16LE */
#define VHD_PLAT_WI2R	0x57693272u	/* "Wi2r": deprecated */
#define VHD_PLAT_WI2K	0x5769326bu	/* "Wi2k": deprecated */
#define VHD_MAX_LOCATORS 8

struct vhd_footer {
	u32 features;
	u32 version;
	u64 data_offset;	/* bytes: dynamic header, VHD_NO_OFFSET if fixed */
	u32 timestamp;		/* seconds since 2000-01-01 00:00 UTC */
	char creator_app[4];
	u32 creator_version;
	u32 creator_os;
	u64 original_size;	/* bytes */
	u64 current_size;	/* bytes: the size of the virtual disk */
	u32 geometry;		/* cylinders << 16 | heads << 8 | sectors */
	u32 type;		/* enum vhd_disk_type */
	u32 checksum;
	u8 uuid[16];
	u8 saved_state;
	u8 hidden;
};

struct vhd_parent_locator {
	u32 code;		/* VHD_PLAT_* or 0 if unused */
	u32 data_space;		/* sectors if < 512, else bytes */
	u32 data_len;		/* bytes */
	u64 data_offset;	/* bytes */
};

struct vhd_header {
	u64 table_offset;	/* bytes: first BAT entry */
	u32 version;
	u32 max_bat_entries;	/* BAT entries */
	u32 block_size;		/* bytes, a power of two */
	u32 checksum;
	u8 parent_uuid[16];	/* the parent footer's uuid */
	u32 parent_timestamp;
	u8 parent_name[512];	/* UTF-16BE, not terminated */
	struct vhd_parent_locator loc[VHD_MAX_LOCATORS];
};

struct vhd_batmap_header {
	u64 map_offset;		/* bytes */
	u32 map_sectors;	/* 512-byte sectors */
	u32 version;
	u32 checksum;
	u8 marker;
	u8 keyhash_set;		/* OpenXT: 1 if nonce and hash are valid */
	u8 nonce[32];
	u8 hash[32];		/* SHA-256(nonce || key) */
};

/*
 * Ones' complement of the byte sum of @buf, skipping the four checksum bytes
 * at @csum_off.
 */
static inline u32 vhd_checksum(const u8 *buf, size_t len, size_t csum_off)
{
	u32 sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

static inline bool vhd_creator_is_tap(const struct vhd_footer *f)
{
	return !memcmp(f->creator_app, "tap", 3);
}

/*
 * Old tapdisk (creator "tap" 0.1 or 1.1) set the hidden byte without updating
 * the footer checksum.
 */
static inline bool vhd_old_tap_hidden(const struct vhd_footer *f)
{
	return vhd_creator_is_tap(f) && f->hidden &&
	       (f->creator_version == 0x00000001 ||
		f->creator_version == 0x00010001);
}

/* Decode and check a 512-byte footer. */
static inline int vhd_footer_decode(const u8 *buf, struct vhd_footer *f,
				    const char **why)
{
	u32 sum;

	if (memcmp(buf, "conectix", 8)) {
		*why = "no VHD footer cookie";
		return -EINVAL;
	}
	f->features = vc_get_be32(buf + 8);
	f->version = vc_get_be32(buf + 12);
	f->data_offset = vc_get_be64(buf + 16);
	f->timestamp = vc_get_be32(buf + 24);
	memcpy(f->creator_app, buf + 28, 4);
	f->creator_version = vc_get_be32(buf + 32);
	f->creator_os = vc_get_be32(buf + 36);
	f->original_size = vc_get_be64(buf + 40);
	f->current_size = vc_get_be64(buf + 48);
	f->geometry = vc_get_be32(buf + 56);
	f->type = vc_get_be32(buf + 60);
	f->checksum = vc_get_be32(buf + 64);
	memcpy(f->uuid, buf + 68, 16);
	f->saved_state = buf[84];
	f->hidden = buf[85];

	sum = vhd_checksum(buf, VHD_FOOTER_SIZE, 64);
	if (sum != f->checksum && !(vhd_old_tap_hidden(f) &&
				    sum + f->hidden == f->checksum)) {
		*why = "bad VHD footer checksum";
		return -EINVAL;
	}
	if ((f->version >> 16) != 1) {
		*why = "unsupported VHD footer version";
		return -EINVAL;
	}
	if (f->type != VHD_TYPE_FIXED && f->type != VHD_TYPE_DYNAMIC &&
	    f->type != VHD_TYPE_DIFF) {
		*why = "unsupported VHD disk type";
		return -EINVAL;
	}
	if (f->current_size & (VHD_SECTOR_SIZE - 1)) {
		*why = "VHD size is not a multiple of 512 bytes";
		return -EINVAL;
	}
	if ((f->current_size >> VHD_SECTOR_SHIFT) > VHD_MAX_SECTORS) {
		*why = "VHD size exceeds 2040 GiB";
		return -EINVAL;
	}
	if (f->type != VHD_TYPE_FIXED && f->data_offset == VHD_NO_OFFSET) {
		*why = "dynamic VHD footer has no header offset";
		return -EINVAL;
	}
	return 0;
}

/* Decode and check a 1024-byte dynamic-disk header. */
static inline int vhd_header_decode(const u8 *buf, struct vhd_header *h,
				    const char **why)
{
	int i;

	if (memcmp(buf, "cxsparse", 8)) {
		*why = "no VHD dynamic header cookie";
		return -EINVAL;
	}
	if (vc_get_be64(buf + 8) != VHD_NO_OFFSET) {
		*why = "bad VHD dynamic header data offset";
		return -EINVAL;
	}
	h->table_offset = vc_get_be64(buf + 16);
	h->version = vc_get_be32(buf + 24);
	h->max_bat_entries = vc_get_be32(buf + 28);
	h->block_size = vc_get_be32(buf + 32);
	h->checksum = vc_get_be32(buf + 36);
	memcpy(h->parent_uuid, buf + 40, 16);
	h->parent_timestamp = vc_get_be32(buf + 56);
	memcpy(h->parent_name, buf + 64, 512);
	for (i = 0; i < VHD_MAX_LOCATORS; i++) {
		const u8 *l = buf + 576 + 24 * i;

		h->loc[i].code = vc_get_be32(l);
		h->loc[i].data_space = vc_get_be32(l + 4);
		h->loc[i].data_len = vc_get_be32(l + 8);
		h->loc[i].data_offset = vc_get_be64(l + 16);
	}

	if (vhd_checksum(buf, VHD_HEADER_SIZE, 36) != h->checksum) {
		*why = "bad VHD dynamic header checksum";
		return -EINVAL;
	}
	if (h->version != VHD_VERSION_1_0) {
		*why = "unsupported VHD dynamic header version";
		return -EINVAL;
	}
	if (h->block_size < VHD_MIN_BLOCK_SIZE || !vc_is_pow2(h->block_size)) {
		*why = "VHD block size is not a power of two >= 512";
		return -EINVAL;
	}
	if (h->table_offset & 3) {
		*why = "VHD BAT offset is not aligned";
		return -EINVAL;
	}
	return 0;
}

/* Sectors per block, and bitmap sectors in front of each block's data. */
static inline u32 vhd_block_sectors(const struct vhd_header *h)
{
	return h->block_size >> VHD_SECTOR_SHIFT;
}

static inline u32 vhd_bitmap_sectors(const struct vhd_header *h)
{
	u32 bytes = (vhd_block_sectors(h) + 7) / 8;

	return (bytes + VHD_SECTOR_SIZE - 1) >> VHD_SECTOR_SHIFT;
}

/* BAT entries that cover the virtual disk. */
static inline u64 vhd_bat_entries_used(const struct vhd_footer *f,
				       const struct vhd_header *h)
{
	return (f->current_size + h->block_size - 1) / h->block_size;
}

/*
 * Check that the footer and header fit together and that the BAT lies inside
 * an image of @image_bytes bytes.
 */
static inline int vhd_layout_check(const struct vhd_footer *f,
				   const struct vhd_header *h, u64 image_bytes,
				   const char **why)
{
	if (!vc_range_ok(f->data_offset, VHD_HEADER_SIZE, image_bytes)) {
		*why = "VHD dynamic header lies outside the image";
		return -EINVAL;
	}
	if (vhd_bat_entries_used(f, h) > h->max_bat_entries) {
		*why = "VHD BAT is too small for the disk size";
		return -EINVAL;
	}
	if (!vc_range_ok(h->table_offset, 4ull * h->max_bat_entries,
			 image_bytes)) {
		*why = "VHD BAT lies outside the image";
		return -EINVAL;
	}
	return 0;
}

/* Tapdisk's creator version 0.1 stored sector bitmaps LSB-first. */
static inline bool vhd_bitmap_lsb_first(const struct vhd_footer *f)
{
	return vhd_creator_is_tap(f) && f->creator_version == 0x00000001;
}

/* Is sector @i of a block present, given the byte of its bitmap? */
static inline bool vhd_bitmap_bit(u8 bitmap_byte, u32 i, bool lsb_first)
{
	return bitmap_byte & (lsb_first ? 1u << (i & 7) : 0x80u >> (i & 7));
}

/* Tapdisk's batmap exists for "tap" images newer than version 0.1. */
static inline bool vhd_has_batmap(const struct vhd_footer *f)
{
	return f->type != VHD_TYPE_FIXED && vhd_creator_is_tap(f) &&
	       f->creator_version > 0x00000001;
}

/* Byte offset of the batmap header: right after the sector-padded BAT. */
static inline u64 vhd_batmap_header_offset(const struct vhd_header *h)
{
	u64 bat_bytes = 4ull * h->max_bat_entries;

	return h->table_offset + ((bat_bytes + VHD_SECTOR_SIZE - 1) &
				  ~(u64)(VHD_SECTOR_SIZE - 1));
}

static inline int vhd_batmap_header_decode(const u8 *buf,
					   struct vhd_batmap_header *b,
					   const char **why)
{
	if (memcmp(buf, "tdbatmap", 8)) {
		*why = "no tapdisk batmap cookie";
		return -EINVAL;
	}
	b->map_offset = vc_get_be64(buf + 8);
	b->map_sectors = vc_get_be32(buf + 16);
	b->version = vc_get_be32(buf + 20);
	b->checksum = vc_get_be32(buf + 24);
	b->marker = buf[28];
	b->keyhash_set = buf[29];
	memcpy(b->nonce, buf + 30, 32);
	memcpy(b->hash, buf + 62, 32);
	if (b->version > 0x00010002) {
		*why = "unsupported tapdisk batmap version";
		return -EINVAL;
	}
	return 0;
}

/* Bytes reserved for a parent locator's data. */
static inline u64 vhd_locator_space(const struct vhd_parent_locator *l)
{
	return l->data_space < 512 ? (u64)l->data_space << VHD_SECTOR_SHIFT :
				     l->data_space;
}

/* End of [@off, @off + @len) inside @limit bytes; 0 if it starts past them. */
static inline u64 vhd_end_within(u64 off, u64 len, u64 limit)
{
	if (off >= limit)
		return 0;
	return len > limit - off ? limit : off + len;
}

/* A piece of VHD metadata: bytes [start, end) of the image. */
struct vhd_extent {
	u64 start, end;
	const char *what;
};

/* Footer copy, dynamic header, BAT, batmap header and map, parent locators. */
#define VHD_MAX_METADATA	(5 + VHD_MAX_LOCATORS)

static inline unsigned int vhd_add_extent(struct vhd_extent *m, unsigned int n,
					  u64 off, u64 len, u64 limit,
					  const char *what)
{
	u64 end = vhd_end_within(off, len, limit);

	if (end > off) {
		m[n].start = off;
		m[n].end = end;
		m[n].what = what;
		n++;
	}
	return n;
}

/*
 * The metadata of a dynamic or differencing image of @image_bytes (a
 * multiple of 512), clipped to the image, into @m; returns how many. The
 * batmap counts if the image has one (@map_sectors at @map_offset). What
 * lies past the image cannot be overwritten: hostile offsets near 2^64
 * neither wrap around nor hide the rest. The trailing footer is not here:
 * where it is depends on the device, not on the image's fields.
 */
static inline unsigned int vhd_metadata(const struct vhd_footer *f,
					const struct vhd_header *h,
					bool has_batmap, u64 map_offset,
					u32 map_sectors, u64 image_bytes,
					struct vhd_extent m[VHD_MAX_METADATA])
{
	u64 bat_bytes = 4ull * h->max_bat_entries;
	unsigned int n = 0;
	int i;

	n = vhd_add_extent(m, n, 0, VHD_FOOTER_SIZE, image_bytes, "footer copy");
	n = vhd_add_extent(m, n, f->data_offset, VHD_HEADER_SIZE, image_bytes,
			   "dynamic header");
	n = vhd_add_extent(m, n, h->table_offset,
			   (bat_bytes + VHD_SECTOR_SIZE - 1) &
			   ~(u64)(VHD_SECTOR_SIZE - 1), image_bytes, "BAT");
	if (has_batmap) {
		n = vhd_add_extent(m, n, vhd_batmap_header_offset(h),
				   VHD_BATMAP_HEADER_SIZE, image_bytes,
				   "batmap header");
		n = vhd_add_extent(m, n, map_offset,
				   (u64)map_sectors << VHD_SECTOR_SHIFT,
				   image_bytes, "batmap");
	}
	for (i = 0; i < VHD_MAX_LOCATORS; i++)
		if (h->loc[i].code)
			n = vhd_add_extent(m, n, h->loc[i].data_offset,
					   vhd_locator_space(&h->loc[i]),
					   image_bytes, "parent locator");
	return n;
}

/* The first of the @n extents @m that [@off, @off + @len) overlaps, or NULL. */
static inline const char *vhd_overlap(const struct vhd_extent *m,
				      unsigned int n, u64 off, u64 len)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (len && off < m[i].end &&
		    (m[i].start <= off || m[i].start - off < len))
			return m[i].what;
	return NULL;
}

/*
 * End (bytes, sector-aligned) of the metadata (vhd_metadata()) that a new
 * block must stay clear of.
 */
static inline u64 vhd_metadata_end(const struct vhd_footer *f,
				   const struct vhd_header *h, bool has_batmap,
				   u64 map_offset, u32 map_sectors,
				   u64 image_bytes)
{
	struct vhd_extent m[VHD_MAX_METADATA];
	unsigned int n, i;
	u64 end = 0;

	n = vhd_metadata(f, h, has_batmap, map_offset, map_sectors,
			 image_bytes, m);
	for (i = 0; i < n; i++)
		end = m[i].end > end ? m[i].end : end;
	return (end + VHD_SECTOR_SIZE - 1) & ~(u64)(VHD_SECTOR_SIZE - 1);
}

#endif /* VHDCRYPT_VHD_H */
