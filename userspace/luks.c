// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - LUKS through libcryptsetup only: no LUKS parsing here.
 *
 * The volume key is obtained with crypt_volume_key_get() into memory from
 * crypt_safe_alloc() (locked, wiped by crypt_safe_free()). The cipher in
 * dm-crypt syntax is "<crypt_get_cipher()>-<crypt_get_cipher_mode()>".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libcryptsetup.h>

#include "luks.h"

void *vc_safe_alloc(size_t len)
{
	return crypt_safe_alloc(len);
}

void vc_safe_free(void *p)
{
	crypt_safe_free(p);
}

void vc_safe_memzero(void *p, size_t len)
{
	crypt_safe_memzero(p, len);
}

static void vc_luks_log(int level, const char *msg, void *usrptr)
{
	(void)usrptr;
	if (level == CRYPT_LOG_DEBUG || level == CRYPT_LOG_DEBUG_JSON) {
		if (vc_debug >= 2)
			vc_log_debug("libcryptsetup: %s", msg);
		return;
	}
	/* messages end with a newline */
	if (vc_debug) {
		char buf[512];
		size_t n;

		snprintf(buf, sizeof(buf), "%s", msg);
		n = strlen(buf);
		if (n && buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		vc_log_debug("libcryptsetup: %s", buf);
	}
}

void vc_luks_init(void)
{
	crypt_set_log_callback(NULL, vc_luks_log, NULL);
	if (vc_debug >= 2)
		crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

static int vc_luks_load(const char *hdr, struct crypt_device **cdp, struct vc_luks_info *info)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_integrity ip;
	const char *type, *c, *m, *u;
	int r;

	memset(info, 0, sizeof(*info));
	info->keyslot = -1;
	r = crypt_init(&cd, hdr);
	if (r < 0)
		return vc_fail(r, "cannot open LUKS header %s: %s", hdr, strerror(-r));
	crypt_set_log_callback(cd, vc_luks_log, NULL);
	r = crypt_load(cd, CRYPT_LUKS, NULL);
	if (r < 0) {
		crypt_free(cd);
		return vc_fail(r == -EINVAL ? -EMEDIUMTYPE : r,
			       "%s holds no valid LUKS1 or LUKS2 header", hdr);
	}
	type = crypt_get_type(cd);
	snprintf(info->type, sizeof(info->type), "%s", type ? type : "?");
	c = crypt_get_cipher(cd);
	m = crypt_get_cipher_mode(cd);
	if (!c || !m) {
		crypt_free(cd);
		return vc_fail(-EINVAL, "LUKS header %s has no cipher", hdr);
	}
	snprintf(info->cipher, sizeof(info->cipher), "%s-%s", c, m);
	r = crypt_get_volume_key_size(cd);
	if (r <= 0) {
		crypt_free(cd);
		return vc_fail(-EINVAL, "LUKS header %s has no usable key slot", hdr);
	}
	info->key_size = r;
	info->data_offset = crypt_get_data_offset(cd);
	info->iv_offset = crypt_get_iv_offset(cd);
	u = crypt_get_uuid(cd);
	snprintf(info->uuid, sizeof(info->uuid), "%s", u ? u : "");

	/* what the vhdcrypt target cannot do */
	if (crypt_get_sector_size(cd) > 512) {
		r = crypt_get_sector_size(cd);
		crypt_free(cd);
		return vc_fail(-ENOTSUP, "LUKS header %s uses %d-byte encryption sectors; "
			       "vhdcrypt supports 512 only", hdr, r);
	}
	memset(&ip, 0, sizeof(ip));
	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.integrity) {
		crypt_free(cd);
		return vc_fail(-ENOTSUP, "LUKS header %s uses authenticated encryption (%s); "
			       "vhdcrypt does not support it", hdr, ip.integrity);
	}
	if (type && !strcmp(type, CRYPT_LUKS2) &&
	    crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE) {
		crypt_free(cd);
		return vc_fail(-EBUSY, "LUKS2 header %s is in the middle of a reencryption; "
			       "finish it with cryptsetup first", hdr);
	}
	*cdp = cd;
	return 0;
}

int vc_luks_probe(const char *hdr, struct vc_luks_info *info)
{
	struct crypt_device *cd = NULL;
	int r = vc_luks_load(hdr, &cd, info);

	if (!r)
		crypt_free(cd);
	return r;
}

int vc_luks_unlock(const char *hdr, const char *label, struct vc_secret_src *src,
		   int key_slot, struct vc_luks_info *info, struct vc_key **vkp)
{
	struct crypt_device *cd = NULL;
	struct vc_key *pass = NULL, *vk = NULL;
	size_t vk_size;
	int r, attempt;

	*vkp = NULL;
	r = vc_luks_load(hdr, &cd, info);
	if (r)
		return r;
	if (key_slot >= 0) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, key_slot);

		if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST) {
			r = vc_fail(-EINVAL, "key slot %d of %s is not in use", key_slot, label);
			goto out;
		}
	}
	vk = vc_key_new(info->key_size);
	if (!vk) {
		r = -ENOMEM;
		goto out;
	}
	for (attempt = 0;; attempt++) {
		r = vc_secret_get(src, label, attempt, &pass);
		if (r == -EPERM) {
			r = vc_fail(-EPERM, "no key slot of %s matches the passphrase; "
				    "check the passphrase or the --key-slot", label);
			break;
		}
		if (r)
			break;
		vk_size = vk->len;
		r = crypt_volume_key_get(cd, key_slot < 0 ? CRYPT_ANY_SLOT : key_slot,
					 (char *)vk->data, &vk_size,
					 (const char *)pass->data, pass->len);
		vc_key_free(pass);
		pass = NULL;
		if (r >= 0) {
			info->keyslot = r;
			vk->len = vk_size;
			r = 0;
			break;
		}
		if (r == -ENOMEM) {
			r = vc_fail(-ENOMEM, "out of memory unlocking %s (the key derivation "
				    "function needs more memory)", label);
			break;
		}
		if (r != -EPERM) {
			r = vc_fail(r, "cannot unlock %s: %s", label, strerror(-r));
			break;
		}
		if (vc_secret_interactive(src) && attempt + 1 < src->tries)
			fprintf(stderr, "No key available with this passphrase.\n");
	}
	if (!r) {
		vc_log_debug("luks: %s unlocked with key slot %d (%s, %s, %zu-byte key)",
			     label, info->keyslot, info->type, info->cipher, vk->len);
		*vkp = vk;
		vk = NULL;
	}
out:
	vc_key_free(vk);
	crypt_free(cd);
	return r;
}
