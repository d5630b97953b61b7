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
 * keyring, as cryptsetup does by default for LUKS2); read-only unless
 * writable, discards passed down with discards.
 */
int vc_luks_activate(struct vc_luks *l, const char *name, const char *data,
		     const struct vc_secret *vk, bool keyring, bool writable, bool discards);
/* Remove a dm-crypt device made by vc_luks_activate() (or by cryptsetup). */
int vc_luks_deactivate(const char *name);

/* A new LUKS header (create, convert). */
struct vc_luks_new {
	const char *type;		/* "LUKS1" or "LUKS2" */
	const char *cipher;		/* dm-crypt syntax, e.g. "aes-xts-plain64" */
	size_t key_size;		/* bytes */
	const char *pbkdf;		/* NULL: pbkdf2 for LUKS1, else libcryptsetup's */
	unsigned int iter_time;		/* ms, 0: libcryptsetup's default */
	unsigned long data_alignment;	/* sectors, 0: libcryptsetup's default */
	const char *data_device;	/* a detached header's payload, NULL: none */
};

/*
 * Format the header at hdr (a file or device) with the volume key vk (NULL:
 * a random one) and key slot 0 for pass. *hdr_bytes (if not NULL) receives
 * the bytes the header and its key slots take (the payload offset).
 */
int vc_luks_format(const char *hdr, const char *label, const struct vc_luks_new *n,
		   const struct vc_secret *vk, const struct vc_secret *pass, uint64_t *hdr_bytes);

/* Key slots of a loaded header (libcryptsetup writes every change). */
int vc_luks_set_pbkdf(struct vc_luks *l, const char *pbkdf, unsigned int iter_time);
/* The slot that pass opens, skipping slot except (-1: none); -EPERM if none. */
int vc_luks_find_slot(struct vc_luks *l, const struct vc_secret *pass, int except);
/* Add newp in slot (-1: the first free one), authorised by oldp; *slot_out the slot. */
int vc_luks_add_key(struct vc_luks *l, int slot, const struct vc_secret *oldp,
		    const struct vc_secret *newp, int *slot_out);
/*
 * Replace the passphrase oldp by newp: newp goes into a free slot and is
 * checked there before the slot of oldp is destroyed, so an interruption
 * leaves one of them working.
 */
int vc_luks_change_key(struct vc_luks *l, int slot, const struct vc_secret *oldp,
		       const struct vc_secret *newp, int *old_slot, int *new_slot);
/* Whether slot is active; the number of slots the type has. */
bool vc_luks_slot_active(struct vc_luks *l, int slot);
int vc_luks_max_slots(struct vc_luks *l);
/* Destroy slot (its key material is overwritten by libcryptsetup). */
int vc_luks_kill_slot(struct vc_luks *l, int slot);
/* cryptsetup luksDump's output on standard output. */
int vc_luks_dump(struct vc_luks *l);
/* The header and key slots into a new file. */
int vc_luks_backup(struct vc_luks *l, const char *file);
/* UUID and volume key size of a header file; 0 or -errno (message recorded). */
int vc_luks_peek(const char *file, struct vc_luks_info *info);
/* Whether vk is the volume key of l. */
int vc_luks_verify_key(struct vc_luks *l, const struct vc_secret *vk);
/* Restore the header backup into hdr (a file or device). */
int vc_luks_restore(const char *hdr, const char *backup, const char *label);
/* Overwrite [0, len) of hdr with random bytes (libcryptsetup's wipe). */
int vc_luks_wipe(const char *hdr, uint64_t len, const char *label);

#endif
