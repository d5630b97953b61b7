// SPDX-License-Identifier: GPL-2.0
/*
 * dm-vhdcrypt: map the virtual disk of a VHD or qcow2 image, decrypting its
 * data with the kernel crypto API.
 *
 * How a read travels: map() translates the bio's first virtual sector with
 * cached metadata only and trims the bio to the run that maps the same way
 * (dm_accept_partial_bio). Zeros are filled in place; sectors the image does
 * not hold go to the backing device; plain data is remapped to the image;
 * encrypted data is read through a clone into the caller's pages and
 * decrypted in the worker. A metadata cache miss, a compressed cluster or a
 * failed atomic allocation hands the bio to the worker, which may block and
 * splits the bio itself.
 *
 * Table: see Documentation/table-format.md.
 */
#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/slab.h>

#include "vhdcrypt.h"

/* Read context of an encrypted extent; the clone bio is embedded last. */
struct vc_read {
	struct vc_target *vc;
	struct bio *parent;		/* the bio being served */
	struct bvec_iter iter;		/* its data, as before the read */
	u64 iv_sector;			/* IV sector of its first sector */
	struct work_struct work;
	struct bio clone;
};

/*----------------------------------------------------------------*/

static sector_t vc_bio_sector(struct vc_target *vc, struct bio *bio)
{
	return dm_target_offset(vc->ti, bio->bi_iter.bi_sector);
}

/* Map the start of @bio; ext->len may be shorter than the bio. */
static int vc_lookup(struct vc_target *vc, struct bio *bio, bool may_block,
		     struct vc_extent *ext)
{
	sector_t vsec = vc_bio_sector(vc, bio) + vc->data_offset;
	sector_t nr = bio_sectors(bio);
	int r;

	r = vc->fmt->map(vc, vsec, nr, may_block, ext);
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
		if (ext->host_sector >= vc->image_sectors)
			ext->kind = VC_EXT_PAST_END;
		else
			ext->len = min(ext->len,
				       vc->image_sectors - ext->host_sector);
		break;
	default:
		break;
	}
	return 0;
}

static u64 vc_iv_sector(struct vc_target *vc, struct bio *bio,
			const struct vc_extent *ext)
{
	u64 base = vc->iv_host ? ext->host_sector : vc_bio_sector(vc, bio);

	return base + vc->iv_offset;
}

static void vc_decrypt_work(struct work_struct *work)
{
	struct vc_read *rd = container_of(work, struct vc_read, work);
	struct vc_target *vc = rd->vc;
	struct bio *parent = rd->parent;
	int r;

	r = vc_decrypt_bio(&vc->cipher, parent, rd->iter, rd->iv_sector);
	if (r) {
		vc_err_limit(vc, "decryption failed: %d", r);
		parent->bi_status = BLK_STS_IOERR;
	}
	bio_put(&rd->clone);
	bio_endio(parent);
}

static void vc_read_endio(struct bio *clone)
{
	struct vc_read *rd = container_of(clone, struct vc_read, clone);
	struct bio *parent = rd->parent;

	if (clone->bi_status) {
		parent->bi_status = clone->bi_status;
		bio_put(clone);
		bio_endio(parent);
		return;
	}
	/* Completion context may be atomic: decrypt in the worker. */
	INIT_WORK(&rd->work, vc_decrypt_work);
	queue_work(rd->vc->wq, &rd->work);
}

/*
 * Read ciphertext at @sector of @bdev into @bio's pages; decrypt once it
 * arrived.
 */
static int vc_read_encrypted(struct vc_target *vc, struct bio *bio,
			     struct block_device *bdev, sector_t sector,
			     const struct vc_extent *ext, gfp_t gfp)
{
	struct vc_read *rd;
	struct bio *clone;

	clone = bio_alloc_clone(bdev, bio, gfp, &vc->clone_bs);
	if (!clone)
		return -EAGAIN;
	rd = container_of(clone, struct vc_read, clone);
	rd->vc = vc;
	rd->parent = bio;
	rd->iter = bio->bi_iter;
	rd->iv_sector = vc_iv_sector(vc, bio, ext);
	clone->bi_iter.bi_sector = sector;
	clone->bi_end_io = vc_read_endio;
	submit_bio_noacct(clone);
	return DM_MAPIO_SUBMITTED;
}

/*
 * Serve @bio, which maps entirely to @ext. Returns a DM_MAPIO_* code, or
 * -EAGAIN when it must be done in the worker.
 */
static int vc_dispatch(struct vc_target *vc, struct bio *bio,
		       const struct vc_extent *ext, bool in_worker)
{
	sector_t vsec = vc_bio_sector(vc, bio) + vc->data_offset;

	switch (ext->kind) {
	case VC_EXT_ZERO:
		if (vc->whole_disk)
			return -EAGAIN;	/* zeros to decrypt, in the worker */
		zero_fill_bio(bio);
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	case VC_EXT_LOWER:
		if (vc->whole_disk)
			return vc_read_encrypted(vc, bio, vc->lower->bdev, vsec,
						 ext, in_worker ? GFP_NOIO : GFP_NOWAIT);
		bio_set_dev(bio, vc->lower->bdev);
		bio->bi_iter.bi_sector = vsec;
		return DM_MAPIO_REMAPPED;
	case VC_EXT_DATA:
		if (vc_encrypted(&vc->cipher))
			return vc_read_encrypted(vc, bio, vc->image->bdev,
						 ext->host_sector, ext,
						 in_worker ? GFP_NOIO : GFP_NOWAIT);
		bio_set_dev(bio, vc->image->bdev);
		bio->bi_iter.bi_sector = ext->host_sector;
		return DM_MAPIO_REMAPPED;
	default:
		return -EAGAIN;
	}
}

/* Compressed clusters and data past the end of the image; may block. */
static blk_status_t vc_read_in_worker(struct vc_target *vc, struct bio *bio,
				      const struct vc_extent *ext)
{
	int r = 0;

	if (ext->kind == VC_EXT_COMPRESSED && vc->iv_host &&
	    vc_encrypted(&vc->cipher)) {
		vc_err_limit(vc, "compressed cluster in an image encrypted by host offset");
		return BLK_STS_IOERR;
	}
	if (ext->kind == VC_EXT_PAST_END || ext->kind == VC_EXT_ZERO)
		/*
		 * QEMU reads zeros past the end of the file, and decrypts them;
		 * with whole_disk, holes are zeros below the cipher too.
		 */
		zero_fill_bio(bio);
	else
		r = vc_read_compressed(vc, vc_qcow2_decompressor(vc), bio, ext);
	if (!r && vc_encrypted(&vc->cipher))
		r = vc_decrypt_bio(&vc->cipher, bio, bio->bi_iter,
				   vc_iv_sector(vc, bio, ext));
	return errno_to_blk_status(r);
}

static void vc_dispatch_in_worker(struct vc_target *vc, struct bio *bio,
				  const struct vc_extent *ext)
{
	int r = vc_dispatch(vc, bio, ext, true);

	if (r == DM_MAPIO_REMAPPED) {
		submit_bio_noacct(bio);
	} else if (r == -EAGAIN) {
		bio->bi_status = vc_read_in_worker(vc, bio, ext);
		bio_endio(bio);
	}
}

/* Serve a whole bio from the worker, splitting it where its mapping changes. */
static void vc_process_bio(struct vc_target *vc, struct bio *bio)
{
	struct vc_extent ext;
	struct bio *split;
	int r;

	for (;;) {
		r = vc_lookup(vc, bio, true, &ext);
		if (r) {
			bio->bi_status = errno_to_blk_status(r);
			bio_endio(bio);
			return;
		}
		if (ext.len == bio_sectors(bio))
			break;
		split = bio_split(bio, ext.len, GFP_NOIO, &vc->split_bs);
		bio_chain(split, bio);
		vc_dispatch_in_worker(vc, split, &ext);
	}
	vc_dispatch_in_worker(vc, bio, &ext);
}

static void vc_deferred_work(struct work_struct *work)
{
	struct vc_io *io = container_of(work, struct vc_io, work);

	vc_process_bio(io->vc, dm_bio_from_per_bio_data(io, sizeof(*io)));
}

static void vc_defer(struct vc_target *vc, struct bio *bio)
{
	struct vc_io *io = dm_per_bio_data(bio, sizeof(*io));

	io->vc = vc;
	INIT_WORK(&io->work, vc_deferred_work);
	queue_work(vc->wq, &io->work);
}

static int vc_map(struct dm_target *ti, struct bio *bio)
{
	struct vc_target *vc = ti->private;
	struct vc_extent ext;
	int r;

	/* Read-only: nothing of ours is volatile, flushes have no work. */
	if (unlikely(bio->bi_opf & REQ_PREFLUSH && !bio_sectors(bio))) {
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (unlikely(bio_op(bio) != REQ_OP_READ))
		return DM_MAPIO_KILL;
	if (unlikely(!bio_sectors(bio))) {
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}

	r = vc_lookup(vc, bio, false, &ext);
	if (r == -EWOULDBLOCK)
		goto defer;
	if (r)
		return DM_MAPIO_KILL;
	if (ext.len < bio_sectors(bio))
		dm_accept_partial_bio(bio, ext.len);
	r = vc_dispatch(vc, bio, &ext, false);
	if (r != -EAGAIN)
		return r;
defer:
	vc_defer(vc, bio);
	return DM_MAPIO_SUBMITTED;
}

/*----------------------------------------------------------------*/

static void vc_free(struct vc_target *vc)
{
	if (vc->wq)
		destroy_workqueue(vc->wq);
	bioset_exit(&vc->clone_bs);
	bioset_exit(&vc->split_bs);
	vc_meta_destroy(vc);
	if (vc->fmt)
		vc->fmt->close(vc);
	vc_cipher_destroy(&vc->cipher);
	if (vc->lower)
		dm_put_device(vc->ti, vc->lower);
	if (vc->image)
		dm_put_device(vc->ti, vc->image);
	kfree(vc);
}

static int vc_parse_options(struct vc_target *vc, struct dm_arg_set *as)
{
	static const struct dm_arg _args[] = {
		{0, 4, "invalid number of optional parameters"},
	};
	struct dm_target *ti = vc->ti;
	bool have_iv = false, have_offset = false;
	unsigned long long n;
	unsigned int count;
	const char *opt;
	char dummy;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &count, &ti->error);
	if (r)
		return r;

	while (count--) {
		opt = dm_shift_arg(as);
		if (!strncmp(opt, "backing:", 8) && !vc->lower) {
			r = dm_get_device(ti, opt + 8, VC_MODE_READ, &vc->lower);
			if (r) {
				ti->error = "cannot open the backing device";
				return r;
			}
		} else if (!strcmp(opt, "iv_sector:host") && !have_iv) {
			vc->iv_host = true;
			have_iv = true;
		} else if (!strcmp(opt, "iv_sector:virtual") && !have_iv) {
			have_iv = true;
		} else if (!strcmp(opt, "whole_disk") && !vc->whole_disk) {
			vc->whole_disk = true;
		} else if (sscanf(opt, "data_offset:%llu%c", &n, &dummy) == 1 &&
			   !have_offset) {
			vc->data_offset = n;
			have_offset = true;
		} else {
			ti->error = "invalid or repeated optional parameter";
			return -EINVAL;
		}
	}
	if (vc->whole_disk && vc->iv_host) {
		ti->error = "whole_disk needs IVs from the virtual sector";
		return -EINVAL;
	}
	return 0;
}

/*
 * <format> <image_dev> <cipher> <key> <iv_offset> [<#opts> <opts>...]
 */
static int vc_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct vc_target *vc;
	unsigned long long n;
	char dummy;
	int r;

	if (argc < 5) {
		ti->error = "not enough arguments";
		return -EINVAL;
	}
	if (dm_table_get_mode(ti->table) & VC_MODE_WRITE) {
		ti->error = "writes are not supported yet: load the table read-only";
		return -EROFS;
	}

	vc = kzalloc(sizeof(*vc), GFP_KERNEL);
	if (!vc) {
		ti->error = "cannot allocate target";
		return -ENOMEM;
	}
	vc->ti = ti;
	ti->private = vc;
	atomic64_set(&vc->meta_hits, 0);
	atomic64_set(&vc->meta_misses, 0);
	atomic64_set(&vc->io_errors, 0);

	r = -EINVAL;
	if (!strcmp(argv[0], "vhd")) {
		vc->fmt = &vc_format_vhd;
	} else if (!strcmp(argv[0], "qcow2")) {
		vc->fmt = &vc_format_qcow2;
	} else {
		ti->error = "unknown image format (vhd, qcow2)";
		goto bad;
	}

	r = dm_get_device(ti, argv[1], VC_MODE_READ, &vc->image);
	if (r) {
		ti->error = "cannot open the image device";
		goto bad;
	}
	vc->image_sectors = bdev_nr_sectors(vc->image->bdev);

	if (sscanf(argv[4], "%llu%c", &n, &dummy) != 1) {
		ti->error = "invalid iv_offset";
		r = -EINVAL;
		goto bad;
	}
	vc->iv_offset = n;

	dm_consume_args(&as, 5);
	r = vc_parse_options(vc, &as);
	if (r)
		goto bad;
	if (vc->lower)
		vc->lower_sectors = bdev_nr_sectors(vc->lower->bdev);

	r = vc_cipher_init(&vc->cipher, argv[2], argv[3], &ti->error);
	if (r)
		goto bad;
	if (vc->whole_disk && !vc_encrypted(&vc->cipher)) {
		ti->error = "whole_disk needs a cipher";
		r = -EINVAL;
		goto bad;
	}

	r = vc->fmt->open(vc);
	if (r)
		goto bad;
	if (vc->data_offset > vc->virtual_sectors ||
	    ti->len > vc->virtual_sectors - vc->data_offset) {
		ti->error = "table is longer than the virtual disk";
		r = -EINVAL;
		goto bad;
	}

	r = bioset_init(&vc->clone_bs, BIO_POOL_SIZE,
			offsetof(struct vc_read, clone), 0);
	if (!r)
		r = bioset_init(&vc->split_bs, BIO_POOL_SIZE, 0, 0);
	if (r) {
		ti->error = "cannot allocate bio sets";
		goto bad;
	}
	vc->wq = alloc_workqueue("kvhdcryptd/%s", WQ_MEM_RECLAIM | WQ_UNBOUND,
				 0, dm_table_device_name(ti->table));
	if (!vc->wq) {
		ti->error = "cannot allocate workqueue";
		r = -ENOMEM;
		goto bad;
	}

	vc->mem_bytes += sizeof(*vc) + vc_cipher_bytes(&vc->cipher);
	ti->per_io_data_size = sizeof(struct vc_io);
	ti->num_flush_bios = 1;
	return 0;

bad:
	DMERR("%s: %s", dm_table_device_name(ti->table), ti->error);
	vc_free(vc);
	return r;
}

static void vc_dtr(struct dm_target *ti)
{
	vc_free(ti->private);
}

static void vc_status(struct dm_target *ti, status_type_t type,
		      unsigned int status_flags, char *result,
		      unsigned int maxlen)
{
	struct vc_target *vc = ti->private;
	unsigned int sz = 0;
	unsigned int opts;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s %llu cache_hits:%llu cache_misses:%llu io_errors:%llu mem:%zu",
		       vc->fmt->name, (u64)vc->virtual_sectors,
		       (u64)atomic64_read(&vc->meta_hits),
		       (u64)atomic64_read(&vc->meta_misses),
		       (u64)atomic64_read(&vc->io_errors), vc->mem_bytes);
		vc->fmt->status(vc, result, maxlen, &sz);
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %s ", vc->fmt->name, vc->image->name,
		       vc->cipher.spec);
		sz += vc_cipher_key_status(&vc->cipher, result + sz, maxlen - sz);
		DMEMIT(" %llu", vc->iv_offset);
		opts = !!vc->lower + vc->iv_host + vc->whole_disk +
		       !!vc->data_offset;
		if (opts)
			DMEMIT(" %u", opts);
		if (vc->lower)
			DMEMIT(" backing:%s", vc->lower->name);
		if (vc->iv_host)
			DMEMIT(" iv_sector:host");
		if (vc->whole_disk)
			DMEMIT(" whole_disk");
		if (vc->data_offset)
			DMEMIT(" data_offset:%llu", (u64)vc->data_offset);
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",format=%s,cipher=%s,key_size=%u", vc->fmt->name,
		       vc->cipher.spec, vc->cipher.key_size);
		DMEMIT(",iv_sector=%s,iv_offset=%llu,data_offset=%llu,backing=%c,whole_disk=%c;",
		       vc->iv_host ? "host" : "virtual", vc->iv_offset,
		       (u64)vc->data_offset, vc->lower ? 'y' : 'n',
		       vc->whole_disk ? 'y' : 'n');
		break;
	}
}

/* "key set <key>" and "key wipe", while suspended, as in dm-crypt. */
static int vc_message(struct dm_target *ti, unsigned int argc, char **argv,
		      char *result, unsigned int maxlen)
{
	struct vc_target *vc = ti->private;
	char *error = NULL;
	int r;

	if (argc < 2 || strcasecmp(argv[0], "key"))
		goto invalid;
	if (!vc->suspended) {
		DMWARN("%s: key can only be changed while suspended",
		       dm_table_device_name(ti->table));
		return -EINVAL;
	}
	if (argc == 3 && !strcasecmp(argv[1], "set")) {
		r = vc_cipher_set_key(&vc->cipher, argv[2], &error);
		if (r)
			DMWARN("%s: key set: %s", dm_table_device_name(ti->table),
			       error);
		return r;
	}
	if (argc == 2 && !strcasecmp(argv[1], "wipe")) {
		vc_cipher_wipe_key(&vc->cipher);
		return 0;
	}
invalid:
	DMWARN("unrecognised message received");
	return -EINVAL;
}

static void vc_postsuspend(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;

	vc->suspended = true;
}

static int vc_preresume(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;

	if (vc_encrypted(&vc->cipher) && !vc->cipher.key_valid) {
		DMERR("%s: vhdcrypt key is not set",
		      dm_table_device_name(ti->table));
		return -EAGAIN;
	}
	return 0;
}

static void vc_resume(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;

	vc->suspended = false;
}

static int vc_iterate_devices(struct dm_target *ti,
			      iterate_devices_callout_fn fn, void *data)
{
	struct vc_target *vc = ti->private;
	int r;

	r = fn(ti, vc->image, 0, vc->image_sectors, data);
	if (!r && vc->lower)
		r = fn(ti, vc->lower, 0, vc->lower_sectors, data);
	return r;
}

static void vc_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	/* Keep every 512-byte crypto unit inside one page of a bio. */
	limits->dma_alignment = max_t(unsigned int, limits->dma_alignment,
				      SECTOR_SIZE - 1);
}

static struct target_type vc_target = {
	.name = "vhdcrypt",
	.version = {1, 1, 0},
	.module = THIS_MODULE,
	.ctr = vc_ctr,
	.dtr = vc_dtr,
	.map = vc_map,
	.status = vc_status,
	.message = vc_message,
	.postsuspend = vc_postsuspend,
	.preresume = vc_preresume,
	.resume = vc_resume,
	.iterate_devices = vc_iterate_devices,
	.io_hints = vc_io_hints,
};

static int __init vc_init(void)
{
	return dm_register_target(&vc_target);
}

static void __exit vc_exit(void)
{
	dm_unregister_target(&vc_target);
}

module_init(vc_init);
module_exit(vc_exit);

MODULE_DESCRIPTION(DM_NAME " target for encrypted VHD and qcow2 images");
MODULE_AUTHOR("dm-vhdcrypt developers");
MODULE_LICENSE("GPL");
