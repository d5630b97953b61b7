// SPDX-License-Identifier: GPL-2.0
/*
 * Writes to qcow2 images for dm-vhdcrypt, in the metadata worker: cluster
 * allocation with refcounts, copy-on-write, new and copied L2 tables,
 * refcount blocks and a growing refcount table, zero clusters, extended L2
 * subclusters, discard and write-zeroes. In-place writes to clusters with
 * COPIED never come here (vhdcrypt-write.c).
 *
 * A cluster's new L2 entry lives in its unit until a commit writes, each
 * step flushed: refcount blocks, the refcount table (and the header when
 * it moved), L2 tables, L1 sectors (see Documentation/design.md). Refcount
 * increments go into the cached refcount blocks at once (early writes only
 * leak); decrements wait for the commit that drops the reference and for
 * the epoch to drain (vhdcrypt-write.c), so no cluster is reused while a
 * bio may still use it.
 */
#include <linux/blkdev.h>
#include <linux/maple_tree.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "vhdcrypt-qcow2.h"

/* QEMU's limit on the refcount table. */
#define VC_QCOW2_MAX_REFTABLE	(8u << 20)

/* An L2 table made by this target, not yet in the L1 table on disk. */
struct vc_qcow2_new_l2 {
	u64 table;		/* bytes: the new table */
	u64 old_table;		/* bytes: the shared table it copies, or 0 */
};

struct vc_qcow2_alloc {
	struct dm_bufio_client *rc;	/* refcount blocks */
	__be64 *rt;			/* the refcount table, as on disk */
	u64 rt_entries;
	u64 rt_offset;			/* bytes: where it is on disk */
	u32 rt_clusters;
	unsigned long *rt_dirty;	/* its sectors to write */
	bool rt_moved;			/* a new table: write it, then the header */
	u64 old_rt_offset;		/* bytes: the table it replaces */
	u32 old_rt_clusters;
	bool clear_autoclear;		/* QEMU's rule for unknown autoclear bits */
	bool rc_dirty;			/* cached refcount blocks changed */
	u32 rb_bits;			/* log2(refcounts per block) */
	u64 free_index;			/* clusters below it are in use */
	u64 end_index;			/* clusters from it on are free */
	u64 max_clusters;		/* whole clusters the device holds */
	struct xarray new_l2;		/* L1 index -> struct vc_qcow2_new_l2 */
	unsigned long *l1_dirty;	/* L1 sectors to write */
	size_t l1_bytes;		/* resident L1 bytes (whole sectors) */
	struct maple_tree meta;		/* host clusters -> VC_QM_* */
};

static u64 vc_cluster(struct vc_qcow2 *q, u64 bytes)
{
	return bytes >> q->cluster_bits;
}

static sector_t vc_cluster_sectors(struct vc_qcow2 *q)
{
	return 1u << (q->cluster_bits - SECTOR_SHIFT);
}

/* Damage found while writing: stop writing and mark the image, as QEMU. */
static __printf(3, 4) int vc_qcow2_corrupt(struct vc_target *vc, u64 where,
					   const char *fmt, ...)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct va_format vaf;
	va_list args;
	u8 *buf;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	DMERR("%s: qcow2 image damaged: %pV (offset %llu): marked corrupt, writes stop",
	      vc_name(vc), &vaf, where);
	va_end(args);
	buf = kmalloc(SECTOR_SIZE, GFP_NOIO);
	if (buf && q->h.version >= 3 &&
	    !vc_sync_io(vc, REQ_OP_READ, 0, buf, SECTOR_SIZE)) {
		vc_put_be64(buf + 72, vc_get_be64(buf + 72) |
				      QCOW2_INCOMPAT_CORRUPT);
		if (!vc_sync_io(vc, REQ_OP_WRITE, 0, buf, SECTOR_SIZE))
			vc_flush_image(vc);
	}
	kfree(buf);
	vc_write_stop(vc, -EIO);
	return -EIO;
}

/*----------------------------------------------------------------*/
/*
 * Where the metadata lies, as QEMU's overlap check knows it: no data
 * write, allocation or refcount drop may touch these host clusters. The
 * map is built when the table loads or resumes, refusing images whose
 * structures overlap, and follows every table the worker makes or retires.
 * Lookups read it under RCU.
 */

enum {
	VC_QM_HEADER = 1,
	VC_QM_LUKS,
	VC_QM_L1,
	VC_QM_REFTABLE,
	VC_QM_REFBLOCK,
	VC_QM_L2,
	VC_QM_SNAPSHOTS,
	VC_QM_SNAPSHOT_L1,
};

static const char *const vc_qm_names[] = {
	[VC_QM_HEADER] = "the header",
	[VC_QM_LUKS] = "the LUKS header",
	[VC_QM_L1] = "the L1 table",
	[VC_QM_REFTABLE] = "the refcount table",
	[VC_QM_REFBLOCK] = "a refcount block",
	[VC_QM_L2] = "an L2 table",
	[VC_QM_SNAPSHOTS] = "the snapshot table",
	[VC_QM_SNAPSHOT_L1] = "a snapshot's L1 table",
};

/* The metadata in host bytes [@off, @off + @bytes): VC_QM_*, 0 for none. */
static unsigned int vc_qm_find(struct vc_qcow2 *q, u64 off, u64 bytes)
{
	unsigned long first = off >> q->cluster_bits;
	void *entry;

	entry = mt_find(&q->alloc->meta, &first,
			(off + max(bytes, 1ull) - 1) >> q->cluster_bits);
	return entry ? xa_to_value(entry) : 0;
}

/* For lookups: is host byte @host in metadata, so no in-place write? */
bool vc_qcow2_in_metadata(struct vc_qcow2 *q, u64 host)
{
	return q->alloc && vc_qm_find(q, host, 1);
}

/* Note metadata of @kind at [@off, @off + @bytes); -EEXIST if it overlaps. */
static int vc_qm_add(struct vc_target *vc, u64 off, u64 bytes,
		     unsigned int kind, gfp_t gfp)
{
	struct vc_qcow2 *q = vc->fmt_data;
	unsigned int old;
	int r;

	r = mtree_insert_range(&q->alloc->meta, off >> q->cluster_bits,
			       (off + bytes - 1) >> q->cluster_bits,
			       xa_mk_value(kind), gfp);
	if (r != -EEXIST)
		return r;
	old = vc_qm_find(q, off, bytes);
	DMERR("%s: qcow2 metadata overlaps: %s at offset %llu shares clusters with %s",
	      vc_name(vc), vc_qm_names[kind], off, vc_qm_names[old]);
	return r;
}

/*
 * A table the worker places in clusters whose refcounts are 0: metadata
 * there means the refcounts are damaged.
 */
static int vc_qm_add_new(struct vc_target *vc, u64 off, u64 bytes,
			 unsigned int kind)
{
	int r = vc_qm_add(vc, off, bytes, kind, GFP_NOIO);

	if (r == -EEXIST)
		return vc_qcow2_corrupt(vc, off, "%s",
					"metadata where the refcounts say all is free");
	return r;
}

/* The table at host byte @off is no longer metadata. */
static void vc_qm_remove(struct vc_qcow2 *q, u64 off)
{
	mtree_erase(&q->alloc->meta, off >> q->cluster_bits);
}

/* The LUKS header from the header extensions; 0 bytes if none. */
static int vc_qcow2_luks_area(struct vc_target *vc, u64 *off, u64 *bytes)
{
	struct vc_qcow2 *q = vc->fmt_data;
	size_t end = min_t(u64, 1ull << q->cluster_bits, vc_image_bytes(vc));
	size_t pos = q->h.header_length, doff;
	const char *why;
	u32 type, dlen;
	u8 *buf;
	int r;

	*bytes = 0;
	if (q->h.crypt_method != QCOW2_CRYPT_LUKS)
		return 0;
	r = vc_read_table(vc, 0, end, (void **)&buf, "qcow2 header cluster");
	if (r)
		return r;
	if (q->h.backing_file_offset && q->h.backing_file_offset < end)
		end = q->h.backing_file_offset;
	while ((r = qcow2_extension_next(buf, end, &pos, &type, &doff, &dlen,
					 &why)) > 0) {
		if (type == QCOW2_EXT_FDE) {
			r = qcow2_fde_decode(buf + doff, dlen, off, bytes, &why);
			break;
		}
	}
	kvfree(buf);
	if (r < 0 || !*bytes || !vc_range_ok(*off, *bytes, vc_image_bytes(vc))) {
		DMERR("%s: qcow2 LUKS header extension is missing, damaged or outside the image",
		      vc_name(vc));
		return -EINVAL;
	}
	return 0;
}

/*
 * The snapshot table and the snapshots' L1 tables (their L2 tables not).
 * Entries vary in size: the table is read in windows of up to 64 KiB.
 */
static int vc_qcow2_map_snapshots(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 off = q->h.snapshots_offset, image = vc_image_bytes(vc), win_off = 0;
	struct qcow2_snapshot s;
	const char *why = NULL;
	size_t win_len = 0;
	u8 *win = NULL;
	u32 i;
	int r;

	if (qcow2_snapshots_check(&q->h, &why))
		goto bad;
	for (i = 0; i < q->h.nb_snapshots; i++, off += s.entry_bytes) {
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			goto out;
		}
		if (off - q->h.snapshots_offset > QCOW2_MAX_SNAPSHOTS_BYTES ||
		    !vc_range_ok(off, QCOW2_SNAPSHOT_FIXED, image)) {
			why = "qcow2 snapshot table is too large or outside the image";
			goto bad;
		}
		if (!win || off + QCOW2_SNAPSHOT_FIXED > win_off + win_len) {
			kvfree(win);
			win_off = off;
			win_len = min_t(u64, SZ_64K, image - off);
			r = vc_read_table(vc, off, win_len, (void **)&win,
					  "qcow2 snapshot table");
			if (r)
				goto out;
		}
		if (qcow2_snapshot_decode(&q->h, win + (off - win_off), &s, &why))
			goto bad;
		if (!s.l1_size)
			continue;
		if (!vc_range_ok(s.l1_table_offset, 8ull * s.l1_size, image)) {
			why = "qcow2 snapshot L1 table lies outside the image";
			goto bad;
		}
		r = vc_qm_add(vc, s.l1_table_offset, 8ull * s.l1_size,
			      VC_QM_SNAPSHOT_L1, GFP_KERNEL);
		if (r)
			goto out;
	}
	r = 0;
	if (off != q->h.snapshots_offset)
		r = vc_qm_add(vc, q->h.snapshots_offset,
			      off - q->h.snapshots_offset, VC_QM_SNAPSHOTS,
			      GFP_KERNEL);
out:
	kvfree(win);
	return r;
bad:
	DMERR("%s: %s", vc_name(vc), why);
	r = -EINVAL;
	goto out;
}

/* Map every structure the image has now; -EEXIST if any two overlap. */
static int vc_qcow2_map_metadata(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 cs = 1ull << q->cluster_bits, i, off, bytes;
	const char *why;
	int r;

	mtree_destroy(&a->meta);
	mt_init_flags(&a->meta, MT_FLAGS_USE_RCU);
	r = vc_qcow2_luks_area(vc, &off, &bytes);
	if (r)
		return r;
	if (bytes) {
		r = vc_qm_add(vc, off, bytes, VC_QM_LUKS, GFP_KERNEL);
		if (r)
			return r;
	}
	/* The L1 table as QEMU sees it (l1_size), if that is in the image. */
	bytes = 8ull * q->h.l1_size;
	if (!vc_range_ok(q->h.l1_table_offset, bytes, vc_image_bytes(vc)))
		bytes = q->l1_entries * 8;
	r = vc_qm_add(vc, 0, cs, VC_QM_HEADER, GFP_KERNEL) ?:
	    (bytes ? vc_qm_add(vc, q->h.l1_table_offset, bytes, VC_QM_L1,
			       GFP_KERNEL) : 0) ?:
	    vc_qm_add(vc, a->rt_offset, (u64)a->rt_clusters << q->cluster_bits,
		      VC_QM_REFTABLE, GFP_KERNEL) ?:
	    vc_qcow2_map_snapshots(vc);
	if (r)
		return r;
	/* Entries that do not decode are refused when a write uses them. */
	for (i = 0; i < a->rt_entries; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
		if (qcow2_reftable_decode(&q->h, be64_to_cpu(a->rt[i]), &off, &why) ||
		    !off || !vc_range_ok(off, cs, vc_image_bytes(vc)))
			continue;
		r = vc_qm_add(vc, off, cs, VC_QM_REFBLOCK, GFP_KERNEL);
		if (r)
			return r;
	}
	for (i = 0; i < q->l1_entries; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
		if (qcow2_l1_decode(&q->h, be64_to_cpu(q->l1[i]), &off, &why) ||
		    !off || !vc_range_ok(off, cs, vc_image_bytes(vc)))
			continue;
		r = vc_qm_add(vc, off, cs, VC_QM_L2, GFP_KERNEL);
		if (r)
			return r;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Refcounts */

/* The image byte that holds the refcount of cluster @index. */
static int vc_rc_locate(struct vc_target *vc, u64 index, u64 *byte,
			bool *missing)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 rbi = index >> a->rb_bits, block;
	const char *why;

	*missing = true;
	if (rbi >= a->rt_entries)
		return 0;
	if (qcow2_reftable_decode(&q->h, be64_to_cpu(a->rt[rbi]), &block, &why))
		return vc_qcow2_corrupt(vc, rbi, "%s", why);
	if (!block)
		return 0;
	if (!vc_range_ok(block, 1ull << q->cluster_bits, vc_image_bytes(vc)))
		return vc_qcow2_corrupt(vc, block, "refcount block outside the image");
	*missing = false;
	*byte = block + qcow2_refcount_byte(&q->h, index & ((1ull << a->rb_bits) - 1));
	return 0;
}

static int vc_rc_get(struct vc_target *vc, u64 index, u64 *value)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_meta_ref ref;
	bool missing;
	u64 byte;
	int r;

	r = vc_rc_locate(vc, index, &byte, &missing);
	if (r || missing) {
		*value = 0;
		return r;
	}
	r = vc_meta_get(vc, q->alloc->rc, byte, 0, &ref);
	if (r)
		return r;
	*value = qcow2_refcount_get(&q->h, ref.p, index);
	vc_meta_put(&ref);
	return 0;
}

static int vc_rc_set(struct vc_target *vc, u64 index, u64 value)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_meta_ref ref;
	bool missing;
	u64 byte;
	int r;

	r = vc_rc_locate(vc, index, &byte, &missing);
	if (r)
		return r;
	if (WARN_ON_ONCE(missing))
		return -EIO;
	r = vc_meta_get(vc, q->alloc->rc, byte, 0, &ref);
	if (r)
		return r;
	qcow2_refcount_set(&q->h, ref.p, index, value);
	vc_meta_dirty(&ref, max(1u, (1u << q->h.refcount_order) / 8));
	vc_meta_put(&ref);
	q->alloc->rc_dirty = true;
	vc_mark_dirty(vc);
	return 0;
}

/* Hold new zeroed blocks for a whole new cluster of refcounts at @offset. */
static int vc_rc_new_block(struct vc_target *vc, u64 offset)
{
	struct vc_qcow2 *q = vc->fmt_data;
	sector_t s, first = offset >> SECTOR_SHIFT;
	struct vc_meta_ref ref;
	int r;

	/* Written whole: what the cluster held before must not survive. */
	for (s = first; s < first + vc_cluster_sectors(q); s++) {
		r = vc_meta_new(vc, q->alloc->rc, s, &ref);
		if (r)
			return r;
		vc_meta_dirty(&ref, SECTOR_SIZE);
		vc_meta_put(&ref);
	}
	q->alloc->rc_dirty = true;
	return 0;
}

static void vc_rt_set(struct vc_qcow2_alloc *a, u64 rbi, u64 block)
{
	a->rt[rbi] = cpu_to_be64(block);
	set_bit(rbi * 8 / SECTOR_SIZE, a->rt_dirty);
}

/*
 * Cluster @index lies in a range without a refcount block: place one at
 * @index itself (the whole range is free), describing itself.
 */
static int vc_rc_create_block(struct vc_target *vc, u64 index)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	int r;

	r = vc_qm_add_new(vc, index << q->cluster_bits, 1ull << q->cluster_bits,
			  VC_QM_REFBLOCK);
	if (r)
		return r;
	r = vc_rc_new_block(vc, index << q->cluster_bits);
	if (r) {
		vc_qm_remove(q, index << q->cluster_bits);
		return r;
	}
	vc_rt_set(a, index >> a->rb_bits, index << q->cluster_bits);
	vc_mark_dirty(vc);
	return vc_rc_set(vc, index, 1);
}

/*
 * The refcount table covers too little: build a larger one, with a
 * refcount block covering it, in the first range nothing covers yet (it
 * is all free). Written at the next commit: the block, then the table,
 * then the header; the old table is released after that.
 */
static int vc_rt_grow(struct vc_target *vc, u64 rbi_needed)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 per_cluster = (1ull << q->cluster_bits) / 8;
	u64 entries = max(a->rt_entries * 2, rbi_needed + 1);
	u64 range = a->rt_entries, first, i;
	unsigned long *dirty;
	u32 clusters;
	__be64 *rt;
	int r;

	entries = round_up(entries, per_cluster);
	clusters = entries / per_cluster;
	if (entries * 8 > VC_QCOW2_MAX_REFTABLE) {
		DMERR_LIMIT("%s: the qcow2 refcount table cannot grow past %u MiB",
			    vc_name(vc), VC_QCOW2_MAX_REFTABLE >> 20);
		return -ENOSPC;
	}
	first = range << a->rb_bits;
	if (clusters + 1 > (1ull << a->rb_bits) ||
	    first + 1 + clusters > a->max_clusters)
		return -ENOSPC;
	if (a->rt_moved) {
		/* Grown twice before a commit: commit the first one first. */
		return -EAGAIN;
	}

	rt = kvzalloc(entries * 8, GFP_NOIO);
	dirty = bitmap_zalloc(entries * 8 / SECTOR_SIZE, GFP_NOIO);
	if (!rt || !dirty) {
		kvfree(rt);
		bitmap_free(dirty);
		return -ENOMEM;
	}
	r = vc_qm_add_new(vc, first << q->cluster_bits, 1ull << q->cluster_bits,
			  VC_QM_REFBLOCK);
	if (!r) {
		r = vc_qm_add_new(vc, (first + 1) << q->cluster_bits,
				  (u64)clusters << q->cluster_bits, VC_QM_REFTABLE);
		if (r)
			vc_qm_remove(q, first << q->cluster_bits);
	}
	if (!r) {
		r = vc_rc_new_block(vc, first << q->cluster_bits);
		if (r) {
			vc_qm_remove(q, first << q->cluster_bits);
			vc_qm_remove(q, (first + 1) << q->cluster_bits);
		}
	}
	if (r) {
		kvfree(rt);
		bitmap_free(dirty);
		return r;
	}
	memcpy(rt, a->rt, a->rt_entries * 8);
	kvfree(a->rt);
	bitmap_free(a->rt_dirty);
	a->rt = rt;
	a->rt_dirty = dirty;
	a->old_rt_offset = a->rt_offset;
	a->old_rt_clusters = a->rt_clusters;
	a->rt_entries = entries;
	a->rt_clusters = clusters;
	a->rt_offset = (first + 1) << q->cluster_bits;
	a->rt_moved = true;
	vc_rt_set(a, range, first << q->cluster_bits);
	vc_mark_dirty(vc);
	/* The block and the table are in use, described by the block. */
	for (i = 0; i <= clusters; i++) {
		r = vc_rc_set(vc, first + i, 1);
		if (r)
			return r;
	}
	a->end_index = max(a->end_index, first + 1 + clusters);
	return 0;
}

/*
 * The first cluster from a->free_index on whose refcount is 0, looking at
 * the refcounts of one cached block; a->free_index moves past the others.
 */
static int vc_scan_block(struct vc_target *vc, u64 byte, bool *found)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 index = a->free_index, i, limit;
	u32 order = q->h.refcount_order;
	struct vc_meta_ref ref;
	int r;

	r = vc_meta_get(vc, a->rc, byte, 0, &ref);
	if (r)
		return r;
	limit = index + ((((u64)ref.len << 3) - ((index << order) & 7)) >> order);
	limit = min3(limit, ((index >> a->rb_bits) + 1) << a->rb_bits,
		     a->max_clusters);
	for (i = index; i < limit; i++)
		if (!qcow2_refcount_get(&q->h, ref.p + qcow2_refcount_byte(&q->h, i) -
					qcow2_refcount_byte(&q->h, index), i))
			break;
	vc_meta_put(&ref);
	a->free_index = i;
	*found = i < limit;
	return 0;
}

/* First-fit: the lowest cluster whose refcount is 0; now it is 1. */
static int vc_alloc_cluster(struct vc_target *vc, u64 *offset)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	unsigned int scanned = 0, kind;
	bool missing, found;
	u64 index, byte;
	int r;

	for (;; cond_resched()) {
		index = a->free_index;
		if (index >= a->max_clusters) {
			DMERR_LIMIT("%s: no space for a cluster: the image device holds %llu",
				    vc_name(vc), a->max_clusters);
			return -ENOSPC;
		}
		if ((index >> a->rb_bits) >= a->rt_entries) {
			r = vc_rt_grow(vc, index >> a->rb_bits);
			/* It grew already: put that on disk first. */
			if (r == -EAGAIN)
				r = vc_commit_now(vc);
			if (r)
				return r;
			continue;
		}
		r = vc_rc_locate(vc, index, &byte, &missing);
		if (r)
			return r;
		if (missing) {
			/* The new block takes this cluster itself. */
			r = vc_rc_create_block(vc, index);
			if (r)
				return r;
			a->free_index = index + 1;
			a->end_index = max(a->end_index, index + 1);
			continue;
		}
		r = vc_scan_block(vc, byte, &found);
		if (r)
			return r;
		if (found)
			break;
		if (!(++scanned & 1023) && fatal_signal_pending(current))
			return -EINTR;
	}
	index = a->free_index;
	kind = vc_qm_find(q, index << q->cluster_bits, 1);
	if (kind)
		return vc_qcow2_corrupt(vc, index << q->cluster_bits,
					"%s has refcount 0", vc_qm_names[kind]);
	r = vc_rc_set(vc, index, 1);
	if (r)
		return r;
	a->free_index = index + 1;
	a->end_index = max(a->end_index, index + 1);
	*offset = index << q->cluster_bits;
	return 0;
}

/* After the epoch: drop one reference of each cluster in [@off, @off+@len). */
void vc_qcow2_release(struct vc_target *vc, u64 off, u64 len)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 first = vc_cluster(q, off), last = vc_cluster(q, off + len - 1), c;
	unsigned int kind;
	u64 rc;

	for (c = first; c <= last; c++) {
		/* Tables are retired from the map before they are released. */
		kind = vc_qm_find(q, c << q->cluster_bits, 1);
		if (kind) {
			vc_qcow2_corrupt(vc, c << q->cluster_bits,
					 "an L2 entry holds %s", vc_qm_names[kind]);
			return;
		}
		if (vc_rc_get(vc, c, &rc))
			return;
		if (!rc) {
			vc_qcow2_corrupt(vc, c << q->cluster_bits, "refcount would drop below 0");
			return;
		}
		if (vc_rc_set(vc, c, rc - 1))
			return;
		if (rc == 1) {
			/* Free: nothing cached of it may be written back later. */
			dm_bufio_forget_buffers(q->l2, (c << q->cluster_bits) >> SECTOR_SHIFT,
						vc_cluster_sectors(q));
			a->free_index = min(a->free_index, c);
		}
	}
	if (q->dec)
		vc_decompressor_invalidate(q->dec);
}

/*----------------------------------------------------------------*/
/* L2 tables */

/* The L2 table for L1 entry @l1i as the worker sees it: new ones too. */
static int vc_qcow2_table(struct vc_target *vc, u64 l1i, u64 *table,
			  bool *copied)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_new_l2 *n = xa_load(&q->alloc->new_l2, l1i);
	u64 l1e;
	const char *why;

	if (n) {
		*table = n->table;
		*copied = true;
		return 0;
	}
	l1e = be64_to_cpu(q->l1[l1i]);
	if (qcow2_l1_decode(&q->h, l1e, table, &why))
		return vc_qcow2_corrupt(vc, l1i, "%s", why);
	if (*table && !vc_range_ok(*table, 1ull << q->cluster_bits,
				   vc_image_bytes(vc)))
		return vc_qcow2_corrupt(vc, *table, "L2 table outside the image");
	*copied = qcow2_entry_copied(l1e);
	return 0;
}

/*
 * A new L2 table for @l1i: zeros, or a copy of the shared table @old. The
 * copy keeps every entry (their clusters stay shared); the old table loses
 * the active L1's reference once the new one is committed.
 */
static int vc_qcow2_new_table(struct vc_target *vc, u64 l1i, u64 old,
			      u64 *table)
{
	struct vc_qcow2 *q = vc->fmt_data;
	size_t cs = 1ull << q->cluster_bits;
	struct vc_qcow2_new_l2 *n;
	void *buf = NULL;
	int r;

	n = kzalloc(sizeof(*n), GFP_NOIO);
	if (!n)
		return -ENOMEM;
	r = vc_alloc_cluster(vc, &n->table) ?:
	    vc_qm_add_new(vc, n->table, cs, VC_QM_L2);
	if (r)
		goto fail;
	if (old) {
		unsigned int noio = memalloc_noio_save();

		/* GFP_KERNEL scoped to NOIO, so vmalloc works too. */
		buf = kvmalloc(cs, GFP_KERNEL);
		memalloc_noio_restore(noio);
		r = buf ? vc_sync_io(vc, REQ_OP_READ, old >> SECTOR_SHIFT, buf, cs) :
			  -ENOMEM;
		if (!r)
			r = vc_sync_io(vc, REQ_OP_WRITE, n->table >> SECTOR_SHIFT,
				       buf, cs);
		kvfree(buf);
	} else {
		r = blkdev_issue_zeroout(vc->image->bdev, n->table >> SECTOR_SHIFT,
					 vc_cluster_sectors(q), GFP_NOIO, 0);
	}
	if (r)
		goto fail;
	/* The cache must not hold what the cluster was before. */
	dm_bufio_forget_buffers(q->l2, n->table >> SECTOR_SHIFT,
				vc_cluster_sectors(q));
	n->old_table = old;
	r = xa_err(xa_store(&q->alloc->new_l2, l1i, n, GFP_NOIO));
	if (r)
		goto fail;
	vc_mark_dirty(vc);
	*table = n->table;
	return 0;
fail:
	/* An allocated table cluster stays allocated: a leak. */
	kfree(n);
	return r;
}

/* Where the L2 entry of @cluster goes, making its table writable. */
static int vc_qcow2_entry_pos(struct vc_target *vc, u64 cluster, u64 *pos)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 l1i = cluster >> q->l2_bits;
	u64 l2i = cluster & ((1ull << q->l2_bits) - 1);
	u64 table;
	bool copied;
	int r;

	r = vc_qcow2_table(vc, l1i, &table, &copied);
	if (r)
		return r;
	if (!table || !copied) {
		r = vc_qcow2_new_table(vc, l1i, table, &table);
		if (r)
			return r;
	}
	*pos = table + l2i * q->entry_size;
	return 0;
}

/* The current L2 entry of @cluster, as the worker sees it. */
static int vc_qcow2_entry(struct vc_target *vc, u64 cluster, u64 *entry,
			  u64 *bitmap)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_unit *u = vc_unit_find(vc, cluster);
	u64 table, pos;
	bool copied;
	int r;

	*entry = 0;
	*bitmap = 0;
	if (u) {
		struct vc_qcow2_unit *qu = container_of(u, struct vc_qcow2_unit, unit);

		*entry = qu->entry;
		*bitmap = qu->bitmap;
		return 0;
	}
	r = vc_qcow2_table(vc, cluster >> q->l2_bits, &table, &copied);
	if (r || !table)
		return r;
	pos = table + (cluster & ((1ull << q->l2_bits) - 1)) * q->entry_size;
	r = vc_meta_be64(vc, q->l2, pos, 0, entry);
	if (!r && q->entry_size == 16)
		r = vc_meta_be64(vc, q->l2, pos + 8, 0, bitmap);
	return r;
}

/* An entry whose data cluster is metadata: writing it would destroy that. */
static int vc_qcow2_check_entry(struct vc_target *vc, u64 entry, u64 vbyte)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 host = entry & QCOW2_OFFSET_MASK;
	unsigned int kind;

	if (!host || (entry & QCOW2_OFLAG_COMPRESSED))
		return 0;
	kind = vc_qm_find(q, host, 1);
	if (!kind)
		return 0;
	return vc_qcow2_corrupt(vc, host, "the L2 entry for offset %llu points into %s",
				vbyte, vc_qm_names[kind]);
}

/*----------------------------------------------------------------*/
/* Allocating writes */

struct vc_qcow2_plan {
	u64 cluster;		/* virtual cluster index */
	u64 entry, bitmap;	/* what it maps to now */
	u64 new_entry, new_bitmap;
	u64 host;		/* bytes: the cluster written to */
	bool allocated;		/* host is a new cluster */
	u32 first, last;	/* subclusters written (cluster: 0..0) */
};

/* A unit for @cluster, showing its current mapping until it changes. */
static struct vc_qcow2_unit *vc_qcow2_unit_new(struct vc_target *vc,
					       u64 cluster, bool busy,
					       u64 entry, u64 bitmap, u64 pos)
{
	struct vc_qcow2_unit *u = kzalloc(sizeof(*u), GFP_NOIO | __GFP_NOWARN);

	if (!u)
		return NULL;
	u->unit.index = cluster;
	u->unit.busy = busy;
	u->entry = entry;
	u->bitmap = bitmap;
	u->l2_offset = pos;
	if (vc_unit_insert(vc, &u->unit)) {
		kfree(u);
		return NULL;
	}
	return u;
}

/* The unit of @cluster (the worker may look without RCU). */
static struct vc_qcow2_unit *vc_qcow2_worker_unit(struct vc_target *vc,
						  u64 cluster)
{
	struct vc_unit *u = vc_unit_find(vc, cluster);

	return u ? container_of(u, struct vc_qcow2_unit, unit) : NULL;
}

/* What the unit's old mapping held that the new one no longer uses. */
static void vc_qcow2_note_release(struct vc_qcow2 *q, struct vc_qcow2_unit *u,
				  u64 old_entry, u64 new_entry)
{
	struct qcow2_map m;
	const char *why;
	u64 old_host, new_host = new_entry & QCOW2_OFFSET_MASK;
	unsigned int i;

	if (qcow2_l2_decode(&q->h, old_entry, 0, 0, &m, &why))
		return;
	if (m.kind == QCOW2_COMPRESSED) {
		old_host = round_down(m.host_offset, SECTOR_SIZE);
		i = u->nr_release++;
		u->release[i].off = old_host;
		u->release[i].len = m.host_offset + m.compressed_bytes - old_host;
		return;
	}
	old_host = old_entry & QCOW2_OFFSET_MASK;
	if (!old_host || old_host == new_host)
		return;
	i = u->nr_release++;
	u->release[i].off = old_host;
	u->release[i].len = 1ull << q->cluster_bits;
}

/* Publish @u's new mapping (a new unit, or a change of a ready one). */
static void vc_qcow2_set_entry(struct vc_target *vc, struct vc_qcow2_unit *u,
			       u64 entry, u64 bitmap)
{
	struct vc_qcow2 *q = vc->fmt_data;
	unsigned long flags;

	/* Each unit releases what its disk entry and any later entry held. */
	if (u->nr_release < ARRAY_SIZE(u->release))
		vc_qcow2_note_release(q, u, u->entry, entry);
	vc_publish_begin(vc, flags);
	u->entry = entry;
	u->bitmap = bitmap;
	vc_publish_end(vc, flags);
	vc_unit_dirty(vc, &u->unit);
}

static void vc_qcow2_write_done(struct vc_wbuf *wb)
{
	struct vc_target *vc = wb->vc;
	struct vc_qcow2_unit *u = container_of(wb->owner, struct vc_qcow2_unit,
					       unit);
	struct vc_io *io = wb->io;

	u->unit.inflight--;
	if (wb->error) {
		/*
		 * A newly allocated cluster stays allocated: a leak. A unit
		 * that had a mapping to commit keeps it.
		 */
		if (list_empty(&u->unit.dirty))
			vc_unit_abort(vc, &u->unit);
		else
			vc_unit_ready(vc, &u->unit);
		vc_io_fail(io, wb->error);
		vc_wbuf_free(wb);
		return;
	}
	vc_qcow2_set_entry(vc, u, u->pending_entry, u->pending_bitmap);
	vc_unit_ready(vc, &u->unit);
	vc_wbuf_free(wb);
	if (io->bio->bi_opf & REQ_FUA)
		io->flags |= VC_IO_FUA;
	vc_io_put(io);
}

/* Copy the compressed cluster's inflated bytes into the buffer. */
struct vc_qcow2_fill_ctx {
	struct vc_wbuf *wb;
	u32 skip, len;		/* bytes of the cluster, into the buffer at 0 */
};

static int vc_qcow2_fill_inflated(void *ctx, const u8 *cluster)
{
	struct vc_qcow2_fill_ctx *f = ctx;

	vc_wbuf_fill_copy(f->wb, 0, cluster + f->skip, f->len);
	return 0;
}

/*
 * Fill sectors [@off, @off + @len) of @wb (which starts at virtual byte
 * @vstart) with what the old mapping of the cluster shows there.
 */
static int vc_qcow2_fill(struct vc_target *vc, struct vc_wbuf *wb,
			 u64 vstart, unsigned int off, unsigned int len,
			 const struct vc_qcow2_plan *p)
{
	struct vc_qcow2 *q = vc->fmt_data;

	while (len) {
		u64 vbyte = vstart + ((u64)off << SECTOR_SHIFT);
		u32 in_cluster = vbyte & ((1ull << q->cluster_bits) - 1);
		u32 sc = in_cluster >> q->sc_bits;
		u64 sc_end = ((u64)(sc + 1) << q->sc_bits) - in_cluster;
		unsigned int n = min_t(u64, len, sc_end >> SECTOR_SHIFT);
		sector_t vsec = vbyte >> SECTOR_SHIFT;
		struct qcow2_map m;
		const char *why;
		int r;

		if (qcow2_l2_decode(&q->h, p->entry, p->bitmap, sc, &m, &why))
			return vc_qcow2_corrupt(vc, vbyte, "%s", why);
		switch (m.kind) {
		case QCOW2_DATA: {
			u64 host = m.host_offset +
				   (in_cluster & ((1ull << q->sc_bits) - 1));
			bool decrypt = vc_encrypted(&vc->cipher) && !vc->whole_disk;

			if (!vc_range_ok(host, (u64)n << SECTOR_SHIFT,
					 vc_image_bytes(vc)))
				return vc_qcow2_corrupt(vc, host, "data cluster outside the image");
			r = vc_wbuf_fill_read(wb, off, n, vc->image->bdev,
					      host >> SECTOR_SHIFT, decrypt,
					      (host >> SECTOR_SHIFT) + vc->iv_offset);
			if (r)
				return r;
			break;
		}
		case QCOW2_COMPRESSED: {
			struct vc_extent ext = {
				.comp_offset = m.host_offset,
				.comp_bytes = m.compressed_bytes,
			};
			struct vc_qcow2_fill_ctx f = { .wb = wb };
			struct vc_decompressor *d = vc_qcow2_decompressor(vc);

			/* The whole cluster, once: the buffer starts at its start. */
			if (!d)
				return -ENOMEM;
			f.len = wb->sectors << SECTOR_SHIFT;
			r = vc_decompress(vc, d, &ext, vc_qcow2_fill_inflated, &f);
			if (r)
				return r;
			return 0;
		}
		case QCOW2_UNALLOCATED:
			if (vc->lower && vsec < vc->lower_sectors) {
				unsigned int b = min_t(sector_t, n,
						       vc->lower_sectors - vsec);

				vc_wbuf_fill_read(wb, off, b, vc->lower->bdev,
						  vsec, false, 0);
				vc_wbuf_fill_zero(wb, off + b, n - b);
				break;
			}
			fallthrough;
		default:
			vc_wbuf_fill_zero(wb, off, n);
			break;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A write into the cluster an entry already owns. QEMU's files may end
 * inside their last cluster, but the image device cannot grow: a write past
 * its end fails as an allocation would. A cluster past the end is damage,
 * which reads fail the same way.
 */
static int vc_qcow2_owned_ok(struct vc_target *vc,
			     const struct vc_qcow2_plan *p)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 start = p->host + ((u64)p->first << q->sc_bits);
	u64 bytes = (u64)(p->last - p->first + 1) << q->sc_bits;

	if (!vc_range_ok(p->host, 1ull << q->cluster_bits, q->image_limit)) {
		vc_err_limit(vc, "data cluster at %llu lies outside the image",
			     p->host);
		return -EIO;
	}
	if (!vc_range_ok(start, bytes, vc_image_bytes(vc))) {
		DMERR_LIMIT("%s: no space to write the cluster at %llu: the device ends at %llu",
			    vc_name(vc), p->host, vc_image_bytes(vc));
		return -ENOSPC;
	}
	return 0;
}

/*
 * Plan a write of [@vbyte, @vbyte + @bytes) into one cluster that cannot be
 * written in place: where it goes, which subclusters, the new entry.
 */
static int vc_qcow2_plan(struct vc_target *vc, struct vc_qcow2_plan *p,
			 u64 vbyte, u64 bytes)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 cs = 1ull << q->cluster_bits;
	u64 in_cluster = vbyte & (cs - 1);
	u64 host = p->entry & QCOW2_OFFSET_MASK;
	bool ext_l2 = qcow2_extended_l2(&q->h);
	bool compressed = p->entry & QCOW2_OFLAG_COMPRESSED;
	bool copied = !compressed && host && qcow2_entry_copied(p->entry);
	u64 alloc_bits, written;
	int r;

	p->first = in_cluster >> q->sc_bits;
	p->last = (in_cluster + bytes - 1) >> q->sc_bits;
	/* A whole-disk crypto unit larger than a subcluster: whole clusters. */
	if ((1u << q->sc_bits) < vc->cipher.sector_size) {
		p->first = 0;
		p->last = (1u << (q->cluster_bits - q->sc_bits)) - 1;
	}
	if (!ext_l2) {
		/*
		 * A whole cluster. A zero cluster that still owns its host
		 * cluster is written there (QEMU's ZERO_ALLOC reuse).
		 */
		if (copied && (p->entry & QCOW2_OFLAG_ZERO)) {
			p->host = host;
			r = vc_qcow2_owned_ok(vc, p);
			if (r)
				return r;
		} else {
			r = vc_alloc_cluster(vc, &p->host);
			if (r)
				return r;
			p->allocated = true;
		}
		p->new_entry = p->host | QCOW2_OFLAG_COPIED;
		p->new_bitmap = 0;
		return 0;
	}

	/* Extended L2: subclusters. */
	written = GENMASK_ULL(p->last, p->first);
	alloc_bits = compressed ? 0 : p->bitmap & 0xffffffffu;
	if (copied) {
		/* Our cluster: allocate the subclusters in place. */
		p->host = host;
		r = vc_qcow2_owned_ok(vc, p);
		if (r)
			return r;
	} else {
		r = vc_alloc_cluster(vc, &p->host);
		if (r)
			return r;
		p->allocated = true;
		if (host || compressed) {
			/* Shared or compressed: copy the whole cluster. */
			p->first = 0;
			p->last = QCOW2_SUBCLUSTERS - 1;
			alloc_bits = compressed ? ~0u : alloc_bits;
		}
	}
	p->new_entry = p->host | QCOW2_OFLAG_COPIED;
	p->new_bitmap = (alloc_bits | written) |
			((p->bitmap >> QCOW2_SUBCLUSTERS) & ~(alloc_bits | written) &
			 0xffffffffu) << QCOW2_SUBCLUSTERS;
	return 0;
}

static void vc_qcow2_allocate(struct vc_target *vc, struct vc_io *io,
			      struct vc_qcow2_unit *u, struct vc_qcow2_plan *p,
			      struct vc_wbuf *wb)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 vbyte = (u64)vc_io_vsector(io, io->iter) << SECTOR_SHIFT;
	u64 cs = 1ull << q->cluster_bits;
	u64 cstart = vbyte & ~(cs - 1);
	u64 bstart = cstart + ((u64)p->first << q->sc_bits);
	u64 bend = cstart + ((u64)(p->last + 1) << q->sc_bits);
	unsigned int sectors = (bend - bstart) >> SECTOR_SHIFT;
	unsigned int data_off = (vbyte - bstart) >> SECTOR_SHIFT;
	unsigned int data_len = io->iter.bi_size >> SECTOR_SHIFT;
	int r;

	vc_wbuf_prepare(wb, (p->host + (bstart - cstart)) >> SECTOR_SHIFT,
			sectors);
	wb->data_off = data_off;
	wb->data_len = data_len;
	if (vc->whole_disk) {
		wb->crypt_off = data_off;
		wb->crypt_len = data_len;
		wb->crypt_iv = vc_io_iv(io);
	} else if (vc_encrypted(&vc->cipher)) {
		/* LUKS: the whole buffer, by its new host offset. */
		wb->crypt_len = sectors;
		wb->crypt_iv = wb->host_sector + vc->iv_offset;
	}
	/* A compressed cluster fills everything first, the data goes on top. */
	if (p->entry & QCOW2_OFLAG_COMPRESSED)
		r = vc_qcow2_fill(vc, wb, bstart, 0, sectors, p);
	else
		r = vc_qcow2_fill(vc, wb, bstart, 0, data_off, p) ?:
		    vc_qcow2_fill(vc, wb, bstart, data_off + data_len,
				  sectors - data_off - data_len, p);
	if (r) {
		/* Fill reads already started complete into a failed buffer. */
		wb->error = r;
	}
	u->pending_entry = p->new_entry;
	u->pending_bitmap = p->new_bitmap;
	wb->owner = &u->unit;
	wb->done = vc_qcow2_write_done;
	vc_wbuf_submit(wb);
}

/*----------------------------------------------------------------*/
/* Discard and write-zeroes of whole clusters */

static void vc_qcow2_zero_cluster(struct vc_target *vc, struct vc_io *io,
				  struct vc_qcow2_unit *u, u64 cluster,
				  u64 entry, u64 bitmap, u64 pos)
{
	struct vc_qcow2 *q = vc->fmt_data;
	bool discard = bio_op(io->bio) == REQ_OP_DISCARD;
	bool keep = !discard && (io->bio->bi_opf & REQ_NOUNMAP);
	u64 host = entry & QCOW2_OFFSET_MASK;
	bool owned = host && !(entry & QCOW2_OFLAG_COMPRESSED) &&
		     qcow2_entry_copied(entry);
	u64 new_entry, new_bitmap = 0;

	if (qcow2_extended_l2(&q->h)) {
		/* All zero subclusters; the host cluster kept if asked. */
		new_entry = keep && owned ? entry : 0;
		new_bitmap = 0xffffffffull << QCOW2_SUBCLUSTERS;
	} else if (q->h.version < 3) {
		/* No zero flag: only unallocated, with nothing below. */
		new_entry = 0;
	} else {
		new_entry = QCOW2_OFLAG_ZERO;
		if (keep && owned)
			new_entry |= host | QCOW2_OFLAG_COPIED;
	}
	if (new_entry == entry && new_bitmap == bitmap) {
		vc_io_put(io);
		return;
	}
	if (!u) {
		u = vc_qcow2_unit_new(vc, cluster, false, entry, bitmap, pos);
		if (!u) {
			vc_io_fail(io, -ENOMEM);
			return;
		}
	}
	vc_qcow2_set_entry(vc, u, new_entry, new_bitmap);
	if (io->bio->bi_opf & REQ_FUA)
		io->flags |= VC_IO_FUA;
	vc_io_put(io);
}

/* Does the cluster read as zeros without an entry saying so? */
static bool vc_qcow2_reads_zero(struct vc_target *vc, u64 entry, u64 bitmap)
{
	struct vc_qcow2 *q = vc->fmt_data;

	if (qcow2_extended_l2(&q->h))
		return !(bitmap & 0xffffffffu) &&
		       (!vc->lower || (bitmap >> QCOW2_SUBCLUSTERS) == 0xffffffffu);
	return (entry & QCOW2_OFLAG_ZERO && !(entry & QCOW2_OFFSET_MASK)) ||
	       (!entry && !vc->lower);
}

/* Can a discard or write-zeroes of this whole cluster be a zero cluster? */
static bool vc_qcow2_can_zero(struct vc_target *vc, struct vc_io *io)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 cs = 1ull << q->cluster_bits;
	u64 vbyte = (u64)vc_io_vsector(io, io->iter) << SECTOR_SHIFT;

	if ((vbyte & (cs - 1)) || io->iter.bi_size != cs)
		return false;
	/* v2 without a zero flag cannot hide a backing file. */
	return q->h.version >= 3 || !vc->lower;
}

/*----------------------------------------------------------------*/

void vc_qcow2_write(struct vc_target *vc, struct vc_io *io)
{
	struct vc_qcow2 *q = vc->fmt_data;
	sector_t vsec = vc_io_vsector(io, io->iter);
	u64 vbyte = (u64)vsec << SECTOR_SHIFT;
	u64 cluster = vbyte >> q->cluster_bits;
	enum req_op op = bio_op(io->bio);
	struct vc_qcow2_plan p = { .cluster = cluster };
	struct vc_qcow2_unit *u;
	struct vc_extent ext;
	struct vc_wbuf *wb;
	bool fresh;
	u64 pos;
	int r;

	u = vc_qcow2_worker_unit(vc, cluster);
	if (u && u->unit.busy) {
		/* Its allocation is in flight: allocate a cluster once. */
		vc_unit_wait(vc, &u->unit, io);
		return;
	}
	if (op == REQ_OP_DISCARD && !vc_qcow2_can_zero(vc, io)) {
		/* Partial discards are only a hint: nothing to free. */
		vc_io_put(io);
		return;
	}
	r = vc_qcow2_entry(vc, cluster, &p.entry, &p.bitmap) ?:
	    vc_qcow2_check_entry(vc, p.entry, vbyte);
	if (r) {
		vc_io_fail(io, r);
		return;
	}
	if (op != REQ_OP_WRITE && vc_qcow2_can_zero(vc, io)) {
		/* Zeros already, holding no cluster: no table to make for it. */
		if (vc_qcow2_reads_zero(vc, p.entry, p.bitmap)) {
			vc_io_put(io);
			return;
		}
		pos = u ? u->l2_offset : 0;
		if (!u) {
			r = vc_qcow2_entry_pos(vc, cluster, &pos);
			if (r) {
				vc_io_fail(io, r);
				return;
			}
		}
		vc_qcow2_zero_cluster(vc, io, u, cluster, p.entry, p.bitmap, pos);
		return;
	}

	r = vc_lookup(vc, vsec, io->iter.bi_size >> SECTOR_SHIFT, 0, &ext);
	if (r) {
		vc_io_fail(io, r);
		return;
	}
	if (ext.kind == VC_EXT_DATA && (ext.flags & VC_EXT_IN_PLACE) &&
	    ext.len == io->iter.bi_size >> SECTOR_SHIFT) {
		vc_write_in_place(vc, io, &ext, true);
		return;
	}

	/* Allocate (or copy on write): the unit makes other writes wait. */
	wb = vc_wbuf_get(vc, io);
	if (!wb) {
		vc_write_starved(vc, io);
		return;
	}
	fresh = !u;
	if (fresh) {
		r = vc_qcow2_entry_pos(vc, cluster, &pos);
		if (!r) {
			u = vc_qcow2_unit_new(vc, cluster, true, p.entry,
					      p.bitmap, pos);
			r = u ? 0 : -ENOMEM;
		}
		if (r) {
			vc_wbuf_free(wb);
			vc_io_fail(io, r);
			return;
		}
	} else {
		WRITE_ONCE(u->unit.busy, true);
	}
	r = vc_qcow2_plan(vc, &p, vbyte, io->iter.bi_size);
	if (r) {
		if (fresh)
			vc_unit_abort(vc, &u->unit);
		else
			vc_unit_ready(vc, &u->unit);
		vc_wbuf_free(wb);
		vc_io_fail(io, r);
		return;
	}
	vc_qcow2_allocate(vc, io, u, &p, wb);
}

/*----------------------------------------------------------------*/
/* Commit */

static int vc_qcow2_write_sectors(struct vc_target *vc, u64 base, void *table,
				  unsigned long *dirty, unsigned int sectors)
{
	unsigned int s, e;
	bool any = false;
	int r;

	for_each_set_bitrange(s, e, dirty, sectors) {
		r = vc_sync_io(vc, REQ_OP_WRITE, (base >> SECTOR_SHIFT) + s,
			       table + ((size_t)s << SECTOR_SHIFT),
			       (size_t)(e - s) << SECTOR_SHIFT);
		if (r)
			return r;
		bitmap_clear(dirty, s, e - s);
		any = true;
	}
	return any ? vc_flush_image(vc) : 0;
}

/* Header fields after the refcount table moved; autoclear bits cleared. */
static int vc_qcow2_write_header(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u8 *buf = kmalloc(SECTOR_SIZE, GFP_NOIO);
	int r;

	if (!buf)
		return -ENOMEM;
	r = vc_sync_io(vc, REQ_OP_READ, 0, buf, SECTOR_SIZE);
	if (!r) {
		vc_put_be64(buf + 48, a->rt_offset);
		vc_put_be32(buf + 56, a->rt_clusters);
		if (q->h.version >= 3)
			vc_put_be64(buf + 88, 0);
		r = vc_sync_io(vc, REQ_OP_WRITE, 0, buf, SECTOR_SIZE);
	}
	kfree(buf);
	if (!r)
		r = vc_flush_image(vc);
	if (!r) {
		q->h.refcount_table_offset = a->rt_offset;
		q->h.refcount_table_clusters = a->rt_clusters;
		q->h.autoclear_features = 0;
	}
	return r;
}

static int vc_qcow2_commit_reftable(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	size_t bytes = (size_t)a->rt_clusters << q->cluster_bits;
	int r;

	if (!a->rt_moved && !a->clear_autoclear)
		return vc_qcow2_write_sectors(vc, a->rt_offset, a->rt, a->rt_dirty,
					      bytes >> SECTOR_SHIFT);
	if (a->rt_moved) {
		r = vc_sync_io(vc, REQ_OP_WRITE, a->rt_offset >> SECTOR_SHIFT,
			       a->rt, bytes);
		if (!r)
			r = vc_flush_image(vc);
		if (r)
			return r;
	} else {
		r = vc_qcow2_write_sectors(vc, a->rt_offset, a->rt, a->rt_dirty,
					   bytes >> SECTOR_SHIFT);
		if (r)
			return r;
	}
	r = vc_qcow2_write_header(vc);
	if (r)
		return r;
	if (a->rt_moved) {
		vc_qm_remove(q, a->old_rt_offset);
		vc_defer_release(vc, a->old_rt_offset,
				 (u64)a->old_rt_clusters << q->cluster_bits);
	}
	bitmap_zero(a->rt_dirty, bytes >> SECTOR_SHIFT);
	a->rt_moved = false;
	a->clear_autoclear = false;
	return 0;
}

static int vc_qcow2_commit_l2(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_unit *u;
	struct vc_meta_ref ref;
	struct vc_unit *unit;
	int r;
	unsigned long flags;

	list_for_each_entry(unit, vc_dirty_units(vc), dirty) {
		u = container_of(unit, struct vc_qcow2_unit, unit);
		r = vc_meta_get(vc, q->l2, u->l2_offset, 0, &ref);
		if (r)
			return r;
		if (ref.len < q->entry_size ||
		    (u->l2_offset >> SECTOR_SHIFT) >= vc->image_sectors) {
			vc_meta_put(&ref);
			return vc_qcow2_corrupt(vc, u->l2_offset, "L2 entry outside the image");
		}
		vc_publish_begin(vc, flags);
		vc_put_be64(ref.p, u->entry);
		if (q->entry_size == 16)
			vc_put_be64(ref.p + 8, u->bitmap);
		vc_publish_end(vc, flags);
		vc_meta_dirty(&ref, q->entry_size);
		vc_meta_put(&ref);
	}
	return vc_meta_commit(vc, q->l2);
}

static int vc_qcow2_commit_l1(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	struct vc_qcow2_new_l2 *n;
	unsigned long l1i;
	int r;
	unsigned long flags;

	if (xa_empty(&a->new_l2))
		return 0;
	vc_publish_begin(vc, flags);
	xa_for_each(&a->new_l2, l1i, n) {
		q->l1[l1i] = cpu_to_be64(n->table | QCOW2_OFLAG_COPIED);
		set_bit(l1i * 8 / SECTOR_SIZE, a->l1_dirty);
	}
	vc_publish_end(vc, flags);
	r = vc_qcow2_write_sectors(vc, q->h.l1_table_offset, q->l1, a->l1_dirty,
				   a->l1_bytes >> SECTOR_SHIFT);
	if (r)
		return r;
	xa_for_each(&a->new_l2, l1i, n) {
		if (n->old_table) {
			vc_qm_remove(q, n->old_table);
			vc_defer_release(vc, n->old_table, 1ull << q->cluster_bits);
		}
		xa_erase(&a->new_l2, l1i);
		kfree(n);
	}
	return 0;
}

/* The data is durable: refcounts, refcount table, L2, L1, in that order. */
int vc_qcow2_commit(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	struct vc_qcow2_unit *u;
	struct vc_unit *unit;
	unsigned int i;
	int r;

	if (a->rc_dirty) {
		r = vc_meta_commit(vc, a->rc);
		if (r)
			return r;
		a->rc_dirty = false;
	}
	r = vc_qcow2_commit_reftable(vc);
	if (!r)
		r = vc_qcow2_commit_l2(vc);
	if (!r)
		r = vc_qcow2_commit_l1(vc);
	if (r)
		return r;
	/* No entry on disk points at these any more. */
	list_for_each_entry(unit, vc_dirty_units(vc), dirty) {
		u = container_of(unit, struct vc_qcow2_unit, unit);
		for (i = 0; i < u->nr_release; i++)
			vc_defer_release(vc, u->release[i].off, u->release[i].len);
		u->nr_release = 0;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Set up */

/* The last cluster with a refcount: where new data may start. */
static int vc_qcow2_find_end(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	u64 rbi, i, rc, per_block = 1ull << a->rb_bits;
	bool missing;
	u64 byte;
	int r;

	for (rbi = a->rt_entries; rbi--; ) {
		r = vc_rc_locate(vc, rbi << a->rb_bits, &byte, &missing);
		if (r)
			return r;
		if (missing)
			continue;
		for (i = per_block; i--; ) {
			if (fatal_signal_pending(current))
				return -EINTR;
			r = vc_rc_get(vc, (rbi << a->rb_bits) + i, &rc);
			if (r)
				return r;
			if (rc) {
				a->end_index = (rbi << a->rb_bits) + i + 1;
				return 0;
			}
		}
	}
	a->end_index = 0;
	return 0;
}

/*
 * Read (or, after a reload, re-read) the refcount table and where the data
 * ends; allocation starts again from the lowest cluster.
 */
static int vc_qcow2_load_refcounts(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	size_t rt_bytes = (size_t)q->h.refcount_table_clusters << q->cluster_bits;
	unsigned long *dirty;
	__be64 *rt;
	int r;

	if (!q->h.refcount_table_clusters || rt_bytes > VC_QCOW2_MAX_REFTABLE ||
	    (q->h.refcount_table_offset & ((1ull << q->cluster_bits) - 1)) ||
	    !vc_range_ok(q->h.refcount_table_offset, rt_bytes, vc_image_bytes(vc))) {
		vc->ti->error = "qcow2 refcount table is missing, too large or outside the image";
		return -EINVAL;
	}
	r = vc_read_table(vc, q->h.refcount_table_offset, rt_bytes, (void **)&rt,
			  "qcow2 refcount table");
	if (r)
		return r;
	dirty = bitmap_zalloc(rt_bytes >> SECTOR_SHIFT, GFP_KERNEL);
	if (!dirty) {
		kvfree(rt);
		return -ENOMEM;
	}
	kvfree(a->rt);
	bitmap_free(a->rt_dirty);
	a->rt = rt;
	a->rt_dirty = dirty;
	a->rt_offset = q->h.refcount_table_offset;
	a->rt_clusters = q->h.refcount_table_clusters;
	a->rt_entries = rt_bytes / 8;
	a->rt_moved = false;
	a->clear_autoclear = q->h.version >= 3 && q->h.autoclear_features;
	a->free_index = 0;
	return vc_qcow2_find_end(vc);
}

/* preresume: a table that was live until now may have changed all this. */
int vc_qcow2_reload_writable(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;

	if (WARN_ON_ONCE(!xa_empty(&a->new_l2)))
		return -EIO;
	dm_bufio_forget_buffers(a->rc, 0, vc->image_sectors);
	bitmap_zero(a->l1_dirty, a->l1_bytes >> SECTOR_SHIFT);
	return vc_qcow2_load_refcounts(vc) ?: vc_qcow2_map_metadata(vc);
}

int vc_qcow2_open_writable(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a;
	int r;

	if (q->h.crypt_method == QCOW2_CRYPT_AES) {
		vc->ti->error =
			"legacy qcow2 AES encryption cannot be written: load the table read-only";
		return -EROFS;
	}
	if (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) {
		vc->ti->error =
			"qcow2 dirty bit set: run qemu-img check -r all, or load it read-only";
		return -EROFS;
	}
	if ((1u << q->cluster_bits) < vc->cipher.sector_size) {
		vc->ti->error =
			"qcow2 clusters smaller than sector_size: load the table read-only";
		return -EROFS;
	}
	if (!q->l1_whole_sectors) {
		vc->ti->error = "the qcow2 L1 table ends inside a sector: load the table read-only";
		return -EROFS;
	}
	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	q->alloc = a;
	xa_init(&a->new_l2);
	mt_init_flags(&a->meta, MT_FLAGS_USE_RCU);
	a->rb_bits = qcow2_refblock_bits(&q->h);
	a->max_clusters = vc_image_bytes(vc) >> q->cluster_bits;
	a->l1_bytes = round_up(q->l1_entries * 8, SECTOR_SIZE);
	a->l1_dirty = bitmap_zalloc(a->l1_bytes >> SECTOR_SHIFT, GFP_KERNEL);
	a->rc = vc_meta_create(vc);
	if (!a->l1_dirty || IS_ERR(a->rc)) {
		if (IS_ERR(a->rc))
			a->rc = NULL;
		return -ENOMEM;
	}
	r = vc_qcow2_load_refcounts(vc);
	if (r)
		return r;
	r = vc_qcow2_map_metadata(vc);
	if (r) {
		if (r != -ENOMEM && r != -EINTR)
			vc->ti->error =
				"damaged qcow2 metadata (see dmesg): load it read-only";
		return r;
	}
	vc->mem_bytes += sizeof(*a) + ((size_t)a->rt_clusters << q->cluster_bits);
	vc->discard_granularity = 1u << q->cluster_bits;
	return vc_write_start(vc, vc_cluster_sectors(q), vc_cluster_sectors(q));
}

void vc_qcow2_close_writable(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_qcow2_alloc *a = q->alloc;
	struct vc_qcow2_new_l2 *n;
	unsigned long i;

	if (!a)
		return;
	xa_for_each(&a->new_l2, i, n)
		kfree(n);
	xa_destroy(&a->new_l2);
	mtree_destroy(&a->meta);
	vc_meta_destroy(a->rc);
	kvfree(a->rt);
	bitmap_free(a->rt_dirty);
	bitmap_free(a->l1_dirty);
	kfree(a);
	q->alloc = NULL;
}

sector_t vc_qcow2_data_end(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;

	if (!q->alloc)
		return vc->image_sectors;
	return READ_ONCE(q->alloc->end_index) << (q->cluster_bits - SECTOR_SHIFT);
}

