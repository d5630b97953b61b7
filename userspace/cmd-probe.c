// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup probe: udev properties of an image file or block device,
 * for IMPORT{program}:
 *
 *   VHDCRYPT_TYPE=vhd|qcow2
 *   VHDCRYPT_VERSION=...            qcow2 version (2, 3) or VHD format version (1.0)
 *   VHDCRYPT_VHD_TYPE=fixed|dynamic|differencing
 *   VHDCRYPT_ENCRYPTION=luks|aes|openxt|none
 *   VHDCRYPT_UUID=...               footer uuid (VHD), LUKS UUID or derived (qcow2)
 *   VHDCRYPT_VIRTUAL_SIZE=<bytes>
 *   VHDCRYPT_CLUSTER_SIZE / VHDCRYPT_BLOCK_SIZE=<bytes>
 *   VHDCRYPT_LUKS_VERSION, VHDCRYPT_LUKS_UUID   (qcow2 with LUKS)
 *   VHDCRYPT_KEYHASH=0|1, VHDCRYPT_KEY_INHERITED=1   (VHD)
 *   VHDCRYPT_BACKING=<path>, VHDCRYPT_BACKING_FORMAT=..., VHDCRYPT_BACKING_FOUND=0|1
 *   VHDCRYPT_DAMAGED=1              readable, but damaged (the reason on stderr)
 *
 * Not an image, or damaged beyond reading: no output, exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "cmd.h"
#include "output.h"
#include "scheme.h"
#include "util.h"

static void vc_probe_backing(const struct vc_image *img)
{
	char *first = NULL, *rp = NULL;

	if (!img->parent_path && !img->parent_tried)
		return;
	if (img->parent_path) {
		rp = realpath(img->parent_path, NULL);
	} else {	/* "a, b": report the first candidate */
		first = vc_strndup(img->parent_tried, strcspn(img->parent_tried, ","));
	}
	vc_udev_str("BACKING", rp ? rp : first ? first : img->parent_path);
	free(rp);
	free(first);
	if (img->fmt == VC_FMT_QCOW2 && img->qcow2.backing_fmt)
		vc_udev_str("BACKING_FORMAT", img->qcow2.backing_fmt);
	else if (img->fmt == VC_FMT_VHD)
		vc_udev_str("BACKING_FORMAT", img->parent_fmt == VC_FMT_RAW ? "raw" : "vhd");
	vc_udev_u64("BACKING_FOUND", img->parent_path != NULL);
}

int vc_cmd_probe(const struct vc_opts *o, char **args)
{
	const struct vc_scheme *enc;
	const struct vc_image *img;
	struct vc_chain c;
	char v[32];
	int r;

	(void)o;
	/* with the parents found: an unkeyed VHD may inherit an OpenXT key */
	r = vc_chain_open(args[0], VC_FMT_UNKNOWN, VC_OPEN_PARENT_OPTIONAL, &c);
	if (r)
		return r;
	img = c.img[0];
	enc = vc_layer_encryption(&c, 0);
	vc_udev_str("TYPE", vc_fmt_name(img->fmt));
	if (img->fmt == VC_FMT_QCOW2) {
		snprintf(v, sizeof(v), "%u", img->qcow2.header.version);
	} else {
		snprintf(v, sizeof(v), "%u.%u", img->vhd.footer.version >> 16,
			 img->vhd.footer.version & 0xffff);
	}
	vc_udev_str("VERSION", v);
	if (img->fmt == VC_FMT_VHD)
		vc_udev_str("VHD_TYPE", img->vhd.footer.type == VHD_TYPE_FIXED ? "fixed" :
			    img->vhd.footer.type == VHD_TYPE_DIFF ? "differencing" : "dynamic");
	vc_udev_str("ENCRYPTION", enc->name);
	vc_udev_str("UUID", img->uuid);
	vc_udev_u64("VIRTUAL_SIZE", img->virtual_size);
	if (img->fmt == VC_FMT_QCOW2) {
		vc_udev_u64("CLUSTER_SIZE", qcow2_cluster_size(&img->qcow2.header));
		if (enc == &vc_scheme_luks && img->qcow2.luks_version) {
			vc_udev_u64("LUKS_VERSION", img->qcow2.luks_version);
			vc_udev_str("LUKS_UUID", img->qcow2.luks_uuid);
		}
	} else {
		if (img->vhd.footer.type != VHD_TYPE_FIXED)
			vc_udev_u64("BLOCK_SIZE", img->vhd.header.block_size);
		vc_udev_u64("KEYHASH", img->vhd.keyhash.set);
		if (!img->vhd.keyhash.set && enc == &vc_scheme_openxt)
			vc_udev_u64("KEY_INHERITED", 1);
	}
	vc_probe_backing(img);
	if (img->damage) {
		vc_udev_u64("DAMAGED", 1);
		vc_warn("%s is damaged: %s", img->path, img->damage);
	}
	vc_chain_free(&c);
	return 0;
}
