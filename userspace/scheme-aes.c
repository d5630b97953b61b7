// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - legacy qcow2 AES (crypt_method 1): AES-128-CBC, plain64
 * IV of the virtual sector, and the key is the passphrase itself (QEMU's
 * crypto/block-qcow.c: its first min(strlen, 16) bytes, zero padded). The
 * format stores no key check, so a wrong passphrase maps garbage: say so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scheme.h"
#include "util.h"

#define VC_AES_KEY 16

static int vc_aes_unlock(struct vc_unlock *u, const struct vc_chain *c, int i,
			 struct vc_crypt *out)
{
	const char *path = c->img[i]->path;
	struct vc_secret *pass = NULL;
	size_t n;
	int r = 0;

	vc_warn("%s uses legacy qcow2 AES, which cannot check the passphrase: a wrong one "
		"maps garbage", path);
	if (i == 0)
		r = vc_volume_key(u->o, &out->key);
	if (r)
		return r;
	if (out->key) {
		if (out->key->len != VC_AES_KEY)
			return vc_fail(-EINVAL, "the volume key of legacy qcow2 AES has %d bytes, "
				       "%s holds %zu", VC_AES_KEY, u->o->volume_key_file,
				       out->key->len);
	} else {
		r = vc_passphrase_get(u->o->pass, path, 0, &pass);
		if (r == -EPERM)
			return vc_fail(-EPERM, "no passphrase for %s", path);
		if (r)
			return r;
		out->key = vc_secret_new(VC_AES_KEY);
		if (!out->key) {
			vc_secret_free(pass);
			return -ENOMEM;
		}
		n = strnlen((const char *)pass->data, pass->len);
		memcpy(out->key->data, pass->data, n < VC_AES_KEY ? n : VC_AES_KEY);
		vc_secret_free(pass);
	}
	snprintf(out->cipher, sizeof(out->cipher), "aes-cbc-plain64");
	return 0;
}

const struct vc_scheme vc_scheme_aes = {
	.name = "aes",
	.tag = "AES",
	.unlock = vc_aes_unlock,
};
