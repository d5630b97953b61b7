/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - OpenXT (blktap/tapdisk) encrypted VHD keys: key
 * directories, key file names, 512-before-256 preference, the key hash check
 * and tapdisk's per-image chain walk (Documentation/vhdcryptsetup.8,
 * "OPENXT KEYS"). The scheme itself is vc_scheme_openxt (scheme.h).
 */
#ifndef VC_SCHEME_OPENXT_H
#define VC_SCHEME_OPENXT_H

#include <stdbool.h>
#include <stddef.h>

#include "chain.h"
#include "secret.h"

#define VC_OPENXT_DEFAULT_KEYDIR "/config/platform-crypto-keys"
#define VC_OPENXT_ENV3 "TAPDISK3_CRYPTO_KEYDIR"
#define VC_OPENXT_ENV2 "TAPDISK2_CRYPTO_KEYDIR"
#define VC_OPENXT_CIPHER "aes-xts-plain"

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
 * must hold at least bits/8 bytes (only those are read). Returns 0 (*key
 * and *path set), -ENOENT (no file) or another -errno; *note (malloc'd, may
 * stay NULL) says which file was ignored. Records no error message.
 */
int vc_openxt_find_key(const struct vc_keydirs *kd, const char *basename,
		       struct vc_secret **key, char **path, char **note);

/* SHA256(nonce || key) into out; 0 or -EIO. */
int vc_openxt_hash(const unsigned char nonce[32], const struct vc_secret *key,
		   unsigned char out[32]);
/* The key matches the key hash: 0; -ENOKEY if not, -EIO if it cannot be computed. */
int vc_openxt_check_key(const struct vc_keyhash *kh, const struct vc_secret *key);

/*
 * tapdisk's chain_find_keyed_vhd() for layer i of c: walk up from it
 * through its VHD parents to the first image with a key file, check that
 * key, and return it (*key NULL: the image is not encrypted). top_key, if
 * not NULL, is the key of layer 0 given directly (named top_key_name)
 * instead of a key file. *keyfile (malloc'd) names the key used.
 * Errors (message recorded): -ENOKEY wrong or missing key, -EACCES key file
 * for an image without key hash, other -errno.
 */
int vc_openxt_resolve(const struct vc_chain *c, int i, const struct vc_keydirs *kd,
		      const struct vc_secret *top_key, const char *top_key_name,
		      struct vc_secret **key, char **keyfile);
/* Has layer i (a VHD) a key hash, or an ancestor it would take a key from? */
bool vc_openxt_keyed(const struct vc_chain *c, int i);

#endif
