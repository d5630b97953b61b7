/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - LUKS1/LUKS2 headers and dm-crypt devices through
 * libcryptsetup: no LUKS parsing here, and no other file loads a LUKS
 * header or a dm-crypt table.
 */
#ifndef VC_LUKS_H
#define VC_LUKS_H

#include <stdbool.h>
#include <stdint.h>

#include "passphrase.h"
#include "secret.h"

struct vc_luks_info {
	char type[8];		/* "LUKS1" / "LUKS2" */
	char cipher[128];	/* dm-crypt syntax, e.g. "aes-xts-plain64" */
	size_t key_size;	/* bytes */
	uint64_t data_offset;	/* payload offset, 512-byte sectors */
	uint64_t iv_offset;	/* 512-byte sectors (0 for LUKS) */
	unsigned int sector_size;	/* bytes: the encryption data unit */
	char uuid[40];
};

/* A loaded header (a libcryptsetup context). */
struct vc_luks;

/* Route libcryptsetup's messages to --debug. */
void vc_luks_init(void);
/*
 * Load the header at hdr (a file or block device, or the LUKS region of a
 * qcow2 through a loop device) without any passphrase. label names the
 * image in messages (kept, not copied). Integrity and unfinished
 * reencryption are refused.
 */
int vc_luks_load(const char *hdr, const char *label, struct vc_luks **out,
		 struct vc_luks_info *info);
void vc_luks_free(struct vc_luks *l);
/*
 * The volume key, in locked memory: from vk_in (a volume key file, checked
 * against the header) or with passphrases from src. key_slot: -1 = any.
 */
int vc_luks_unlock(struct vc_luks *l, struct vc_passphrase_src *src, int key_slot,
		   const struct vc_secret *vk_in, struct vc_secret **vk);
/*
 * Create the read-only dm-crypt device name over the payload device data
 * with the volume key (keyring: hand the key to the kernel through the
 * keyring, as cryptsetup does by default for LUKS2).
 */
int vc_luks_activate(struct vc_luks *l, const char *name, const char *data,
		     const struct vc_secret *vk, bool keyring);
/* Remove a dm-crypt device made by vc_luks_activate() (or by cryptsetup). */
int vc_luks_deactivate(const char *name);

#endif
