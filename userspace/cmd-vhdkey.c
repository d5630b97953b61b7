// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup vhd-key: OpenXT key hashes, as vhd-util key -p/-C/-c/-s.
 *
 *   --print IMAGE                  "none" or "<nonce hex> <hash hex>"
 *   --calc --key-file K [--nonce]  SHA-256(nonce || key), hex
 *   --check --key-file K IMAGE     exit 0 if K matches the key hash
 *   --set (--key-file K | --hash H) [--nonce N] IMAGE
 *
 * --set refuses what vhd-util key refuses: a fixed VHD, and a VHD that
 * already holds data (a BAT entry in use), whose blocks would not match.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "create.h"
#include "scheme-openxt.h"
#include "util.h"

static void vc_print_hex(const unsigned char *b, size_t len, const char *end)
{
	char hex[65];

	vc_hex(hex, b, len);
	printf("%s%s", hex, end);
}

static int vc_vhdkey_image(const char *path, struct vc_image **img)
{
	int r = vc_image_open(path, VC_FMT_VHD, VC_OPEN_PARENT_OPTIONAL, img);

	if (r == -EMEDIUMTYPE && !*img) {
		vc_clear_error();
		r = vc_fail(-EMEDIUMTYPE, "%s is not a VHD image", path);
	}
	return r;
}

static int vc_vhdkey_key(const struct vc_opts *o, struct vc_secret **key)
{
	if (!o->key_file)
		return vc_fail(-EINVAL, "give the key with --key-file");
	return vc_secret_read_file(o->key_file, "--key-file", o->keyfile_offset, o->keyfile_size,
				   key, NULL);
}

static int vc_bat_in_use(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx)
{
	(void)img;
	(void)i;
	(void)ctx;
	return vc_get_be32(entry) == VHD_BAT_UNUSED ? 0 : -ENOTEMPTY;
}

/* vhd-util key -s: an empty dynamic or differencing VHD only. */
static int vc_vhdkey_can_set(const struct vc_image *img)
{
	int fd, r;

	if (img->vhd.footer.type == VHD_TYPE_FIXED)
		return vc_fail(-EINVAL, "cannot save key hashes for fixed VHDs (%s), as vhd-util "
			       "key refuses them", img->path);
	fd = open(img->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", img->path, strerror(errno));
	r = vc_image_scan(fd, img, "VHD BAT", img->vhd.header.table_offset,
			  vhd_bat_entries_used(&img->vhd.footer, &img->vhd.header), 4,
			  vc_bat_in_use, NULL);
	close(fd);
	if (r == -ENOTEMPTY)
		return vc_fail(-EINVAL, "cannot save key hashes for non-empty VHDs: %s already "
			       "holds data, which a new key would not decrypt (copy it with "
			       "convert --new-key-dir instead)", img->path);
	return r;
}

static int vc_vhdkey_set(const struct vc_opts *o, struct vc_image *img, const u8 nonce[32])
{
	struct vc_secret *key = NULL;
	struct vc_keyhash kh = { .set = true };
	int r;

	if (!!o->key_file == !!o->hash)
		return vc_fail(-EINVAL, "--set takes either --key-file or --hash");
	r = vc_vhdkey_can_set(img);
	if (r)
		return r;
	memcpy(kh.nonce, nonce, 32);
	if (o->hash) {
		if (vc_unhex(o->hash, kh.hash, sizeof(kh.hash)))
			return vc_fail(-EINVAL, "--hash takes 64 hex digits");
	} else {
		r = vc_vhdkey_key(o, &key);
		if (!r && key->len != 32 && key->len != 64)
			r = vc_fail(-EINVAL, "an OpenXT key has 32 or 64 bytes; %s has %zu (use "
				    "--keyfile-size)", o->key_file, key->len);
		if (!r && vc_openxt_hash(kh.nonce, key, kh.hash))
			r = vc_fail(-EIO, "cannot compute the key hash");
		vc_secret_free(key);
		if (r)
			return r;
	}
	return vc_vhd_write_keyhash(img, &kh);
}

int vc_cmd_vhd_key(const struct vc_opts *o, char **args)
{
	struct vc_secret *key = NULL;
	struct vc_image *img = NULL;
	unsigned char nonce[32] = { 0 }, hash[32];
	int n = 0, r;

	while (args[n])
		n++;
	if (!o->vhdkey_action)
		return vc_fail(-EINVAL, "vhd-key needs --print, --calc, --check or --set");
	if (n != (o->vhdkey_action == 'c' ? 0 : 1))
		return vc_fail(-EINVAL, o->vhdkey_action == 'c' ? "vhd-key --calc takes no image" :
			       "vhd-key needs the image");
	if (o->nonce && vc_unhex(o->nonce, nonce, sizeof(nonce)))
		return vc_fail(-EINVAL, "--nonce takes 64 hex digits");
	if ((o->nonce && o->vhdkey_action != 'c' && o->vhdkey_action != 's') ||
	    (o->hash && o->vhdkey_action != 's'))
		return vc_fail(-EINVAL, "--nonce goes with --calc and --set, --hash with --set");
	if (o->vhdkey_action == 'c') {
		r = vc_vhdkey_key(o, &key);
		if (!r && vc_openxt_hash(nonce, key, hash))
			r = vc_fail(-EIO, "cannot compute the key hash");
		if (!r)
			vc_print_hex(hash, 32, "\n");
		vc_secret_free(key);
		return r;
	}
	r = vc_vhdkey_image(args[0], &img);
	if (r)
		goto out;
	switch (o->vhdkey_action) {
	case 'p':
		if (!img->vhd.keyhash.set) {
			printf("none\n");
			break;
		}
		vc_print_hex(img->vhd.keyhash.nonce, 32, " ");
		vc_print_hex(img->vhd.keyhash.hash, 32, "\n");
		break;
	case 'k':
		if (!img->vhd.keyhash.set) {
			r = vc_fail(-EINVAL, "%s has no key hash", args[0]);
			break;
		}
		r = vc_vhdkey_key(o, &key);
		if (!r && vc_openxt_check_key(&img->vhd.keyhash, key))
			r = vc_fail(-EPERM, "the key in %s does not match the key hash of %s",
				    o->key_file, args[0]);
		break;
	default:
		r = vc_vhdkey_set(o, img, nonce);
	}
out:
	vc_secret_free(key);
	vc_image_free(img);
	return r;
}
