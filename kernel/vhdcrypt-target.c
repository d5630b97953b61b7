// SPDX-License-Identifier: GPL-2.0
/*
 * dm-vhdcrypt: map the virtual disk of a VHD or qcow2 image, decrypting and
 * encrypting its data with the kernel crypto API.
 *
 * This file: the target's life cycle (table arguments, suspend and resume,
 * key messages, status). The I/O path is in vhdcrypt-io.c (reads) and
 * vhdcrypt-write.c (writes); the formats in vhdcrypt-vhd.c and
 * vhdcrypt-qcow2.c.
 *
 * Table: see Documentation/table-format.md.
 */
#include <crypto/skcipher.h>
#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include <vhdcrypt/table.h>

#include "vhdcrypt.h"

/* Both formats address the image in 512-byte sectors. */
static int vc_check_block_size(struct vc_target *vc, struct dm_dev *dev,
			       const char *what)
{
	unsigned int lbs = bdev_logical_block_size(dev->bdev);

	if (lbs == SECTOR_SIZE)
		return 0;
	DMERR("%s: the %s device %s has %u-byte logical blocks, vhdcrypt needs 512",
	      vc_name(vc), what, dev->name, lbs);
	vc->ti->error = "device has logical blocks larger than 512 bytes";
	return -EINVAL;
}

static void vc_free(struct vc_target *vc)
{
	if (vc->w)
		vc_write_exit(vc);
	if (vc->io_wq)
		destroy_workqueue(vc->io_wq);
	if (vc->crypt_wq)
		destroy_workqueue(vc->crypt_wq);
	if (vc->fmt)
		vc->fmt->close(vc);
	bioset_exit(&vc->clone_bs);
	bioset_exit(&vc->split_bs);
	bioset_exit(&vc->sync_bs);
	vc_cipher_destroy(&vc->cipher);
	if (vc->lower)
		dm_put_device(vc->ti, vc->lower);
	if (vc->image)
		dm_put_device(vc->ti, vc->image);
	free_percpu(vc->stats);
	xa_destroy(&vc->units);
	kfree(vc);
}

static int vc_parse_options(struct vc_target *vc, struct dm_arg_set *as,
			    struct vc_table_opts *o)
{
	static const struct dm_arg _args[] = {
		{0, VC_MAX_OPT_PARAMS, "invalid number of optional parameters"},
	};
	struct dm_target *ti = vc->ti;
	unsigned int count;
	const char *why;
	int r;

	vc_table_opts_init(o);
	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &count, &ti->error);
	if (r)
		return r;

	while (count--) {
		r = vc_table_opt_parse(o, dm_shift_arg(as), &why);
		if (r < 0) {
			vc_set_error(vc, why);
			return r;
		}
		if (r == VC_OPT_BACKING) {
			r = dm_get_device(ti, o->backing, VC_MODE_READ, &vc->lower);
			if (r) {
				ti->error = "cannot open the backing device";
				return r;
			}
		}
	}
	vc->iv_host = o->iv_host;
	vc->whole_disk = o->whole_disk;
	vc->data_offset = o->data_offset;
	vc->cipher.sector_size = o->sector_size;
	vc->cipher.iv_large_sectors = o->iv_large_sectors;
	vc->allow_discards = o->allow_discards;
	return 0;
}

/* Combinations of options that make no sense. */
static int vc_check_options(struct vc_target *vc, const struct vc_table_opts *o)
{
	const char *why;
	int r;

	r = vc_table_opts_check(o, vc_encrypted(&vc->cipher), vc->writable,
				vc->ti->len, &why);
	if (r)
		vc_set_error(vc, why);
	return r;
}

static int vc_alloc_queues(struct vc_target *vc)
{
	const char *name = vc_name(vc);
	int r;

	r = bioset_init(&vc->clone_bs, BIO_POOL_SIZE, 0, 0);
	if (!r)
		r = bioset_init(&vc->split_bs, BIO_POOL_SIZE,
				offsetof(struct vc_split, bio), 0);
	if (!r)
		r = bioset_init(&vc->sync_bs, 1, 0, BIOSET_NEED_BVECS);
	if (r) {
		vc->ti->error = "cannot allocate bio sets";
		return r;
	}
	/* Both may be needed to write back pages: both have a rescuer. */
	vc->crypt_wq = alloc_workqueue("kvhdcryptd/%s",
				       WQ_MEM_RECLAIM | WQ_UNBOUND |
				       WQ_CPU_INTENSIVE, 0, name);
	vc->io_wq = alloc_workqueue("kvhdcrypt_io/%s",
				    WQ_MEM_RECLAIM | WQ_UNBOUND, 0, name);
	if (!vc->crypt_wq || !vc->io_wq) {
		vc->ti->error = "cannot allocate workqueues";
		return -ENOMEM;
	}
	return 0;
}

/*
 * <format> <image_dev> <cipher> <key> <iv_offset> [<#opts> <opts>...]
 */
static int vc_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct vc_table_opts opts;
	struct vc_target *vc;
	u64 n;
	int r;

	if (argc < 5) {
		ti->error = "not enough arguments";
		return -EINVAL;
	}

	vc = kzalloc(sizeof(*vc), GFP_KERNEL);
	if (!vc) {
		ti->error = "cannot allocate target";
		return -ENOMEM;
	}
	vc->ti = ti;
	ti->private = vc;
	vc->writable = dm_table_get_mode(ti->table) & VC_MODE_WRITE;
	atomic64_set(&vc->io_errors, 0);
	spin_lock_init(&vc->publish_lock);
	seqcount_spinlock_init(&vc->publish_seq, &vc->publish_lock);
	xa_init(&vc->units);
	mutex_init(&vc->suspend_lock);

	/* The key first, so a hex key is wiped from the table whatever fails. */
	r = vc_cipher_init(&vc->cipher, argv[2], argv[3], &ti->error);
	if (r)
		goto bad;

	vc->stats = alloc_percpu(struct vc_stats);
	if (!vc->stats) {
		ti->error = "cannot allocate statistics";
		r = -ENOMEM;
		goto bad;
	}

	r = -EINVAL;
	if (!strcmp(argv[0], "vhd")) {
		vc->fmt = &vc_format_vhd;
	} else if (!strcmp(argv[0], "qcow2")) {
		vc->fmt = &vc_format_qcow2;
	} else {
		ti->error = "unknown image format (vhd, qcow2)";
		goto bad_fmt;
	}

	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table),
			  &vc->image);
	if (r) {
		ti->error = "cannot open the image device";
		if (vc->writable)
			ti->error = "cannot open the image device read-write";
		goto bad_fmt;
	}
	vc->image_sectors = bdev_nr_sectors(vc->image->bdev);
	r = vc_check_block_size(vc, vc->image, "image");
	if (r)
		goto bad_fmt;

	if (!vc_table_u64(argv[4], &n)) {
		ti->error = "invalid iv_offset";
		r = -EINVAL;
		goto bad_fmt;
	}
	vc->iv_offset = n;

	dm_consume_args(&as, 5);
	r = vc_parse_options(vc, &as, &opts);
	if (!r && vc->lower) {
		vc->lower_sectors = bdev_nr_sectors(vc->lower->bdev);
		r = vc_check_block_size(vc, vc->lower, "backing");
	}
	if (!r)
		r = vc_check_options(vc, &opts);
	if (!r)
		r = vc_alloc_queues(vc);
	if (r)
		goto bad_fmt;

	r = vc->fmt->open(vc);
	if (r)
		goto bad;
	if (vc->data_offset > vc->virtual_sectors ||
	    ti->len > vc->virtual_sectors - vc->data_offset) {
		ti->error = "table is longer than the virtual disk";
		r = -EINVAL;
		goto bad;
	}

	if (vc->writable) {
		r = vc_write_init(vc);
		if (!r)
			r = vc->fmt->open_writable(vc);
		if (r) {
			if (r == -ENOMEM)
				ti->error = "cannot allocate the write path";
			goto bad;
		}
		/* Flushes commit metadata, even over a device without a cache. */
		ti->flush_supported = true;
		if (vc->allow_discards) {
			ti->num_discard_bios = 1;
			ti->discards_supported = true;
			ti->num_write_zeroes_bios = 1;
		}
	}

	vc->mem_bytes += sizeof(*vc) + vc_cipher_bytes(&vc->cipher);
	ti->per_io_data_size = sizeof(struct vc_io);
	ti->num_flush_bios = 1;
	return 0;

bad_fmt:
	/* Nothing of the format is set up yet. */
	vc->fmt = NULL;
bad:
	vc_free(vc);
	return r;
}

static void vc_dtr(struct dm_target *ti)
{
	vc_free(ti->private);
}

static int vc_end_io(struct dm_target *ti, struct bio *bio,
		     blk_status_t *error)
{
	vc_epoch_put(dm_per_bio_data(bio, sizeof(struct vc_io)));
	return DM_ENDIO_DONE;
}

static void vc_status(struct dm_target *ti, status_type_t type,
		      unsigned int status_flags, char *result,
		      unsigned int maxlen)
{
	struct vc_target *vc = ti->private;
	struct vc_cipher *c = &vc->cipher;
	unsigned int sz = 0;
	unsigned int opts;
	u64 hits = 0, misses = 0;
	int cpu;

	switch (type) {
	case STATUSTYPE_INFO:
		for_each_possible_cpu(cpu) {
			hits += per_cpu_ptr(vc->stats, cpu)->meta_hits;
			misses += per_cpu_ptr(vc->stats, cpu)->meta_misses;
		}
		DMEMIT("%s %llu cache_hits:%llu cache_misses:%llu io_errors:%llu mem:%zu",
		       vc->fmt->name, (u64)vc->virtual_sectors, hits, misses,
		       (u64)atomic64_read(&vc->io_errors), vc->mem_bytes);
		DMEMIT(" mode:%s data_end:%llu",
		       vc_write_failed(vc) ? "failed" : vc->writable ? "rw" : "ro",
		       (u64)vc->fmt->data_end(vc));
		if (c->tfm)
			DMEMIT(" cipher_driver:%s",
			       crypto_skcipher_driver_name(c->tfm));
		vc->fmt->status(vc, result, maxlen, &sz);
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %s ", vc->fmt->name, vc->image->name, c->spec);
		sz += vc_cipher_key_status(c, result + sz, maxlen - sz);
		DMEMIT(" %llu", vc->iv_offset);
		opts = !!vc->lower + vc->iv_host + vc->whole_disk +
		       !!vc->data_offset + (c->sector_size != SECTOR_SIZE) +
		       c->iv_large_sectors + vc->allow_discards;
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
		if (c->sector_size != SECTOR_SIZE)
			DMEMIT(" sector_size:%u", c->sector_size);
		if (c->iv_large_sectors)
			DMEMIT(" iv_large_sectors");
		if (vc->allow_discards)
			DMEMIT(" allow_discards");
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",format=%s,cipher=%s,key_size=%u", vc->fmt->name,
		       c->spec, c->key_size);
		DMEMIT(",iv_sector=%s,iv_offset=%llu,data_offset=%llu,backing=%c,whole_disk=%c",
		       vc->iv_host ? "host" : "virtual", vc->iv_offset,
		       (u64)vc->data_offset, vc->lower ? 'y' : 'n',
		       vc->whole_disk ? 'y' : 'n');
		DMEMIT(",sector_size=%u,iv_large_sectors=%c,allow_discards=%c,writable=%c;",
		       c->sector_size, c->iv_large_sectors ? 'y' : 'n',
		       vc->allow_discards ? 'y' : 'n', vc->writable ? 'y' : 'n');
		break;
	}
}

/* "key set <key>" and "key wipe", while suspended, as in dm-crypt. */
static int vc_message(struct dm_target *ti, unsigned int argc, char **argv,
		      char *result, unsigned int maxlen)
{
	struct vc_target *vc = ti->private;
	char *error = NULL;
	int r = -EINVAL;

	if (argc < 2 || strcasecmp(argv[0], "key"))
		goto invalid;
	if (!(argc == 3 && !strcasecmp(argv[1], "set")) &&
	    !(argc == 2 && !strcasecmp(argv[1], "wipe")))
		goto invalid;

	/* Held across the check, so a resume cannot slip in between. */
	mutex_lock(&vc->suspend_lock);
	if (!vc->suspended) {
		DMWARN("%s: key can only be changed while suspended",
		       vc_name(vc));
	} else if (argc == 3) {
		r = vc_cipher_set_key(&vc->cipher, argv[2], &error);
		if (r)
			DMWARN("%s: key set: %s", vc_name(vc), error);
	} else {
		vc_cipher_wipe_key(&vc->cipher);
		r = 0;
	}
	mutex_unlock(&vc->suspend_lock);
	return r;

invalid:
	DMWARN("unrecognised message received");
	return -EINVAL;
}

static void vc_postsuspend(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;

	if (vc->w)
		vc_write_suspend(vc);
	mutex_lock(&vc->suspend_lock);
	vc->suspended = true;
	mutex_unlock(&vc->suspend_lock);
}

static int vc_preresume(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;
	unsigned int noio;
	int r;

	if (vc_encrypted(&vc->cipher) && !READ_ONCE(vc->cipher.key_valid))
		DMWARN("%s: vhdcrypt key is not set: reads and writes fail until \"key set\"",
		       vc_name(vc));
	/*
	 * A table that was live until now may have changed the image. The
	 * device is suspended: reclaim must not write through it.
	 */
	noio = memalloc_noio_save();
	r = vc->fmt->reload(vc);
	memalloc_noio_restore(noio);
	if (r)
		DMERR("%s: cannot re-read the image metadata: %d", vc_name(vc),
		      r);
	return r;
}

static void vc_resume(struct dm_target *ti)
{
	struct vc_target *vc = ti->private;

	mutex_lock(&vc->suspend_lock);
	vc->suspended = false;
	mutex_unlock(&vc->suspend_lock);
	if (vc->w)
		vc_write_resume(vc);
}

static int vc_iterate_devices(struct dm_target *ti,
			      iterate_devices_callout_fn fn, void *data)
{
	struct vc_target *vc = ti->private;
	/* DM checks device areas against our logical block size. */
	sector_t unit = vc->cipher.sector_size >> SECTOR_SHIFT;
	int r;

	r = fn(ti, vc->image, 0, round_down(vc->image_sectors, unit), data);
	if (!r && vc->lower)
		r = fn(ti, vc->lower, 0, round_down(vc->lower_sectors, unit), data);
	return r;
}

static void vc_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct vc_target *vc = ti->private;
	unsigned int unit = vc->cipher.sector_size;

	limits->logical_block_size = max(limits->logical_block_size, unit);
	limits->physical_block_size = max(limits->physical_block_size, unit);
	limits->io_min = max(limits->io_min, unit);
	/* Keep every crypto unit inside one page of a bio. */
	limits->dma_alignment = max(limits->dma_alignment, unit - 1);
	if (vc->allow_discards) {
		/* Discards free whole clusters; the image device needs none. */
		limits->discard_granularity = max(limits->discard_granularity,
						  vc->discard_granularity);
		limits->max_hw_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		limits->max_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
	}
}

static struct target_type vc_target = {
	.name = "vhdcrypt",
	.version = {1, 2, 0},
	.module = THIS_MODULE,
	.ctr = vc_ctr,
	.dtr = vc_dtr,
	.map = vc_map,
	.end_io = vc_end_io,
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
