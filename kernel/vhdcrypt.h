/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-vhdcrypt: device-mapper target mapping the virtual disk of a VHD or
 * qcow2 image, decrypting its data with the kernel crypto API.
 *
 * Units: "sector" is always 512 bytes. A "virtual sector" is a sector of the
 * image's virtual disk, a "host sector" one of the image device.
 */
#ifndef DM_VHDCRYPT_H
#define DM_VHDCRYPT_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>

#include "compat.h"

#define DM_MSG_PREFIX "vhdcrypt"

struct vc_target;

/*----------------------------------------------------------------*/

/* What a run of virtual sectors maps to. */
enum vc_extent_kind {
	VC_EXT_ZERO,		/* reads as zeros */
	VC_EXT_LOWER,		/* not in this image: backing device or zeros */
	VC_EXT_DATA,		/* stored at host_sector */
	VC_EXT_COMPRESSED,	/* inside a compressed qcow2 cluster */
	VC_EXT_PAST_END,	/* data past the end of the image file */
};

struct vc_extent {
	enum vc_extent_kind kind;
	sector_t len;		/* sectors, at least 1 */
	sector_t host_sector;	/* DATA: image sector of the first sector */
	u64 comp_offset;	/* COMPRESSED: bytes, start of the stream */
	u64 comp_bytes;		/* COMPRESSED: bytes of compressed data */
	u32 comp_skip;		/* COMPRESSED: bytes into the cluster */
};

/* One image format: parses metadata in ctr, maps sectors on the I/O path. */
struct vc_format {
	const char *name;
	/* ctr: check the image, set virtual_sectors, create the meta cache. */
	int (*open)(struct vc_target *vc);
	void (*close)(struct vc_target *vc);
	/*
	 * Map virtual sector @vsec, at most @nr sectors. Without @may_block
	 * only cached metadata is used: -EWOULDBLOCK asks for a retry from a
	 * worker. Other errors mean the image is damaged.
	 */
	int (*map)(struct vc_target *vc, sector_t vsec, sector_t nr,
		   bool may_block, struct vc_extent *ext);
	/* Format details for the status line. */
	void (*status)(struct vc_target *vc, char *result, unsigned int maxlen,
		       unsigned int *sz);
};

extern const struct vc_format vc_format_vhd;
extern const struct vc_format vc_format_qcow2;

/*----------------------------------------------------------------*/

enum vc_iv_mode {
	VC_IV_NONE,		/* cipher "none": no encryption */
	VC_IV_NULL,		/* all-zero IV */
	VC_IV_PLAIN,		/* le32 of the low 32 bits of the sector */
	VC_IV_PLAIN64,		/* le64 sector */
	VC_IV_PLAIN64BE,	/* be64 sector in the last 8 bytes */
	VC_IV_ESSIV,		/* le64 sector, encrypted by the essiv template */
};

struct vc_cipher {
	struct crypto_skcipher *tfm;	/* NULL for cipher "none" */
	char *spec;			/* the table's cipher argument */
	char *key_desc;			/* ":size:type:desc" for keyring keys */
	u8 *key;			/* key_size bytes */
	unsigned int key_size;		/* bytes */
	unsigned int iv_size;		/* bytes */
	enum vc_iv_mode iv_mode;
	bool key_valid;
	mempool_t req_pool;		/* skcipher requests with IV space */
	size_t req_bytes;		/* bytes per request in req_pool */
};

int vc_cipher_init(struct vc_cipher *c, const char *spec, char *key,
		   char **error);
void vc_cipher_destroy(struct vc_cipher *c);
int vc_cipher_set_key(struct vc_cipher *c, char *key, char **error);
void vc_cipher_wipe_key(struct vc_cipher *c);
/* Decrypt @iter of @bio in place, 512-byte units, first IV @iv_sector. */
int vc_decrypt_bio(struct vc_cipher *c, struct bio *bio, struct bvec_iter iter,
		   u64 iv_sector);
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
size_t vc_decompressor_bytes(const struct vc_decompressor *d);
/* Read and decompress the cluster of @ext, copy the part @bio wants. */
int vc_read_compressed(struct vc_target *vc, struct vc_decompressor *d,
		       struct bio *bio, const struct vc_extent *ext);
/* The decompressor of a qcow2 target. */
struct vc_decompressor *vc_qcow2_decompressor(struct vc_target *vc);

/*----------------------------------------------------------------*/

struct vc_target {
	struct dm_target *ti;
	struct dm_dev *image;
	struct dm_dev *lower;		/* the backing device, or NULL */
	sector_t image_sectors;		/* size of the image device */
	sector_t lower_sectors;		/* size of the backing device */
	sector_t virtual_sectors;	/* size of the virtual disk */
	sector_t data_offset;		/* first virtual sector mapped */
	u64 iv_offset;			/* sectors added to every IV sector */
	bool iv_host;			/* IV from the host, not virtual, sector */
	bool whole_disk;		/* the cipher covers holes and backing too */

	const struct vc_format *fmt;
	void *fmt_data;

	struct dm_bufio_client *meta;	/* metadata cache, 512-byte blocks */
	atomic64_t meta_hits;		/* lookups served from the cache */
	atomic64_t meta_misses;		/* lookups that had to read */
	atomic64_t io_errors;		/* bios failed by a damaged image */
	size_t mem_bytes;		/* held outside the shared metadata cache */

	struct vc_cipher cipher;

	struct workqueue_struct *wq;	/* metadata misses, decryption */
	struct bio_set clone_bs;	/* clones of encrypted reads */
	struct bio_set split_bs;	/* bios split in the worker */

	bool suspended;			/* key set/wipe are allowed */
};

/* Per-bio data: lets map() hand a bio to the worker. */
struct vc_io {
	struct vc_target *vc;
	struct work_struct work;
};

/* Metadata cache (vhdcrypt-meta.c). */
int vc_meta_create(struct vc_target *vc);
void vc_meta_destroy(struct vc_target *vc);
/*
 * Point *@p at the byte at image offset @off; the caller reads at most up to
 * the end of its 512-byte block and then calls vc_meta_put(*@bp). Bytes past
 * the end of the image read as zeros (as QEMU does).
 */
int vc_meta_get(struct vc_target *vc, u64 off, bool may_block,
		struct dm_buffer **bp, const u8 **p);
void vc_meta_put(struct dm_buffer *b);
/* Read ahead @bytes of metadata at @off (ctr only). */
void vc_meta_prefetch(struct vc_target *vc, u64 off, u64 bytes);

/* Synchronous read of @len bytes at image sector @sector (not in map). */
int vc_read_image(struct vc_target *vc, sector_t sector, void *buf,
		  size_t len);

/* ti->error is a char *, but DM core only prints it: share const reasons. */
static inline void vc_set_error(struct vc_target *vc, const char *why)
{
	vc->ti->error = (char *)why;
}

static inline u64 vc_image_bytes(const struct vc_target *vc)
{
	return (u64)vc->image_sectors << SECTOR_SHIFT;
}

/* A damaged image failed an I/O: count it and say why (rate-limited). */
#define vc_err_limit(vc, fmt, ...)					\
	do {								\
		struct vc_target *__vc = (vc);				\
									\
		atomic64_inc(&__vc->io_errors);				\
		DMERR_LIMIT("%s: " fmt,					\
			    dm_table_device_name(__vc->ti->table),	\
			    ##__VA_ARGS__);				\
	} while (0)

#endif /* DM_VHDCRYPT_H */
