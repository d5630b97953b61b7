// SPDX-License-Identifier: GPL-2.0
/*
 * Metadata access for dm-vhdcrypt: a dm-bufio cache of 512-byte blocks of the
 * image (BAT, sector bitmaps, L1/L2 tables) and synchronous reads for ctr
 * and the worker.
 *
 * 512-byte blocks match the smallest unit of both formats, so a cached
 * block never extends past the end of the image device and never mixes a
 * table with data of a 512-byte qcow2 cluster.
 */
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>

#include "vhdcrypt.h"

#define VC_META_BLOCK_SIZE	512
#define VC_META_RESERVED	16	/* buffers kept for forward progress */

static const u8 vc_zero_block[VC_META_BLOCK_SIZE];

int vc_meta_create(struct vc_target *vc)
{
	vc->meta = dm_bufio_client_create(vc->image->bdev, VC_META_BLOCK_SIZE,
					  VC_META_RESERVED, 0, NULL, NULL, 0);
	if (IS_ERR(vc->meta)) {
		int r = PTR_ERR(vc->meta);

		vc->meta = NULL;
		return r;
	}
	return 0;
}

void vc_meta_destroy(struct vc_target *vc)
{
	if (vc->meta)
		dm_bufio_client_destroy(vc->meta);
	vc->meta = NULL;
}

int vc_meta_get(struct vc_target *vc, u64 off, bool may_block,
		struct dm_buffer **bp, const u8 **p)
{
	sector_t block = off >> SECTOR_SHIFT;
	unsigned int in_block = off & (VC_META_BLOCK_SIZE - 1);
	void *data;

	if (block >= vc->image_sectors) {
		*bp = NULL;
		*p = vc_zero_block + in_block;
		return 0;
	}

	data = dm_bufio_get(vc->meta, block, bp);
	if (data) {
		atomic64_inc(&vc->meta_hits);
	} else {
		if (!may_block)
			return -EWOULDBLOCK;
		atomic64_inc(&vc->meta_misses);
		data = dm_bufio_read(vc->meta, block, bp);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}
	*p = (const u8 *)data + in_block;
	return 0;
}

void vc_meta_put(struct dm_buffer *b)
{
	if (b)
		dm_bufio_release(b);
}

void vc_meta_prefetch(struct vc_target *vc, u64 off, u64 bytes)
{
	sector_t first = off >> SECTOR_SHIFT;
	sector_t last = (off + bytes + VC_META_BLOCK_SIZE - 1) >> SECTOR_SHIFT;

	last = min(last, vc->image_sectors);
	if (first < last)
		dm_bufio_prefetch(vc->meta, first, last - first);
}

int vc_read_image(struct vc_target *vc, sector_t sector, void *buf,
		  size_t len)
{
	unsigned int nr_pages = DIV_ROUND_UP(offset_in_page(buf) + len,
					     PAGE_SIZE);
	struct bio *bio;
	size_t done = 0;
	int r;

	bio = bio_kmalloc(nr_pages, GFP_NOIO);
	if (!bio)
		return -ENOMEM;
	bio_init(bio, vc->image->bdev, bio->bi_inline_vecs, nr_pages,
		 REQ_OP_READ);
	bio->bi_iter.bi_sector = sector;
	while (done < len) {
		void *p = buf + done;
		size_t n = min_t(size_t, len - done,
				 PAGE_SIZE - offset_in_page(p));
		struct page *page = is_vmalloc_addr(p) ? vmalloc_to_page(p) :
							 virt_to_page(p);

		__bio_add_page(bio, page, n, offset_in_page(p));
		done += n;
	}
	if (is_vmalloc_addr(buf))
		flush_kernel_vmap_range(buf, len);
	r = submit_bio_wait(bio);
	if (is_vmalloc_addr(buf))
		invalidate_kernel_vmap_range(buf, len);
	bio_uninit(bio);
	kfree(bio);
	return r;
}
