/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - key schemes: how each layer of a chain is decrypted, and
 * where its key comes from. One interface, four implementations:
 *
 *   scheme-openxt.c  OpenXT VHD: key files in key directories, key hash
 *   scheme-luks.c    qcow2 with LUKS inside (QEMU's encrypt.format=luks)
 *   scheme-aes.c     legacy qcow2 AES (crypt_method 1)
 *   scheme-header.c  a detached LUKS header (--header) over the whole disk
 *
 * Unlocking a chain has two steps. prepare reads every layer's key metadata
 * without any secret (so that a wrong option, a damaged header or a missing
 * kernel feature is reported before a passphrase is asked for); unlock then
 * derives the keys (passphrases, key files, the key derivation function).
 */
#ifndef VC_SCHEME_H
#define VC_SCHEME_H

#include <stdbool.h>
#include <stdint.h>

#include "chain.h"
#include "loop.h"
#include "passphrase.h"
#include "luks.h"
#include "secret.h"

struct vc_keydirs;
struct vc_unlock;

/* How one layer is decrypted: what the kernel needs. */
struct vc_crypt {
	const struct vc_scheme *scheme;
	char cipher[128];	/* dm-crypt syntax, "none" */
	struct vc_secret *key;	/* NULL: not encrypted */
	bool iv_host;		/* IVs from the host sector (qcow2 LUKS) */
	bool whole_disk;	/* the cipher covers holes and backing data (--header) */
	uint64_t iv_offset;	/* 512-byte sectors */
	uint64_t data_offset;	/* 512-byte sectors: the mapped device starts there */
	unsigned int sector_size;	/* bytes of the encryption data unit, 0: 512 */
	char *key_source;	/* OpenXT: the key file used, for messages */
	/* scheme state between prepare and unlock */
	struct vc_luks *luks;	/* a loaded LUKS header */
	struct vc_loop loop;	/* the LUKS region of a qcow2 */
};

struct vc_scheme {
	const char *name;	/* "none", "openxt", "luks", "aes", "luks-header" */
	const char *tag;	/* in the DM UUID: "NONE", "OPENXT", ... */
	/* Layer i of c: key metadata into out, no secret (NULL: nothing to read). */
	int (*prepare)(struct vc_unlock *u, const struct vc_chain *c, int i,
		       struct vc_crypt *out);
	/* Layer i of c: the key into out (NULL: no key). */
	int (*unlock)(struct vc_unlock *u, const struct vc_chain *c, int i,
		      struct vc_crypt *out);
};

extern const struct vc_scheme vc_scheme_none, vc_scheme_openxt, vc_scheme_luks,
	vc_scheme_aes, vc_scheme_header;

/* Where keys come from: the options of open. */
struct vc_key_opts {
	struct vc_passphrase_src *pass;	/* passphrases: LUKS, AES */
	const char *key_file;		/* --key-file: for an OpenXT top image, its raw key */
	const char *volume_key_file;	/* --volume-key-file: the top image's key */
	const char *key_dir;		/* --key-dir, NULL: the default list */
	const char *header;		/* --header */
	int key_slot;			/* --key-slot, -1: any */
	bool dry_run;			/* no device: a qcow2 LUKS region still needs a loop */
};

/* The state of unlocking one chain. */
struct vc_unlock {
	const struct vc_key_opts *o;
	struct vc_keydirs *keydirs;	/* OpenXT key directories, parsed once */
};

/* The scheme that unlocks layer i of c (for a VHD the OpenXT walk decides). */
const struct vc_scheme *vc_layer_scheme(const struct vc_key_opts *o, const struct vc_chain *c,
					int i);
/*
 * The encryption layer i has, from the metadata alone (probe): a VHD
 * without key hash is "openxt" when an ancestor it would inherit a key from
 * has one.
 */
const struct vc_scheme *vc_layer_encryption(const struct vc_chain *c, int i);
/* The scheme of a DM UUID tag; NULL if unknown. */
const struct vc_scheme *vc_scheme_by_tag(const char *tag);

/* prepare, then unlock, every layer of c into crypt[c->n]. */
int vc_chain_prepare(struct vc_unlock *u, const struct vc_chain *c, struct vc_crypt *crypt);
int vc_chain_unlock(struct vc_unlock *u, const struct vc_chain *c, struct vc_crypt *crypt);
void vc_unlock_done(struct vc_unlock *u);
void vc_crypt_clear(struct vc_crypt *crypt, int n);

/* Helpers of the schemes. */
/* The top image's key from --volume-key-file; *key NULL if it is not given. */
static inline int vc_volume_key(const struct vc_key_opts *o, struct vc_secret **key)
{
	*key = NULL;
	if (!o->volume_key_file)
		return 0;
	return vc_secret_read_file(o->volume_key_file, "--volume-key-file", 0, 0, key, NULL);
}

/* (scheme-luks.c)
 * A LUKS header of layer i: prepare loads it into out->luks (freed by
 * vc_crypt_clear()), unlock gets the volume key.
 */
int vc_luks_prepare(struct vc_crypt *out, const char *hdr, const char *label,
		    struct vc_luks_info *info);
int vc_luks_unlock_layer(struct vc_unlock *u, int i, struct vc_crypt *out);

#endif
