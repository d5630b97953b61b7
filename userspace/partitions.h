/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - the partitions of an opened virtual disk. Device-mapper
 * devices get no partition scan, so, as kpartx does, every partition of
 * /dev/mapper/<name> becomes a linear device <name>p<N> with the DM UUID
 * "part<N>-<the disk's DM UUID>".
 */
#ifndef VC_PARTITIONS_H
#define VC_PARTITIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Map the partitions of the device <name> (dev_t devt, uuid, sectors long);
 * the number mapped, or -errno (then none is left).
 */
int vc_partitions_add(const char *name, const char *uuid, dev_t devt, uint64_t sectors,
		      bool writable);
/* Remove the partition devices over devt (made for uuid); 0 or -errno. */
int vc_partitions_remove(const char *uuid, dev_t devt);

#endif
