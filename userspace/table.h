/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - device-mapper table parameters: the one encoder and
 * decoder of the vhdcrypt grammar (Documentation/table-format.md)
 *
 *   <format> <image_dev> <cipher> <key> <iv_offset> [<#opts> <opts>...]
 *
 * and of dm-crypt's, for the raw payloads of detached headers (printed by
 * --dry-run, read back by status; libcryptsetup loads the real table)
 *
 *   <cipher> <key> <iv_offset> <device> <offset> [<#opts> <opts>...]
 */
#ifndef VC_TABLE_H
#define VC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VC_DM_TARGET "vhdcrypt"
#define VC_DM_CRYPT_TARGET "crypt"

enum vc_key_location {
	VC_KEY_NONE,		/* "-": cipher none */
	VC_KEY_TABLE,		/* hex digits in the table */
	VC_KEY_KEYRING,		/* ":<bytes>:<type>:<description>" */
};

struct vc_table {
	const char *format;	/* vhdcrypt: "vhd" or "qcow2" */
	const char *image;	/* "major:minor" (a path for --dry-run) */
	const char *cipher;	/* dm-crypt syntax, or "none" */
	const char *key;	/* hex, keyring reference or "-"; key material! */
	uint64_t iv_offset;	/* 512-byte sectors */
	const char *backing;	/* vhdcrypt: the lower device, NULL if none */
	bool iv_host;		/* vhdcrypt: iv_sector:host */
	bool whole_disk;	/* vhdcrypt: the cipher covers holes and backing data */
	uint64_t data_offset;	/* 512-byte sectors (dm-crypt: <offset>) */
	unsigned int sector_size;	/* bytes of the encryption data unit, 0: 512 */
	bool iv_large_sectors;	/* IVs count in sector_size units */
	bool allow_discards;	/* discards reach the image (writable tables only) */

	/* set by the parsers, which never keep key bytes (key is NULL then) */
	enum vc_key_location key_location;
	size_t key_bytes;
	dev_t image_dev;
	dev_t backing_dev;	/* 0 if none */
};

/*
 * The parameters after the target name, in locked memory (free with
 * vc_safe_free()); mask_key: a hex key as "<hex-key-N-bytes>", for output.
 */
char *vc_table_format(const struct vc_table *t, bool mask_key);
char *vc_crypt_table_format(const struct vc_table *t, bool mask_key);
/*
 * Parse params in place (t's strings point into it; the key is wiped from
 * it). 0 or -EINVAL.
 */
int vc_table_parse(char *params, struct vc_table *t);
int vc_crypt_table_parse(char *params, struct vc_table *t);

#endif
