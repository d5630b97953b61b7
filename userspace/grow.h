/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - room to grow for images mapped read-write. A loop device
 * has a fixed size, and the kernel target allocates at the end of the
 * image's data but never past the end of its device: open extends the file
 * sparsely to the most the image can need, and close trims it back to the
 * end of its data. A state file under /run/vhdcryptsetup remembers the size
 * before open, which the trim never goes below.
 */
#ifndef VC_GROW_H
#define VC_GROW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"

/*
 * Bytes a qcow2 of file_size bytes can grow to: every cluster of the
 * virtual disk, an L2 table for every L1 entry, the refcount blocks for
 * all of it, room for the refcount table to move and grow, some slack.
 */
uint64_t vc_qcow2_max_size(const struct qcow2_header *h, uint64_t file_size);
/*
 * Bytes a dynamic or differencing VHD whose data ends at data_end bytes can
 * grow to: free_blocks more blocks, placed as the kernel places them (the
 * data of a block 4 KiB aligned), and the footer.
 */
uint64_t vc_vhd_max_size(const struct vhd_header *h, uint64_t data_end, uint64_t free_blocks);

/*
 * Where the data of the image open at fd ends (bytes): qcow2, the end of
 * the last cluster with a refcount; VHD, the end of the last block or of
 * the metadata, without the trailing footer (free_blocks: the BAT entries
 * that are unused; may be NULL).
 */
int vc_grow_data_end(int fd, const struct vc_image *img, uint64_t *end, uint64_t *free_blocks);

/* Does a read-write mapping of img need the file extended (and trimmed)? */
bool vc_grow_needed(const struct vc_image *img);
/*
 * Extend the file open at fd to the most img can need; a dynamic or
 * differencing VHD gets a copy of its footer at the new end. *grown: the
 * file was extended.
 */
int vc_grow_extend(int fd, const struct vc_image *img, bool *grown);
/*
 * Trim the image file at path back to the end of its data, never below
 * min_size bytes; a VHD gets its footer at the new end first (the copy at
 * offset 0 is not touched). The file must not be mapped.
 */
int vc_grow_trim(const char *path, uint64_t min_size);

/* The size of the file before open, kept for close under the device's name. */
int vc_grow_state_save(const char *name, const struct stat *st, uint64_t size);
/* 0 and *size if there is a state for name and the file (st) is the same; -ENOENT. */
int vc_grow_state_load(const char *name, const struct stat *st, uint64_t *size);
void vc_grow_state_remove(const char *name);

#endif
