/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - libblkid: LUKS header detection (also inside a byte range
 * of an image file, without a loop device) and udev-safe string encoding.
 */
#ifndef VC_BLKID_H
#define VC_BLKID_H

#include <stddef.h>
#include <stdint.h>

/*
 * Is there a LUKS1/LUKS2 header at [off, off + size) of path (size 0 = to
 * the end)? Returns 1 (uuid and version filled), 0 (no), -errno.
 */
int vc_blkid_luks(const char *path, uint64_t off, uint64_t size,
		  char *uuid, size_t uuid_len, int *version);
/* udev-safe encoding of a value (\x20 for space etc.), as blkid -o udev. */
void vc_blkid_encode(const char *in, char *out, size_t len);

#endif
