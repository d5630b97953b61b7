/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - image files: format detection, header parsing (through the
 * shared decoders in include/vhdcrypt/), key hash, and backing chains
 * (VHD parent locators, qcow2 backing file names) resolved like tapdisk and
 * QEMU do.
 */
#ifndef VC_IMAGE_H
#define VC_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <vhdcrypt/types.h>
#include <vhdcrypt/vhd.h>
#include <vhdcrypt/qcow2.h>

#include "loop.h"
#include "openxt.h"
#include "util.h"

#define VC_CHAIN_MAX 32		/* layers */
#define VC_KEYHASH_XATTR "user.com.citrix.xenclient.backend.keyhash"

enum vc_fmt {
	VC_FMT_UNKNOWN = 0,
	VC_FMT_VHD,
	VC_FMT_QCOW2,
	VC_FMT_RAW,		/* only as a backing file */
};

enum vc_enc {
	VC_ENC_NONE = 0,
	VC_ENC_OPENXT,		/* VHD with a key hash (or inheriting one) */
	VC_ENC_LUKS,		/* qcow2 crypt_method 2 */
	VC_ENC_AES,		/* qcow2 crypt_method 1 (legacy) */
	VC_ENC_HEADER,		/* detached LUKS header (--header) */
};

struct vc_layer {
	char *path;		/* as given / as resolved from the child (not normalised) */
	enum vc_fmt fmt;
	bool is_blockdev;
	struct stat st;
	uint64_t file_size;	/* bytes */
	uint64_t virtual_size;	/* bytes */
	char uuid[37];		/* 8-4-4-4-12, lower case */
	const char *uuid_source;	/* "footer", "luks", "inode" */

	/* VHD */
	struct vhd_footer vf;
	struct vhd_header vh;	/* dynamic / differencing only */
	struct vc_keyhash kh;
	const char *kh_source;	/* "batmap", "xattr", "none" */

	/* qcow2 */
	struct qcow2_header qh;
	uint64_t fde_offset;	/* bytes, LUKS region (crypt_method 2) */
	uint64_t fde_length;	/* bytes */
	char *backing_name;	/* as stored in the image */
	char *backing_fmt;	/* backing format extension, NULL if none */
	char luks_uuid[40];	/* from the LUKS region, via libblkid */
	int luks_version;	/* 1 or 2, 0 if unknown */

	/* chain */
	char *parent_path;	/* the path found, NULL without parent */
	char *parent_tried;	/* "a, b, c": candidates, for errors */
	enum vc_fmt parent_fmt;	/* expected, VC_FMT_UNKNOWN = detect */
	struct vc_layer *parent;
	int depth;		/* 0 = top */

	/* activation (main/open) */
	enum vc_enc enc;
	struct vc_loop loop;	/* the image's loop device, if a file */
	dev_t devt;		/* the device in the table */
	char cipher[128];
	struct vc_key *key;
	char keyfile[4096];	/* OpenXT: the key file used */
	bool iv_host;
	bool whole_disk;	/* the cipher covers holes and backing data too */
	uint64_t iv_offset;	/* 512-byte sectors */
	uint64_t data_offset;	/* 512-byte sectors */
	char dm_name[128];
	char dm_uuid[129];
	dev_t dm_devt;
	bool dm_created;
};

const char *vc_fmt_name(enum vc_fmt f);		/* "vhd", "qcow2", "raw" */
const char *vc_enc_name(enum vc_enc e);		/* "none", "openxt", "luks", "aes", "luks-header" */
int vc_fmt_parse(const char *s, enum vc_fmt *f);

/* vc_layer_open() flags */
#define VC_OPEN_ALLOW_RAW	1	/* an unrecognised file is a raw layer, not an error */
#define VC_OPEN_PARENT_OPTIONAL	2	/* a missing parent is no error (probe, status) */

/*
 * Open and parse one image (no parent). want: VC_FMT_UNKNOWN to detect,
 * else the format the content must have.
 */
int vc_layer_open(const char *path, enum vc_fmt want, unsigned int flags, struct vc_layer **out);
void vc_layer_free(struct vc_layer *l);

/* Open top and all its parents; errors name the missing parent and the paths tried. */
int vc_chain_open(const char *path, enum vc_fmt want, struct vc_layer **top);
void vc_chain_free(struct vc_layer *top);
int vc_chain_length(const struct vc_layer *top);

/* Pure helpers (unit-tested). */
enum vc_fmt vc_detect(const u8 *head, size_t head_len, const u8 *tail512, bool have_tail);
/* Decode a parent locator's bytes as libvhd does; malloc'd path or NULL. */
char *vc_vhd_locator_decode(u32 code, const u8 *data, size_t len);
/*
 * Candidate path for locator path loc of the child at child_path (libvhd's
 * vhd_find_parent()): absolute as is; starting with "." joined to the child's
 * directory without normalising; else joined to the child's real directory.
 */
char *vc_vhd_parent_candidate(const char *child_path, const char *loc);
/* qcow2 backing file name relative to the child, as QEMU does; NULL if unsupported. */
char *vc_qcow2_backing_path(const char *child_path, const char *name);
/* Format 16 bytes as 8-4-4-4-12. */
void vc_uuid_fmt(char out[37], const u8 uuid[16]);

#endif
