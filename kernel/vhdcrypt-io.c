// SPDX-License-Identifier: GPL-2.0
/*
 * The read path of dm-vhdcrypt, and what every bio shares: map(), deferral
 * to the workers, completion. Writes: vhdcrypt-write.c.
 *
 * map() translates the bio's first virtual sector with cached metadata only
 * and trims the bio to the run that maps the same way. Zeros are filled in
 * place; the backing device and plain data are remapped; encrypted data is
 * read through a clone into the caller's pages, the clone is freed when its
 * read completes, and the pages are decrypted on the crypto queue. A
 * metadata cache miss or a failed atomic allocation hands the bio to the
 * I/O queue, which may block and splits the bio where its mapping changes;
 * compressed clusters are inflated on the crypto queue.
 *
 * With whole_disk the cipher covers the mapped device as a whole: every
 * piece of a bio is read as it is (zeros, backing, image), and the bio is
 * decrypted once all pieces arrived, because a crypto unit (up to 4096
 * bytes) may span pieces. Otherwise only image data is encrypted, and each
 * piece is decrypted on its own with the IV of its scheme.
 *
 * Forward progress: per-bio state is in the bio's per-bio data or in the
 * front pad of a split; clones, splits and requests come from biosets and
 * mempools; nothing that frees them waits for the queue that allocates them
 * (the I/O queue allocates, the crypto queue frees).
 */
#include <linux/blkdev.h>

#include "vhdcrypt.h"

static struct vc_io *vc_split_io(struct bio *split)
{
	return &container_of(split, struct vc_split, bio)->io;
}

blk_status_t vc_errno_to_status(int err)
{
	switch (err) {
	case 0:
		return BLK_STS_OK;
	case -ENOSPC:
		return BLK_STS_NOSPC;
	case -EOPNOTSUPP:
		return BLK_STS_NOTSUPP;
	default:
		/* Never BLK_STS_RESOURCE: submitters would retry forever. */
		return BLK_STS_IOERR;
	}
}

void vc_io_init(struct vc_io *io, struct vc_target *vc, struct bio *bio,
		struct bio *dm_bio)
{
	io->vc = vc;
	io->bio = bio;
	io->dm_bio = dm_bio;
	io->iter = bio->bi_iter;
	io->iv_sector = 0;
	atomic_set(&io->pending, 1);
	io->status = BLK_STS_OK;
	io->flags = 0;
	io->epoch = NULL;
	INIT_LIST_HEAD(&io->list);
	io->bounce = NULL;
}

sector_t vc_io_vsector(struct vc_io *io, struct bvec_iter iter)
{
	struct vc_target *vc = io->vc;

	return dm_target_offset(vc->ti, iter.bi_sector) + vc->data_offset;
}

void vc_io_error(struct vc_io *io, int err)
{
	WRITE_ONCE(io->status, vc_errno_to_status(err));
}

/* End @io's bio. The epoch of a DM bio is put by vc_end_io(). */
void vc_io_complete(struct vc_io *io)
{
	struct bio *bio = io->bio;

	if (io->status)
		bio->bi_status = io->status;
	bio_endio(bio);
}

static void vc_decrypt_work(struct work_struct *work)
{
	struct vc_io *io = container_of(work, struct vc_io, work);
	struct vc_target *vc = io->vc;
	int r;

	r = vc_crypt_bio(&vc->cipher, io->bio, io->iter, io->iv_sector, false);
	if (r) {
		vc_err_limit(vc, "decryption failed: %d", r);
		vc_io_error(io, r);
	}
	vc_io_complete(io);
}

void vc_io_put(struct vc_io *io)
{
	if (!atomic_dec_and_test(&io->pending))
		return;
	if (!io->status && (io->flags & VC_IO_DECRYPT)) {
		/* Completion context may be atomic: decrypt on the queue. */
		INIT_WORK(&io->work, vc_decrypt_work);
		queue_work(io->vc->crypt_wq, &io->work);
		return;
	}
	if (!io->status && (io->flags & VC_IO_FUA)) {
		vc_complete_after_commit(io);
		return;
	}
	vc_io_complete(io);
}

void vc_io_fail(struct vc_io *io, int err)
{
	vc_io_error(io, err);
	vc_io_put(io);
}

static void vc_clone_endio(struct bio *clone)
{
	struct vc_io *io = clone->bi_private;

	if (clone->bi_status) {
		/* The device failed a data read: count it as the damage is. */
		atomic64_inc(&io->vc->io_errors);
		WRITE_ONCE(io->status, clone->bi_status);
	}
	bio_put(clone);
	vc_io_put(io);
}

/* Read @iter of @io's bio from @sector of @bdev into the bio's pages. */
static int vc_clone_read(struct vc_io *io, struct bvec_iter iter,
			 struct block_device *bdev, sector_t sector, gfp_t gfp)
{
	struct vc_target *vc = io->vc;
	struct bio *clone;

	clone = bio_alloc_clone(bdev, io->bio, gfp, &vc->clone_bs);
	if (!clone)
		return -ENOMEM;
	clone->bi_iter = iter;
	clone->bi_iter.bi_sector = sector;
	clone->bi_private = io;
	clone->bi_end_io = vc_clone_endio;
	atomic_inc(&io->pending);
	dm_submit_bio_remap(io->dm_bio, clone);
	return 0;
}

static void vc_zero_iter(struct bio *bio, struct bvec_iter iter)
{
	struct bvec_iter it;
	struct bio_vec bv;

	__bio_for_each_segment(bv, bio, it, iter)
		memzero_bvec(&bv);
}

/*
 * Read the part @iter of @io's bio, which maps entirely to @ext, without
 * decrypting it. Returns an error only if nothing was started.
 */
static int vc_read_range(struct vc_io *io, struct bvec_iter iter,
			 const struct vc_extent *ext, gfp_t gfp)
{
	struct vc_target *vc = io->vc;

	switch (ext->kind) {
	case VC_EXT_ZERO:
	case VC_EXT_PAST_END:
		/* QEMU reads zeros past the end of the file, too. */
		vc_zero_iter(io->bio, iter);
		return 0;
	case VC_EXT_LOWER:
		return vc_clone_read(io, iter, vc->lower->bdev,
				     vc_io_vsector(io, iter), gfp);
	case VC_EXT_DATA:
		return vc_clone_read(io, iter, vc->image->bdev,
				     ext->host_sector, gfp);
	case VC_EXT_COMPRESSED:
		/* Whole-disk pieces only (vc_read_pieces): synchronous. */
		return vc->fmt->read_compressed(vc, io->bio, iter, ext);
	}
	return -EIO;
}

/* The IV sector of @iter's first sector in the mapped device. */
static u64 vc_mapped_iv(struct vc_io *io, struct bvec_iter iter)
{
	struct vc_target *vc = io->vc;

	return dm_target_offset(vc->ti, iter.bi_sector) + vc->iv_offset;
}

static void vc_compressed_work(struct work_struct *work)
{
	struct vc_io *io = container_of(work, struct vc_io, work);
	struct vc_target *vc = io->vc;
	int r;

	r = vc->fmt->read_compressed(vc, io->bio, io->iter, &io->ext);
	if (r)
		vc_io_error(io, r);
	vc_io_put(io);
}

/*
 * Start reading @io's whole bio, which maps to @ext. Returns -EWOULDBLOCK
 * or -ENOMEM (from map() only) if the bio must go to the I/O queue.
 */
static int vc_read_start(struct vc_io *io, const struct vc_extent *ext,
			 gfp_t gfp)
{
	struct vc_target *vc = io->vc;
	int r;

	io->iter = io->bio->bi_iter;
	io->flags &= ~VC_IO_DECRYPT;
	if (vc->whole_disk) {
		io->flags |= VC_IO_DECRYPT;
		io->iv_sector = vc_mapped_iv(io, io->iter);
	} else if (ext->kind == VC_EXT_DATA && vc_encrypted(&vc->cipher)) {
		/*
		 * Compressed clusters are not decrypted: QEMU returns them
		 * inflated as they are.
		 */
		io->flags |= VC_IO_DECRYPT;
		io->iv_sector = vc->iv_host ? ext->host_sector + vc->iv_offset :
					      vc_mapped_iv(io, io->iter);
	}

	if (ext->kind == VC_EXT_COMPRESSED) {
		io->ext = *ext;
		INIT_WORK(&io->work, vc_compressed_work);
		queue_work(vc->crypt_wq, &io->work);
		return 0;
	}
	r = vc_read_range(io, io->iter, ext, gfp);
	if (r)
		return r;
	vc_io_put(io);
	return 0;
}

int vc_lookup(struct vc_target *vc, sector_t vsec, sector_t nr,
	      unsigned int flags, struct vc_extent *ext)
{
	unsigned int seq;
	int r;

	do {
		seq = vc_lookup_begin(vc);
		r = vc->fmt->map(vc, vsec, nr, flags, ext);
	} while (vc_lookup_retry(vc, seq));
	if (r)
		return r;
	if (WARN_ON_ONCE(!ext->len))
		return -EIO;
	ext->len = min(ext->len, nr);

	switch (ext->kind) {
	case VC_EXT_LOWER:
		if (!vc->lower || vsec >= vc->lower_sectors)
			ext->kind = VC_EXT_ZERO;
		else
			ext->len = min(ext->len, vc->lower_sectors - vsec);
		break;
	case VC_EXT_DATA:
		if (ext->host_sector >= vc->image_sectors) {
			ext->kind = VC_EXT_PAST_END;
			ext->flags = 0;
		} else {
			ext->len = min(ext->len,
				       vc->image_sectors - ext->host_sector);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Whole-disk ciphers: read every piece as it is, decrypt at the end. */
static void vc_read_pieces(struct vc_io *io)
{
	struct vc_target *vc = io->vc;
	struct bvec_iter iter;
	struct vc_extent ext;
	int r;

	io->iter = io->bio->bi_iter;
	io->flags |= VC_IO_DECRYPT;
	io->iv_sector = vc_mapped_iv(io, io->iter);
	iter = io->iter;
	while (iter.bi_size) {
		struct bvec_iter piece = iter;

		r = vc_lookup(vc, vc_io_vsector(io, iter),
			      iter.bi_size >> SECTOR_SHIFT, 0, &ext);
		if (!r) {
			piece.bi_size = ext.len << SECTOR_SHIFT;
			r = vc_read_range(io, piece, &ext, GFP_NOIO);
		}
		if (r) {
			vc_io_error(io, r);
			break;
		}
		bio_advance_iter(io->bio, &iter, piece.bi_size);
	}
	vc_io_put(io);
}

/* In the I/O queue: serve a read, splitting it where its mapping changes. */
static void vc_read_in_worker(struct vc_io *io)
{
	struct vc_target *vc = io->vc;
	struct bio *bio = io->bio;
	struct vc_extent ext;
	int r;

	if (vc->whole_disk) {
		vc_read_pieces(io);
		return;
	}
	for (;;) {
		r = vc_lookup(vc, vc_io_vsector(io, bio->bi_iter),
			      bio_sectors(bio), 0, &ext);
		if (r) {
			vc_io_fail(io, r);
			return;
		}
		if (ext.len < bio_sectors(bio)) {
			struct bio *split = bio_split(bio, ext.len, GFP_NOIO,
						      &vc->split_bs);
			struct vc_io *sio = vc_split_io(split);

			bio_chain(split, bio);
			vc_io_init(sio, vc, split, io->dm_bio);
			vc_read_start(sio, &ext, GFP_NOIO);
			continue;
		}
		vc_read_start(io, &ext, GFP_NOIO);
		return;
	}
}

static void vc_deferred_work(struct work_struct *work)
{
	struct vc_io *io = container_of(work, struct vc_io, work);

	vc_read_in_worker(io);
}

static void vc_defer(struct vc_target *vc, struct bio *bio)
{
	struct vc_io *io = dm_per_bio_data(bio, sizeof(struct vc_io));

	INIT_WORK(&io->work, vc_deferred_work);
	queue_work(vc->io_wq, &io->work);
}

static int vc_map_read(struct vc_target *vc, struct vc_io *io)
{
	struct bio *bio = io->bio;
	struct vc_extent ext;
	sector_t len;
	int r;

	/* Before the lookup: the clusters it finds stay until the bio ends. */
	io->epoch = vc_epoch_get(vc);
	r = vc_lookup(vc, vc_io_vsector(io, bio->bi_iter), bio_sectors(bio),
		      VC_MAP_NOWAIT, &ext);
	if (r == -EWOULDBLOCK)
		goto defer;
	if (r) {
		vc_epoch_put(io);
		return DM_MAPIO_KILL;
	}
	if (ext.len < bio_sectors(bio)) {
		/* A whole-disk crypto unit must not be cut. */
		len = round_down(ext.len, vc->cipher.sector_size >> SECTOR_SHIFT);
		if (!len)
			goto defer;
		dm_accept_partial_bio(bio, len);
	}

	/* Plain data and the backing device: DM core submits the bio. */
	if (!vc->whole_disk) {
		if (ext.kind == VC_EXT_LOWER) {
			bio_set_dev(bio, vc->lower->bdev);
			bio->bi_iter.bi_sector = vc_io_vsector(io, bio->bi_iter);
			return DM_MAPIO_REMAPPED;
		}
		if (ext.kind == VC_EXT_DATA && !vc_encrypted(&vc->cipher)) {
			bio_set_dev(bio, vc->image->bdev);
			bio->bi_iter.bi_sector = ext.host_sector;
			return DM_MAPIO_REMAPPED;
		}
	}
	r = vc_read_start(io, &ext, GFP_NOWAIT);
	if (!r)
		return DM_MAPIO_SUBMITTED;
defer:
	vc_defer(vc, bio);
	return DM_MAPIO_SUBMITTED;
}

int vc_map(struct dm_target *ti, struct bio *bio)
{
	struct vc_target *vc = ti->private;
	struct vc_io *io = dm_per_bio_data(bio, sizeof(struct vc_io));

	vc_io_init(io, vc, bio, bio);
	/* Resumed after "key wipe": no data in or out until "key set". */
	if (unlikely(bio_sectors(bio) && vc_encrypted(&vc->cipher) &&
		     !READ_ONCE(vc->cipher.key_valid)))
		return DM_MAPIO_KILL;
	if (unlikely((bio->bi_opf & REQ_PREFLUSH) || !bio_sectors(bio))) {
		if (vc->w)
			return vc_map_write(vc, io);
		/* Read-only: nothing of ours is volatile. */
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (bio_op(bio) == REQ_OP_READ)
		return vc_map_read(vc, io);
	if (vc->w)
		return vc_map_write(vc, io);
	return DM_MAPIO_KILL;
}
