// SPDX-License-Identifier: GPL-2.0
/*
 * Compressed qcow2 clusters for dm-vhdcrypt (zlib raw deflate, or zstd when
 * the header's compression_type says so).
 *
 * A compressed cluster is read and inflated whole. A few contexts (buffers
 * and a workspace each) serve concurrent readers; each keeps the last
 * cluster it inflated, so sequential reads of a cluster in small bios
 * inflate it once. The first context is allocated at the first compressed
 * cluster, more while readers would otherwise wait, up to one per CPU (at
 * most VC_MAX_DCTX).
 */
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include <vhdcrypt/qcow2.h>

#include "vhdcrypt.h"

/* zstd frames from QEMU use a window no larger than the cluster. */
#define VC_ZSTD_MIN_WINDOW	BIT(20)
#define VC_MAX_DCTX		4

struct vc_dctx {
	struct list_head list;		/* on idle */
	u8 *in;				/* compressed sectors as read */
	u8 *out;			/* one inflated cluster */
	void *workspace;
	struct z_stream_s zs;
	zstd_dstream *zstd;
	bool cached;			/* out holds the cluster at cached_offset */
	u64 cached_offset;		/* bytes: host offset of its stream */
	unsigned int cached_gen;	/* d->gen when it was inflated */
};

struct vc_decompressor {
	unsigned int type;		/* QCOW2_COMPRESSION_* */
	unsigned int cluster_size;	/* bytes */
	size_t in_size;			/* bytes */
	size_t workspace_size;		/* bytes */
	size_t window;			/* zstd */
	spinlock_t lock;		/* idle, nr */
	struct list_head idle;
	unsigned int nr, max;		/* contexts allocated, at most */
	wait_queue_head_t wait;		/* for an idle context */
	atomic_t gen;			/* bumped to forget cached clusters */
};

static void vc_dctx_free(struct vc_dctx *x)
{
	kvfree(x->workspace);
	kvfree(x->out);
	kvfree(x->in);
	kfree(x);
}

/* On the I/O path: GFP_KERNEL scoped to NOIO, so vmalloc works too. */
static struct vc_dctx *vc_dctx_alloc(struct vc_decompressor *d)
{
	unsigned int noio = memalloc_noio_save();
	struct vc_dctx *x;

	x = kzalloc(sizeof(*x), GFP_KERNEL | __GFP_NOWARN);
	if (!x)
		goto out;
	x->in = kvmalloc(d->in_size, GFP_KERNEL | __GFP_NOWARN);
	x->out = kvmalloc(d->cluster_size, GFP_KERNEL | __GFP_NOWARN);
	x->workspace = kvmalloc(d->workspace_size, GFP_KERNEL | __GFP_NOWARN);
	if (!x->in || !x->out || !x->workspace)
		goto fail;
	if (d->type == QCOW2_COMPRESSION_ZSTD) {
		x->zstd = zstd_init_dstream(d->window, x->workspace,
					    d->workspace_size);
		if (!x->zstd)
			goto fail;
	} else {
		x->zs.workspace = x->workspace;
	}
	goto out;
fail:
	vc_dctx_free(x);
	x = NULL;
out:
	memalloc_noio_restore(noio);
	return x;
}

struct vc_decompressor *vc_decompressor_create(unsigned int type,
					       unsigned int cluster_size)
{
	struct vc_decompressor *d;
	struct vc_dctx *x;

	d = kzalloc(sizeof(*d), GFP_NOIO);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->type = type;
	d->cluster_size = cluster_size;
	/* The stream may start anywhere in its first sector. */
	d->in_size = cluster_size + 2 * SECTOR_SIZE;
	if (type == QCOW2_COMPRESSION_ZSTD) {
		d->window = max_t(size_t, cluster_size, VC_ZSTD_MIN_WINDOW);
		d->workspace_size = zstd_dstream_workspace_bound(d->window);
	} else {
		d->workspace_size = zlib_inflate_workspacesize();
	}
	spin_lock_init(&d->lock);
	INIT_LIST_HEAD(&d->idle);
	init_waitqueue_head(&d->wait);
	d->max = clamp(num_online_cpus(), 1u, (unsigned int)VC_MAX_DCTX);

	x = vc_dctx_alloc(d);
	if (!x) {
		kfree(d);
		return ERR_PTR(-ENOMEM);
	}
	list_add(&x->list, &d->idle);
	d->nr = 1;
	return d;
}

void vc_decompressor_destroy(struct vc_decompressor *d)
{
	struct vc_dctx *x, *tmp;

	if (!d)
		return;
	list_for_each_entry_safe(x, tmp, &d->idle, list)
		vc_dctx_free(x);
	kfree(d);
}

size_t vc_decompressor_bytes(struct vc_decompressor *d)
{
	return sizeof(*d) + d->max * (sizeof(struct vc_dctx) + d->in_size +
				      d->cluster_size + d->workspace_size);
}

void vc_decompressor_invalidate(struct vc_decompressor *d)
{
	atomic_inc(&d->gen);
}

static bool vc_dctx_idle(struct vc_decompressor *d)
{
	bool idle;

	spin_lock(&d->lock);
	idle = !list_empty(&d->idle);
	spin_unlock(&d->lock);
	return idle;
}

/* An idle context, preferring one that holds the cluster at @offset. */
static struct vc_dctx *vc_dctx_get(struct vc_decompressor *d, u64 offset)
{
	unsigned int gen = atomic_read(&d->gen);
	struct vc_dctx *x;

	for (;;) {
		spin_lock(&d->lock);
		list_for_each_entry(x, &d->idle, list) {
			if (x->cached && x->cached_offset == offset &&
			    x->cached_gen == gen)
				goto found;
		}
		if (!list_empty(&d->idle)) {
			x = list_first_entry(&d->idle, struct vc_dctx, list);
			goto found;
		}
		if (d->nr < d->max) {
			d->nr++;
			spin_unlock(&d->lock);
			x = vc_dctx_alloc(d);
			if (x)
				return x;
			spin_lock(&d->lock);
			d->nr--;
		}
		spin_unlock(&d->lock);
		wait_event(d->wait, vc_dctx_idle(d));
	}
found:
	list_del(&x->list);
	spin_unlock(&d->lock);
	return x;
}

static void vc_dctx_put(struct vc_decompressor *d, struct vc_dctx *x)
{
	spin_lock(&d->lock);
	list_add(&x->list, &d->idle);
	spin_unlock(&d->lock);
	wake_up(&d->wait);
}

/* Inflate raw deflate data until a whole cluster came out. */
static int vc_inflate_zlib(struct vc_decompressor *d, struct vc_dctx *x,
			   const u8 *src, size_t len)
{
	int r;

	/* Negative window bits: raw deflate, no zlib header (as QEMU). */
	if (zlib_inflateInit2(&x->zs, -MAX_WBITS) != Z_OK)
		return -EIO;
	x->zs.next_in = src;
	x->zs.avail_in = len;
	x->zs.next_out = x->out;
	x->zs.avail_out = d->cluster_size;
	r = zlib_inflate(&x->zs, Z_FINISH);
	zlib_inflateEnd(&x->zs);
	/* Trailing bytes after a full cluster are not an error. */
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR) && !x->zs.avail_out)
		return 0;
	return -EIO;
}

static int vc_inflate_zstd(struct vc_decompressor *d, struct vc_dctx *x,
			   const u8 *src, size_t len)
{
	zstd_in_buffer in = { .src = src, .size = len, .pos = 0 };
	zstd_out_buffer out = { .dst = x->out, .size = d->cluster_size,
				.pos = 0 };
	size_t r;

	if (zstd_is_error(zstd_reset_dstream(x->zstd)))
		return -EIO;
	while (out.pos < out.size) {
		size_t in_before = in.pos, out_before = out.pos;

		r = zstd_decompress_stream(x->zstd, &out, &in);
		if (zstd_is_error(r))
			return -EIO;
		if (in.pos == in_before && out.pos == out_before)
			return -EIO;	/* input ended before the cluster */
	}
	return 0;
}

static int vc_dctx_load(struct vc_target *vc, struct vc_decompressor *d,
			struct vc_dctx *x, const struct vc_extent *ext,
			unsigned int gen)
{
	u64 start = round_down(ext->comp_offset, SECTOR_SIZE);
	u32 head = ext->comp_offset - start;
	u64 len = round_up(head + ext->comp_bytes, SECTOR_SIZE);
	int r;

	if (x->cached && x->cached_offset == ext->comp_offset &&
	    x->cached_gen == gen)
		return 0;
	x->cached = false;

	if (start >= vc_image_bytes(vc)) {
		vc_err_limit(vc, "compressed cluster at %llu lies outside the image",
			     ext->comp_offset);
		return -EIO;
	}
	/*
	 * QEMU reads what exists of a stream that runs past the end; a
	 * stream needs at most about a cluster to inflate one.
	 */
	len = min3(len, vc_image_bytes(vc) - start, (u64)d->in_size);
	r = vc_sync_io(vc, REQ_OP_READ, start >> SECTOR_SHIFT, x->in, len);
	if (r)
		return r;

	if (d->type == QCOW2_COMPRESSION_ZSTD)
		r = vc_inflate_zstd(d, x, x->in + head, len - head);
	else
		r = vc_inflate_zlib(d, x, x->in + head, len - head);
	if (r) {
		vc_err_limit(vc, "compressed cluster at %llu does not decompress",
			     ext->comp_offset);
		return r;
	}
	x->cached = true;
	x->cached_offset = ext->comp_offset;
	x->cached_gen = gen;
	return 0;
}

int vc_decompress(struct vc_target *vc, struct vc_decompressor *d,
		  const struct vc_extent *ext,
		  int (*copy)(void *ctx, const u8 *cluster), void *ctx)
{
	unsigned int gen = atomic_read(&d->gen);
	struct vc_dctx *x = vc_dctx_get(d, ext->comp_offset);
	int r;

	r = vc_dctx_load(vc, d, x, ext, gen);
	if (!r)
		r = copy(ctx, x->out);
	vc_dctx_put(d, x);
	return r;
}
