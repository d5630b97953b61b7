// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - qcow2 with LUKS inside (QEMU's encrypt.format=luks): the
 * LUKS1 header region named by the full disk encryption header extension is
 * attached as a read-only loop device and handed to libcryptsetup. IVs come
 * from the host sector, in 512-byte units. Also the LUKS steps that the
 * detached header (scheme-header.c) shares.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "scheme.h"
#include "util.h"

int vc_luks_prepare(struct vc_crypt *out, const char *hdr, const char *label,
		    struct vc_luks_info *info)
{
	int r = vc_luks_load(hdr, label, &out->luks, info);

	if (r)
		return r;
	snprintf(out->cipher, sizeof(out->cipher), "%s", info->cipher);
	out->iv_offset = info->iv_offset;
	return 0;
}

int vc_luks_unlock_layer(struct vc_unlock *u, int i, struct vc_crypt *out)
{
	struct vc_secret *vk = NULL;
	int r = 0;

	/* --key-slot and --volume-key-file are the top image's */
	if (i == 0)
		r = vc_volume_key(u->o, &vk);
	if (!r)
		r = vc_luks_unlock(out->luks, u->o->pass, i == 0 ? u->o->key_slot : -1, vk,
				   &out->key);
	vc_secret_free(vk);
	return r;
}

static int vc_qluks_prepare(struct vc_unlock *u, const struct vc_chain *c, int i,
			    struct vc_crypt *out)
{
	const struct vc_image *img = c->img[i];
	struct vc_luks_info info;
	int r;

	if (u->o->dry_run && geteuid() != 0)
		return vc_fail_exit(VC_EXIT_PARAM, -EPERM, "reading the LUKS header of %s needs "
				    "a loop device; run as root", img->path);
	r = vc_loop_attach(img->path, img->qcow2.fde_offset, img->qcow2.fde_length, true, true,
			   &out->loop);
	if (!r)
		r = vc_luks_prepare(out, out->loop.path, img->path, &info);
	if (r)
		return r;
	if (info.sector_size != 512)
		return vc_fail(-ENOTSUP, "the LUKS header in %s uses %u-byte encryption sectors; "
			       "QEMU's qcow2 encryption has 512-byte sectors", img->path,
			       info.sector_size);
	out->iv_host = true;
	out->iv_offset = 0;	/* the host sector is the IV */
	return 0;
}

static int vc_qluks_unlock(struct vc_unlock *u, const struct vc_chain *c, int i,
			   struct vc_crypt *out)
{
	int r = vc_luks_unlock_layer(u, i, out);

	(void)c;
	vc_loop_release(&out->loop);	/* autoclear: detaches once libcryptsetup lets go */
	return r;
}

const struct vc_scheme vc_scheme_luks = {
	.name = "luks",
	.tag = "LUKS",
	.prepare = vc_qluks_prepare,
	.unlock = vc_qluks_unlock,
};
