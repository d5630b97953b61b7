/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - writers of new images: the qcow2 (version 3) and VHD
 * (fixed, dynamic, differencing) structures, laid out as qemu-img create and
 * vhd-util create/snapshot lay them out, and the OpenXT key hash of an
 * existing VHD (tapdisk's batmap header, or the extended attribute).
 * Nothing here knows LUKS: the LUKS region of a qcow2 is bytes given by the
 * caller (made by libcryptsetup, luks.h).
 */
#ifndef VC_CREATE_H
#define VC_CREATE_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"
#include "secret.h"

/* One new image: what create (and convert, for its destination) makes. */
struct vc_create {
	const char *path;		/* a new file, or an existing file or block device */
	enum vc_fmt fmt;		/* VC_FMT_QCOW2 or VC_FMT_VHD */
	uint64_t size;			/* bytes, 0: the backing image's */
	bool fixed;			/* VHD: fixed instead of dynamic */
	unsigned int cluster_bits;	/* qcow2, 0: 16 (64 KiB) */
	const char *backing;		/* qcow2 backing file or VHD parent, NULL: none */
	bool batch;			/* overwrite without asking */
	/* LUKS: inside the qcow2, or the detached header */
	const struct vc_secret *pass;	/* NULL: not encrypted */
	const char *cipher;		/* NULL: aes-xts-plain64 */
	size_t key_bytes;		/* 0: 64 */
	const struct vc_secret *volume_key;	/* NULL: a random one */
	const char *header;		/* a detached header to make, NULL: none */
	const char *luks_type;		/* of the header: "luks1", "luks2" (NULL) */
	const char *pbkdf;
	unsigned int iter_time;
	/* OpenXT key of a VHD */
	const char *key_dir;		/* a new key file in this directory */
	const struct vc_secret *vhd_key;	/* or this key */
	const u8 *nonce;		/* 32 bytes, NULL: zeros */
	/* results */
	char *key_path;			/* the key file written (malloc'd) */
	struct vc_secret *key;		/* the OpenXT key used (a copy) */
};

/*
 * Make the image (and its key file or detached header). On failure nothing
 * new is left behind: a file it created, a key file, a header file. An
 * existing file or device is overwritten only after vc_confirm().
 */
int vc_create_image(struct vc_create *c);
void vc_create_done(struct vc_create *c);

/*
 * A new passphrase from key_file (its whole content, as cryptsetup reads
 * it; "-": standard input, or on a terminal a prompt asked twice).
 */
int vc_new_passphrase(const char *key_file, uint64_t offset, size_t size, const char *label,
		      struct vc_secret **out);

struct vc_qcow2_new {
	uint64_t size;			/* bytes: the virtual disk */
	unsigned int cluster_bits;	/* 9 .. 21 */
	const char *backing_name;	/* stored as given, NULL: none */
	const char *backing_fmt;	/* "qcow2", "vpc", "raw" */
	uint64_t luks_len;		/* bytes of the LUKS region, 0: not encrypted */
};

/*
 * Write a new qcow2 into fd (a new file, or a block device: whole clusters
 * are written, nothing past them). *luks_off receives the offset of the LUKS
 * region (cluster aligned, luks_len bytes, zeros), *end the bytes used.
 */
int vc_qcow2_write_new(int fd, const char *path, const struct vc_qcow2_new *n,
		       uint64_t *luks_off, uint64_t *end);

struct vc_vhd_new {
	uint64_t size;			/* bytes: the virtual disk */
	bool fixed;
	const struct vc_image *parent;	/* differencing: the parent VHD, NULL: none */
	const char *parent_rel;		/* the parent as the locators store it */
	uint64_t device_size;		/* bytes of a block device (footer in its last sector), 0 */
	const struct vc_keyhash *keyhash;	/* NULL: none */
};

/* Write a new VHD into fd; *end receives the bytes used (the trailing footer's end). */
int vc_vhd_write_new(int fd, const char *path, const struct vc_vhd_new *n, uint64_t *end);

/*
 * Store kh (kh->set false: remove it) as the key hash of img, an existing
 * dynamic or differencing VHD opened from path: in tapdisk's batmap header,
 * else (no batmap) in the extended attribute, as vhd-util key -s does.
 */
int vc_vhd_write_keyhash(const struct vc_image *img, const struct vc_keyhash *kh);

#endif
