// SPDX-License-Identifier: GPL-2.0
/*
 * Metadata access for dm-vhdcrypt: dm-bufio caches of 512-byte blocks of the
 * image (L2 tables, refcount blocks, VHD sector bitmaps), whole tables read
 * into memory at load time (VHD BAT, qcow2 L1 and refcount table), and
 * synchronous I/O for the metadata worker.
 *
 * 512-byte blocks match the smallest unit of both formats, so a cached
 * block never extends past the end of the image device and never mixes a
 * table with data of a 512-byte qcow2 cluster.
 *
 * dm-bufio may write a dirty block whenever it likes, so a block is changed
 * only once everything it depends on is durable (see vhdcrypt-write.c).
 */
#include <linux/blkdev.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/vmalloc.h>

#include "vhdcrypt.h"

#define VC_META_BLOCK_SIZE	512
#define VC_META_RESERVED	16	/* buffers kept for forward progress */
/* Tables are read at load time in pieces of this size, killably. */
#define VC_TABLE_CHUNK		SZ_1M

static u8 vc_zero_block[VC_META_BLOCK_SIZE];

struct dm_bufio_client *vc_meta_create(struct vc_target *vc)
{
	return dm_bufio_client_create(vc->image->bdev, VC_META_BLOCK_SIZE,
				      VC_META_RESERVED, 0, NULL, NULL, 0);
}

void vc_meta_destroy(struct dm_bufio_client *c)
{
	if (!IS_ERR_OR_NULL(c))
		dm_bufio_client_destroy(c);
}

int vc_meta_get(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		unsigned int flags, struct vc_meta_ref *ref)
{
	sector_t block = off >> SECTOR_SHIFT;
	unsigned int in_block = off & (VC_META_BLOCK_SIZE - 1);
	void *data;

	ref->b = NULL;
	ref->len = VC_META_BLOCK_SIZE - in_block;
	if (block >= vc->image_sectors) {
		ref->p = vc_zero_block + in_block;
		return 0;
	}

	data = dm_bufio_get(c, block, &ref->b);
	if (data && !IS_ERR(data)) {
		this_cpu_inc(vc->stats->meta_hits);
		ref->p = (u8 *)data + in_block;
		return 0;
	}
	/* A miss, or a cached block whose read failed: read it (again). */
	if (flags & VC_MAP_NOWAIT)
		return -EWOULDBLOCK;
	if (IS_ERR(data))
		dm_bufio_forget(c, block);
	this_cpu_inc(vc->stats->meta_misses);
	data = dm_bufio_read(c, block, &ref->b);
	if (IS_ERR(data)) {
		ref->b = NULL;
		dm_bufio_forget(c, block);
		vc_err_limit(vc, "cannot read metadata at sector %llu: %ld",
			     (u64)block, PTR_ERR(data));
		return PTR_ERR(data);
	}
	ref->p = (u8 *)data + in_block;
	return 0;
}

void vc_meta_put(struct vc_meta_ref *ref)
{
	if (ref->b)
		dm_bufio_release(ref->b);
	ref->b = NULL;
}

int vc_meta_be64(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		 unsigned int flags, u64 *val)
{
	struct vc_meta_ref ref;
	int r;

	r = vc_meta_get(vc, c, off, flags, &ref);
	if (r)
		return r;
	*val = get_unaligned_be64(ref.p);
	vc_meta_put(&ref);
	return 0;
}

int vc_meta_write(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		  const void *src, unsigned int len)
{
	unsigned int in_block = off & (VC_META_BLOCK_SIZE - 1);
	struct dm_buffer *b;
	u8 *data;

	if (WARN_ON_ONCE(in_block + len > VC_META_BLOCK_SIZE) ||
	    (off >> SECTOR_SHIFT) >= vc->image_sectors)
		return -EIO;
	data = dm_bufio_read(c, off >> SECTOR_SHIFT, &b);
	if (IS_ERR(data)) {
		dm_bufio_forget(c, off >> SECTOR_SHIFT);
		return PTR_ERR(data);
	}
	memcpy(data + in_block, src, len);
	dm_bufio_mark_partial_buffer_dirty(b, in_block, in_block + len);
	dm_bufio_release(b);
	return 0;
}

int vc_meta_new(struct vc_target *vc, struct dm_bufio_client *c,
		sector_t block, struct vc_meta_ref *ref)
{
	void *data;

	ref->b = NULL;
	if (block >= vc->image_sectors)
		return -ENOSPC;
	data = dm_bufio_new(c, block, &ref->b);
	if (IS_ERR(data)) {
		ref->b = NULL;
		return PTR_ERR(data);
	}
	memset(data, 0, VC_META_BLOCK_SIZE);
	ref->p = data;
	ref->len = VC_META_BLOCK_SIZE;
	return 0;
}

void vc_meta_dirty(struct vc_meta_ref *ref, unsigned int len)
{
	unsigned int start;

	if (WARN_ON_ONCE(!ref->b))
		return;
	start = ref->p - (u8 *)dm_bufio_get_block_data(ref->b);
	dm_bufio_mark_partial_buffer_dirty(ref->b, start, start + len);
}

int vc_meta_commit(struct vc_target *vc, struct dm_bufio_client *c)
{
	int r = dm_bufio_write_dirty_buffers(c);

	if (r)
		DMERR("%s: writing metadata failed: %d", vc_name(vc), r);
	return r;
}

/*----------------------------------------------------------------*/

/*
 * Read or write @len bytes (a multiple of 512) at image sector @sector from
 * a kmalloc or vmalloc buffer, waiting for the I/O. Bios come from sync_bs,
 * so this works under memory pressure.
 */
int vc_sync_io(struct vc_target *vc, blk_opf_t opf, sector_t sector,
	       void *buf, size_t len)
{
	bool vmalloced = is_vmalloc_addr(buf);
	size_t done = 0;
	int r = 0;

	if (WARN_ON_ONCE(len & (SECTOR_SIZE - 1)))
		return -EINVAL;
	if (vmalloced && op_is_write(opf))
		flush_kernel_vmap_range(buf, len);
	while (done < len && !r) {
		struct bio *bio = bio_alloc_bioset(vc->image->bdev, BIO_MAX_VECS,
						   opf, GFP_NOIO, &vc->sync_bs);

		bio->bi_iter.bi_sector = sector + (done >> SECTOR_SHIFT);
		while (done < len) {
			void *p = buf + done;
			size_t n = min_t(size_t, len - done,
					 PAGE_SIZE - offset_in_page(p));
			struct page *page = vmalloced ? vmalloc_to_page(p) :
							virt_to_page(p);

			if (bio_add_page(bio, page, n, offset_in_page(p)) != n)
				break;
			done += n;
		}
		r = submit_bio_wait(bio);
		bio_put(bio);
	}
	if (vmalloced && !op_is_write(opf))
		invalidate_kernel_vmap_range(buf, len);
	return r;
}

int vc_flush_image(struct vc_target *vc)
{
	int r = blkdev_issue_flush(vc->image->bdev);

	if (r)
		DMERR("%s: flushing the image device failed: %d", vc_name(vc),
		      r);
	return r;
}

/*
 * Read @bytes of the image at byte @off into a new buffer (kvfree it),
 * in pieces, stopping when the loading process is killed.
 */
int vc_read_table(struct vc_target *vc, u64 off, size_t bytes, void **table,
		  const char *what)
{
	u64 start = round_down(off, SECTOR_SIZE);
	size_t head = off - start;
	size_t span = round_up(head + bytes, SECTOR_SIZE);
	size_t done;
	u8 *buf;
	int r = 0;

	*table = NULL;
	buf = kvmalloc(max_t(size_t, span, 1), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (done = 0; done < span && !r; done += VC_TABLE_CHUNK) {
		size_t n = min_t(size_t, span - done, VC_TABLE_CHUNK);

		if (fatal_signal_pending(current)) {
			r = -EINTR;
			break;
		}
		r = vc_sync_io(vc, REQ_OP_READ, (start + done) >> SECTOR_SHIFT,
			       buf + done, n);
		cond_resched();
	}
	if (r) {
		if (r != -EINTR)
			DMERR("%s: cannot read the %s: %d", vc_name(vc), what, r);
		kvfree(buf);
		return r;
	}
	if (head)
		memmove(buf, buf + head, bytes);
	*table = buf;
	return 0;
}
