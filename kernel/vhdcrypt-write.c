// SPDX-License-Identifier: GPL-2.0
/*
 * The write path of dm-vhdcrypt: in-place writes, write buffers, units,
 * commits and epochs. Documentation/design.md explains the model.
 *
 * map() writes in place what the image owns exclusively (VC_EXT_IN_PLACE):
 * plain images by remapping, encrypted ones through bounce pages filled on
 * the crypto queue. Everything else, cut to one unit, goes to the metadata
 * worker, one work item that never runs concurrently with itself; the
 * format serves it in place after all, or through a write buffer (fill +
 * data, encrypted as a whole) written where the unit's new mapping points.
 * Once that write is done, the worker publishes the unit and completes the
 * bio. Completions (any context) only queue work for the worker.
 *
 * A commit writes the published mappings in the order the format gives,
 * after flushing the image device, so the data is durable before any
 * metadata points to it. Flushes and uncommitted FUA writes wait for one.
 */
#include <linux/blkdev.h>
#include <linux/slab.h>

#include "vhdcrypt.h"

/* Commit this long after the first uncommitted change... */
#define VC_COMMIT_DELAY		HZ
/* ...or when this many units wait. */
#define VC_MAX_DIRTY_UNITS	1024

/* A release the format asked for, applied once the epoch drained. */
struct vc_release {
	struct list_head list;
	u64 a, b;
};

struct vc_write {
	struct vc_target *vc;
	struct work_struct work;	/* the metadata worker, on io_wq */
	struct delayed_work commit_timer;

	spinlock_t lock;		/* the lists and flags up to here */
	struct list_head deferred;	/* vc_io.list: writes for the worker */
	struct list_head flushes;	/* vc_io.list: waiting for a commit */
	struct list_head done_wbufs;	/* vc_wbuf.list: buffers written */
	bool commit_requested;
	bool epoch_released;

	/* Read by map() without the lock. */
	bool meta_dirty;		/* something to commit */
	bool failed;			/* a metadata write failed: no writes */
	unsigned int epoch;		/* index of the current epoch */

	/* Worker only. */
	sector_t unit_sectors;		/* a VHD block, a qcow2 cluster */
	struct list_head dirty_units;	/* vc_unit.dirty: ready, uncommitted */
	struct list_head starved;	/* vc_io.list: wait for a write buffer */
	unsigned int nr_dirty;
	struct percpu_ref epochs[2];
	bool epochs_ready;		/* both initialised */
	bool draining;			/* epochs[!epoch] is being drained */
	struct list_head releases;	/* for the next drain */
	struct list_head draining_releases;	/* for the drain in progress */
	wait_queue_head_t idle_wait;	/* postsuspend waits for drains */

	mempool_t page_pool;		/* bounce and write buffer pages */
	struct mutex page_lock;		/* one blocking page allocator */
	mempool_t wbuf_pool;
	struct bio_set bs;		/* bounce and write buffer bios */
};

/*----------------------------------------------------------------*/
/* Pages: dm-crypt's discipline. Try without waiting; else take the lock,
 * so two writers never each hold half of the pool while waiting.
 */

static void vc_free_pages(struct vc_write *w, struct page **pages,
			  unsigned int n)
{
	while (n--)
		mempool_free(pages[n], &w->page_pool);
}

static void vc_alloc_pages(struct vc_write *w, struct page **pages,
			   unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		pages[i] = mempool_alloc(&w->page_pool, GFP_NOWAIT | __GFP_NOWARN);
		if (!pages[i])
			break;
	}
	if (i == n)
		return;
	vc_free_pages(w, pages, i);
	mutex_lock(&w->page_lock);
	for (i = 0; i < n; i++)
		pages[i] = mempool_alloc(&w->page_pool, GFP_NOIO);
	mutex_unlock(&w->page_lock);
}

/*----------------------------------------------------------------*/
/* Epochs: a cluster is reused only after every bio that may use it ended. */

struct percpu_ref *vc_epoch_get(struct vc_target *vc)
{
	struct vc_write *w = vc->w;
	struct percpu_ref *ref;

	if (!w)
		return NULL;
	rcu_read_lock();
	/* Pairs with vc_epoch_switch(): see the mappings published before. */
	ref = &w->epochs[smp_load_acquire(&w->epoch)];
	percpu_ref_get(ref);
	rcu_read_unlock();
	return ref;
}

void vc_epoch_put(struct vc_io *io)
{
	if (io->epoch)
		percpu_ref_put(io->epoch);
	io->epoch = NULL;
}

static void vc_kick(struct vc_write *w)
{
	queue_work(w->vc->io_wq, &w->work);
}

/* The old epoch's last bio ended (any context). */
static void vc_epoch_release(struct vc_write *w)
{
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	w->epoch_released = true;
	spin_unlock_irqrestore(&w->lock, flags);
	wake_up_all(&w->idle_wait);
	vc_kick(w);
}

void vc_defer_release(struct vc_target *vc, u64 a, u64 b)
{
	struct vc_release *rel = kmalloc(sizeof(*rel), GFP_NOIO | __GFP_NOWARN);

	/* Without memory the cluster stays allocated: a leak, not damage. */
	if (!rel)
		return;
	rel->a = a;
	rel->b = b;
	list_add_tail(&rel->list, &vc->w->releases);
}

/* Worker: start draining the current epoch for the releases so far. */
static void vc_epoch_switch(struct vc_write *w)
{
	unsigned int old = w->epoch;

	if (w->draining || list_empty(&w->releases))
		return;
	list_splice_init(&w->releases, &w->draining_releases);
	w->draining = true;
	percpu_ref_reinit(&w->epochs[!old]);
	/* After the published mappings: new bios see the new mappings. */
	smp_store_release(&w->epoch, !old);
	percpu_ref_kill(&w->epochs[old]);
}

/* Worker: the old epoch drained; apply what waited for it. */
static void vc_epoch_drained(struct vc_write *w)
{
	struct vc_target *vc = w->vc;
	struct vc_release *rel, *tmp;

	list_for_each_entry_safe(rel, tmp, &w->draining_releases, list) {
		if (!w->failed)
			vc->fmt->release(vc, rel->a, rel->b);
		list_del(&rel->list);
		kfree(rel);
	}
	w->draining = false;
	wake_up_all(&w->idle_wait);
}

/*----------------------------------------------------------------*/
/* Units */

int vc_unit_insert(struct vc_target *vc, struct vc_unit *u)
{
	int r;
	unsigned long flags;

	INIT_LIST_HEAD(&u->waiting);
	INIT_LIST_HEAD(&u->dirty);
	/* Allocate the slot first: storing under the lock needs no memory. */
	r = xa_reserve(&vc->units, u->index, GFP_NOIO);
	if (r)
		return r;
	vc_publish_begin(vc, flags);
	r = xa_err(xa_store(&vc->units, u->index, u, GFP_NOWAIT));
	vc_publish_end(vc, flags);
	return r;
}

/* The first write of a busy unit is done: waiting writes go again. */
static void vc_unit_wake(struct vc_target *vc, struct vc_unit *u)
{
	struct vc_write *w = vc->w;
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	list_splice_tail_init(&u->waiting, &w->deferred);
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
}

void vc_unit_wait(struct vc_target *vc, struct vc_unit *u, struct vc_io *io)
{
	list_add_tail(&io->list, &u->waiting);
}

/* Worker: @u has uncommitted changes (call inside a publication). */
void vc_unit_dirty(struct vc_target *vc, struct vc_unit *u)
{
	struct vc_write *w = vc->w;

	if (!list_empty(&u->dirty))
		return;
	list_add_tail(&u->dirty, &w->dirty_units);
	w->nr_dirty++;
	if (!READ_ONCE(w->meta_dirty)) {
		WRITE_ONCE(w->meta_dirty, true);
		queue_delayed_work(vc->io_wq, &w->commit_timer,
				   VC_COMMIT_DELAY);
	}
}

void vc_unit_ready(struct vc_target *vc, struct vc_unit *u)
{
	WRITE_ONCE(u->busy, false);
	vc_unit_wake(vc, u);
}

/* Worker: drop a unit whose write failed; what waited for it retries. */
void vc_unit_abort(struct vc_target *vc, struct vc_unit *u)
{
	unsigned long flags;

	vc_publish_begin(vc, flags);
	xa_erase(&vc->units, u->index);
	vc_publish_end(vc, flags);
	vc_unit_wake(vc, u);
	kfree_rcu(u, rcu);
}

struct list_head *vc_dirty_units(struct vc_target *vc)
{
	return &vc->w->dirty_units;
}

void vc_mark_dirty(struct vc_target *vc)
{
	struct vc_write *w = vc->w;

	if (!READ_ONCE(w->meta_dirty)) {
		WRITE_ONCE(w->meta_dirty, true);
		queue_delayed_work(vc->io_wq, &w->commit_timer,
				   VC_COMMIT_DELAY);
	}
}

/*----------------------------------------------------------------*/
/* Commits */

void vc_write_stop(struct vc_target *vc, int r)
{
	struct vc_write *w = vc->w;

	if (w->failed)
		return;
	WRITE_ONCE(w->failed, true);
	DMERR("%s: metadata write failed (%d): writes stop; check the image, then reload",
	      vc_name(vc), r);
	wake_up_all(&w->idle_wait);
}

/* Worker: make everything completed so far durable. */
static int vc_commit(struct vc_target *vc)
{
	struct vc_write *w = vc->w;
	struct vc_unit *u, *tmp;
	int r;
	unsigned long flags;

	if (w->failed)
		return -EIO;
	r = vc_flush_image(vc);
	if (r || !w->meta_dirty)
		goto out;

	r = vc->fmt->commit(vc);
	if (r)
		goto out;
	/*
	 * The cache and resident tables now hold what the units held. A unit
	 * with a write in flight stays, to be committed again after it.
	 */
	vc_publish_begin(vc, flags);
	list_for_each_entry(u, &w->dirty_units, dirty)
		if (!u->busy && !u->inflight)
			xa_erase(&vc->units, u->index);
	vc_publish_end(vc, flags);
	list_for_each_entry_safe(u, tmp, &w->dirty_units, dirty) {
		if (u->busy || u->inflight)
			continue;
		list_del(&u->dirty);
		w->nr_dirty--;
		kfree_rcu(u, rcu);
	}
	if (!w->nr_dirty) {
		WRITE_ONCE(w->meta_dirty, false);
		cancel_delayed_work(&w->commit_timer);
	}
	vc_epoch_switch(w);
out:
	if (r)
		vc_write_stop(vc, r);
	return r;
}

/* Metadata worker: a format needs what it changed on disk first. */
int vc_commit_now(struct vc_target *vc)
{
	return vc_commit(vc);
}

/* The bio waits for a commit (flushes, FUA writes); then it ends. */
void vc_complete_after_commit(struct vc_io *io)
{
	struct vc_write *w = io->vc->w;
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	list_add_tail(&io->list, &w->flushes);
	w->commit_requested = true;
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
}

static void vc_commit_timer(struct work_struct *work)
{
	struct vc_write *w = container_of(to_delayed_work(work),
					  struct vc_write, commit_timer);
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	w->commit_requested = true;
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
}

/*----------------------------------------------------------------*/
/* In-place writes */

static void vc_bounce_free_pages(struct vc_write *w, struct bio *bio)
{
	struct bvec_iter_all iter;
	struct bio_vec *bv;

	bio_for_each_segment_all(bv, bio, iter)
		mempool_free(bv->bv_page, &w->page_pool);
}

static void vc_bounce_endio(struct bio *bounce)
{
	struct vc_io *io = bounce->bi_private;

	if (bounce->bi_status)
		WRITE_ONCE(io->status, bounce->bi_status);
	vc_bounce_free_pages(io->vc->w, bounce);
	bio_put(bounce);
	vc_io_put(io);
}

static struct bio *vc_bounce_try(struct vc_target *vc, unsigned int bytes,
				 blk_opf_t opf, gfp_t gfp)
{
	unsigned int nr = DIV_ROUND_UP(bytes, PAGE_SIZE);
	struct bio *bio;

	bio = bio_alloc_bioset(vc->image->bdev, nr, opf, GFP_NOIO, &vc->w->bs);
	while (bytes) {
		unsigned int n = min_t(unsigned int, bytes, PAGE_SIZE);
		struct page *page = mempool_alloc(&vc->w->page_pool, gfp);

		if (!page) {
			vc_bounce_free_pages(vc->w, bio);
			bio_put(bio);
			return NULL;
		}
		__bio_add_page(bio, page, n, 0);
		bytes -= n;
	}
	return bio;
}

/* A bio of @bytes of bounce pages, to be written at @sector. */
static struct bio *vc_bounce_alloc(struct vc_target *vc, unsigned int bytes,
				   blk_opf_t opf, sector_t sector)
{
	struct bio *bio = vc_bounce_try(vc, bytes, opf,
					GFP_NOWAIT | __GFP_NOWARN);

	/* As in vc_alloc_pages(): wait for pages one allocator at a time. */
	if (!bio) {
		mutex_lock(&vc->w->page_lock);
		bio = vc_bounce_try(vc, bytes, opf, GFP_NOIO);
		mutex_unlock(&vc->w->page_lock);
	}
	bio->bi_iter.bi_sector = sector;
	return bio;
}

u64 vc_io_iv(struct vc_io *io)
{
	struct vc_target *vc = io->vc;

	return dm_target_offset(vc->ti, io->iter.bi_sector) + vc->iv_offset;
}

static u64 vc_write_iv(struct vc_io *io, sector_t host_sector)
{
	if (io->vc->iv_host)
		return host_sector + io->vc->iv_offset;
	return vc_io_iv(io);
}

/* Crypto queue: encrypt the bio into bounce pages and write those. */
static void vc_in_place_work(struct work_struct *work)
{
	struct vc_io *io = container_of(work, struct vc_io, work);
	struct vc_target *vc = io->vc;
	struct bio *bio = io->bio;
	blk_opf_t opf = REQ_OP_WRITE | (bio->bi_opf & (REQ_FUA | REQ_SYNC));
	struct bio *bounce;
	int r;

	bounce = vc_bounce_alloc(vc, io->iter.bi_size, opf, io->ext.host_sector);
	if (bio_op(bio) == REQ_OP_WRITE_ZEROES) {
		zero_fill_bio(bounce);
		r = vc_crypt_bio(&vc->cipher, bounce, bounce->bi_iter,
				 vc_write_iv(io, io->ext.host_sector), true);
	} else {
		r = vc_encrypt_copy(&vc->cipher, bounce, bio, io->iter,
				    vc_write_iv(io, io->ext.host_sector));
	}
	bounce->bi_private = io;
	bounce->bi_end_io = vc_bounce_endio;
	atomic_inc(&io->pending);
	if (r) {
		vc_err_limit(vc, "encryption failed: %d", r);
		bounce->bi_status = BLK_STS_IOERR;
		bio_endio(bounce);
	} else {
		dm_submit_bio_remap(io->dm_bio, bounce);
	}
	vc_io_put(io);
}

static void vc_clone_write_endio(struct bio *clone)
{
	struct vc_io *io = clone->bi_private;

	if (clone->bi_status)
		WRITE_ONCE(io->status, clone->bi_status);
	bio_put(clone);
	vc_io_put(io);
}

/*
 * Write @io's bio where @ext says, which the image owns. Returns a DM_MAPIO_*
 * code for map(); from the worker (@in_worker) the bio is always submitted.
 */
int vc_write_in_place(struct vc_target *vc, struct vc_io *io,
		      const struct vc_extent *ext, bool in_worker)
{
	struct bio *bio = io->bio;
	struct bio *clone;

	io->iter = bio->bi_iter;
	io->ext = *ext;
	/* A FUA write is durable only together with its mapping. */
	if ((bio->bi_opf & REQ_FUA) && (ext->flags & VC_EXT_UNCOMMITTED))
		io->flags |= VC_IO_FUA;

	if (vc_encrypted(&vc->cipher)) {
		INIT_WORK(&io->work, vc_in_place_work);
		queue_work(vc->crypt_wq, &io->work);
		return DM_MAPIO_SUBMITTED;
	}
	if (!in_worker && !(io->flags & VC_IO_FUA)) {
		bio_set_dev(bio, vc->image->bdev);
		bio->bi_iter.bi_sector = ext->host_sector;
		return DM_MAPIO_REMAPPED;
	}
	clone = bio_alloc_clone(vc->image->bdev, bio, GFP_NOIO, &vc->clone_bs);
	clone->bi_iter.bi_sector = ext->host_sector;
	clone->bi_private = io;
	clone->bi_end_io = vc_clone_write_endio;
	atomic_inc(&io->pending);
	dm_submit_bio_remap(io->dm_bio, clone);
	vc_io_put(io);
	return DM_MAPIO_SUBMITTED;
}

/*----------------------------------------------------------------*/
/* Write buffers */

/*
 * A write buffer for @io, or NULL: then every buffer is in flight, and the
 * worker, which frees them, must not wait for one (vc_write_starved()).
 */
struct vc_wbuf *vc_wbuf_get(struct vc_target *vc, struct vc_io *io)
{
	struct vc_wbuf *wb;

	wb = mempool_alloc(&vc->w->wbuf_pool, GFP_NOIO & ~__GFP_DIRECT_RECLAIM);
	if (!wb)
		return NULL;
	memset(wb, 0, offsetof(struct vc_wbuf, pages));
	wb->vc = vc;
	wb->io = io;
	atomic_set(&wb->pending, 1);
	INIT_LIST_HEAD(&wb->list);
	return wb;
}

/* Its place and size; its pages are freed at write completion. */
void vc_wbuf_prepare(struct vc_wbuf *wb, sector_t host_sector,
		     unsigned int sectors)
{
	wb->host_sector = host_sector;
	wb->sectors = sectors;
	wb->nr_pages = DIV_ROUND_UP(sectors << SECTOR_SHIFT, PAGE_SIZE);
	vc_alloc_pages(wb->vc->w, wb->pages, wb->nr_pages);
}

/* Metadata worker: @io waits until a write buffer is free again. */
void vc_write_starved(struct vc_target *vc, struct vc_io *io)
{
	list_add_tail(&io->list, &vc->w->starved);
}

void vc_wbuf_free(struct vc_wbuf *wb)
{
	struct vc_write *w = wb->vc->w;

	if (wb->nr_pages)
		vc_free_pages(w, wb->pages, wb->nr_pages);
	mempool_free(wb, &w->wbuf_pool);
}

static void vc_wbuf_zero_bytes(struct vc_wbuf *wb, unsigned int off,
			       unsigned int len)
{
	while (len) {
		unsigned int n = min_t(unsigned int, len,
				       PAGE_SIZE - offset_in_page(off));

		memzero_page(wb->pages[off >> PAGE_SHIFT], offset_in_page(off),
			     n);
		off += n;
		len -= n;
	}
}

void vc_wbuf_fill_zero(struct vc_wbuf *wb, unsigned int off, unsigned int len)
{
	vc_wbuf_zero_bytes(wb, off << SECTOR_SHIFT, len << SECTOR_SHIFT);
}

void vc_wbuf_fill_copy(struct vc_wbuf *wb, unsigned int off_bytes,
		       const u8 *src, unsigned int len_bytes)
{
	while (len_bytes) {
		unsigned int n = min_t(unsigned int, len_bytes,
				       PAGE_SIZE - offset_in_page(off_bytes));

		memcpy_to_page(wb->pages[off_bytes >> PAGE_SHIFT],
			       offset_in_page(off_bytes), src, n);
		off_bytes += n;
		src += n;
		len_bytes -= n;
	}
}

static void vc_wbuf_put(struct vc_wbuf *wb);

static void vc_wbuf_io_endio(struct bio *bio)
{
	struct vc_wbuf *wb = bio->bi_private;

	if (bio->bi_status)
		wb->error = blk_status_to_errno(bio->bi_status);
	bio_put(bio);
	vc_wbuf_put(wb);
}

/* Bios for sectors [@off, @off + @len) of the buffer, at @sector of @bdev. */
static void vc_wbuf_io(struct vc_wbuf *wb, blk_opf_t opf,
		       struct block_device *bdev, sector_t sector,
		       unsigned int off, unsigned int len)
{
	struct vc_target *vc = wb->vc;
	unsigned int pos = off << SECTOR_SHIFT, end = (off + len) << SECTOR_SHIFT;

	while (pos < end) {
		struct bio *bio = bio_alloc_bioset(bdev, BIO_MAX_VECS, opf,
						   GFP_NOIO, &vc->w->bs);

		bio->bi_iter.bi_sector = sector + ((pos >> SECTOR_SHIFT) - off);
		while (pos < end) {
			unsigned int n = min_t(unsigned int, end - pos,
					       PAGE_SIZE - offset_in_page(pos));

			if (bio_add_page(bio, wb->pages[pos >> PAGE_SHIFT], n,
					 offset_in_page(pos)) != n)
				break;
			pos += n;
		}
		bio->bi_private = wb;
		bio->bi_end_io = vc_wbuf_io_endio;
		atomic_inc(&wb->pending);
		submit_bio_noacct(bio);
	}
}

int vc_wbuf_fill_read(struct vc_wbuf *wb, unsigned int off, unsigned int len,
		      struct block_device *bdev, sector_t sector,
		      bool decrypt, u64 iv_sector)
{
	if (decrypt) {
		if (wb->nr_decrypt == ARRAY_SIZE(wb->decrypt))
			return -EIO;
		wb->decrypt[wb->nr_decrypt].off = off;
		wb->decrypt[wb->nr_decrypt].len = len;
		wb->decrypt[wb->nr_decrypt].iv = iv_sector;
		wb->nr_decrypt++;
	}
	vc_wbuf_io(wb, REQ_OP_READ, bdev, sector, off, len);
	return 0;
}

void vc_wbuf_zero_image(struct vc_wbuf *wb, sector_t sector, sector_t len)
{
	struct vc_target *vc = wb->vc;
	struct bio *bio = NULL;

	if (!len)
		return;
	/* Stored write-zeroes where the device has them, else zero pages. */
	__blkdev_issue_zeroout(vc->image->bdev, sector, len, GFP_NOIO, &bio, 0);
	if (!bio)
		return;
	bio->bi_private = wb;
	bio->bi_end_io = vc_wbuf_io_endio;
	atomic_inc(&wb->pending);
	submit_bio_noacct(bio);
}

/* Metadata worker gets the buffer back once it is written. */
static void vc_wbuf_written(struct vc_wbuf *wb)
{
	struct vc_write *w = wb->vc->w;
	unsigned long flags;

	vc_free_pages(w, wb->pages, wb->nr_pages);
	wb->nr_pages = 0;
	spin_lock_irqsave(&w->lock, flags);
	list_add_tail(&wb->list, &w->done_wbufs);
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
}

/* Copy the write's data (or zeros) into the buffer. */
static void vc_wbuf_merge(struct vc_wbuf *wb)
{
	struct vc_io *io = wb->io;
	unsigned int pos = wb->data_off << SECTOR_SHIFT;
	struct bvec_iter it;
	struct bio_vec bv;

	if (!wb->data_len)
		return;
	if (!io || bio_op(io->bio) != REQ_OP_WRITE) {
		vc_wbuf_zero_bytes(wb, pos, wb->data_len << SECTOR_SHIFT);
		return;
	}
	__bio_for_each_segment(bv, io->bio, it, io->iter) {
		u8 *src = bvec_kmap_local(&bv);

		vc_wbuf_fill_copy(wb, pos, src, bv.bv_len);
		kunmap_local(src);
		pos += bv.bv_len;
	}
}

/* Crypto queue: the fills arrived; assemble, encrypt, write. */
static void vc_wbuf_assemble_work(struct work_struct *work)
{
	struct vc_wbuf *wb = container_of(work, struct vc_wbuf, work);
	struct vc_target *vc = wb->vc;
	struct vc_cipher *c = &vc->cipher;
	unsigned int i;
	int r = 0;

	for (i = 0; i < wb->nr_decrypt && !r; i++)
		r = vc_crypt_pages(c, wb->pages,
				   wb->decrypt[i].off << SECTOR_SHIFT,
				   wb->decrypt[i].len << SECTOR_SHIFT,
				   wb->decrypt[i].iv, false);
	vc_wbuf_merge(wb);
	if (!r && wb->crypt_len)
		r = vc_crypt_pages(c, wb->pages, wb->crypt_off << SECTOR_SHIFT,
				   wb->crypt_len << SECTOR_SHIFT,
				   wb->crypt_iv, true);
	if (r) {
		vc_err_limit(vc, "encryption failed: %d", r);
		wb->error = r;
		vc_wbuf_written(wb);
		return;
	}
	wb->writing = true;
	atomic_set(&wb->pending, 1);
	vc_wbuf_io(wb, REQ_OP_WRITE, vc->image->bdev, wb->host_sector, 0,
		   wb->sectors);
	vc_wbuf_put(wb);
}

static void vc_wbuf_put(struct vc_wbuf *wb)
{
	if (!atomic_dec_and_test(&wb->pending))
		return;
	if (wb->writing || wb->error) {
		vc_wbuf_written(wb);
		return;
	}
	INIT_WORK(&wb->work, vc_wbuf_assemble_work);
	queue_work(wb->vc->crypt_wq, &wb->work);
}

void vc_wbuf_submit(struct vc_wbuf *wb)
{
	/* The format's ->done drops it before it may drop the unit. */
	if (wb->owner)
		wb->owner->inflight++;
	vc_wbuf_put(wb);
}

/*----------------------------------------------------------------*/
/* The metadata worker */

/*
 * Serve a write (or discard, write-zeroes) that map() could not. map() cut
 * it to one unit: the worker never allocates what only it frees.
 */
static void vc_write_in_worker(struct vc_target *vc, struct vc_io *io)
{
	sector_t unit = vc->w->unit_sectors;
	sector_t vsec = vc_io_vsector(io, io->bio->bi_iter);

	if (WARN_ON_ONCE((vsec & (unit - 1)) + bio_sectors(io->bio) > unit) ||
	    vc->w->failed) {
		vc_io_fail(io, -EIO);
		return;
	}
	io->iter = io->bio->bi_iter;
	vc->fmt->write(vc, io);
}

static void vc_end_flushes(struct vc_target *vc, struct list_head *flushes,
			   int r)
{
	struct vc_io *io, *tmp;

	list_for_each_entry_safe(io, tmp, flushes, list) {
		list_del_init(&io->list);
		if (r)
			vc_io_error(io, r);
		vc_io_complete(io);
	}
}

static void vc_meta_work(struct work_struct *work)
{
	struct vc_write *w = container_of(work, struct vc_write, work);
	struct vc_target *vc = w->vc;
	LIST_HEAD(deferred);
	LIST_HEAD(flushes);
	LIST_HEAD(done);
	struct vc_wbuf *wb, *wtmp;
	struct vc_io *io, *tmp;
	bool commit, released;
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	list_splice_init(&w->done_wbufs, &done);
	list_splice_init(&w->deferred, &deferred);
	released = w->epoch_released;
	w->epoch_released = false;
	spin_unlock_irqrestore(&w->lock, flags);

	if (released)
		vc_epoch_drained(w);
	list_for_each_entry_safe(wb, wtmp, &done, list) {
		list_del(&wb->list);
		wb->done(wb);
	}
	/* Buffers came back: what waited for one goes first. */
	if (!list_empty(&done))
		list_splice_init(&w->starved, &deferred);
	list_for_each_entry_safe(io, tmp, &deferred, list) {
		list_del_init(&io->list);
		vc_write_in_worker(vc, io);
		cond_resched();
	}

	spin_lock_irqsave(&w->lock, flags);
	commit = w->commit_requested || w->nr_dirty >= VC_MAX_DIRTY_UNITS;
	w->commit_requested = false;
	list_splice_init(&w->flushes, &flushes);
	spin_unlock_irqrestore(&w->lock, flags);
	if (commit || !list_empty(&flushes))
		vc_end_flushes(vc, &flushes, vc_commit(vc));
	vc_epoch_switch(w);
}

int vc_map_write(struct vc_target *vc, struct vc_io *io)
{
	struct vc_write *w = vc->w;
	struct bio *bio = io->bio;
	unsigned int unit = vc->cipher.sector_size >> SECTOR_SHIFT;
	struct vc_extent ext;
	sector_t len;
	int r;
	unsigned long flags;

	if (bio->bi_opf & REQ_PREFLUSH) {
		/* DM core sends flushes without data. */
		if (!READ_ONCE(w->meta_dirty) && !READ_ONCE(w->failed)) {
			bio_set_dev(bio, vc->image->bdev);
			return DM_MAPIO_REMAPPED;
		}
		vc_complete_after_commit(io);
		return DM_MAPIO_SUBMITTED;
	}
	if (!bio_sectors(bio)) {
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (READ_ONCE(w->failed))
		return DM_MAPIO_KILL;
	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
	case REQ_OP_DISCARD:
		break;
	default:
		return DM_MAPIO_KILL;
	}
	if ((vc_bio_sector(vc, bio) | bio_sectors(bio)) & (unit - 1))
		return DM_MAPIO_KILL;
	/* A bounce bio holds at most BIO_MAX_VECS pages. */
	if (bio_op(bio) != REQ_OP_DISCARD &&
	    bio_sectors(bio) > VC_MAX_WRITE_SECTORS)
		dm_accept_partial_bio(bio, VC_MAX_WRITE_SECTORS);

	io->epoch = vc_epoch_get(vc);
	if (bio_op(bio) == REQ_OP_DISCARD)
		goto defer_unit;
	r = vc_lookup(vc, vc_io_vsector(io, bio->bi_iter), bio_sectors(bio),
		      VC_MAP_NOWAIT, &ext);
	if (r == -EWOULDBLOCK)
		goto defer_unit;
	if (r) {
		vc_epoch_put(io);
		return DM_MAPIO_KILL;
	}
	if (ext.kind != VC_EXT_DATA || !(ext.flags & VC_EXT_IN_PLACE))
		goto defer_unit;
	len = round_down(ext.len, unit);
	if (!len)
		goto defer_unit;
	if (len < bio_sectors(bio))
		dm_accept_partial_bio(bio, len);
	return vc_write_in_place(vc, io, &ext, false);

defer_unit:
	/* The worker serves one unit per bio; DM core sends the rest again. */
	len = w->unit_sectors - (vc_io_vsector(io, bio->bi_iter) &
				 (w->unit_sectors - 1));
	if (len < bio_sectors(bio))
		dm_accept_partial_bio(bio, len);
	spin_lock_irqsave(&w->lock, flags);
	list_add_tail(&io->list, &w->deferred);
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
	return DM_MAPIO_SUBMITTED;
}

/*----------------------------------------------------------------*/
/* Life cycle */

static void vc_epoch_release0(struct percpu_ref *ref)
{
	vc_epoch_release(container_of(ref, struct vc_write, epochs[0]));
}

static void vc_epoch_release1(struct percpu_ref *ref)
{
	vc_epoch_release(container_of(ref, struct vc_write, epochs[1]));
}

int vc_write_init(struct vc_target *vc)
{
	struct vc_write *w;
	int r;

	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	vc->w = w;
	w->vc = vc;
	INIT_WORK(&w->work, vc_meta_work);
	INIT_DELAYED_WORK(&w->commit_timer, vc_commit_timer);
	spin_lock_init(&w->lock);
	INIT_LIST_HEAD(&w->deferred);
	INIT_LIST_HEAD(&w->flushes);
	INIT_LIST_HEAD(&w->done_wbufs);
	INIT_LIST_HEAD(&w->dirty_units);
	INIT_LIST_HEAD(&w->starved);
	INIT_LIST_HEAD(&w->releases);
	INIT_LIST_HEAD(&w->draining_releases);
	init_waitqueue_head(&w->idle_wait);
	mutex_init(&w->page_lock);
	w->unit_sectors = 1;
	w->epoch_released = false;

	r = percpu_ref_init(&w->epochs[0], vc_epoch_release0,
			    PERCPU_REF_ALLOW_REINIT, GFP_KERNEL);
	if (!r)
		r = percpu_ref_init(&w->epochs[1], vc_epoch_release1,
				    PERCPU_REF_ALLOW_REINIT | PERCPU_REF_INIT_DEAD,
				    GFP_KERNEL);
	if (r)
		return r;
	w->epochs_ready = true;
	r = bioset_init(&w->bs, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
	if (!r)
		r = mempool_init_kmalloc_pool(&w->wbuf_pool, 4,
					      sizeof(struct vc_wbuf));
	return r;
}

/* The format says its unit and how large its write buffers get. */
int vc_write_start(struct vc_target *vc, sector_t unit_sectors,
		   unsigned int max_wbuf_sectors)
{
	struct vc_write *w = vc->w;

	w->unit_sectors = unit_sectors;
	unsigned int pages = max_t(unsigned int, BIO_MAX_VECS,
				   DIV_ROUND_UP(max_wbuf_sectors, PAGE_SECTORS));

	if (WARN_ON_ONCE(DIV_ROUND_UP(max_wbuf_sectors, PAGE_SECTORS) >
			 VC_WBUF_MAX_PAGES))
		return -EINVAL;
	vc->mem_bytes += sizeof(*w) + (size_t)pages * PAGE_SIZE;
	return mempool_init_page_pool(&w->page_pool, pages, 0);
}

void vc_write_exit(struct vc_target *vc)
{
	struct vc_write *w = vc->w;

	cancel_delayed_work_sync(&w->commit_timer);
	flush_work(&w->work);
	/* Kill the live epoch and wait for it: no bio holds it any more. */
	if (w->epochs_ready) {
		struct percpu_ref *ref = &w->epochs[w->epoch];

		percpu_ref_kill(ref);
		wait_event(w->idle_wait, percpu_ref_is_zero(ref));
	}
	cancel_work_sync(&w->work);
	if (w->epochs_ready)
		percpu_ref_exit(&w->epochs[1]);
	percpu_ref_exit(&w->epochs[0]);
	mempool_exit(&w->page_pool);
	mempool_exit(&w->wbuf_pool);
	bioset_exit(&w->bs);
	kfree(w);
	vc->w = NULL;
}

static bool vc_write_idle(struct vc_write *w)
{
	return !w->draining && list_empty(&w->releases);
}

/* postsuspend: no bio is in flight; commit everything, drain the epochs. */
void vc_write_suspend(struct vc_target *vc)
{
	struct vc_write *w = vc->w;
	unsigned long flags;

	cancel_delayed_work_sync(&w->commit_timer);
	spin_lock_irqsave(&w->lock, flags);
	w->commit_requested = true;
	spin_unlock_irqrestore(&w->lock, flags);
	vc_kick(w);
	flush_work(&w->work);
	/* The commit started a drain; with no bios it ends at once. */
	wait_event(w->idle_wait, vc_write_idle(w) || READ_ONCE(w->failed));
	flush_work(&w->work);
}

void vc_write_resume(struct vc_target *vc)
{
}

bool vc_write_failed(struct vc_target *vc)
{
	return vc->w && READ_ONCE(vc->w->failed);
}
