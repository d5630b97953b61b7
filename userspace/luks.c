// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - LUKS through libcryptsetup only.
 *
 * The volume key is obtained with crypt_volume_key_get() into locked memory.
 * The cipher in dm-crypt syntax is "<crypt_get_cipher()>-<crypt_get_cipher_mode()>".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libcryptsetup.h>

#include "luks.h"
#include "util.h"

struct vc_luks {
	struct crypt_device *cd;
	const char *label;
};

static char vc_luks_lasterr[512];	/* libcryptsetup's last error, for messages */

static void vc_luks_log(int level, const char *msg, void *usrptr)
{
	char buf[512];
	size_t n;

	(void)usrptr;
	/* messages end with a newline */
	snprintf(buf, sizeof(buf), "%s", msg);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (level == CRYPT_LOG_ERROR)
		snprintf(vc_luks_lasterr, sizeof(vc_luks_lasterr), "%s", buf);
	if (level == CRYPT_LOG_DEBUG || level == CRYPT_LOG_DEBUG_JSON) {
		if (vc_debug >= 2)
			vc_log_debug("libcryptsetup: %s", buf);
		return;
	}
	vc_log_debug("libcryptsetup: %s", buf);
}

void vc_luks_init(void)
{
	crypt_set_log_callback(NULL, vc_luks_log, NULL);
	if (vc_debug >= 2)
		crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

void vc_luks_free(struct vc_luks *l)
{
	if (!l)
		return;
	crypt_free(l->cd);
	free(l);
}

int vc_luks_load(const char *hdr, const char *label, struct vc_luks **out,
		 struct vc_luks_info *info)
{
	struct crypt_params_integrity ip;
	const char *type, *c, *m, *u;
	struct vc_luks *l;
	int r;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	l = vc_zalloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->label = label;
	r = crypt_init(&l->cd, hdr);
	if (r < 0) {
		r = vc_fail(r, "cannot open the LUKS header %s: %s", hdr, strerror(-r));
		goto fail;
	}
	crypt_set_log_callback(l->cd, vc_luks_log, NULL);
	r = crypt_load(l->cd, CRYPT_LUKS, NULL);
	if (r < 0) {
		r = vc_fail(r == -EINVAL ? -EMEDIUMTYPE : r,
			    "%s holds no valid LUKS1 or LUKS2 header", hdr);
		goto fail;
	}
	type = crypt_get_type(l->cd);
	snprintf(info->type, sizeof(info->type), "%s", type ? type : "?");
	c = crypt_get_cipher(l->cd);
	m = crypt_get_cipher_mode(l->cd);
	r = crypt_get_volume_key_size(l->cd);
	if (!c || !m || r <= 0) {
		r = vc_fail(-EINVAL, "LUKS header %s has no cipher or no volume key", hdr);
		goto fail;
	}
	snprintf(info->cipher, sizeof(info->cipher), "%s-%s", c, m);
	info->key_size = r;
	info->data_offset = crypt_get_data_offset(l->cd);
	info->iv_offset = crypt_get_iv_offset(l->cd);
	info->sector_size = crypt_get_sector_size(l->cd);
	u = crypt_get_uuid(l->cd);
	snprintf(info->uuid, sizeof(info->uuid), "%s", u ? u : "");

	memset(&ip, 0, sizeof(ip));
	if (crypt_get_integrity_info(l->cd, &ip) == 0 && ip.integrity) {
		r = vc_fail(-ENOTSUP, "LUKS header %s uses authenticated encryption (%s); "
			    "vhdcryptsetup does not support it", hdr, ip.integrity);
		goto fail;
	}
	if (type && !strcmp(type, CRYPT_LUKS2) &&
	    crypt_reencrypt_status(l->cd, NULL) != CRYPT_REENCRYPT_NONE) {
		r = vc_fail(-EBUSY, "LUKS2 header %s is in the middle of a reencryption; "
			    "finish it with cryptsetup first", hdr);
		goto fail;
	}
	*out = l;
	return 0;
fail:
	vc_luks_free(l);
	return r;
}

static int vc_luks_use_volume_key(struct vc_luks *l, const struct vc_secret *vk_in,
				  struct vc_secret **vkp)
{
	int r;

	if (vk_in->len != (size_t)crypt_get_volume_key_size(l->cd))
		return vc_fail(-EINVAL, "the volume key file holds %zu bytes, but the volume key "
			       "of %s has %d", vk_in->len, l->label,
			       crypt_get_volume_key_size(l->cd));
	r = crypt_volume_key_verify(l->cd, (const char *)vk_in->data, vk_in->len);
	if (r == -EPERM)
		return vc_fail(-EPERM, "the volume key file does not hold the volume key of %s",
			       l->label);
	if (r < 0)
		return vc_fail(r, "cannot check the volume key of %s: %s", l->label,
			       strerror(-r));
	*vkp = vc_secret_dup(vk_in);
	return *vkp ? 0 : -ENOMEM;
}

int vc_luks_unlock(struct vc_luks *l, struct vc_passphrase_src *src, int key_slot,
		   const struct vc_secret *vk_in, struct vc_secret **vkp)
{
	struct vc_secret *pass = NULL, *vk = NULL;
	size_t vk_size;
	int r, attempt;

	*vkp = NULL;
	if (vk_in)
		return vc_luks_use_volume_key(l, vk_in, vkp);
	if (key_slot >= 0) {
		crypt_keyslot_info ki = crypt_keyslot_status(l->cd, key_slot);

		if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST)
			return vc_fail(-EINVAL, "key slot %d of %s is not in use", key_slot,
				       l->label);
	}
	vk = vc_secret_new(crypt_get_volume_key_size(l->cd));
	if (!vk)
		return -ENOMEM;
	for (attempt = 0;; attempt++) {
		r = vc_passphrase_get(src, l->label, attempt, &pass);
		if (r == -EPERM) {
			r = vc_fail(-EPERM, "no key slot of %s matches the passphrase; "
				    "check the passphrase or the --key-slot", l->label);
			break;
		}
		if (r)
			break;
		vk_size = vk->len;
		r = crypt_volume_key_get(l->cd, key_slot < 0 ? CRYPT_ANY_SLOT : key_slot,
					 (char *)vk->data, &vk_size,
					 (const char *)pass->data, pass->len);
		vc_secret_free(pass);
		pass = NULL;
		if (r >= 0) {
			vc_log_debug("luks: %s unlocked with key slot %d (%zu-byte key)", l->label,
				     r, vk_size);
			vk->len = vk_size;
			*vkp = vk;
			return 0;
		}
		if (r == -ENOMEM) {
			r = vc_fail(-ENOMEM, "out of memory unlocking %s (the key derivation "
				    "function needs more memory)", l->label);
			break;
		}
		if (r != -EPERM) {
			r = vc_fail(r, "cannot unlock %s: %s", l->label, strerror(-r));
			break;
		}
		if (vc_passphrase_interactive(src) && attempt + 1 < src->tries)
			fprintf(stderr, "No key available with this passphrase.\n");
	}
	vc_secret_free(vk);
	return r;
}

int vc_luks_activate(struct vc_luks *l, const char *name, const char *data,
		     const struct vc_secret *vk, bool keyring)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	r = crypt_set_data_device(l->cd, data);
	if (r < 0)
		return vc_fail(r, "cannot use %s as the payload of %s: %s", data, l->label,
			       vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
	crypt_volume_key_keyring(l->cd, keyring);
	r = crypt_activate_by_volume_key(l->cd, name, (const char *)vk->data, vk->len,
					 CRYPT_ACTIVATE_READONLY);
	if (r == -EEXIST || r == -EBUSY)
		return vc_fail(r, "device %s already exists (or its payload is in use); "
			       "close it first", name);
	if (r < 0)
		return vc_fail(r, "cannot create the dm-crypt device %s for %s: %s", name,
			       l->label, vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
	return 0;
}

int vc_luks_deactivate(const char *name)
{
	struct crypt_device *cd = NULL;
	int r;

	r = crypt_init_by_name(&cd, name);
	if (r < 0)
		return vc_fail(r, "cannot query device %s: %s", name, strerror(-r));
	vc_luks_lasterr[0] = '\0';
	r = crypt_deactivate(cd, name);
	crypt_free(cd);
	if (r == -EBUSY)
		return vc_fail(r, "device %s is still in use (mounted or open); unmount or "
			       "close it, then retry", name);
	if (r < 0)
		return vc_fail(r, "cannot remove device %s: %s", name,
			       vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
	return 0;
}
