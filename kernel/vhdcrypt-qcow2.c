// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 images for dm-vhdcrypt: versions 2 and 3, clusters of 512 B to
 * 2 MiB, zero clusters, compressed clusters (zlib, zstd) and extended L2
 * entries (32 subclusters per cluster).
 *
 * A virtual offset is translated through the active L1 table (kept in
 * memory, as QEMU does) to an L2 table (cached) and its entry. Internal
 * snapshots have their own L1 tables, which are not looked at. A lookup
 * merges the following entries of the same cached L2 block while they map
 * the same way, so a bio is not cut at every cluster.
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "vhdcrypt-qcow2.h"

static u64 vc_qcow2_l1(const struct vc_qcow2 *q, u64 index)
{
	return be64_to_cpu(READ_ONCE(q->l1[index]));
}

/* Read (or re-read) the header and the active L1 table. */
static int vc_qcow2_load(struct vc_target *vc, struct vc_qcow2 *q)
{
	struct qcow2_header h;
	const char *why;
	size_t bytes;
	__be64 *l1;
	u64 entries;
	bool whole;
	u8 *buf;
	int r;

	buf = kmalloc(SECTOR_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	r = vc_sync_io(vc, REQ_OP_READ, 0, buf, SECTOR_SIZE);
	if (r) {
		vc->ti->error = "cannot read the qcow2 header";
		goto out;
	}
	r = qcow2_header_decode(buf, SECTOR_SIZE, &h, &why);
	if (r) {
		vc_set_error(vc, why);
		goto out;
	}
	/* QEMU files may end inside their last cluster: it reads as zeros. */
	q->image_limit = round_up(vc_image_bytes(vc), qcow2_cluster_size(&h));
	r = qcow2_layout_check(&h, q->image_limit, &why);
	if (r) {
		vc_set_error(vc, why);
		goto out;
	}
	if (q->l1 && (h.size != q->h.size ||
		      h.cluster_bits != q->h.cluster_bits ||
		      h.incompatible_features != q->h.incompatible_features)) {
		vc->ti->error = "the qcow2 header changed under the table";
		r = -EINVAL;
		goto out;
	}

	/*
	 * Only the entries the virtual disk needs, whatever l1_size says; in
	 * whole sectors if they belong to the table, for a writable table.
	 */
	entries = qcow2_l1_entries_needed(&h);
	/* The layout check allowed the device's last cluster: read inside it. */
	if (!vc_range_ok(h.l1_table_offset, entries * 8, vc_image_bytes(vc))) {
		vc->ti->error = "qcow2 L1 table lies outside the image";
		r = -EINVAL;
		goto out;
	}
	bytes = round_up(entries * 8, SECTOR_SIZE);
	whole = bytes <= round_up(8ull * h.l1_size, 1ull << h.cluster_bits) &&
		vc_range_ok(h.l1_table_offset, bytes, vc_image_bytes(vc));
	if (!whole)
		bytes = entries * 8;
	r = vc_read_table(vc, h.l1_table_offset, bytes, (void **)&l1,
			  "qcow2 L1 table");
	if (r) {
		vc->ti->error = r == -EINTR ? "interrupted" :
					      "cannot read the qcow2 L1 table";
		goto out;
	}
	/* In ctr or preresume: no lookup runs meanwhile. */
	if (q->l1) {
		memcpy(q->l1, l1, min(bytes, q->l1_bytes));
	} else {
		swap(q->l1, l1);
		q->l1_entries = entries;
		q->l1_bytes = bytes;
		q->l1_whole_sectors = whole;
	}
	q->h = h;
	kvfree(l1);
out:
	kfree(buf);
	return r;
}

static int vc_qcow2_open(struct vc_target *vc)
{
	struct vc_qcow2 *q;
	int r;

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q) {
		vc->ti->error = "cannot allocate qcow2 state";
		return -ENOMEM;
	}
	vc->fmt_data = q;
	mutex_init(&q->dec_lock);

	if (vc->image_sectors < 1) {
		vc->ti->error = "image is too small for qcow2";
		return -EINVAL;
	}
	r = vc_qcow2_load(vc, q);
	if (r)
		return r;
	if (q->h.crypt_method != QCOW2_CRYPT_NONE && !vc_encrypted(&vc->cipher)) {
		vc->ti->error = "qcow2 image is encrypted: the table needs its cipher and key";
		return -EINVAL;
	}

	q->cluster_bits = q->h.cluster_bits;
	q->l2_bits = qcow2_l2_bits(&q->h);
	q->sc_bits = qcow2_subcluster_bits(&q->h);
	q->entry_size = qcow2_l2_entry_size(&q->h);
	vc->virtual_sectors = q->h.size >> SECTOR_SHIFT;
	vc->mem_bytes += sizeof(*q) + q->l1_entries * 8;

	q->l2 = vc_meta_create(vc);
	if (IS_ERR(q->l2)) {
		r = PTR_ERR(q->l2);
		q->l2 = NULL;
		vc->ti->error = "cannot create the metadata cache";
	}
	return r;
}

static int vc_qcow2_reload(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	int r;

	r = vc_qcow2_load(vc, q);
	if (r)
		return r;
	dm_bufio_forget_buffers(q->l2, 0, vc->image_sectors);
	if (q->alloc) {
		r = vc_qcow2_reload_writable(vc);
		if (r)
			return r;
	}
	mutex_lock(&q->dec_lock);
	if (q->dec)
		vc_decompressor_invalidate(q->dec);
	mutex_unlock(&q->dec_lock);
	return 0;
}

static void vc_qcow2_close(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;

	if (!q)
		return;
	vc_qcow2_close_writable(vc);
	vc_meta_destroy(q->l2);
	vc_decompressor_destroy(q->dec);
	kvfree(q->l1);
	kfree(q);
	vc->fmt_data = NULL;
}

/*
 * The mapping of virtual byte @vbyte, from its cluster's L2 entry and
 * extended bitmap: how it maps, and for how many bytes (up to the end of
 * the cluster) the mapping goes on the same way.
 */
static int vc_qcow2_decode(struct vc_target *vc, struct vc_qcow2 *q,
			   u64 vbyte, u64 entry, u64 bitmap,
			   struct vc_extent *ext, u64 *bytes)
{
	u64 cluster_size = 1ull << q->cluster_bits;
	u64 in_cluster = vbyte & (cluster_size - 1);
	u32 sc = in_cluster >> q->sc_bits;
	struct qcow2_map m, next;
	const char *why;
	u32 i;

	if (qcow2_l2_decode(&q->h, entry, bitmap, sc, &m, &why)) {
		vc_err_limit(vc, "L2 entry for offset %llu: %s", vbyte, why);
		return -EIO;
	}

	ext->flags = 0;
	*bytes = cluster_size - in_cluster;
	switch (m.kind) {
	case QCOW2_COMPRESSED:
		ext->kind = VC_EXT_COMPRESSED;
		ext->comp_offset = m.host_offset;
		ext->comp_bytes = m.compressed_bytes;
		ext->comp_skip = in_cluster;
		return 0;
	case QCOW2_DATA:
		if (!vc_range_ok(m.host_offset, 1ull << q->sc_bits,
				 q->image_limit)) {
			vc_err_limit(vc, "data cluster at %llu lies outside the image",
				     m.host_offset);
			return -EIO;
		}
		ext->kind = VC_EXT_DATA;
		ext->host_sector = (m.host_offset +
				    (in_cluster & ((1ull << q->sc_bits) - 1))) >>
				   SECTOR_SHIFT;
		if (m.copied && !vc_qcow2_in_metadata(q, m.host_offset))
			ext->flags = VC_EXT_IN_PLACE;
		break;
	case QCOW2_ZERO:
		ext->kind = VC_EXT_ZERO;
		break;
	default:
		ext->kind = VC_EXT_LOWER;
		break;
	}
	if (!qcow2_extended_l2(&q->h))
		return 0;

	/* Subclusters after @sc in the same state. */
	*bytes = ((u64)(sc + 1) << q->sc_bits) - in_cluster;
	for (i = sc + 1; i < QCOW2_SUBCLUSTERS; i++) {
		if (qcow2_l2_decode(&q->h, entry, bitmap, i, &next, &why) ||
		    next.kind != m.kind)
			break;
		*bytes += 1ull << q->sc_bits;
	}
	return 0;
}

/* The L2 entry (and extended bitmap) of the cluster of @vbyte. */
struct vc_qcow2_l2pos {
	u64 offset;		/* bytes: the entry in the image, 0: no L2 table */
	bool l2_copied;		/* the L2 table has refcount 1 */
};

static int vc_qcow2_l2pos(struct vc_target *vc, struct vc_qcow2 *q, u64 vbyte,
			  struct vc_qcow2_l2pos *pos)
{
	u64 l1_index = vbyte >> (q->cluster_bits + q->l2_bits);
	u64 l2_index = (vbyte >> q->cluster_bits) & ((1ull << q->l2_bits) - 1);
	u64 l1e, l2_offset;
	const char *why;

	if (WARN_ON_ONCE(l1_index >= q->l1_entries))
		return -EIO;
	l1e = vc_qcow2_l1(q, l1_index);
	if (qcow2_l1_decode(&q->h, l1e, &l2_offset, &why)) {
		vc_err_limit(vc, "L1 entry %llu: %s", l1_index, why);
		return -EIO;
	}
	pos->offset = 0;
	pos->l2_copied = qcow2_entry_copied(l1e);
	if (!l2_offset)
		return 0;
	if (!vc_range_ok(l2_offset, 1ull << q->cluster_bits, q->image_limit)) {
		vc_err_limit(vc, "L2 table at %llu lies outside the image",
			     l2_offset);
		return -EIO;
	}
	pos->offset = l2_offset + l2_index * q->entry_size;
	return 0;
}

static int vc_qcow2_map(struct vc_target *vc, sector_t vsec, sector_t nr,
			unsigned int flags, struct vc_extent *ext)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u64 vbyte = (u64)vsec << SECTOR_SHIFT, want = (u64)nr << SECTOR_SHIFT;
	u64 cluster_size = 1ull << q->cluster_bits;
	struct vc_meta_ref ref = { };
	struct vc_qcow2_l2pos pos;
	u64 entry, bitmap = 0, bytes;
	unsigned int i;
	int r;

	if (vc_qcow2_unit_mapping(vc, vbyte >> q->cluster_bits, &entry,
				  &bitmap)) {
		/* A mapping that changed since the last commit. */
		r = vc_qcow2_decode(vc, q, vbyte, entry, bitmap, ext, &bytes);
		if (r)
			return r;
		ext->flags |= VC_EXT_UNCOMMITTED;
		ext->len = min(bytes, want) >> SECTOR_SHIFT;
		return 0;
	}

	r = vc_qcow2_l2pos(vc, q, vbyte, &pos);
	if (r)
		return r;
	if (!pos.offset) {
		/* The whole range of this L1 entry is unallocated... */
		u64 span = 1ull << (q->cluster_bits + q->l2_bits);

		ext->kind = VC_EXT_LOWER;
		ext->flags = 0;
		bytes = span - (vbyte & (span - 1));
		/* ...unless new clusters in it wait for their L2 table. */
		if (vc->w)
			bytes = min(bytes, cluster_size - (vbyte & (cluster_size - 1)));
		ext->len = min(bytes, want) >> SECTOR_SHIFT;
		return 0;
	}

	/* Entry and bitmap under one hold: they change together. */
	r = vc_meta_get(vc, q->l2, pos.offset, flags, &ref);
	if (r)
		return r;
	entry = get_unaligned_be64(ref.p);
	if (q->entry_size == 16)
		bitmap = get_unaligned_be64(ref.p + 8);
	r = vc_qcow2_decode(vc, q, vbyte, entry, bitmap, ext, &bytes);
	if (r)
		goto out;

	/* Following clusters in this cached block that map the same way. */
	for (i = q->entry_size; ext->kind != VC_EXT_COMPRESSED &&
	     bytes < want && i + q->entry_size <= ref.len &&
	     !((vbyte + bytes) & (cluster_size - 1)); i += q->entry_size) {
		struct vc_extent next;
		u64 next_bytes;

		if (vc_unit_exists(vc, (vbyte + bytes) >> q->cluster_bits))
			break;
		entry = get_unaligned_be64(ref.p + i);
		bitmap = q->entry_size == 16 ?
			 get_unaligned_be64(ref.p + i + 8) : 0;
		if (vc_qcow2_decode(vc, q, vbyte + bytes, entry, bitmap, &next,
				    &next_bytes) ||
		    next.kind != ext->kind || next.flags != ext->flags ||
		    (ext->kind == VC_EXT_DATA &&
		     next.host_sector != ext->host_sector +
					 (bytes >> SECTOR_SHIFT)))
			break;
		bytes += next_bytes;
	}
	ext->len = min(bytes, want) >> SECTOR_SHIFT;
out:
	vc_meta_put(&ref);
	return r;
}

/* Compressed clusters: inflate the whole cluster, copy the part wanted. */
struct vc_qcow2_copy {
	struct bio *bio;
	struct bvec_iter iter;
	u32 skip;		/* bytes into the cluster */
};

static int vc_qcow2_copy_out(void *ctx, const u8 *cluster)
{
	struct vc_qcow2_copy *cp = ctx;
	struct bvec_iter it;
	struct bio_vec bv;
	u32 pos = cp->skip;

	__bio_for_each_segment(bv, cp->bio, it, cp->iter) {
		memcpy_to_bvec(&bv, cluster + pos);
		pos += bv.bv_len;
	}
	return 0;
}

struct vc_decompressor *vc_qcow2_decompressor(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;
	struct vc_decompressor *d;

	/* Allocated at the first compressed cluster: most images have none. */
	mutex_lock(&q->dec_lock);
	if (!q->dec) {
		d = vc_decompressor_create(q->h.compression_type,
					   1u << q->cluster_bits);
		if (!IS_ERR(d)) {
			q->dec = d;
			vc->mem_bytes += vc_decompressor_bytes(d);
		}
	}
	d = q->dec;
	mutex_unlock(&q->dec_lock);
	return d;
}

static int vc_qcow2_read_compressed(struct vc_target *vc, struct bio *bio,
				    struct bvec_iter iter,
				    const struct vc_extent *ext)
{
	struct vc_qcow2_copy cp = { .bio = bio, .iter = iter,
				    .skip = ext->comp_skip };
	struct vc_decompressor *d = vc_qcow2_decompressor(vc);

	if (!d) {
		vc_err_limit(vc, "no memory to decompress a cluster");
		return -ENOMEM;
	}
	if (WARN_ON_ONCE(ext->comp_skip + iter.bi_size >
			 (1u << ((struct vc_qcow2 *)vc->fmt_data)->cluster_bits)))
		return -EIO;
	return vc_decompress(vc, d, ext, vc_qcow2_copy_out, &cp);
}

static void vc_qcow2_status(struct vc_target *vc, char *result,
			    unsigned int maxlen, unsigned int *szp)
{
	struct vc_qcow2 *q = vc->fmt_data;
	unsigned int sz = *szp;

	DMEMIT(" qcow2_version:%u cluster_size:%u", q->h.version,
	       1u << q->cluster_bits);
	*szp = sz;
}

const struct vc_format vc_format_qcow2 = {
	.name = "qcow2",
	.open = vc_qcow2_open,
	.reload = vc_qcow2_reload,
	.close = vc_qcow2_close,
	.map = vc_qcow2_map,
	.read_compressed = vc_qcow2_read_compressed,
	.status = vc_qcow2_status,
	.open_writable = vc_qcow2_open_writable,
	.write = vc_qcow2_write,
	.commit = vc_qcow2_commit,
	.release = vc_qcow2_release,
	.data_end = vc_qcow2_data_end,
};
