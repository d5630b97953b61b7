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
 *
 * The BAT is kept in memory (QEMU does the same); bitmaps are cached.
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include <vhdcrypt/vhd.h>

#include "vhdcrypt.h"

struct vc_vhd {
	struct vhd_footer footer;
	struct vhd_header header;
	bool footer_at_end;	/* a valid footer in the last sector */
	u32 block_shift;	/* log2(sectors per block) */
	u32 bitmap_sectors;	/* sectors of bitmap before each block's data */
	bool lsb_first;		/* bitmap bit order of tapdisk 0.1 images */
	u32 bat_entries;	/* BAT entries that cover the virtual disk */
	size_t bat_bytes;	/* bytes of BAT in memory (whole sectors) */
	__be32 *bat;		/* those entries, as on disk */
	bool has_batmap;	/* tapdisk's batmap (OpenXT key hash) */
	u64 batmap_offset;	/* bytes: its map */
	u32 batmap_sectors;	/* sectors of its map */
	struct dm_bufio_client *bitmaps;
	sector_t data_end;	/* host sectors used by blocks and metadata */

	/* Writable tables (metadata worker only). */
	sector_t alloc_limit;	/* new blocks end at or before this sector */
	unsigned long *bat_dirty;	/* BAT sectors to write */
	u8 *batmap;		/* tapdisk's map: blocks known to be full */
};

/*
 * A block whose mapping changes: newly allocated, or sectors newly present
 * or discarded. Lookups see (disk bitmap & ~cleared) | present.
 */
struct vc_vhd_unit {
	struct vc_unit unit;
	u32 bat;		/* the block's host sector */
	bool new_block;		/* not yet in the BAT on disk */
	unsigned long *cleared;	/* sectors discarded since the last commit */
	unsigned long present[];	/* sectors written since the last commit */
};

/* The largest BAT kept in memory: 16 TiB of 2 MiB blocks. */
#define VC_VHD_MAX_BAT_BYTES	(32u << 20)

static u32 vc_vhd_bat(const struct vc_vhd *v, u64 block)
{
	return be32_to_cpu(READ_ONCE(v->bat[block]));
}

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
	r = vc_sync_io(vc, REQ_OP_READ, vc->image_sectors - 1, buf,
		       VHD_FOOTER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the VHD footer";
		return r;
	}
	if (!vhd_footer_decode(buf, &v->footer, &why)) {
		v->footer_at_end = true;
		return 0;
	}

	r = vc_sync_io(vc, REQ_OP_READ, 0, buf, VHD_FOOTER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the VHD footer copy";
		return r;
	}
	if (!vhd_footer_decode(buf, &v->footer, &why0) &&
	    v->footer.type != VHD_TYPE_FIXED) {
		DMWARN("%s: footer at the end of the image: %s; using the copy at offset 0",
		       vc_name(vc), why);
		return 0;
	}
	vc_set_error(vc, why);
	return -EINVAL;
}

/* Tapdisk's batmap header and map: metadata that new blocks must avoid. */
static int vc_vhd_read_batmap(struct vc_target *vc, struct vc_vhd *v, u8 *buf)
{
	u64 off = vhd_batmap_header_offset(&v->header);
	struct vhd_batmap_header b;
	const char *why;
	int r;

	if (!vhd_has_batmap(&v->footer) || off & (SECTOR_SIZE - 1) ||
	    !vc_range_ok(off, VHD_BATMAP_HEADER_SIZE, vc_image_bytes(vc)))
		return 0;
	r = vc_sync_io(vc, REQ_OP_READ, off >> SECTOR_SHIFT, buf,
		       VHD_BATMAP_HEADER_SIZE);
	if (r) {
		vc->ti->error = "cannot read the tapdisk batmap header";
		return r;
	}
	if (vhd_batmap_header_decode(buf, &b, &why))
		return 0;	/* no batmap: nothing to keep clear of */
	v->batmap_offset = b.map_offset;
	v->batmap_sectors = b.map_sectors;
	v->has_batmap = true;
	return 0;
}

/*
 * Read the BAT into memory, in pieces and killably. Every allocated block
 * must lie inside the image: this catches truncated images at load time
 * instead of failing reads later.
 */
static int vc_vhd_load_bat(struct vc_target *vc, struct vc_vhd *v)
{
	u64 block_span = (u64)v->bitmap_sectors + (1ull << v->block_shift);
	__be32 *bat;
	sector_t end;
	u64 i;
	int r;

	r = vc_read_table(vc, v->header.table_offset, v->bat_bytes,
			  (void **)&bat, "VHD BAT");
	if (r) {
		vc->ti->error = r == -EINTR ? "interrupted" : "cannot read the VHD BAT";
		return r;
	}

	/* New blocks go after the metadata and every block. */
	end = vhd_metadata_end(&v->footer, &v->header, v->has_batmap,
			       v->batmap_offset, v->batmap_sectors,
			       vc_image_bytes(vc)) >> SECTOR_SHIFT;
	for (i = 0; i < v->bat_entries; i++) {
		u32 sector = be32_to_cpu(bat[i]);

		if (sector == VHD_BAT_UNUSED)
			continue;
		if (!vc_range_ok(sector, block_span, vc->image_sectors)) {
			DMERR("%s: VHD block %llu at sector %u is outside the image (%llu sectors)",
			      vc_name(vc), i, sector, (u64)vc->image_sectors);
			vc->ti->error = "VHD block lies outside the image (truncated?)";
			kvfree(bat);
			return -EINVAL;
		}
		end = max_t(sector_t, end, sector + block_span);
	}

	/* In ctr or preresume: no lookup runs meanwhile. */
	if (v->bat) {
		memcpy(v->bat, bat, v->bat_bytes);
		kvfree(bat);
	} else {
		v->bat = bat;
	}
	v->data_end = end;
	return 0;
}

static int vc_vhd_open(struct vc_target *vc)
{
	struct vc_vhd *v;
	const char *why;
	u64 bat_bytes;
	u8 *buf;
	int r;

	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		vc->ti->error = "cannot allocate VHD state";
		return -ENOMEM;
	}
	vc->fmt_data = v;
	buf = kmalloc(VHD_HEADER_SIZE, GFP_KERNEL);
	if (!buf) {
		vc->ti->error = "cannot allocate VHD state";
		return -ENOMEM;
	}

	r = vc_vhd_read_footer(vc, v, buf);
	if (r)
		goto out;
	vc->virtual_sectors = v->footer.current_size >> SECTOR_SHIFT;

	if (v->footer.type == VHD_TYPE_FIXED) {
		if (vc->virtual_sectors > vc->image_sectors - 1) {
			vc->ti->error = "fixed VHD is shorter than its disk size";
			r = -EINVAL;
		}
		v->data_end = vc->image_sectors;
		goto out;
	}

	if (!vc_range_ok(v->footer.data_offset, VHD_HEADER_SIZE,
			 vc_image_bytes(vc)) ||
	    (v->footer.data_offset & (SECTOR_SIZE - 1))) {
		vc->ti->error = "VHD dynamic header lies outside the image";
		r = -EINVAL;
		goto out;
	}
	r = vc_sync_io(vc, REQ_OP_READ, v->footer.data_offset >> SECTOR_SHIFT,
		       buf, VHD_HEADER_SIZE);
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
	v->block_shift = ilog2(vhd_block_sectors(&v->header));
	v->bitmap_sectors = vhd_bitmap_sectors(&v->header);
	v->lsb_first = vhd_bitmap_lsb_first(&v->footer);
	v->bat_entries = vhd_bat_entries_used(&v->footer, &v->header);

	/* QEMU keeps the whole BAT in memory too; bound what that costs. */
	bat_bytes = 4ull * v->bat_entries;
	if (bat_bytes > VC_VHD_MAX_BAT_BYTES) {
		DMERR("%s: the VHD BAT needs %llu MiB (%u-byte blocks); the limit is %u MiB",
		      vc_name(vc), bat_bytes >> 20, v->header.block_size,
		      VC_VHD_MAX_BAT_BYTES >> 20);
		vc->ti->error = "VHD BAT is too large (blocks too small for the disk size)";
		r = -EINVAL;
		goto out;
	}
	/* Whole sectors if they are there: a writable table writes them. */
	v->bat_bytes = round_up(bat_bytes, SECTOR_SIZE);
	if (!vc_range_ok(v->header.table_offset, v->bat_bytes,
			 vc_image_bytes(vc)))
		v->bat_bytes = bat_bytes;
	r = vc_vhd_read_batmap(vc, v, buf);
	if (r)
		goto out;
	r = vc_vhd_load_bat(vc, v);
	if (r)
		goto out;
	vc->mem_bytes += sizeof(*v) + bat_bytes;

	v->bitmaps = vc_meta_create(vc);
	if (IS_ERR(v->bitmaps)) {
		r = PTR_ERR(v->bitmaps);
		v->bitmaps = NULL;
		vc->ti->error = "cannot create the metadata cache";
	}
out:
	kfree(buf);
	return r;
}

/*
 * Writes go into blocks in place: a block over metadata (tapdisk would
 * write it over too) refuses writing. Blocks sharing sectors only share
 * data.
 */
static int vc_vhd_check_blocks(struct vc_target *vc, struct vc_vhd *v)
{
	u64 span = ((u64)v->bitmap_sectors << SECTOR_SHIFT) + v->header.block_size;
	struct vhd_extent m[VHD_MAX_METADATA + 1];
	const char *what;
	unsigned int n;
	u64 i;
	u32 sector;

	n = vhd_metadata(&v->footer, &v->header, v->has_batmap, v->batmap_offset,
			 v->batmap_sectors, vc_image_bytes(vc), m);
	if (v->footer_at_end)
		n = vhd_add_extent(m, n, vc_image_bytes(vc) - VHD_FOOTER_SIZE,
				   VHD_FOOTER_SIZE, vc_image_bytes(vc),
				   "trailing footer");
	for (i = 0; i < v->bat_entries; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		sector = vc_vhd_bat(v, i);
		if (sector == VHD_BAT_UNUSED)
			continue;
		what = vhd_overlap(m, n, (u64)sector << SECTOR_SHIFT, span);
		if (what) {
			DMERR("%s: VHD block %llu at sector %u overlaps the %s: writing refused",
			      vc_name(vc), i, sector, what);
			return -EINVAL;
		}
	}
	return 0;
}

static int vc_vhd_reload(struct vc_target *vc)
{
	struct vc_vhd *v = vc->fmt_data;
	int r;

	if (v->footer.type == VHD_TYPE_FIXED)
		return 0;
	r = vc_vhd_load_bat(vc, v);
	if (!r && v->bat_dirty)
		r = vc_vhd_check_blocks(vc, v);
	if (!r)
		dm_bufio_forget_buffers(v->bitmaps, 0, vc->image_sectors);
	if (v->bat_dirty)
		bitmap_zero(v->bat_dirty, v->bat_bytes >> SECTOR_SHIFT);
	return r;
}

static void vc_vhd_close(struct vc_target *vc)
{
	struct vc_vhd *v = vc->fmt_data;

	if (!v)
		return;
	vc_meta_destroy(v->bitmaps);
	kvfree(v->bat);
	bitmap_free(v->bat_dirty);
	kvfree(v->batmap);
	kfree(v);
	vc->fmt_data = NULL;
}

/*
 * For lookups: the unit of @block if its mapping changed since the last
 * commit; a new block is not visible until its first write is done. The
 * caller holds rcu_read_lock().
 */
static struct vc_vhd_unit *vc_vhd_unit(struct vc_target *vc, u64 block)
{
	struct vc_unit *u = vc_unit_find(vc, block);
	struct vc_vhd_unit *vu;

	if (!u)
		return NULL;
	vu = container_of(u, struct vc_vhd_unit, unit);
	if (vu->new_block && READ_ONCE(u->busy))
		return NULL;
	return vu;
}

/*
 * Count the sectors from @first (inside the block) that share the presence
 * of @first, up to @max, without leaving the cached bitmap sector. A unit
 * adds the sectors written since the last commit (and is the whole bitmap
 * of a new block).
 */
static int vc_vhd_bitmap_run(struct vc_target *vc, struct vc_vhd *v,
			     u64 block, u32 bat, bool new_block, u32 first,
			     u32 max, unsigned int flags, bool *present,
			     u32 *run)
{
	u64 byte = ((u64)bat << SECTOR_SHIFT) + first / 8;
	/* bits left in this 512-byte bitmap sector */
	u32 limit = (SECTOR_SIZE - (byte & (SECTOR_SIZE - 1))) * 8 - first % 8;
	struct vc_meta_ref ref = { };
	struct vc_vhd_unit *u;
	u32 i;
	int r;

	if (!new_block) {
		r = vc_meta_get(vc, v->bitmaps, byte, flags, &ref);
		if (r)
			return r;
	}
	max = min(max, limit);
	rcu_read_lock();
	u = vc_vhd_unit(vc, block);
	for (i = 0; i < max; i++) {
		u32 s = first + i;
		bool p = !new_block && vhd_bitmap_bit(ref.p[s / 8 - first / 8],
						      s, v->lsb_first);

		if (u)
			p = (p && !test_bit(s, u->cleared)) ||
			    test_bit(s, u->present);

		if (!i)
			*present = p;
		else if (p != *present)
			break;
	}
	rcu_read_unlock();
	vc_meta_put(&ref);
	*run = i;
	return 0;
}

static int vc_vhd_map(struct vc_target *vc, sector_t vsec, sector_t nr,
		      unsigned int flags, struct vc_extent *ext)
{
	struct vc_vhd *v = vc->fmt_data;
	u64 block = vsec >> v->block_shift;
	u32 in_block = vsec & ((1u << v->block_shift) - 1);
	struct vc_vhd_unit *u;
	bool present, new_block = false, pending = false;
	u32 bat, run;
	int r;

	ext->flags = 0;
	if (v->footer.type == VHD_TYPE_FIXED) {
		ext->kind = VC_EXT_DATA;
		ext->flags = VC_EXT_IN_PLACE;
		ext->host_sector = vsec;
		ext->len = nr;
		return 0;
	}
	if (WARN_ON_ONCE(block >= v->bat_entries))
		return -EIO;

	nr = min_t(sector_t, nr, (1u << v->block_shift) - in_block);
	rcu_read_lock();
	u = vc_vhd_unit(vc, block);
	if (u) {
		bat = u->bat;
		new_block = u->new_block;
		pending = true;
	} else {
		bat = vc_vhd_bat(v, block);
	}
	rcu_read_unlock();
	if (bat == VHD_BAT_UNUSED) {
		ext->kind = VC_EXT_LOWER;
		ext->len = nr;
		return 0;
	}
	/*
	 * The BAT was checked at load time, and a sector past the device
	 * end is caught by vc_lookup().
	 */
	r = vc_vhd_bitmap_run(vc, v, block, bat, new_block, in_block, nr, flags,
			      &present, &run);
	if (r)
		return r;
	ext->len = run;
	if (present) {
		ext->kind = VC_EXT_DATA;
		ext->flags = VC_EXT_IN_PLACE;
		if (pending)
			ext->flags |= VC_EXT_UNCOMMITTED;
		ext->host_sector = (sector_t)bat + v->bitmap_sectors + in_block;
	} else {
		ext->kind = VC_EXT_LOWER;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Writes (metadata worker) */

/* The largest block a writable table takes: each unit has two bitmaps. */
#define VC_VHD_MAX_WRITE_BLOCK	(32u << 20)

static int vc_vhd_open_writable(struct vc_target *vc)
{
	struct vc_vhd *v = vc->fmt_data;
	u64 map_bytes;
	int r;

	BUILD_BUG_ON(offsetof(struct vc_vhd_unit, unit));
	if (v->footer.type == VHD_TYPE_FIXED)
		return vc_write_start(vc, 1u << 21, 0);

	if (v->header.block_size > VC_VHD_MAX_WRITE_BLOCK) {
		vc->ti->error =
			"VHD blocks over 32 MiB cannot be written: load the table read-only";
		return -EROFS;
	}
	if (v->header.block_size < vc->cipher.sector_size) {
		vc->ti->error =
			"VHD blocks smaller than sector_size: load the table read-only";
		return -EROFS;
	}
	if ((v->header.table_offset & (SECTOR_SIZE - 1)) ||
	    (v->bat_bytes & (SECTOR_SIZE - 1))) {
		vc->ti->error = "VHD BAT not in whole sectors: load the table read-only";
		return -EROFS;
	}
	v->bat_dirty = bitmap_zalloc(v->bat_bytes >> SECTOR_SHIFT, GFP_KERNEL);
	if (!v->bat_dirty)
		return -ENOMEM;
	if (v->has_batmap) {
		map_bytes = (u64)v->batmap_sectors << SECTOR_SHIFT;
		if (!vc_range_ok(v->batmap_offset, map_bytes, vc_image_bytes(vc)) ||
		    map_bytes * 8 < v->bat_entries) {
			vc->ti->error = "the tapdisk batmap lies outside the image";
			return -EINVAL;
		}
		r = vc_read_table(vc, v->batmap_offset, map_bytes,
				  (void **)&v->batmap, "tapdisk batmap");
		if (r)
			return r;
	}
	r = vc_vhd_check_blocks(vc, v);
	if (r) {
		if (r == -EINVAL)
			vc->ti->error = "a VHD block overlaps metadata: load it read-only";
		return r;
	}
	vc->discard_granularity = SECTOR_SIZE;
	/* New blocks go before the trailing footer, never over it. */
	v->alloc_limit = vc->image_sectors - v->footer_at_end;
	return vc_write_start(vc, 1u << v->block_shift, VC_MAX_WRITE_SECTORS);
}

static bool vc_vhd_block_full(const struct vc_vhd *v, u64 block)
{
	return v->batmap && (v->batmap[block / 8] & (0x80 >> (block % 8)));
}

static struct vc_vhd_unit *vc_vhd_unit_new(struct vc_target *vc,
					   struct vc_vhd *v, u64 block,
					   u32 bat, bool new_block)
{
	size_t bits = BITS_TO_LONGS(1u << v->block_shift) * sizeof(long);
	struct vc_vhd_unit *u;

	u = kzalloc(sizeof(*u) + 2 * bits, GFP_NOIO | __GFP_NOWARN);
	if (!u)
		return NULL;
	u->cleared = (void *)u->present + bits;
	u->unit.index = block;
	u->unit.busy = new_block;
	u->bat = bat;
	u->new_block = new_block;
	if (vc_unit_insert(vc, &u->unit)) {
		kfree(u);
		return NULL;
	}
	return u;
}

/* The unit of @block (worker: units are freed only by the worker). */
static struct vc_vhd_unit *vc_vhd_worker_unit(struct vc_target *vc, u64 block)
{
	struct vc_unit *u = vc_unit_find(vc, block);

	return u ? container_of(u, struct vc_vhd_unit, unit) : NULL;
}

/* The data sectors of @wb are written: they are present now. */
static void vc_vhd_write_done(struct vc_wbuf *wb)
{
	struct vc_target *vc = wb->vc;
	struct vc_vhd *v = vc->fmt_data;
	struct vc_vhd_unit *u = container_of(wb->owner, struct vc_vhd_unit, unit);
	struct vc_io *io = wb->io;
	u32 first = wb->host_sector - u->bat - v->bitmap_sectors;
	unsigned long flags;

	u->unit.inflight--;
	if (wb->error) {
		/* A new block stays reserved but unlinked: nothing points at it. */
		if (u->unit.busy)
			vc_unit_abort(vc, &u->unit);
		vc_io_fail(io, wb->error);
		vc_wbuf_free(wb);
		return;
	}
	vc_publish_begin(vc, flags);
	bitmap_set(u->present, first, wb->sectors);
	bitmap_clear(u->cleared, first, wb->sectors);
	vc_publish_end(vc, flags);
	vc_unit_dirty(vc, &u->unit);
	if (u->unit.busy)
		vc_unit_ready(vc, &u->unit);
	vc_wbuf_free(wb);
	if (io->bio->bi_opf & REQ_FUA)
		io->flags |= VC_IO_FUA;
	vc_io_put(io);
}

/* @wb writes @io's data at @host (sectors @first.. of the block's data). */
static void vc_vhd_write_data(struct vc_target *vc, struct vc_io *io,
			      struct vc_vhd_unit *u, sector_t host,
			      struct vc_wbuf *wb)
{
	unsigned int nr = io->iter.bi_size >> SECTOR_SHIFT;

	vc_wbuf_prepare(wb, host, nr);
	wb->data_len = nr;
	if (vc_encrypted(&vc->cipher)) {
		wb->crypt_len = nr;
		wb->crypt_iv = vc_io_iv(io);
	}
	wb->owner = &u->unit;
	wb->done = vc_vhd_write_done;
}

/* A write into a block that is not allocated: append a new block. */
static void vc_vhd_allocate(struct vc_target *vc, struct vc_vhd *v,
			    struct vc_io *io, u64 block, u32 first,
			    struct vc_wbuf *wb)
{
	u32 block_sectors = 1u << v->block_shift;
	u32 nr = io->iter.bi_size >> SECTOR_SHIFT;
	sector_t at, data, end;
	struct vc_vhd_unit *u;

	/* As tapdisk: the block's data starts on a 4 KiB boundary. */
	at = round_up(v->data_end + v->bitmap_sectors, 8) - v->bitmap_sectors;
	data = at + v->bitmap_sectors;
	end = data + block_sectors;
	if (end > v->alloc_limit || at >= VHD_BAT_UNUSED) {
		DMERR_LIMIT("%s: no space for a new VHD block: the image device ends at %llu",
			    vc_name(vc), (u64)v->alloc_limit);
		vc_wbuf_free(wb);
		vc_io_fail(io, -ENOSPC);
		return;
	}
	u = vc_vhd_unit_new(vc, v, block, at, true);
	if (!u) {
		vc_wbuf_free(wb);
		vc_io_fail(io, -ENOMEM);
		return;
	}
	WRITE_ONCE(v->data_end, end);
	vc_vhd_write_data(vc, io, u, data + first, wb);
	/* QEMU reads an allocated block without its bitmap: zeros there. */
	vc_wbuf_zero_image(wb, data, first);
	vc_wbuf_zero_image(wb, data + first + nr, block_sectors - first - nr);
	vc_wbuf_submit(wb);
}

/* Discard, or write-zeroes where clear bitmap bits read as zeros. */
static void vc_vhd_discard(struct vc_target *vc, struct vc_vhd *v,
			   struct vc_io *io, u64 block, u32 first,
			   struct vc_vhd_unit *u)
{
	u32 nr = io->iter.bi_size >> SECTOR_SHIFT;
	u32 bat = u ? u->bat : vc_vhd_bat(v, block);
	unsigned long flags;

	/* Nothing there, or tapdisk trusts the block to be full: keep it. */
	if (bat == VHD_BAT_UNUSED || vc_vhd_block_full(v, block)) {
		vc_io_put(io);
		return;
	}
	if (!u) {
		u = vc_vhd_unit_new(vc, v, block, bat, false);
		if (!u) {
			vc_io_fail(io, -ENOMEM);
			return;
		}
	}
	vc_publish_begin(vc, flags);
	bitmap_clear(u->present, first, nr);
	bitmap_set(u->cleared, first, nr);
	vc_publish_end(vc, flags);
	vc_unit_dirty(vc, &u->unit);
	if (io->bio->bi_opf & REQ_FUA)
		io->flags |= VC_IO_FUA;
	vc_io_put(io);
}

static void vc_vhd_write(struct vc_target *vc, struct vc_io *io)
{
	struct vc_vhd *v = vc->fmt_data;
	struct bio *bio = io->bio;
	sector_t vsec = vc_io_vsector(io, io->iter);
	u64 block = vsec >> v->block_shift;
	u32 first = vsec & ((1u << v->block_shift) - 1);
	u32 nr = io->iter.bi_size >> SECTOR_SHIFT;
	enum req_op op = bio_op(bio);
	struct vc_vhd_unit *u = NULL;
	struct vc_extent ext;
	struct vc_wbuf *wb;
	u32 bat;
	int r;

	if (v->footer.type != VHD_TYPE_FIXED) {
		u = vc_vhd_worker_unit(vc, block);
		if (u && u->unit.busy) {
			/* The block's allocation is in flight: one at a time. */
			vc_unit_wait(vc, &u->unit, io);
			return;
		}
	}
	if (op == REQ_OP_DISCARD) {
		/* Clearing bits of a differencing disk would show the parent. */
		if (v->footer.type == VHD_TYPE_DYNAMIC)
			vc_vhd_discard(vc, v, io, block, first, u);
		else
			vc_io_put(io);
		return;
	}
	if (op == REQ_OP_WRITE_ZEROES && v->footer.type == VHD_TYPE_DYNAMIC &&
	    !vc_vhd_block_full(v, block)) {
		vc_vhd_discard(vc, v, io, block, first, u);
		return;
	}

	r = vc_lookup(vc, vsec, nr, 0, &ext);
	if (r) {
		vc_io_fail(io, r);
		return;
	}
	if (ext.kind == VC_EXT_DATA && (ext.flags & VC_EXT_IN_PLACE) &&
	    ext.len == nr) {
		vc_write_in_place(vc, io, &ext, true);
		return;
	}
	wb = vc_wbuf_get(vc, io);
	if (!wb) {
		vc_write_starved(vc, io);
		return;
	}
	bat = u ? u->bat : vc_vhd_bat(v, block);
	if (bat == VHD_BAT_UNUSED) {
		vc_vhd_allocate(vc, v, io, block, first, wb);
		return;
	}
	/* Some sectors become present: write them all, then set the bits. */
	if (!u) {
		u = vc_vhd_unit_new(vc, v, block, bat, false);
		if (!u) {
			vc_wbuf_free(wb);
			vc_io_fail(io, -ENOMEM);
			return;
		}
	}
	vc_vhd_write_data(vc, io, u, (sector_t)bat + v->bitmap_sectors + first,
			  wb);
	vc_wbuf_submit(wb);
}

/* Bit @i of a bitmap sector, in this image's bit order. */
static void vc_vhd_set_bit(struct vc_vhd *v, u8 *sector, u32 i, bool on)
{
	u8 mask = v->lsb_first ? 1u << (i & 7) : 0x80u >> (i & 7);

	if (on)
		sector[i / 8] |= mask;
	else
		sector[i / 8] &= ~mask;
}

static int vc_vhd_commit_bitmap(struct vc_target *vc, struct vc_vhd *v,
				struct vc_vhd_unit *u)
{
	u32 block_sectors = 1u << v->block_shift;
	u32 per_sector = SECTOR_SIZE * 8, j, i;
	struct vc_meta_ref ref;
	int r;
	unsigned long flags;

	for (j = 0; j < v->bitmap_sectors; j++) {
		u32 first = j * per_sector;
		u32 n = first < block_sectors ?
			min(per_sector, block_sectors - first) : 0;
		sector_t sector = (sector_t)u->bat + j;

		if (!u->new_block &&
		    find_next_bit(u->present, first + n, first) >= first + n &&
		    find_next_bit(u->cleared, first + n, first) >= first + n)
			continue;
		if (u->new_block)
			r = vc_meta_new(vc, v->bitmaps, sector, &ref);
		else
			r = vc_meta_get(vc, v->bitmaps,
					(u64)sector << SECTOR_SHIFT, 0, &ref);
		if (r)
			return r;
		if (sector >= vc->image_sectors) {
			vc_meta_put(&ref);
			return -EIO;
		}
		vc_publish_begin(vc, flags);
		for (i = 0; i < n; i++) {
			if (test_bit(first + i, u->present))
				vc_vhd_set_bit(v, ref.p, i, true);
			else if (test_bit(first + i, u->cleared))
				vc_vhd_set_bit(v, ref.p, i, false);
		}
		vc_publish_end(vc, flags);
		vc_meta_dirty(&ref, SECTOR_SIZE);
		vc_meta_put(&ref);
	}
	return 0;
}

/* Write the BAT sectors that changed, then flush. */
static int vc_vhd_write_bat(struct vc_target *vc, struct vc_vhd *v)
{
	unsigned int sectors = v->bat_bytes >> SECTOR_SHIFT, s, e;
	sector_t base = v->header.table_offset >> SECTOR_SHIFT;
	bool any = false;
	int r;

	for_each_set_bitrange(s, e, v->bat_dirty, sectors) {
		r = vc_sync_io(vc, REQ_OP_WRITE, base + s,
			       (u8 *)v->bat + ((size_t)s << SECTOR_SHIFT),
			       (size_t)(e - s) << SECTOR_SHIFT);
		if (r)
			return r;
		bitmap_clear(v->bat_dirty, s, e - s);
		any = true;
	}
	return any ? vc_flush_image(vc) : 0;
}

/* Data is durable: bitmaps, then the BAT entries of new blocks. */
static int vc_vhd_commit(struct vc_target *vc)
{
	struct vc_vhd *v = vc->fmt_data;
	struct vc_unit *unit;
	struct vc_vhd_unit *u;
	int r;
	unsigned long flags;

	list_for_each_entry(unit, vc_dirty_units(vc), dirty) {
		r = vc_vhd_commit_bitmap(vc, v,
					 container_of(unit, struct vc_vhd_unit, unit));
		if (r)
			return r;
	}
	r = vc_meta_commit(vc, v->bitmaps);
	if (r)
		return r;

	vc_publish_begin(vc, flags);
	list_for_each_entry(unit, vc_dirty_units(vc), dirty) {
		u = container_of(unit, struct vc_vhd_unit, unit);
		if (!u->new_block)
			continue;
		v->bat[unit->index] = cpu_to_be32(u->bat);
		set_bit(unit->index * 4 / SECTOR_SIZE, v->bat_dirty);
	}
	vc_publish_end(vc, flags);
	return vc_vhd_write_bat(vc, v);
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

static sector_t vc_vhd_data_end(struct vc_target *vc)
{
	struct vc_vhd *v = vc->fmt_data;

	return READ_ONCE(v->data_end);
}

const struct vc_format vc_format_vhd = {
	.name = "vhd",
	.open = vc_vhd_open,
	.reload = vc_vhd_reload,
	.close = vc_vhd_close,
	.map = vc_vhd_map,
	.status = vc_vhd_status,
	.open_writable = vc_vhd_open_writable,
	.write = vc_vhd_write,
	.commit = vc_vhd_commit,
	.data_end = vc_vhd_data_end,
};
