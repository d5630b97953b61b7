/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - the image model: one image file (or block device) and what
 * its metadata says, read through the shared decoders of include/vhdcrypt/.
 * Nothing here knows keys or devices (see scheme.h and cmd-open.c); chains
 * of images are in chain.h.
 */
#ifndef VC_IMAGE_H
#define VC_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <vhdcrypt/types.h>
#include <vhdcrypt/vhd.h>
#include <vhdcrypt/qcow2.h>

#define VC_KEYHASH_XATTR "user.com.citrix.xenclient.backend.keyhash"

enum vc_fmt {
	VC_FMT_UNKNOWN = 0,
	VC_FMT_VHD,
	VC_FMT_QCOW2,
	VC_FMT_RAW,		/* a backing file, or a payload under --header */
};

/* tapdisk's struct vhd_keyhash: cookie(1) nonce(32) hash(32) */
struct vc_keyhash {
	bool set;			/* cookie == 1 */
	unsigned char nonce[32];
	unsigned char hash[32];
};

struct vc_image {
	char *path;		/* as given, or as resolved from the child */
	enum vc_fmt fmt;
	bool is_blockdev;
	struct stat st;
	uint64_t file_size;	/* bytes */
	uint64_t virtual_size;	/* bytes */
	char uuid[37];		/* 8-4-4-4-12: VHD footer, qcow2 LUKS, else from the file */
	char *damage;		/* why a readable image is damaged, NULL if it is not */

	struct {
		struct vhd_footer footer;
		struct vhd_header header;	/* dynamic and differencing only */
		struct vc_keyhash keyhash;	/* batmap header, else the xattr */
	} vhd;

	struct {
		struct qcow2_header header;
		uint64_t fde_offset;	/* bytes: the LUKS region (crypt_method 2) */
		uint64_t fde_length;	/* bytes */
		char *backing_fmt;	/* backing format extension, NULL if none */
		char *backing_name;	/* as stored in the image, NULL if none */
		char luks_uuid[40];	/* of the LUKS region, from libblkid */
		int luks_version;	/* 1 or 2, 0 if unknown */
	} qcow2;

	/* the parent (VHD) or backing file (qcow2) */
	char *parent_path;	/* the file found; NULL without one or if not found */
	char *parent_tried;	/* "a, b": the candidates, for messages */
	enum vc_fmt parent_fmt;	/* expected; VC_FMT_UNKNOWN: detect */
};

const char *vc_fmt_name(enum vc_fmt f);		/* "vhd", "qcow2", "raw" */
/* --type and qcow2 backing formats: vhd (or vpc, QEMU's name), qcow2, raw. */
int vc_fmt_parse(const char *s, enum vc_fmt *f);

/* vc_image_open() flags */
#define VC_OPEN_ALLOW_RAW	1	/* an unrecognised file is raw, not an error */
#define VC_OPEN_PARENT_OPTIONAL	2	/* a missing parent is no error (probe, status) */

/*
 * Open and parse one image (not its parent). want: VC_FMT_UNKNOWN to detect,
 * else the format the content must have (VC_FMT_RAW: anything).
 */
int vc_image_open(const char *path, enum vc_fmt want, unsigned int flags,
		  struct vc_image **out);
void vc_image_free(struct vc_image *img);

/* Format parsers, called by vc_image_open() (image-vhd.c, image-qcow2.c). */
int vc_vhd_parse(int fd, struct vc_image *img, const u8 *head, const u8 *tail, bool tail_ok,
		 unsigned int flags);
int vc_qcow2_parse(int fd, struct vc_image *img, unsigned int flags);
/*
 * Read a table of entries of esize bytes at off (the VHD BAT, the qcow2 L1
 * table) in pieces and call visit for each; stops at visit's first error.
 */
int vc_image_scan(int fd, const struct vc_image *img, const char *what, uint64_t off,
		  uint64_t entries, unsigned int esize,
		  int (*visit)(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx),
		  void *ctx);
/*
 * Why the kernel target cannot map img read-write with crypto data units of
 * sector_size bytes (0: 512), as a message; NULL if it can.
 */
const char *vc_image_write_refusal(const struct vc_image *img, unsigned int sector_size);
/* A uuid for an image without one: st_dev and inode (device number for a block device). */
void vc_image_uuid_from_file(struct vc_image *img);

/* Pure helpers (unit-tested). */
enum vc_fmt vc_detect(const u8 *head, size_t head_len, const u8 *tail512, bool have_tail);
/* Decode a parent locator's bytes as libvhd does; malloc'd path or NULL. */
char *vc_vhd_locator_decode(u32 code, const u8 *data, size_t len);
/*
 * Candidate path for locator path loc of the child at child_path (libvhd's
 * vhd_find_parent()): absolute as is; starting with "." joined to the child's
 * directory; else joined to the child's real directory. "." components are
 * dropped (the same file, shorter messages).
 */
char *vc_vhd_parent_candidate(const char *child_path, const char *loc);
/* qcow2 backing file name relative to the child, as QEMU does; NULL if unsupported. */
char *vc_qcow2_backing_path(const char *child_path, const char *name);
/* Format 16 bytes as 8-4-4-4-12. */
void vc_uuid_fmt(char out[37], const u8 uuid[16]);

#endif
