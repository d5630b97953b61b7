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
static bool vc_luks_dumping;	/* luksDump: libcryptsetup's normal messages to stdout */

static void vc_luks_log(int level, const char *msg, void *usrptr)
{
	char buf[512];
	size_t n;

	(void)usrptr;
	if (vc_luks_dumping && level == CRYPT_LOG_NORMAL) {
		fputs(msg, stdout);
		return;
	}
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
		     const struct vc_secret *vk, bool keyring, bool writable, bool discards)
{
	uint32_t flags = (writable ? 0 : CRYPT_ACTIVATE_READONLY) |
			 (discards ? CRYPT_ACTIVATE_ALLOW_DISCARDS : 0);
	int r;

	vc_luks_lasterr[0] = '\0';
	r = crypt_set_data_device(l->cd, data);
	if (r < 0)
		return vc_fail(r, "cannot use %s as the payload of %s: %s", data, l->label,
			       vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
	crypt_volume_key_keyring(l->cd, keyring);
	r = crypt_activate_by_volume_key(l->cd, name, (const char *)vk->data, vk->len, flags);
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

/* libcryptsetup on the header file or device hdr, its messages through vc_luks_log. */
static int vc_luks_init_hdr(const char *hdr, struct crypt_device **cd)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	*cd = NULL;
	r = crypt_init(cd, hdr);
	if (r < 0)
		return vc_fail(r, "cannot open %s for its LUKS header: %s", hdr, strerror(-r));
	crypt_set_log_callback(*cd, vc_luks_log, NULL);
	return 0;
}

int vc_luks_format(const char *hdr, const char *label, const struct vc_luks_new *n,
		   const struct vc_secret *vk, const struct vc_secret *pass, uint64_t *hdr_bytes)
{
	struct crypt_params_luks1 p1 = { .hash = "sha256" };
	struct crypt_params_luks2 p2 = { .sector_size = 512 };
	struct crypt_pbkdf_type pbkdf = { .hash = "sha256" };
	struct crypt_device *cd = NULL;
	char cipher[64], *mode;
	bool luks1 = !strcmp(n->type, CRYPT_LUKS1);
	int r;

	snprintf(cipher, sizeof(cipher), "%s", n->cipher);
	mode = strchr(cipher, '-');
	if (!mode || !mode[1] || !strncmp(cipher, "capi:", 5))
		return vc_fail(-EINVAL, "cipher \"%s\" is not <cipher>-<mode>-<iv> (for example "
			       "aes-xts-plain64)", n->cipher);
	*mode++ = '\0';
	r = vc_luks_init_hdr(hdr, &cd);
	if (r)
		return r;
	pbkdf.type = n->pbkdf ? n->pbkdf : luks1 ? CRYPT_KDF_PBKDF2 : NULL;
	if (pbkdf.type || n->iter_time) {
		const struct crypt_pbkdf_type *def = crypt_get_pbkdf_default(n->type);

		if (!pbkdf.type)
			pbkdf.type = def ? def->type : CRYPT_KDF_ARGON2ID;
		if (strcmp(pbkdf.type, CRYPT_KDF_PBKDF2) && def) {
			pbkdf.max_memory_kb = def->max_memory_kb;
			pbkdf.parallel_threads = def->parallel_threads;
		}
		pbkdf.time_ms = n->iter_time ? n->iter_time : def ? def->time_ms : 2000;
		r = crypt_set_pbkdf_type(cd, &pbkdf);
		if (r < 0) {
			r = vc_fail(r, "PBKDF %s cannot be used for %s: %s", pbkdf.type, n->type,
				    vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
			goto out;
		}
	}
	p1.data_alignment = n->data_alignment;
	p1.data_device = n->data_device;
	p2.data_device = n->data_device;
	r = crypt_format(cd, n->type, cipher, mode, NULL, vk ? (const char *)vk->data : NULL,
			 n->key_size, luks1 ? (void *)&p1 : (void *)&p2);
	if (r < 0) {
		r = vc_fail(r == -ENOENT ? -ENOTSUP : r, "cannot format the LUKS header of %s "
			    "(cipher %s, %zu-bit key): %s", label, n->cipher, n->key_size * 8,
			    vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
		goto out;
	}
	r = crypt_keyslot_add_by_volume_key(cd, 0, NULL, 0, (const char *)pass->data, pass->len);
	if (r < 0) {
		r = vc_fail(r, "cannot add the key slot of %s: %s", label,
			    vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
		goto out;
	}
	r = 0;
	if (hdr_bytes)
		*hdr_bytes = crypt_get_data_offset(cd) * 512;
out:
	crypt_free(cd);
	return r;
}

/* A libcryptsetup failure as a message: its last error, else errno's text. */
static int vc_luks_failed(int r, const char *what, const char *label)
{
	return vc_fail(r, "cannot %s of %s: %s", what, label,
		       vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
}

int vc_luks_set_pbkdf(struct vc_luks *l, const char *pbkdf, unsigned int iter_time)
{
	const struct crypt_pbkdf_type *cur = crypt_get_pbkdf_type(l->cd);
	struct crypt_pbkdf_type p;
	int r;

	if (!pbkdf && !iter_time)
		return 0;
	memset(&p, 0, sizeof(p));
	if (cur)
		p = *cur;
	if (pbkdf)
		p.type = pbkdf;
	if (!p.type)
		p.type = CRYPT_KDF_PBKDF2;
	if (!p.hash)
		p.hash = "sha256";
	if (iter_time)
		p.time_ms = iter_time;
	p.iterations = 0;
	p.flags = 0;
	vc_luks_lasterr[0] = '\0';
	r = crypt_set_pbkdf_type(l->cd, &p);
	return r < 0 ? vc_luks_failed(r, "set the PBKDF", l->label) : 0;
}

int vc_luks_find_slot(struct vc_luks *l, const struct vc_secret *pass, int except)
{
	int i, r, max = crypt_keyslot_max(crypt_get_type(l->cd));

	for (i = 0; i < max; i++) {
		if (i == except || !vc_luks_slot_active(l, i))
			continue;
		r = crypt_activate_by_passphrase(l->cd, NULL, i, (const char *)pass->data,
						 pass->len, 0);
		if (r >= 0)
			return i;
		if (r != -EPERM && r != -ENOENT)
			return vc_luks_failed(r, "check a passphrase", l->label);
	}
	return -EPERM;
}

int vc_luks_add_key(struct vc_luks *l, int slot, const struct vc_secret *oldp,
		    const struct vc_secret *newp, int *slot_out)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	r = crypt_keyslot_add_by_passphrase(l->cd, slot < 0 ? CRYPT_ANY_SLOT : slot,
					    (const char *)oldp->data, oldp->len,
					    (const char *)newp->data, newp->len);
	if (r == -EPERM)
		return vc_fail(-EPERM, "no key slot of %s matches the passphrase of --key-file",
			       l->label);
	if (r < 0)
		return vc_luks_failed(r, "add a key slot", l->label);
	*slot_out = r;
	return 0;
}

int vc_luks_change_key(struct vc_luks *l, int slot, const struct vc_secret *oldp,
		       const struct vc_secret *newp, int *old_slot, int *new_slot)
{
	struct vc_secret *vk;
	size_t vk_size;
	int r;

	vk = vc_secret_new(crypt_get_volume_key_size(l->cd));
	if (!vk)
		return -ENOMEM;
	vk_size = vk->len;
	vc_luks_lasterr[0] = '\0';
	r = crypt_volume_key_get(l->cd, slot < 0 ? CRYPT_ANY_SLOT : slot, (char *)vk->data,
				 &vk_size, (const char *)oldp->data, oldp->len);
	if (r < 0) {
		r = r == -EPERM ? vc_fail(-EPERM, "no key slot of %s matches the passphrase of "
					  "--key-file", l->label) :
			vc_luks_failed(r, "read the volume key", l->label);
		goto out;
	}
	*old_slot = r;
	r = crypt_keyslot_add_by_volume_key(l->cd, CRYPT_ANY_SLOT, (const char *)vk->data,
					    vk_size, (const char *)newp->data, newp->len);
	if (r < 0) {
		r = vc_fail(r, "cannot write the new key slot of %s: %s; no slot was changed "
			    "(a full header needs luksKillSlot first)", l->label,
			    vc_luks_lasterr[0] ? vc_luks_lasterr : strerror(-r));
		goto out;
	}
	*new_slot = r;
	/* the new slot must open before the old one goes */
	r = crypt_activate_by_passphrase(l->cd, NULL, *new_slot, (const char *)newp->data,
					 newp->len, 0);
	if (r < 0) {
		r = vc_fail(-EIO, "the new key slot %d of %s does not open after writing it; "
			    "the old slot %d is kept", *new_slot, l->label, *old_slot);
		goto out;
	}
	r = vc_luks_kill_slot(l, *old_slot);
out:
	vc_secret_free(vk);
	return r;
}

bool vc_luks_slot_active(struct vc_luks *l, int slot)
{
	crypt_keyslot_info ki = crypt_keyslot_status(l->cd, slot);

	return ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST;
}

int vc_luks_max_slots(struct vc_luks *l)
{
	return crypt_keyslot_max(crypt_get_type(l->cd));
}

int vc_luks_kill_slot(struct vc_luks *l, int slot)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	r = crypt_keyslot_destroy(l->cd, slot);
	return r < 0 ? vc_luks_failed(r, "destroy a key slot", l->label) : 0;
}

int vc_luks_dump(struct vc_luks *l)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	vc_luks_dumping = true;
	r = crypt_dump(l->cd);
	vc_luks_dumping = false;
	fflush(stdout);
	return r < 0 ? vc_luks_failed(r, "dump the LUKS header", l->label) : 0;
}

int vc_luks_backup(struct vc_luks *l, const char *file)
{
	int r;

	vc_luks_lasterr[0] = '\0';
	r = crypt_header_backup(l->cd, NULL, file);
	return r < 0 ? vc_luks_failed(r, "back up the LUKS header", l->label) : 0;
}

int vc_luks_peek(const char *file, struct vc_luks_info *info)
{
	struct vc_luks *l;
	int r = vc_luks_load(file, file, &l, info);

	vc_luks_free(l);
	return r;
}

int vc_luks_verify_key(struct vc_luks *l, const struct vc_secret *vk)
{
	return crypt_volume_key_verify(l->cd, (const char *)vk->data, vk->len) < 0 ? -EPERM : 0;
}

int vc_luks_restore(const char *hdr, const char *backup, const char *label)
{
	struct crypt_device *cd = NULL;
	int r;

	r = vc_luks_init_hdr(hdr, &cd);
	if (r)
		return r;
	r = crypt_header_restore(cd, NULL, backup);
	crypt_free(cd);
	return r < 0 ? vc_luks_failed(r, "restore the LUKS header", label) : 0;
}

int vc_luks_wipe(const char *hdr, uint64_t len, const char *label)
{
	struct crypt_device *cd = NULL;
	int r;

	r = vc_luks_init_hdr(hdr, &cd);
	if (r)
		return r;
	r = crypt_wipe(cd, hdr, CRYPT_WIPE_RANDOM, 0, len, 0, 0, NULL, NULL);
	crypt_free(cd);
	return r < 0 ? vc_luks_failed(r, "overwrite the LUKS header", label) : 0;
}
