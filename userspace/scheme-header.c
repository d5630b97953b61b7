// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - a detached LUKS header (--header, made by cryptsetup
 * luksFormat --header) whose payload is the virtual disk of the image.
 *
 * Over a VHD or qcow2 it encrypts the virtual disk of the whole chain, as
 * "cryptsetup open --header" over the unencrypted mapping of the top image
 * would: the top layer gets the cipher with whole_disk (holes and backing
 * data are decrypted too), the lower layers are mapped with cipher none.
 * With a payload offset the top device starts there; the backing device is
 * still addressed by virtual sector, IVs count from the payload. The
 * encryption sectors are 512 or 4096 bytes (sector_size, IVs still in
 * 512-byte units, as cryptsetup's LUKS2 tables).
 *
 * Over a raw payload (neither VHD nor qcow2) there is no allocation map:
 * the kernel's dm-crypt maps it, through libcryptsetup (cmd-open.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "blkid.h"
#include "scheme.h"
#include "util.h"

/* Two encryption layers at once are not supported. */
static int vc_header_check_chain(const struct vc_chain *c)
{
	int i;

	for (i = 0; i < c->n; i++) {
		const struct vc_image *img = c->img[i];

		if (!((img->fmt == VC_FMT_VHD && img->vhd.keyhash.set) ||
		      (img->fmt == VC_FMT_QCOW2 && img->qcow2.header.crypt_method)))
			continue;
		if (i == 0)
			return vc_fail(-EINVAL, "%s has its own encryption; --header applies to "
				       "unencrypted images only", img->path);
		return vc_fail(-ENOTSUP, "%s, in the backing chain of %s, has its own "
			       "encryption; a detached LUKS header over an encrypted backing "
			       "image (two encryption layers) is not supported", img->path,
			       c->img[0]->path);
	}
	return 0;
}

/*
 * The device must be a multiple of the encryption sectors (as cryptsetup
 * checks), and vhdcrypt's are 512 or 4096 bytes (dm-crypt takes any size
 * libcryptsetup gives it).
 */
static int vc_header_check_sectors(const char *hdr, const struct vc_image *top,
				   const struct vc_luks_info *info)
{
	uint64_t sectors = (top->virtual_size >> 9) - info->data_offset;

	if (top->fmt != VC_FMT_RAW && info->sector_size != 512 && info->sector_size != 4096)
		return vc_fail(-ENOTSUP, "LUKS header %s uses %u-byte encryption sectors; vhdcrypt "
			       "supports 512 and 4096", hdr, info->sector_size);
	if (sectors % (info->sector_size >> 9))
		return vc_fail(-EINVAL, "the virtual disk of %s (%llu bytes after the payload "
			       "offset) is not a multiple of the %u-byte encryption sectors of %s",
			       top->path, (unsigned long long)sectors << 9, info->sector_size,
			       hdr);
	return 0;
}

static int vc_header_prepare(struct vc_unlock *u, const struct vc_chain *c, int i,
			     struct vc_crypt *out)
{
	const struct vc_image *top = c->img[0];
	const char *hdr = u->o->header;
	struct vc_luks_info info;
	struct stat st;
	int r;

	(void)i;
	if (stat(hdr, &st) < 0)
		return vc_fail(-ENOENT, "cannot open the LUKS header %s: %s", hdr,
			       strerror(errno));
	if (vc_blkid_luks(hdr, 0, 0, NULL, 0, NULL) <= 0)
		return vc_fail(-EMEDIUMTYPE, "%s holds no LUKS header; check --header", hdr);
	r = vc_header_check_chain(c);
	if (!r)
		r = vc_luks_prepare(out, hdr, top->path, &info);
	if (r)
		return r;
	if (top->virtual_size >> 9 <= info.data_offset)
		return vc_fail(-EINVAL, "the LUKS payload offset (%llu sectors) of %s lies beyond "
			       "the virtual disk of %s", (unsigned long long)info.data_offset, hdr,
			       top->path);
	out->data_offset = info.data_offset;
	out->sector_size = info.sector_size;
	out->whole_disk = top->fmt != VC_FMT_RAW;
	return vc_header_check_sectors(hdr, top, &info);
}

static int vc_header_unlock(struct vc_unlock *u, const struct vc_chain *c, int i,
			    struct vc_crypt *out)
{
	(void)c;
	return vc_luks_unlock_layer(u, i, out);
}

const struct vc_scheme vc_scheme_header = {
	.name = "luks-header",
	.tag = "HEADER",
	.prepare = vc_header_prepare,
	.unlock = vc_header_unlock,
};
