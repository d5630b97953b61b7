// SPDX-License-Identifier: GPL-2.0
/*
 * Compressed qcow2 clusters for dm-vhdcrypt (zlib raw deflate, or zstd when
 * the header's compression_type says so).
 *
 * A compressed cluster is read and inflated whole in the worker, and the
 * last one is kept: sequential reads of a cluster in small bios inflate it
 * once. Buffers and workspaces are allocated at table load, so the I/O path
 * allocates nothing.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include <vhdcrypt/qcow2.h>

#include "vhdcrypt.h"

/* zstd frames from QEMU use a window no larger than the cluster. */
#define VC_ZSTD_MIN_WINDOW	BIT(20)

struct vc_decompressor {
	struct mutex lock;		/* protects everything below */
	unsigned int type;		/* QCOW2_COMPRESSION_* */
	unsigned int cluster_size;	/* bytes */
	size_t in_size;			/* bytes */
	size_t workspace_size;		/* bytes */
	u8 *in;				/* compressed sectors as read */
	u8 *out;			/* one inflated cluster */
	bool cached;			/* out holds the cluster at cached_offset */
	u64 cached_offset;		/* bytes: host offset of its stream */
	void *workspace;
	struct z_stream_s zs;
	zstd_dstream *zstd;
};

struct vc_decompressor *vc_decompressor_create(unsigned int type,
					       unsigned int cluster_size)
{
	struct vc_decompressor *d;
	size_t window;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	mutex_init(&d->lock);
	d->type = type;
	d->cluster_size = cluster_size;
	/* The stream may start anywhere in its first sector. */
	d->in_size = cluster_size + 2 * SECTOR_SIZE;
	d->in = kvmalloc(d->in_size, GFP_KERNEL);
	d->out = kvmalloc(cluster_size, GFP_KERNEL);
	if (!d->in || !d->out)
		goto nomem;

	if (type == QCOW2_COMPRESSION_ZSTD) {
		window = max_t(size_t, cluster_size, VC_ZSTD_MIN_WINDOW);
		d->workspace_size = zstd_dstream_workspace_bound(window);
		d->workspace = kvmalloc(d->workspace_size, GFP_KERNEL);
		if (!d->workspace)
			goto nomem;
		d->zstd = zstd_init_dstream(window, d->workspace,
					    d->workspace_size);
		if (!d->zstd)
			goto nomem;
	} else {
		d->workspace_size = zlib_inflate_workspacesize();
		d->workspace = kvmalloc(d->workspace_size, GFP_KERNEL);
		if (!d->workspace)
			goto nomem;
		d->zs.workspace = d->workspace;
	}
	return d;

nomem:
	vc_decompressor_destroy(d);
	return ERR_PTR(-ENOMEM);
}

void vc_decompressor_destroy(struct vc_decompressor *d)
{
	if (!d)
		return;
	kvfree(d->workspace);
	kvfree(d->out);
	kvfree(d->in);
	kfree(d);
}

size_t vc_decompressor_bytes(const struct vc_decompressor *d)
{
	return sizeof(*d) + d->in_size + d->cluster_size + d->workspace_size;
}

/* Inflate raw deflate data until a whole cluster came out. */
static int vc_inflate_zlib(struct vc_decompressor *d, const u8 *src,
			   size_t len)
{
	int r;

	/* Negative window bits: raw deflate, no zlib header (as QEMU). */
	if (zlib_inflateInit2(&d->zs, -MAX_WBITS) != Z_OK)
		return -EIO;
	d->zs.next_in = src;
	d->zs.avail_in = len;
	d->zs.next_out = d->out;
	d->zs.avail_out = d->cluster_size;
	r = zlib_inflate(&d->zs, Z_FINISH);
	zlib_inflateEnd(&d->zs);
	/* Trailing bytes after a full cluster are not an error. */
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR) && !d->zs.avail_out)
		return 0;
	return -EIO;
}

static int vc_inflate_zstd(struct vc_decompressor *d, const u8 *src,
			   size_t len)
{
	zstd_in_buffer in = { .src = src, .size = len, .pos = 0 };
	zstd_out_buffer out = { .dst = d->out, .size = d->cluster_size,
				.pos = 0 };
	size_t r;

	if (zstd_is_error(zstd_reset_dstream(d->zstd)))
		return -EIO;
	while (out.pos < out.size) {
		size_t in_before = in.pos, out_before = out.pos;

		r = zstd_decompress_stream(d->zstd, &out, &in);
		if (zstd_is_error(r))
			return -EIO;
		if (in.pos == in_before && out.pos == out_before)
			return -EIO;	/* input ended before the cluster */
	}
	return 0;
}

static int vc_load_cluster(struct vc_target *vc, struct vc_decompressor *d,
			   const struct vc_extent *ext)
{
	u64 start = ext->comp_offset & ~(u64)(SECTOR_SIZE - 1);
	u32 head = ext->comp_offset - start;
	u64 len = round_up(head + ext->comp_bytes, SECTOR_SIZE);
	int r;

	if (d->cached && d->cached_offset == ext->comp_offset)
		return 0;
	d->cached = false;

	if (start >= vc_image_bytes(vc)) {
		vc_err_limit(vc, "compressed cluster at %llu lies outside the image",
			     ext->comp_offset);
		return -EIO;
	}
	/* QEMU reads what exists of a stream that runs past the end. */
	len = min(len, vc_image_bytes(vc) - start);
	if (len > d->in_size) {
		vc_err_limit(vc, "compressed cluster at %llu is larger than a cluster",
			     ext->comp_offset);
		return -EIO;
	}
	r = vc_read_image(vc, start >> SECTOR_SHIFT, d->in, len);
	if (r)
		return r;

	if (d->type == QCOW2_COMPRESSION_ZSTD)
		r = vc_inflate_zstd(d, d->in + head, len - head);
	else
		r = vc_inflate_zlib(d, d->in + head, len - head);
	if (r) {
		vc_err_limit(vc, "compressed cluster at %llu does not decompress",
			     ext->comp_offset);
		return r;
	}
	d->cached = true;
	d->cached_offset = ext->comp_offset;
	return 0;
}

int vc_read_compressed(struct vc_target *vc, struct vc_decompressor *d,
		       struct bio *bio, const struct vc_extent *ext)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	u32 pos = ext->comp_skip;
	int r;

	mutex_lock(&d->lock);
	r = vc_load_cluster(vc, d, ext);
	if (!r) {
		bio_for_each_segment(bv, bio, iter) {
			memcpy_to_bvec(&bv, d->out + pos);
			pos += bv.bv_len;
		}
	}
	mutex_unlock(&d->lock);
	return r;
}
