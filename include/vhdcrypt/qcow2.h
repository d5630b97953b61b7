/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow2 on-disk format (versions 2 and 3): header, header extensions, L1 and
 * L2 entries, including extended L2 entries (subclusters) and compressed
 * cluster descriptors. See QEMU's docs/interop/qcow2.txt.
 *
 * All integers on disk are big-endian. The decoders are pure functions over
 * byte buffers; on failure they return -EINVAL (malformed) or -EOPNOTSUPP
 * (valid but unsupported) with a short reason in *why.
 */
#ifndef VHDCRYPT_QCOW2_H
#define VHDCRYPT_QCOW2_H

#include "types.h"

#define QCOW2_MAGIC			0x514649fbu	/* "QFI\xfb" */
#define QCOW2_V2_HEADER_SIZE		72
#define QCOW2_V3_HEADER_SIZE		104
#define QCOW2_MIN_CLUSTER_BITS		9
#define QCOW2_MAX_CLUSTER_BITS		21
/* QEMU's limit on the L1 table: 32 MiB. */
#define QCOW2_MAX_L1_BYTES		(32u << 20)
/* QEMU's limit on the backing file name. */
#define QCOW2_MAX_BACKING_NAME		1023

#define QCOW2_CRYPT_NONE		0
#define QCOW2_CRYPT_AES			1	/* legacy AES-CBC */
#define QCOW2_CRYPT_LUKS		2

#define QCOW2_INCOMPAT_DIRTY		BIT_ULL(0)
#define QCOW2_INCOMPAT_CORRUPT		BIT_ULL(1)
#define QCOW2_INCOMPAT_DATA_FILE	BIT_ULL(2)
#define QCOW2_INCOMPAT_COMPRESSION	BIT_ULL(3)
#define QCOW2_INCOMPAT_EXTL2		BIT_ULL(4)
/* Incompatible features this code can read. */
#define QCOW2_INCOMPAT_SUPPORTED	(QCOW2_INCOMPAT_DIRTY | \
					 QCOW2_INCOMPAT_COMPRESSION | \
					 QCOW2_INCOMPAT_EXTL2)

#define QCOW2_COMPRESSION_ZLIB		0
#define QCOW2_COMPRESSION_ZSTD		1

/* Header extension types. */
#define QCOW2_EXT_END			0x00000000u
#define QCOW2_EXT_BACKING_FORMAT	0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE		0x6803f857u
#define QCOW2_EXT_BITMAPS		0x23852875u
#define QCOW2_EXT_FDE			0x0537be77u	/* LUKS header location */
#define QCOW2_EXT_DATA_FILE		0x44415441u

/* L1 and L2 entry bits. */
#define QCOW2_OFLAG_COPIED		BIT_ULL(63)
#define QCOW2_OFLAG_COMPRESSED		BIT_ULL(62)
#define QCOW2_OFLAG_ZERO		BIT_ULL(0)
#define QCOW2_OFFSET_MASK		0x00fffffffffffe00ull	/* bits 9-55 */
#define QCOW2_L1_RESERVED		0x7f000000000001ffull
#define QCOW2_L2_RESERVED		0x3f000000000001feull
#define QCOW2_SUBCLUSTERS		32

struct qcow2_header {
	u32 version;
	u64 backing_file_offset;	/* bytes, 0 if none */
	u32 backing_file_size;		/* bytes, not NUL-terminated */
	u32 cluster_bits;		/* log2(cluster size in bytes) */
	u64 size;			/* bytes: the virtual disk */
	u32 crypt_method;		/* QCOW2_CRYPT_* */
	u32 l1_size;			/* L1 entries */
	u64 l1_table_offset;		/* bytes */
	u64 refcount_table_offset;	/* bytes */
	u32 refcount_table_clusters;	/* clusters */
	u32 nb_snapshots;
	u64 snapshots_offset;		/* bytes */
	u64 incompatible_features;
	u64 compatible_features;
	u64 autoclear_features;
	u32 refcount_order;		/* log2(refcount width in bits) */
	u32 header_length;		/* bytes; extensions follow */
	u8 compression_type;		/* QCOW2_COMPRESSION_* */
};

static inline u64 qcow2_cluster_size(const struct qcow2_header *h)
{
	return 1ull << h->cluster_bits;
}

static inline bool qcow2_extended_l2(const struct qcow2_header *h)
{
	return h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
}

/* Bytes per L2 entry: 8, or 16 with extended L2 entries. */
static inline u32 qcow2_l2_entry_size(const struct qcow2_header *h)
{
	return qcow2_extended_l2(h) ? 16 : 8;
}

/* log2 of the number of entries in an L2 table (one cluster). */
static inline u32 qcow2_l2_bits(const struct qcow2_header *h)
{
	return h->cluster_bits - (qcow2_extended_l2(h) ? 4 : 3);
}

/* log2 of the subcluster size in bytes (the cluster size without ext. L2). */
static inline u32 qcow2_subcluster_bits(const struct qcow2_header *h)
{
	return h->cluster_bits - (qcow2_extended_l2(h) ? 5 : 0);
}

/* L1 entries needed to cover the virtual disk (without overflow). */
static inline u64 qcow2_l1_entries_needed(const struct qcow2_header *h)
{
	u32 shift = h->cluster_bits + qcow2_l2_bits(h);

	return (h->size >> shift) + !!(h->size & ((1ull << shift) - 1));
}

/*
 * Decode and check the header from the first @len bytes of the image
 * (at least QCOW2_V3_HEADER_SIZE, or the whole first cluster).
 */
static inline int qcow2_header_decode(const u8 *buf, size_t len,
				      struct qcow2_header *h, const char **why)
{
	if (len < QCOW2_V3_HEADER_SIZE || vc_get_be32(buf) != QCOW2_MAGIC) {
		*why = "no qcow2 magic";
		return -EINVAL;
	}
	memset(h, 0, sizeof(*h));
	h->version = vc_get_be32(buf + 4);
	h->backing_file_offset = vc_get_be64(buf + 8);
	h->backing_file_size = vc_get_be32(buf + 16);
	h->cluster_bits = vc_get_be32(buf + 20);
	h->size = vc_get_be64(buf + 24);
	h->crypt_method = vc_get_be32(buf + 32);
	h->l1_size = vc_get_be32(buf + 36);
	h->l1_table_offset = vc_get_be64(buf + 40);
	h->refcount_table_offset = vc_get_be64(buf + 48);
	h->refcount_table_clusters = vc_get_be32(buf + 56);
	h->nb_snapshots = vc_get_be32(buf + 60);
	h->snapshots_offset = vc_get_be64(buf + 64);

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_SIZE;
	} else if (h->version == 3) {
		h->incompatible_features = vc_get_be64(buf + 72);
		h->compatible_features = vc_get_be64(buf + 80);
		h->autoclear_features = vc_get_be64(buf + 88);
		h->refcount_order = vc_get_be32(buf + 96);
		h->header_length = vc_get_be32(buf + 100);
		if (h->header_length < QCOW2_V3_HEADER_SIZE ||
		    (h->header_length & 7)) {
			*why = "bad qcow2 header length";
			return -EINVAL;
		}
		if (h->header_length > QCOW2_V3_HEADER_SIZE) {
			if (len < QCOW2_V3_HEADER_SIZE + 1) {
				*why = "qcow2 header is truncated";
				return -EINVAL;
			}
			h->compression_type = buf[QCOW2_V3_HEADER_SIZE];
		}
	} else {
		*why = "unsupported qcow2 version";
		return -EOPNOTSUPP;
	}

	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		*why = "qcow2 cluster size out of range (512 B to 2 MiB)";
		return -EINVAL;
	}
	if (h->header_length > qcow2_cluster_size(h)) {
		*why = "qcow2 header is larger than a cluster";
		return -EINVAL;
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
		*why = "qcow2 image is marked corrupt (run qemu-img check -r all)";
		return -EINVAL;
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
		*why = "qcow2 external data files are not supported";
		return -EOPNOTSUPP;
	}
	if (h->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED) {
		*why = "qcow2 image has unknown incompatible features";
		return -EOPNOTSUPP;
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
		if (h->compression_type == QCOW2_COMPRESSION_ZLIB) {
			*why = "qcow2 compression feature bit set without a type";
			return -EINVAL;
		}
	} else if (h->compression_type != QCOW2_COMPRESSION_ZLIB) {
		*why = "qcow2 compression type set without its feature bit";
		return -EINVAL;
	}
	if (h->compression_type != QCOW2_COMPRESSION_ZLIB &&
	    h->compression_type != QCOW2_COMPRESSION_ZSTD) {
		*why = "unknown qcow2 compression type";
		return -EOPNOTSUPP;
	}
	if (qcow2_extended_l2(h) && h->cluster_bits < 14) {
		*why = "qcow2 extended L2 entries need clusters of 16 KiB or more";
		return -EINVAL;
	}
	if (h->refcount_order > 6) {
		*why = "qcow2 refcount width out of range";
		return -EINVAL;
	}
	if (h->crypt_method > QCOW2_CRYPT_LUKS) {
		*why = "unknown qcow2 encryption method";
		return -EOPNOTSUPP;
	}
	if (h->size & 511) {
		*why = "qcow2 virtual size is not a multiple of 512 bytes";
		return -EINVAL;
	}
	if ((u64)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		*why = "qcow2 L1 table is too large";
		return -EINVAL;
	}
	/* Also bounds the virtual size: l1_size < 2^22 entries. */
	if (qcow2_l1_entries_needed(h) > h->l1_size) {
		*why = "qcow2 L1 table is too small for the disk size";
		return -EINVAL;
	}
	if (h->l1_table_offset & (qcow2_cluster_size(h) - 1)) {
		*why = "qcow2 L1 table is not cluster aligned";
		return -EINVAL;
	}
	return 0;
}

/* Check that the active L1 table lies inside an image of @image_bytes. */
static inline int qcow2_layout_check(const struct qcow2_header *h,
				     u64 image_bytes, const char **why)
{
	if (!vc_range_ok(h->l1_table_offset, 8ull * h->l1_size, image_bytes)) {
		*why = "qcow2 L1 table lies outside the image";
		return -EINVAL;
	}
	if (!h->backing_file_offset)
		return 0;	/* no backing file: its size field is unused */
	if (h->backing_file_size > QCOW2_MAX_BACKING_NAME) {
		*why = "qcow2 backing file name is too long";
		return -EINVAL;
	}
	if (!vc_range_ok(h->backing_file_offset, h->backing_file_size,
			 qcow2_cluster_size(h))) {
		*why = "qcow2 backing file name lies outside the first cluster";
		return -EINVAL;
	}
	return 0;
}

/*
 * Header extension iterator over the first cluster @buf of @len bytes.
 * Start with *off = h->header_length. Returns 1 and the extension's type,
 * data offset and length, 0 at the end marker, or -EINVAL.
 */
static inline int qcow2_extension_next(const u8 *buf, size_t len, size_t *off,
				       u32 *type, size_t *data_off,
				       u32 *data_len, const char **why)
{
	size_t pos = *off;

	if (len < 8 || pos > len - 8) {
		*why = "qcow2 header extensions run past the first cluster";
		return -EINVAL;
	}
	*type = vc_get_be32(buf + pos);
	*data_len = vc_get_be32(buf + pos + 4);
	if (*type == QCOW2_EXT_END)
		return 0;
	if (*data_len > len - pos - 8) {
		*why = "qcow2 header extension is larger than the first cluster";
		return -EINVAL;
	}
	*data_off = pos + 8;
	*off = pos + 8 + (((size_t)*data_len + 7) & ~(size_t)7);
	return 1;
}

/* The LUKS header's location from the data of a QCOW2_EXT_FDE extension. */
static inline int qcow2_fde_decode(const u8 *data, u32 data_len, u64 *offset,
				   u64 *length, const char **why)
{
	if (data_len < 16) {
		*why = "qcow2 encryption header extension is too short";
		return -EINVAL;
	}
	*offset = vc_get_be64(data);
	*length = vc_get_be64(data + 8);
	return 0;
}

/* Offset of an L2 table from an L1 entry; 0 means not allocated. */
static inline int qcow2_l1_decode(const struct qcow2_header *h, u64 entry,
				  u64 *l2_offset, const char **why)
{
	*l2_offset = entry & QCOW2_OFFSET_MASK;
	if (entry & QCOW2_L1_RESERVED) {
		*why = "qcow2 L1 entry has reserved bits set";
		return -EINVAL;
	}
	if (*l2_offset & (qcow2_cluster_size(h) - 1)) {
		*why = "qcow2 L2 table is not cluster aligned";
		return -EINVAL;
	}
	return 0;
}

enum qcow2_kind {
	QCOW2_UNALLOCATED,	/* backing file, or zeros without one */
	QCOW2_ZERO,		/* reads as zeros */
	QCOW2_DATA,		/* uncompressed data at host_offset */
	QCOW2_COMPRESSED,	/* compressed cluster at host_offset */
};

struct qcow2_map {
	enum qcow2_kind kind;
	u64 host_offset;	/* bytes: DATA: the subcluster, COMPRESSED: the stream */
	u64 compressed_bytes;	/* COMPRESSED: bytes to read from host_offset */
	bool copied;		/* QCOW2_OFLAG_COPIED: refcount 1, writable in place */
};

/* L1 or L2 entry: the table or cluster it points to has refcount 1. */
static inline bool qcow2_entry_copied(u64 entry)
{
	return entry & QCOW2_OFLAG_COPIED;
}

/*
 * Decode the L2 entry @entry (and @bitmap, the second half of an extended
 * entry, 0 otherwise) for subcluster @sc of its cluster.
 */
static inline int qcow2_l2_decode(const struct qcow2_header *h, u64 entry,
				  u64 bitmap, u32 sc, struct qcow2_map *m,
				  const char **why)
{
	u64 cluster_size = qcow2_cluster_size(h);

	m->host_offset = 0;
	m->compressed_bytes = 0;
	m->copied = false;
	if (sc >= QCOW2_SUBCLUSTERS) {
		*why = "qcow2 subcluster index out of range";
		return -EINVAL;
	}

	if (entry & QCOW2_OFLAG_COMPRESSED) {
		u32 x = 62 - (h->cluster_bits - 8);
		u64 offset = entry & ((1ull << x) - 1);
		/* the sector holding the offset, plus the additional ones */
		u64 sectors = ((entry >> x) & ((1ull << (62 - x)) - 1)) + 1;

		if (qcow2_extended_l2(h) && bitmap) {
			*why = "qcow2 compressed cluster has a subcluster bitmap";
			return -EINVAL;
		}
		if (entry & QCOW2_OFLAG_COPIED || offset >> 56) {
			*why = "qcow2 compressed cluster entry has reserved bits set";
			return -EINVAL;
		}
		m->kind = QCOW2_COMPRESSED;
		m->host_offset = offset;
		m->compressed_bytes = sectors * 512 - (offset & 511);
		return 0;
	}

	if (entry & QCOW2_L2_RESERVED ||
	    (qcow2_extended_l2(h) && (entry & QCOW2_OFLAG_ZERO)) ||
	    (h->version == 2 && (entry & QCOW2_OFLAG_ZERO))) {
		*why = "qcow2 L2 entry has reserved bits set";
		return -EINVAL;
	}
	m->host_offset = entry & QCOW2_OFFSET_MASK;
	if (m->host_offset & (cluster_size - 1)) {
		*why = "qcow2 data cluster is not cluster aligned";
		return -EINVAL;
	}
	m->copied = m->host_offset && qcow2_entry_copied(entry);

	if (qcow2_extended_l2(h)) {
		u32 alloc_bits = bitmap & 0xffffffffu;
		bool alloc = alloc_bits & (1u << sc);
		bool zero = bitmap & (1ull << (sc + QCOW2_SUBCLUSTERS));

		/* As QEMU, judge the whole entry, not only this subcluster. */
		if (alloc_bits & (bitmap >> QCOW2_SUBCLUSTERS)) {
			*why = "qcow2 subcluster is both allocated and zero";
			return -EINVAL;
		}
		if (alloc_bits && !m->host_offset) {
			*why = "qcow2 allocated subcluster has no host cluster";
			return -EINVAL;
		}
		if (alloc) {
			m->kind = QCOW2_DATA;
			m->host_offset += (u64)sc << qcow2_subcluster_bits(h);
		} else {
			m->kind = zero ? QCOW2_ZERO : QCOW2_UNALLOCATED;
		}
		return 0;
	}

	if (entry & QCOW2_OFLAG_ZERO)
		m->kind = QCOW2_ZERO;
	else if (m->host_offset)
		m->kind = QCOW2_DATA;
	else
		m->kind = QCOW2_UNALLOCATED;
	return 0;
}

/*
 * Snapshot table: nb_snapshots entries from snapshots_offset, each a fixed
 * part, extra data, the ID and the name, padded to 8 bytes. QEMU's limits.
 */
#define QCOW2_SNAPSHOT_FIXED		40
#define QCOW2_MAX_SNAPSHOTS		65536
#define QCOW2_MAX_SNAPSHOT_EXTRA	1024
#define QCOW2_MAX_SNAPSHOTS_BYTES	(64u << 20)

struct qcow2_snapshot {
	u64 l1_table_offset;	/* bytes: the snapshot's L1 table */
	u32 l1_size;		/* its entries */
	u32 entry_bytes;	/* this entry in the table, padding included */
};

/* Check the table's place: before any entry is read. */
static inline int qcow2_snapshots_check(const struct qcow2_header *h,
					const char **why)
{
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		*why = "qcow2 image has too many snapshots";
		return -EINVAL;
	}
	if (h->nb_snapshots &&
	    (h->snapshots_offset & (qcow2_cluster_size(h) - 1))) {
		*why = "qcow2 snapshot table is not cluster aligned";
		return -EINVAL;
	}
	return 0;
}

/* Decode a snapshot entry from its fixed part @buf (QCOW2_SNAPSHOT_FIXED bytes). */
static inline int qcow2_snapshot_decode(const struct qcow2_header *h,
					const u8 *buf, struct qcow2_snapshot *s,
					const char **why)
{
	u32 extra = vc_get_be32(buf + 36);

	s->l1_table_offset = vc_get_be64(buf);
	s->l1_size = vc_get_be32(buf + 8);
	if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
		*why = "qcow2 snapshot has too much extra data";
		return -EINVAL;
	}
	if ((u64)s->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		*why = "qcow2 snapshot L1 table is too large";
		return -EINVAL;
	}
	if (s->l1_table_offset & (qcow2_cluster_size(h) - 1)) {
		*why = "qcow2 snapshot L1 table is not cluster aligned";
		return -EINVAL;
	}
	s->entry_bytes = (QCOW2_SNAPSHOT_FIXED + extra + vc_get_be16(buf + 12) +
			  vc_get_be16(buf + 14) + 7) & ~7u;
	return 0;
}

/* Refcount table entry: the refcount block's offset, 0 if none. */
#define QCOW2_REFT_RESERVED		0x1ffull

static inline int qcow2_reftable_decode(const struct qcow2_header *h,
					u64 entry, u64 *block_offset,
					const char **why)
{
	*block_offset = entry & ~QCOW2_REFT_RESERVED;
	if (entry & QCOW2_REFT_RESERVED) {
		*why = "qcow2 refcount table entry has reserved bits set";
		return -EINVAL;
	}
	if (*block_offset & (qcow2_cluster_size(h) - 1)) {
		*why = "qcow2 refcount block is not cluster aligned";
		return -EINVAL;
	}
	return 0;
}

/* log2 of the number of refcounts in a refcount block (one cluster). */
static inline u32 qcow2_refblock_bits(const struct qcow2_header *h)
{
	return h->cluster_bits + 3 - h->refcount_order;
}

/* Byte of a refcount block that holds refcount @index. */
static inline u64 qcow2_refcount_byte(const struct qcow2_header *h, u64 index)
{
	return (index << h->refcount_order) >> 3;
}

/*
 * Refcount @index, given @p, the byte that holds it (qcow2_refcount_byte).
 * Widths below 8 bits are packed from the least significant bit; wider
 * ones are big-endian.
 */
static inline u64 qcow2_refcount_get(const struct qcow2_header *h,
				     const u8 *p, u64 index)
{
	u32 bits = 1u << h->refcount_order;

	switch (h->refcount_order) {
	case 0:
	case 1:
	case 2:
		return (p[0] >> (bits * (index & (7 >> h->refcount_order)))) &
		       ((1u << bits) - 1);
	case 3:
		return p[0];
	case 4:
		return vc_get_be16(p);
	case 5:
		return vc_get_be32(p);
	default:
		return vc_get_be64(p);
	}
}

static inline void qcow2_refcount_set(const struct qcow2_header *h, u8 *p,
				      u64 index, u64 value)
{
	u32 bits = 1u << h->refcount_order;
	u32 shift, mask;

	switch (h->refcount_order) {
	case 0:
	case 1:
	case 2:
		shift = bits * (index & (7 >> h->refcount_order));
		mask = ((1u << bits) - 1) << shift;
		p[0] = (p[0] & ~mask) | ((value << shift) & mask);
		break;
	case 3:
		p[0] = value;
		break;
	case 4:
		vc_put_be16(p, value);
		break;
	case 5:
		vc_put_be32(p, value);
		break;
	default:
		vc_put_be64(p, value);
		break;
	}
}

/* The largest refcount a width holds. */
static inline u64 qcow2_refcount_max(const struct qcow2_header *h)
{
	return h->refcount_order == 6 ? ~0ull :
	       (1ull << (1u << h->refcount_order)) - 1;
}

#endif /* VHDCRYPT_QCOW2_H */
