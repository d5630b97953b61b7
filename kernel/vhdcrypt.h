/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-vhdcrypt: device-mapper target mapping the virtual disk of a VHD or
 * qcow2 image, decrypting and encrypting its data with the kernel crypto API.
 *
 * Units: "sector" is always 512 bytes. A "virtual sector" is a sector of the
 * image's virtual disk, a "host sector" one of the image device, a "mapped
 * sector" one of the device this target creates (the virtual sector minus
 * data_offset).
 */
#ifndef DM_VHDCRYPT_H
#define DM_VHDCRYPT_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/percpu-refcount.h>
#include <linux/seqlock.h>
#include <linux/workqueue.h>
#include <linux/sizes.h>
#include <linux/xarray.h>

#include <vhdcrypt/table.h>

#include "compat.h"

/* Extended L2 entries have 32 subclusters: at most 16 runs to copy. */
#define QCOW2_SUBCLUSTERS_MAX	32

#define DM_MSG_PREFIX "vhdcrypt"

struct vc_target;
struct vc_io;

/*----------------------------------------------------------------*/

/* What a run of virtual sectors maps to. */
enum vc_extent_kind {
	VC_EXT_ZERO,		/* reads as zeros */
	VC_EXT_LOWER,		/* not in this image: backing device or zeros */
	VC_EXT_DATA,		/* stored at host_sector */
	VC_EXT_COMPRESSED,	/* inside a compressed qcow2 cluster */
	VC_EXT_PAST_END,	/* data past the end of the image device */
};

/* DATA: the run may be overwritten in place (no metadata changes). */
#define VC_EXT_IN_PLACE		BIT(0)
/* The mapping changed since the last commit (a FUA write waits for one). */
#define VC_EXT_UNCOMMITTED	BIT(1)

struct vc_extent {
	enum vc_extent_kind kind;
	unsigned int flags;	/* VC_EXT_* */
	sector_t len;		/* sectors, at least 1 */
	sector_t host_sector;	/* DATA: image sector of the first sector */
	u64 comp_offset;	/* COMPRESSED: bytes, start of the stream */
	u64 comp_bytes;		/* COMPRESSED: bytes of compressed data */
	u32 comp_skip;		/* COMPRESSED: bytes into the cluster */
};

/* map() flags */
#define VC_MAP_NOWAIT		BIT(0)	/* cached metadata only: -EWOULDBLOCK */

/*
 * One image format. Lookups (map) may run concurrently with each other and
 * with the metadata worker; everything that changes mappings runs in the
 * metadata worker (vhdcrypt-write.c), one call at a time.
 */
struct vc_format {
	const char *name;
	/* ctr: check the image, set virtual_sectors, read resident tables. */
	int (*open)(struct vc_target *vc);
	/* preresume: re-read what another table may have changed meanwhile. */
	int (*reload)(struct vc_target *vc);
	void (*close)(struct vc_target *vc);
	/*
	 * Map virtual sector @vsec, at most @nr sectors. With VC_MAP_NOWAIT
	 * only cached metadata is used: -EWOULDBLOCK asks for a retry from a
	 * worker. -EIO means the image is damaged (already reported).
	 * Callers hold vc_lookup_begin()/vc_lookup_retry() around it.
	 */
	int (*map)(struct vc_target *vc, sector_t vsec, sector_t nr,
		   unsigned int flags, struct vc_extent *ext);
	/* Decompress the cluster of @ext into @iter of @bio (qcow2). */
	int (*read_compressed)(struct vc_target *vc, struct bio *bio,
			       struct bvec_iter iter, const struct vc_extent *ext);
	/* Format details for the status line. */
	void (*status)(struct vc_target *vc, char *result, unsigned int maxlen,
		       unsigned int *sz);

	/* Write support; all in the metadata worker. NULL: read-only format. */
	/* Writable table: refuse (with ti->error) what cannot be written. */
	int (*open_writable)(struct vc_target *vc);
	/*
	 * Serve the write (or discard, write-zeroes) @io, which lies inside one
	 * write unit and could not be done in place by map(). Takes ownership
	 * of @io: ends it, parks it on a busy unit, or starts its writes.
	 */
	void (*write)(struct vc_target *vc, struct vc_io *io);
	/* Write the published metadata, in order, after the data flush. */
	int (*commit)(struct vc_target *vc);
	/* What vc_defer_release() asked for: no bio uses it any more. */
	void (*release)(struct vc_target *vc, u64 a, u64 b);
	/* Host sectors in use: the end of the last block/cluster or table. */
	sector_t (*data_end)(struct vc_target *vc);
};

extern const struct vc_format vc_format_vhd;
extern const struct vc_format vc_format_qcow2;

/*----------------------------------------------------------------*/

/* enum vc_iv_mode: <vhdcrypt/table.h> */
struct vc_cipher {
	struct crypto_skcipher *tfm;	/* NULL for cipher "none" */
	char *spec;			/* the table's cipher argument */
	char *key_desc;			/* ":size:type:desc" for keyring keys */
	u8 *key;			/* key_size bytes */
	unsigned int key_size;		/* bytes */
	unsigned int iv_size;		/* bytes */
	enum vc_iv_mode iv_mode;
	unsigned int sector_size;	/* bytes per crypto unit: 512 or 4096 */
	bool iv_large_sectors;		/* IVs count sector_size units */
	bool key_valid;			/* false after "key wipe" */
	mempool_t req_pool;		/* skcipher requests with IV space */
	size_t req_bytes;		/* bytes per request in req_pool */
};

int vc_cipher_init(struct vc_cipher *c, const char *spec, char *key,
		   char **error);
void vc_cipher_destroy(struct vc_cipher *c);
int vc_cipher_set_key(struct vc_cipher *c, char *key, char **error);
void vc_cipher_wipe_key(struct vc_cipher *c);
/*
 * En- or decrypt @iter of @bio in place, in sector_size units; @iv_sector
 * is the IV sector of its first 512-byte sector (before iv_large_sectors).
 */
int vc_crypt_bio(struct vc_cipher *c, struct bio *bio, struct bvec_iter iter,
		 u64 iv_sector, bool encrypt);
/* Encrypt @src_iter of @src into the pages of @dst (a bounce bio). */
int vc_encrypt_copy(struct vc_cipher *c, struct bio *dst, struct bio *src,
		    struct bvec_iter src_iter, u64 iv_sector);
/* En- or decrypt @len bytes at @offset of an array of pages, in place. */
int vc_crypt_pages(struct vc_cipher *c, struct page **pages,
		   unsigned int offset, unsigned int len, u64 iv_sector,
		   bool encrypt);
unsigned int vc_cipher_key_status(struct vc_cipher *c, char *result,
				  unsigned int maxlen);

static inline bool vc_encrypted(const struct vc_cipher *c)
{
	return c->tfm;
}

/* Memory reserved for crypto requests. */
static inline size_t vc_cipher_bytes(const struct vc_cipher *c)
{
	return c->tfm ? c->req_bytes * c->req_pool.min_nr : 0;
}

/*----------------------------------------------------------------*/

/* Decompression of qcow2 compressed clusters (vhdcrypt-compress.c). */
struct vc_decompressor;

struct vc_decompressor *vc_decompressor_create(unsigned int type,
					       unsigned int cluster_size);
void vc_decompressor_destroy(struct vc_decompressor *d);
size_t vc_decompressor_bytes(struct vc_decompressor *d);
/* Forget cached clusters (their host clusters changed). */
void vc_decompressor_invalidate(struct vc_decompressor *d);
/*
 * Decompress the cluster whose stream is described by @ext; @copy gets the
 * whole inflated cluster and returns an errno.
 */
int vc_decompress(struct vc_target *vc, struct vc_decompressor *d,
		  const struct vc_extent *ext,
		  int (*copy)(void *ctx, const u8 *cluster), void *ctx);

/*----------------------------------------------------------------*/

/*
 * State of a bio the target serves: the per-bio data of the bio DM gave
 * map(), or the front pad of a piece the worker split off it.
 */
struct vc_io {
	struct vc_target *vc;
	struct bio *bio;		/* the bio this state belongs to */
	struct bio *dm_bio;		/* the bio DM gave map() */
	struct bvec_iter iter;		/* bio's data when it was mapped */
	u64 iv_sector;			/* VC_IO_DECRYPT: IV sector of iter */
	atomic_t pending;		/* I/Os in flight, +1 while starting */
	blk_status_t status;		/* first error */
	unsigned int flags;		/* VC_IO_* */
	struct percpu_ref *epoch;	/* held while it uses image clusters */
	struct work_struct work;	/* deferral, crypto, decompression */
	struct vc_extent ext;		/* compressed read: its extent */
	struct list_head list;		/* writes: waiting for a unit or commit */
	struct bio *bounce;		/* writes: the encrypted copy */
};

/* A piece the I/O queue split off a bio, with its own state in front. */
struct vc_split {
	struct vc_io io;
	struct bio bio;
};

#define VC_IO_DECRYPT		BIT(0)	/* decrypt iter once read */
#define VC_IO_FUA		BIT(1)	/* complete only after a commit */
#define VC_IO_META		BIT(2)	/* its completion changes metadata */

/* vhdcrypt-io.c: the read path, deferral, completion. */
int vc_map(struct dm_target *ti, struct bio *bio);
void vc_io_init(struct vc_io *io, struct vc_target *vc, struct bio *bio,
		struct bio *dm_bio);
void vc_io_put(struct vc_io *io);
void vc_io_fail(struct vc_io *io, int err);
void vc_io_complete(struct vc_io *io);
void vc_io_error(struct vc_io *io, int err);
sector_t vc_io_vsector(struct vc_io *io, struct bvec_iter iter);
blk_status_t vc_errno_to_status(int err);
/* Lookup under the publication seqcount; ext->len trimmed to @nr. */
int vc_lookup(struct vc_target *vc, sector_t vsec, sector_t nr,
	      unsigned int flags, struct vc_extent *ext);

/*----------------------------------------------------------------*/

/*
 * A write unit (a qcow2 cluster, a VHD block) whose mapping changes: found
 * by lookups through vc->units while its new mapping is not yet in the
 * metadata cache. Created, changed and freed only by the metadata worker;
 * lookups read it under RCU and the publication seqcount.
 */
struct vc_unit {
	unsigned long index;		/* key in vc->units */
	bool busy;			/* a write that changes it is in flight */
	unsigned int inflight;		/* write buffers that will change it */
	struct list_head waiting;	/* vc_io.list: bios that wait for it */
	struct list_head dirty;		/* on vc->dirty_units */
	struct rcu_head rcu;
};

/* vhdcrypt-write.c: writes, units, write buffers, commits, epochs. */
int vc_write_init(struct vc_target *vc);
int vc_write_start(struct vc_target *vc, sector_t unit_sectors,
		   unsigned int max_wbuf_sectors);
/* Stop writing for good (metadata could not be written, or is damaged). */
void vc_write_stop(struct vc_target *vc, int r);
/* The IV sector of @io's first sector in the mapped device. */
u64 vc_io_iv(struct vc_io *io);
void vc_write_exit(struct vc_target *vc);
int vc_map_write(struct vc_target *vc, struct vc_io *io);
void vc_write_suspend(struct vc_target *vc);
void vc_write_resume(struct vc_target *vc);
bool vc_write_failed(struct vc_target *vc);
/* Write @io's bio in place at @ext; a DM_MAPIO_* code for map(). */
int vc_write_in_place(struct vc_target *vc, struct vc_io *io,
		      const struct vc_extent *ext, bool in_worker);
void vc_complete_after_commit(struct vc_io *io);
int vc_commit_now(struct vc_target *vc);
struct percpu_ref *vc_epoch_get(struct vc_target *vc);
void vc_epoch_put(struct vc_io *io);
/* Metadata worker: call ->release(@a, @b) once no bio can use it. */
void vc_defer_release(struct vc_target *vc, u64 a, u64 b);
/* Metadata worker: something (other than a unit) waits for a commit. */
void vc_mark_dirty(struct vc_target *vc);

/* Metadata worker: units. */
int vc_unit_insert(struct vc_target *vc, struct vc_unit *u);
void vc_unit_ready(struct vc_target *vc, struct vc_unit *u);
void vc_unit_dirty(struct vc_target *vc, struct vc_unit *u);
void vc_unit_wait(struct vc_target *vc, struct vc_unit *u, struct vc_io *io);
void vc_unit_abort(struct vc_target *vc, struct vc_unit *u);
/* The ready units of the next commit (vc_unit.dirty). */
struct list_head *vc_dirty_units(struct vc_target *vc);

/* A write is served at most this many sectors at a time (one bounce bio). */
#define VC_MAX_WRITE_SECTORS	(BIO_MAX_VECS << PAGE_SECTORS_SHIFT)

/* The largest write buffer: a 2 MiB cluster. */
#define VC_WBUF_MAX_PAGES	(SZ_2M / PAGE_SIZE)

/*
 * A buffer of whole sectors assembled for one write into the image: fill
 * (what the rest of a new cluster must hold) plus the data of one write,
 * encrypted as the scheme says, then written to host_sector. The format
 * fills it, submits it, and gets ->done in the metadata worker.
 */
struct vc_wbuf {
	struct vc_target *vc;
	struct vc_io *io;		/* the write it serves, or NULL */
	sector_t host_sector;		/* where the buffer goes */
	unsigned int sectors;		/* its size */
	unsigned int data_off;		/* sectors into it: io's data (or */
	unsigned int data_len;		/* zeros for write-zeroes), 0: none */
	unsigned int crypt_off;		/* sectors into it: what to encrypt */
	unsigned int crypt_len;
	u64 crypt_iv;			/* IV sector of crypt_off */
	struct {			/* fill reads to decrypt first */
		unsigned int off, len;	/* sectors into the buffer */
		u64 iv;
	} decrypt[QCOW2_SUBCLUSTERS_MAX];
	unsigned int nr_decrypt;
	atomic_t pending;		/* reads, then writes, in flight, +1 */
	bool writing;
	int error;
	struct work_struct work;
	/* Metadata worker, after the write (or a fill read) ended. */
	void (*done)(struct vc_wbuf *wb);
	struct vc_unit *owner;		/* the unit it changes */
	struct list_head list;
	unsigned int nr_pages;
	struct page *pages[VC_WBUF_MAX_PAGES];
};

struct vc_wbuf *vc_wbuf_get(struct vc_target *vc, struct vc_io *io);
void vc_wbuf_prepare(struct vc_wbuf *wb, sector_t host_sector,
		     unsigned int sectors);
void vc_write_starved(struct vc_target *vc, struct vc_io *io);
void vc_wbuf_free(struct vc_wbuf *wb);
/* Fill sectors [@off, @off + @len) of @wb with zeros, a read or a copy. */
void vc_wbuf_fill_zero(struct vc_wbuf *wb, unsigned int off, unsigned int len);
int vc_wbuf_fill_read(struct vc_wbuf *wb, unsigned int off, unsigned int len,
		      struct block_device *bdev, sector_t sector,
		      bool decrypt, u64 iv_sector);
void vc_wbuf_fill_copy(struct vc_wbuf *wb, unsigned int off_bytes,
		       const u8 *src, unsigned int len_bytes);
/* Zero @len sectors of the image at @sector before ->done, too. */
void vc_wbuf_zero_image(struct vc_wbuf *wb, sector_t sector, sector_t len);
/* Fill reads done: merge the io's data, encrypt, write, then ->done. */
void vc_wbuf_submit(struct vc_wbuf *wb);

/* Synchronous I/O for metadata (not in map()): vhdcrypt-meta.c. */
int vc_sync_io(struct vc_target *vc, blk_opf_t opf, sector_t sector,
	       void *buf, size_t len);
int vc_read_table(struct vc_target *vc, u64 off, size_t bytes, void **table,
		  const char *what);
int vc_flush_image(struct vc_target *vc);

/*----------------------------------------------------------------*/

/* Cached metadata (dm-bufio, 512-byte blocks): vhdcrypt-meta.c. */
struct vc_meta_ref {
	struct dm_buffer *b;
	u8 *p;				/* the byte asked for */
	unsigned int len;		/* bytes from p to the end of its block */
};

struct dm_bufio_client *vc_meta_create(struct vc_target *vc);
void vc_meta_destroy(struct dm_bufio_client *c);
/*
 * Hold the block with image byte @off. Bytes past the end of the image read
 * as zeros (as QEMU does). A failed read is not kept: a later one retries.
 */
int vc_meta_get(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		unsigned int flags, struct vc_meta_ref *ref);
void vc_meta_put(struct vc_meta_ref *ref);
int vc_meta_be64(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		 unsigned int flags, u64 *val);
/* Metadata worker: change @len bytes at @off (inside one block). */
int vc_meta_write(struct vc_target *vc, struct dm_bufio_client *c, u64 off,
		  const void *src, unsigned int len);
/* Metadata worker: hold a new zeroed block, not read from the image. */
int vc_meta_new(struct vc_target *vc, struct dm_bufio_client *c,
		sector_t block, struct vc_meta_ref *ref);
/* Metadata worker: @len bytes at ref->p were changed. */
void vc_meta_dirty(struct vc_meta_ref *ref, unsigned int len);
/* Write the dirty blocks of @c, then flush the image device. */
int vc_meta_commit(struct vc_target *vc, struct dm_bufio_client *c);

/*----------------------------------------------------------------*/

struct vc_stats {
	u64 meta_hits;			/* lookups served from the cache */
	u64 meta_misses;		/* lookups that had to read */
};

struct vc_target {
	struct dm_target *ti;
	struct dm_dev *image;
	struct dm_dev *lower;		/* the backing device, or NULL */
	sector_t image_sectors;		/* size of the image device */
	sector_t lower_sectors;		/* size of the backing device */
	sector_t virtual_sectors;	/* size of the virtual disk */
	sector_t data_offset;		/* first virtual sector mapped */
	u64 iv_offset;			/* sectors added to every IV sector */
	bool iv_host;			/* IV from the host, not mapped, sector */
	bool whole_disk;		/* the cipher covers holes and backing too */
	bool writable;			/* the table was loaded read-write */
	bool allow_discards;		/* discards free clusters/sectors */
	unsigned int discard_granularity;	/* bytes: what a discard frees */

	const struct vc_format *fmt;
	void *fmt_data;

	struct vc_stats __percpu *stats;
	atomic64_t io_errors;		/* reads failed: damage, device errors */
	size_t mem_bytes;		/* held outside the shared metadata cache */

	struct vc_cipher cipher;

	struct workqueue_struct *crypt_wq; /* decryption, decompression */
	struct workqueue_struct *io_wq;	/* deferred lookups, metadata work */
	struct bio_set clone_bs;	/* clones reading into a bio's pages */
	struct bio_set split_bs;	/* pieces split off a bio, vc_io first */
	struct bio_set sync_bs;		/* synchronous metadata I/O */

	/* Publication of mapping changes to lookups (vhdcrypt-write.c). */
	spinlock_t publish_lock;	/* serialises writers of publish_seq */
	seqcount_spinlock_t publish_seq;
	struct xarray units;		/* unit index -> struct vc_unit */

	/* The write path (vhdcrypt-write.c); unused by read-only tables. */
	struct vc_write *w;

	struct mutex suspend_lock;	/* suspended vs. key messages */
	bool suspended;			/* key set/wipe are allowed */
};

static inline sector_t vc_bio_sector(struct vc_target *vc, struct bio *bio)
{
	return dm_target_offset(vc->ti, bio->bi_iter.bi_sector);
}

/* ti->error is a char *, but DM core only prints it: share const reasons. */
static inline void vc_set_error(struct vc_target *vc, const char *why)
{
	vc->ti->error = (char *)why;
}

static inline u64 vc_image_bytes(const struct vc_target *vc)
{
	return (u64)vc->image_sectors << SECTOR_SHIFT;
}

static inline const char *vc_name(const struct vc_target *vc)
{
	return dm_table_device_name(vc->ti->table);
}

static inline unsigned int vc_lookup_begin(struct vc_target *vc)
{
	return read_seqcount_begin(&vc->publish_seq);
}

static inline bool vc_lookup_retry(struct vc_target *vc, unsigned int seq)
{
	return read_seqcount_retry(&vc->publish_seq, seq);
}

/*
 * Metadata worker: make changes visible to lookups atomically. Interrupts
 * are off meanwhile, so a lookup in interrupt context on this CPU never
 * spins on a writer it interrupted.
 */
#define vc_publish_begin(vc, flags)					\
	do {								\
		struct vc_target *__vc = (vc);				\
									\
		spin_lock_irqsave(&__vc->publish_lock, flags);		\
		write_seqcount_begin(&__vc->publish_seq);		\
	} while (0)

#define vc_publish_end(vc, flags)					\
	do {								\
		struct vc_target *__vc = (vc);				\
									\
		write_seqcount_end(&__vc->publish_seq);			\
		spin_unlock_irqrestore(&__vc->publish_lock, flags);	\
	} while (0)

/* The unit of @index, if any; the caller holds rcu_read_lock(). */
static inline struct vc_unit *vc_unit_find(struct vc_target *vc,
					   unsigned long index)
{
	return xa_load(&vc->units, index);
}

static inline bool vc_unit_exists(struct vc_target *vc, unsigned long index)
{
	return xa_load(&vc->units, index);
}

/* A damaged image failed an I/O: count it and say why (rate-limited). */
#define vc_err_limit(vc, fmt, ...)					\
	do {								\
		struct vc_target *__vc = (vc);				\
									\
		atomic64_inc(&__vc->io_errors);				\
		DMERR_LIMIT("%s: " fmt, vc_name(__vc), ##__VA_ARGS__);	\
	} while (0)

#endif /* DM_VHDCRYPT_H */
