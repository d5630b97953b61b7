/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - OpenXT (blktap/tapdisk) encrypted VHD keys: key
 * directories, key file names, 512-before-256 preference, the keyhash check
 * and tapdisk's per-image chain walk (Documentation/vhdcryptsetup.8,
 * "OPENXT KEYS").
 */
#ifndef VC_OPENXT_H
#define VC_OPENXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define VC_OPENXT_DEFAULT_KEYDIR "/config/platform-crypto-keys"
#define VC_OPENXT_ENV3 "TAPDISK3_CRYPTO_KEYDIR"
#define VC_OPENXT_ENV2 "TAPDISK2_CRYPTO_KEYDIR"
#define VC_OPENXT_CIPHER "aes-xts-plain"

/* tapdisk's struct vhd_keyhash: cookie(1) nonce(32) hash(32) */
struct vc_keyhash {
	bool set;			/* cookie == 1 */
	unsigned char nonce[32];
	unsigned char hash[32];
};

struct vc_keydirs {
	char **dirs;
	int n;
	char *source;	/* "--key-dir", "TAPDISK3_CRYPTO_KEYDIR", ... for messages */
	char *list;	/* the list as given, for messages */
};

/* Comma-separated list (legacy blktap2 semantics; empty elements skipped). */
int vc_keydirs_parse(const char *list, const char *source, struct vc_keydirs *kd);
/* $TAPDISK3_CRYPTO_KEYDIR, else $TAPDISK2_CRYPTO_KEYDIR, else the default dir. */
int vc_keydirs_default(struct vc_keydirs *kd);
void vc_keydirs_free(struct vc_keydirs *kd);

/* tapdisk's key name: last path component, cut at the first ".vhd". */
void vc_openxt_basename(const char *path, char *out, size_t len);

/*
 * Find and read the preferred key file for basename: sizes 512 then 256
 * bits; for each size the first directory holding the file wins; the file
 * must hold at least bits/8 bytes (only those are read). Returns 0 (key and
 * path set), -ENOENT (no file) or another -errno. Records no error message.
 */
int vc_openxt_find_key(const struct vc_keydirs *kd, const char *basename,
		       struct vc_key **key, char *path, size_t pathlen,
		       char *note, size_t notelen);

/* SHA256(nonce || key) == hash ? 0 : -ENOKEY */
int vc_openxt_check_key(const struct vc_keyhash *kh, const struct vc_key *key);
void vc_openxt_hash(const unsigned char nonce[32], const struct vc_key *key,
		    unsigned char out[32]);

/* One image of a chain, as the walk sees it. */
struct vc_openxt_node {
	const char *path;		/* as opened (parents: as resolved from the locator) */
	const struct vc_keyhash *kh;
	const struct vc_openxt_node *parent;	/* NULL at the bottom or for a non-VHD parent */
};

/*
 * tapdisk's chain_find_keyed_vhd() for one image: walk up from node to the
 * first image with a key file, check it, and return that key (*key = NULL:
 * the image is not encrypted). top_key, if not NULL, is the key of node
 * itself given directly (--key-file) instead of a key file.
 * Errors (message recorded): -ENOKEY wrong or missing key, -EACCES key file
 * for an image without key hash, other -errno.
 */
int vc_openxt_resolve(const struct vc_openxt_node *node, const struct vc_keydirs *kd,
		      const struct vc_key *top_key, const char *top_key_name,
		      struct vc_key **key, char *keyfile, size_t keyfile_len);

#endif
