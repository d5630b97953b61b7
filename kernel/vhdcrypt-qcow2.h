/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow2 state shared by the lookup side (vhdcrypt-qcow2.c) and the write
 * side (vhdcrypt-qcow2-write.c).
 */
#ifndef DM_VHDCRYPT_QCOW2_H
#define DM_VHDCRYPT_QCOW2_H

#include <vhdcrypt/qcow2.h>

#include "vhdcrypt.h"

struct vc_qcow2_alloc;

struct vc_qcow2 {
	struct qcow2_header h;
	u32 cluster_bits;	/* log2(cluster size in bytes) */
	u32 l2_bits;		/* log2(entries per L2 table) */
	u32 sc_bits;		/* log2(subcluster size in bytes) */
	u32 entry_size;		/* bytes per L2 entry: 8 or 16 */
	u64 image_limit;	/* bytes: tables must end before this */
	__be64 *l1;		/* the active L1 table, as on disk */
	u64 l1_entries;		/* entries the virtual disk needs */
	size_t l1_bytes;	/* bytes of L1 in memory */
	bool l1_whole_sectors;	/* l1_bytes is whole sectors of the table */
	struct dm_bufio_client *l2;	/* L2 tables */
	struct mutex dec_lock;	/* creation of dec */
	struct vc_decompressor *dec;	/* at the first compressed cluster */
	struct vc_qcow2_alloc *alloc;	/* writable tables: refcounts etc. */
};

/*
 * A cluster whose L2 entry changes: while busy, the entry its write will
 * give it; then the entry to commit, and the host clusters the disk entry
 * (and entries since) used that the new one does not.
 */
struct vc_qcow2_unit {
	struct vc_unit unit;	/* first: freed with kfree_rcu(unit) */
	u64 entry;		/* the L2 entry lookups see */
	u64 bitmap;		/* and its extended L2 bitmap */
	u64 pending_entry;	/* busy: the entry once the write is done */
	u64 pending_bitmap;
	u64 l2_offset;		/* bytes: where the entry goes */
	struct {
		u64 off, len;	/* bytes: released after the commit */
	} release[2];
	unsigned int nr_release;
};

/*
 * For lookups: the mapping of @cluster if it changed since the last commit.
 * A unit's entry is always the mapping to show, also while it is busy with
 * the next write (whose entry is pending_entry until that write is done).
 */
static inline bool vc_qcow2_unit_mapping(struct vc_target *vc, u64 cluster,
					 u64 *entry, u64 *bitmap)
{
	struct vc_qcow2_unit *qu;
	struct vc_unit *u;
	bool found = false;

	rcu_read_lock();
	u = vc_unit_find(vc, cluster);
	if (u) {
		qu = container_of(u, struct vc_qcow2_unit, unit);
		*entry = qu->entry;
		*bitmap = qu->bitmap;
		found = true;
	}
	rcu_read_unlock();
	return found;
}

struct vc_decompressor *vc_qcow2_decompressor(struct vc_target *vc);

/* vhdcrypt-qcow2-write.c */
int vc_qcow2_open_writable(struct vc_target *vc);
int vc_qcow2_reload_writable(struct vc_target *vc);
void vc_qcow2_close_writable(struct vc_target *vc);
bool vc_qcow2_in_metadata(struct vc_qcow2 *q, u64 host);
void vc_qcow2_write(struct vc_target *vc, struct vc_io *io);
int vc_qcow2_commit(struct vc_target *vc);
void vc_qcow2_release(struct vc_target *vc, u64 off, u64 len);
sector_t vc_qcow2_data_end(struct vc_target *vc);

#endif /* DM_VHDCRYPT_QCOW2_H */
