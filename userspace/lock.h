/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - QEMU's image locking. QEMU (block/file-posix.c) takes
 * shared OFD locks on single bytes of an image file: byte 100 + p for each
 * permission p it holds, byte 200 + p for each one it does not share, and
 * refuses an image when another open file description holds a byte that
 * conflicts. vhdcryptsetup takes the same bytes as a QEMU user of the image
 * would, on the file description it hands to the loop device, so the locks
 * live exactly as long as the loop device.
 */
#ifndef VC_LOCK_H
#define VC_LOCK_H

#include <stdbool.h>

/*
 * Lock the image open at fd as QEMU locks a qcow2 or VHD image it reads
 * (write false) or writes (write true). -EBUSY (with a message naming path)
 * if a QEMU, or another vhdcryptsetup mapping, uses it in a conflicting
 * way; the locks taken so far stay until fd is closed.
 */
int vc_lock_image(int fd, const char *path, bool write);
/* Drop the write locks of vc_lock_image(fd, path, true): now a reader's. */
int vc_lock_downgrade(int fd);

#endif
