// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 images for dm-vhdcrypt: versions 2 and 3, clusters of 512 B to
 * 2 MiB, zero clusters, compressed clusters (zlib, zstd) and extended L2
 * entries (32 subclusters per cluster).
 *
 * A virtual offset is translated through the active L1 table to an L2 table
 * and its entry. Internal snapshots have their own L1 tables, which are not
 * looked at.
 */
#include <linux/slab.h>

#include <vhdcrypt/qcow2.h>

#include "vhdcrypt.h"

struct vc_qcow2 {
	struct qcow2_header h;
	u32 l2_bits;		/* log2(entries per L2 table) */
	u32 sc_bits;		/* log2(subcluster size in bytes) */
	u32 entry_size;		/* bytes per L2 entry: 8 or 16 */
	u64 image_limit;	/* bytes: tables must end before this */
	struct vc_decompressor *dec;
};

static int vc_qcow2_open(struct vc_target *vc)
{
	struct vc_qcow2 *q;
	const char *why;
	u8 *buf;
	int r;

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	buf = kmalloc(SECTOR_SIZE, GFP_KERNEL);
	if (!q || !buf) {
		vc->ti->error = "cannot allocate qcow2 state";
		r = -ENOMEM;
		goto out;
	}
	vc->fmt_data = q;

	if (vc->image_sectors < 1) {
		vc->ti->error = "image is too small for qcow2";
		r = -EINVAL;
		goto out;
	}
	r = vc_read_image(vc, 0, buf, SECTOR_SIZE);
	if (r) {
		vc->ti->error = "cannot read the qcow2 header";
		goto out;
	}
	r = qcow2_header_decode(buf, SECTOR_SIZE, &q->h, &why);
	if (r) {
		vc_set_error(vc, why);
		goto out;
	}
	/* QEMU files may end inside their last cluster: it reads as zeros. */
	q->image_limit = round_up(vc_image_bytes(vc), qcow2_cluster_size(&q->h));
	r = qcow2_layout_check(&q->h, q->image_limit, &why);
	if (r) {
		vc_set_error(vc, why);
		goto out;
	}
	if (q->h.crypt_method != QCOW2_CRYPT_NONE && !vc_encrypted(&vc->cipher)) {
		vc->ti->error = "qcow2 image is encrypted: the table needs its cipher and key";
		r = -EINVAL;
		goto out;
	}

	q->l2_bits = qcow2_l2_bits(&q->h);
	q->sc_bits = qcow2_subcluster_bits(&q->h);
	q->entry_size = qcow2_l2_entry_size(&q->h);
	vc->virtual_sectors = q->h.size >> SECTOR_SHIFT;

	q->dec = vc_decompressor_create(q->h.compression_type,
					qcow2_cluster_size(&q->h));
	if (IS_ERR(q->dec)) {
		r = PTR_ERR(q->dec);
		q->dec = NULL;
		vc->ti->error = "cannot allocate the decompressor";
		goto out;
	}
	vc->mem_bytes += vc_decompressor_bytes(q->dec);

	r = vc_meta_create(vc);
	if (r) {
		vc->ti->error = "cannot create the metadata cache";
		goto out;
	}
	vc_meta_prefetch(vc, q->h.l1_table_offset, 8ull * q->h.l1_size);
out:
	kfree(buf);
	return r;
}

static void vc_qcow2_close(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;

	if (q)
		vc_decompressor_destroy(q->dec);
	kfree(q);
	vc->fmt_data = NULL;
}

static int vc_qcow2_read_u64(struct vc_target *vc, u64 off, bool may_block,
			     u64 *val)
{
	struct dm_buffer *b;
	const u8 *p;
	int r;

	r = vc_meta_get(vc, off, may_block, &b, &p);
	if (r)
		return r;
	*val = vc_get_be64(p);
	vc_meta_put(b);
	return 0;
}

/* Read the L2 entry (and extended bitmap) for virtual byte @vbyte. */
static int vc_qcow2_l2_entry(struct vc_target *vc, struct vc_qcow2 *q,
			     u64 vbyte, bool may_block, u64 *entry,
			     u64 *bitmap, bool *no_l2)
{
	u32 cb = q->h.cluster_bits;
	u64 l1_index = vbyte >> (cb + q->l2_bits);
	u64 l2_index = (vbyte >> cb) & ((1ull << q->l2_bits) - 1);
	u64 l1e, l2_offset, pos;
	const char *why;
	int r;

	r = vc_qcow2_read_u64(vc, q->h.l1_table_offset + l1_index * 8,
			      may_block, &l1e);
	if (r)
		return r;
	if (qcow2_l1_decode(&q->h, l1e, &l2_offset, &why)) {
		vc_err_limit(vc, "L1 entry %llu: %s", l1_index, why);
		return -EIO;
	}
	*no_l2 = !l2_offset;
	if (*no_l2)
		return 0;
	if (!vc_range_ok(l2_offset, qcow2_cluster_size(&q->h), q->image_limit)) {
		vc_err_limit(vc, "L2 table at %llu lies outside the image",
			     l2_offset);
		return -EIO;
	}

	pos = l2_offset + l2_index * q->entry_size;
	r = vc_qcow2_read_u64(vc, pos, may_block, entry);
	if (r)
		return r;
	*bitmap = 0;
	if (q->entry_size == 16)
		r = vc_qcow2_read_u64(vc, pos + 8, may_block, bitmap);
	return r;
}

static int vc_qcow2_map(struct vc_target *vc, sector_t vsec, sector_t nr,
			bool may_block, struct vc_extent *ext)
{
	struct vc_qcow2 *q = vc->fmt_data;
	u32 cb = q->h.cluster_bits;
	u64 vbyte = (u64)vsec << SECTOR_SHIFT;
	u64 cluster_size = qcow2_cluster_size(&q->h);
	u64 entry, bitmap;
	struct qcow2_map m;
	const char *why;
	bool no_l2;
	u32 sc;
	int r;

	r = vc_qcow2_l2_entry(vc, q, vbyte, may_block, &entry, &bitmap, &no_l2);
	if (r)
		return r;

	if (no_l2) {
		/* The whole range of this L1 entry is unallocated. */
		u64 span = 1ull << (cb + q->l2_bits);

		ext->kind = VC_EXT_LOWER;
		ext->len = min_t(u64, nr, (span - (vbyte & (span - 1))) >>
				 SECTOR_SHIFT);
		return 0;
	}

	sc = (vbyte & (cluster_size - 1)) >> q->sc_bits;
	if (qcow2_l2_decode(&q->h, entry, bitmap, sc, &m, &why)) {
		vc_err_limit(vc, "L2 entry for offset %llu: %s", vbyte, why);
		return -EIO;
	}

	if (m.kind == QCOW2_COMPRESSED) {
		ext->kind = VC_EXT_COMPRESSED;
		ext->len = min_t(u64, nr, (cluster_size - (vbyte & (cluster_size - 1))) >>
				 SECTOR_SHIFT);
		ext->comp_offset = m.host_offset;
		ext->comp_bytes = m.compressed_bytes;
		ext->comp_skip = vbyte & (cluster_size - 1);
		return 0;
	}

	/* One subcluster (a cluster without extended L2 entries) at a time. */
	ext->len = min_t(u64, nr, ((1ull << q->sc_bits) -
				   (vbyte & ((1ull << q->sc_bits) - 1))) >>
			 SECTOR_SHIFT);
	switch (m.kind) {
	case QCOW2_DATA:
		if (!vc_range_ok(m.host_offset, 1ull << q->sc_bits,
				 q->image_limit)) {
			vc_err_limit(vc, "data cluster at %llu lies outside the image",
				     m.host_offset);
			return -EIO;
		}
		ext->kind = VC_EXT_DATA;
		ext->host_sector = (m.host_offset +
				    (vbyte & ((1ull << q->sc_bits) - 1))) >>
				   SECTOR_SHIFT;
		break;
	case QCOW2_ZERO:
		ext->kind = VC_EXT_ZERO;
		break;
	default:
		ext->kind = VC_EXT_LOWER;
		break;
	}
	return 0;
}

static void vc_qcow2_status(struct vc_target *vc, char *result,
			    unsigned int maxlen, unsigned int *szp)
{
	struct vc_qcow2 *q = vc->fmt_data;
	unsigned int sz = *szp;

	DMEMIT(" qcow2_version:%u cluster_size:%llu", q->h.version,
	       qcow2_cluster_size(&q->h));
	*szp = sz;
}

const struct vc_format vc_format_qcow2 = {
	.name = "qcow2",
	.open = vc_qcow2_open,
	.close = vc_qcow2_close,
	.map = vc_qcow2_map,
	.status = vc_qcow2_status,
};

struct vc_decompressor *vc_qcow2_decompressor(struct vc_target *vc)
{
	struct vc_qcow2 *q = vc->fmt_data;

	return q->dec;
}
