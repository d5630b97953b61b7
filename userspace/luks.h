/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - LUKS1/LUKS2 through libcryptsetup. luks.c is the only file
 * that uses libcryptsetup (including its safe memory allocator).
 */
#ifndef VC_LUKS_H
#define VC_LUKS_H

#include <stdint.h>
#include "secret.h"
#include "util.h"

struct vc_luks_info {
	char type[8];		/* "LUKS1" / "LUKS2" */
	char cipher[128];	/* dm-crypt syntax, e.g. "aes-xts-plain64" */
	size_t key_size;	/* bytes */
	uint64_t data_offset;	/* payload offset, 512-byte sectors */
	uint64_t iv_offset;	/* 512-byte sectors (0 for LUKS) */
	char uuid[40];
	int keyslot;		/* the slot that opened, -1 before unlocking */
};

void vc_luks_init(void);
/* Read the header at hdr (a file or block device) without any passphrase. */
int vc_luks_probe(const char *hdr, struct vc_luks_info *info);
/*
 * Unlock the header at hdr with passphrases from src (label names the image
 * in prompts and errors) and return the volume key in safe memory.
 * key_slot: -1 = any.
 */
int vc_luks_unlock(const char *hdr, const char *label, struct vc_secret_src *src,
		   int key_slot, struct vc_luks_info *info, struct vc_key **vk);

#endif
