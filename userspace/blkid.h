/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - libblkid: LUKS header detection (also inside a byte range
 * of an image file, without a loop device) and device names.
 */
#ifndef VC_BLKID_H
#define VC_BLKID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Is there a LUKS1/LUKS2 header at [off, off + size) of path (size 0 = to
 * the end)? Returns 1 (uuid and version filled), 0 (no), -errno.
 */
int vc_blkid_luks(const char *path, uint64_t off, uint64_t size,
		  char *uuid, size_t uuid_len, int *version);
struct vc_partition {
	int number;		/* as the kernel numbers it: 1..4 primary, 5.. logical */
	uint64_t start;		/* 512-byte sectors */
	uint64_t sectors;
};
/*
 * The partitions of the partition table on device path (DOS extended
 * partitions, the containers of logical ones, left out), at most max of
 * them, each inside the device's dev_sectors; their number, or -errno.
 */
int vc_blkid_partitions(const char *path, uint64_t dev_sectors, struct vc_partition *parts,
			int max);
/* "/dev/<name>" of a block device (malloc'd), NULL if unknown. */
char *vc_blkid_devname(dev_t devt);

#endif
