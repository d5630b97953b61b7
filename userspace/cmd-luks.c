// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup key slot and header commands, as cryptsetup's: luksAddKey,
 * luksChangeKey, luksRemoveKey, luksKillSlot, luksDump, isLuks, erase,
 * luksHeaderBackup, luksHeaderRestore. They work on the LUKS1 header inside
 * a qcow2 (its region, named by the encryption header extension, attached
 * as a loop device with an offset and a size limit), on a detached header
 * (--header), or on a file or device that is a LUKS header itself. Every
 * LUKS change is libcryptsetup's; erase of an OpenXT VHD removes its key
 * hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "confirm.h"
#include "create.h"
#include "loop.h"
#include "luks.h"
#include "passphrase.h"
#include "scheme-openxt.h"
#include "util.h"

/* Where the LUKS header of an image is. */
struct vc_target {
	const char *image;
	const char *hdr;		/* what libcryptsetup opens */
	struct vc_image *img;		/* NULL with --header */
	struct vc_loop loop;		/* the qcow2's LUKS region */
	bool embedded;			/* inside a qcow2 */
	uint64_t region_len;		/* embedded: bytes of the region */
};

static void vc_target_close(struct vc_target *t)
{
	vc_loop_release(&t->loop);
	vc_image_free(t->img);
	t->img = NULL;
}

/*
 * Find the header of image: --header, the region of a qcow2 with LUKS (a
 * loop device, writable if rw), or the image itself. vhd: a VHD is returned
 * in t->img with t->hdr NULL instead of an error.
 */
static int vc_target_open(const struct vc_opts *o, const char *image, bool rw, bool vhd,
			  struct vc_target *t)
{
	const struct vc_image *img;
	int r;

	memset(t, 0, sizeof(*t));
	t->image = image;
	t->loop.fd = -1;
	if (o->header) {
		if (access(o->header, F_OK))
			return vc_fail(-ENOENT, "header %s not found: %s", o->header,
				       strerror(errno));
		t->hdr = o->header;
		return 0;
	}
	r = vc_image_open(image, VC_FMT_UNKNOWN, VC_OPEN_ALLOW_RAW | VC_OPEN_PARENT_OPTIONAL,
			  &t->img);
	if (r)
		return r;
	img = t->img;
	switch (img->fmt) {
	case VC_FMT_QCOW2:
		if (img->qcow2.header.crypt_method != QCOW2_CRYPT_LUKS)
			return vc_fail(-EMEDIUMTYPE, "%s is a qcow2 without LUKS encryption%s",
				       image, img->qcow2.header.crypt_method ?
				       " (legacy AES has no key slots)" : "");
		if (geteuid())
			return vc_fail_exit(VC_EXIT_PARAM, -EPERM, "the LUKS header inside %s is "
					    "reached through a loop device; run as root", image);
		r = vc_loop_attach(image, img->qcow2.fde_offset, img->qcow2.fde_length, !rw, true,
				   &t->loop);
		if (r)
			return r;
		t->hdr = t->loop.path;
		t->embedded = true;
		t->region_len = img->qcow2.fde_length;
		return 0;
	case VC_FMT_VHD:
		if (vhd)
			return 0;
		return vc_fail(-EMEDIUMTYPE, "%s is a VHD: it has no LUKS header (OpenXT keys: "
			       "see vhd-key; a detached header: --header)", image);
	default:
		t->hdr = image;	/* a LUKS device or header file itself */
		return 0;
	}
}

static int vc_target_load(struct vc_target *t, struct vc_luks **l, struct vc_luks_info *info)
{
	struct vc_luks_info dummy;
	int r = vc_luks_load(t->hdr, t->image, l, info ? info : &dummy);

	if (r == -EMEDIUMTYPE) {
		vc_clear_error();
		r = vc_fail(-EMEDIUMTYPE, "%s holds no valid LUKS header%s", t->image,
			    t->embedded ? " in its qcow2 encryption region (erased?)" : "");
	}
	return r;
}

/* The passphrase of --key-file, or from the terminal or standard input. */
static int vc_old_passphrase(const struct vc_opts *o, const char *label, struct vc_secret **out)
{
	struct vc_passphrase_src src = {
		.key_file = o->key_file,
		.keyfile_offset = o->keyfile_offset,
		.keyfile_size = o->keyfile_size,
		.tries = 1,
	};
	int r = vc_passphrase_get(&src, label, 0, out);

	vc_passphrase_clear(&src);
	return r == -EPERM ? vc_fail(-EINVAL, "no passphrase given for %s", label) : r;
}

/* The passphrase in a file named on the command line ("-": standard input). */
static int vc_file_passphrase(const char *path, struct vc_secret **out)
{
	int r = vc_secret_read_file(path, "the command line", 0, 0, out, NULL);

	if (!r && !(*out)->len) {
		vc_secret_free(*out);
		*out = NULL;
		return vc_fail(-EINVAL, "the passphrase in %s is empty", path);
	}
	return r;
}

/* luksAddKey (change false) and luksChangeKey. */
static int vc_add_or_change(const struct vc_opts *o, char **args, bool change)
{
	struct vc_secret *oldp = NULL, *newp = NULL;
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r, s_old = -1, s_new = -1;

	r = vc_file_passphrase(args[1], &newp);
	if (!r)
		r = vc_target_open(o, args[0], true, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	if (!r)
		r = vc_luks_set_pbkdf(l, o->pbkdf, o->iter_time);
	if (!r)
		r = vc_old_passphrase(o, args[0], &oldp);
	if (!r && change)
		r = vc_luks_change_key(l, o->key_slot, oldp, newp, &s_old, &s_new);
	else if (!r)
		r = vc_luks_add_key(l, o->key_slot, oldp, newp, &s_new);
	if (!r && change)
		vc_log_verbose("key slot %d replaced by key slot %d", s_old, s_new);
	else if (!r)
		vc_log_verbose("key slot %d created", s_new);
	vc_luks_free(l);
	vc_target_close(&t);
	vc_secret_free(oldp);
	vc_secret_free(newp);
	return r;
}

int vc_cmd_luks_add_key(const struct vc_opts *o, char **args)
{
	return vc_add_or_change(o, args, false);
}

int vc_cmd_luks_change_key(const struct vc_opts *o, char **args)
{
	return vc_add_or_change(o, args, true);
}

/* Count the active slots. */
static int vc_active_slots(struct vc_luks *l)
{
	int i, n = 0;

	for (i = 0; i < vc_luks_max_slots(l); i++)
		n += vc_luks_slot_active(l, i);
	return n;
}

/* Confirm, then destroy slot. */
static int vc_kill(const struct vc_opts *o, struct vc_luks *l, const char *image, int slot)
{
	char *what;
	int r;

	what = vc_asprintf(vc_active_slots(l) == 1 ?
			   "This removes key slot %d of %s, its last one: no passphrase will open "
			   "it any more" : "This removes key slot %d of %s", slot, image);
	if (!what)
		return -ENOMEM;
	r = vc_confirm(o->batch, what);
	free(what);
	if (!r)
		r = vc_luks_kill_slot(l, slot);
	if (!r)
		vc_log_verbose("key slot %d of %s removed", slot, image);
	return r;
}

int vc_cmd_luks_remove_key(const struct vc_opts *o, char **args)
{
	struct vc_secret *pass = NULL;
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r, slot;

	r = vc_file_passphrase(args[1], &pass);
	if (r)
		return r;
	r = vc_target_open(o, args[0], true, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	if (!r) {
		slot = vc_luks_find_slot(l, pass, -1);
		if (slot == -EPERM)
			r = vc_fail(-EPERM, "no key slot of %s matches the passphrase in %s",
				    args[0], args[1]);
		else if (slot < 0)
			r = slot;
		else
			r = vc_kill(o, l, args[0], slot);
	}
	vc_luks_free(l);
	vc_target_close(&t);
	vc_secret_free(pass);
	return r;
}

int vc_cmd_luks_kill_slot(const struct vc_opts *o, char **args)
{
	struct vc_secret *pass = NULL;
	struct vc_luks *l = NULL;
	unsigned long long slot;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r;

	if (vc_parse_u64(args[1], &slot) || slot > 31)
		return vc_fail(-EINVAL, "invalid key slot \"%s\"", args[1]);
	r = vc_target_open(o, args[0], true, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	if (!r && ((int)slot >= vc_luks_max_slots(l) || !vc_luks_slot_active(l, slot)))
		r = vc_fail(-EINVAL, "key slot %llu of %s is not in use", slot, args[0]);
	/* with a passphrase: it must open another slot, as cryptsetup checks */
	if (!r && o->key_file) {
		r = vc_old_passphrase(o, args[0], &pass);
		if (!r && vc_luks_find_slot(l, pass, slot) < 0)
			r = vc_fail(-EPERM, "the passphrase of --key-file opens no other key slot "
				    "of %s", args[0]);
	}
	if (!r)
		r = vc_kill(o, l, args[0], slot);
	vc_luks_free(l);
	vc_target_close(&t);
	vc_secret_free(pass);
	return r;
}

int vc_cmd_luks_dump(const struct vc_opts *o, char **args)
{
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r;

	r = vc_target_open(o, args[0], false, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	if (!r && t.embedded)
		printf("LUKS header of %s: the qcow2 encryption region at byte %llu, %llu bytes\n\n",
		       args[0], (unsigned long long)t.img->qcow2.fde_offset,
		       (unsigned long long)t.region_len);
	if (!r)
		r = vc_luks_dump(l);
	vc_luks_free(l);
	vc_target_close(&t);
	return r;
}

int vc_cmd_is_luks(const struct vc_opts *o, char **args)
{
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r;

	r = vc_target_open(o, args[0], false, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	vc_luks_free(l);
	vc_target_close(&t);
	if (r == -EMEDIUMTYPE)
		vc_log_verbose("%s", vc_last_error());
	return r;
}

/* erase of an OpenXT VHD: its key hash goes; the key file stays where it is. */
static int vc_erase_vhd(const struct vc_opts *o, const struct vc_image *img)
{
	struct vc_keyhash none = { .set = false };
	struct vc_keydirs kd = { 0 };
	struct vc_secret *key = NULL;
	char base[256], *path = NULL, *note = NULL, *what;
	int r;

	if (!img->vhd.keyhash.set)
		return vc_fail(-EINVAL, "%s has no OpenXT key hash: nothing to erase", img->path);
	if (img->vhd.footer.type == VHD_TYPE_FIXED)
		return vc_fail(-EINVAL, "%s is a fixed VHD; its key hash is not OpenXT's", img->path);
	what = vc_asprintf("This removes the key hash of %s: OpenXT will not decrypt it any "
			   "more", img->path);
	if (!what)
		return -ENOMEM;
	r = vc_confirm(o->batch, what);
	free(what);
	if (!r)
		r = vc_vhd_write_keyhash(img, &none);
	if (r)
		return r;
	r = o->key_dir ? vc_keydirs_parse(o->key_dir, "--key-dir", &kd) : vc_keydirs_default(&kd);
	if (!r) {
		vc_openxt_basename(img->path, base, sizeof(base));
		if (!vc_openxt_find_key(&kd, base, &key, &path, &note))
			fprintf(stderr, "The key hash of %s is erased. Its key file %s is no longer "
				"needed; delete it (shred -u) unless another copy of the image uses "
				"it.\n", img->path, path);
		else
			fprintf(stderr, "The key hash of %s is erased. Its key file %s,%s,<bits>.key "
				"is not in %s; delete it wherever it is kept.\n", img->path, base,
				VC_OPENXT_CIPHER, kd.list ? kd.list : "the key directories");
	}
	vc_secret_free(key);
	free(path);
	free(note);
	vc_keydirs_free(&kd);
	return 0;
}

/* The bytes a header takes: a qcow2's region, a detached header file, up to the payload. */
static uint64_t vc_header_bytes(const struct vc_target *t, const struct vc_luks_info *info)
{
	struct stat st;

	if (t->embedded)
		return t->region_len;
	if (info->data_offset)
		return info->data_offset * 512;
	return stat(t->hdr, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int vc_cmd_erase(const struct vc_opts *o, char **args)
{
	struct vc_luks_info info;
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	char *what = NULL;
	uint64_t len;
	int r, i;

	r = vc_target_open(o, args[0], true, true, &t);
	if (!r && !t.hdr) {
		r = vc_erase_vhd(o, t.img);
		vc_target_close(&t);
		return r;
	}
	if (!r)
		r = vc_target_load(&t, &l, &info);
	if (!r) {
		what = vc_asprintf("This erases every key slot of %s: no passphrase will ever "
				   "decrypt its data again", o->header ? o->header : args[0]);
		r = what ? vc_confirm(o->batch, what) : -ENOMEM;
	}
	for (i = 0; !r && i < vc_luks_max_slots(l); i++)
		if (vc_luks_slot_active(l, i))
			r = vc_luks_kill_slot(l, i);
	if (!r) {
		len = vc_header_bytes(&t, &info);
		vc_luks_free(l);	/* let go of the header before overwriting it */
		l = NULL;
		r = vc_luks_wipe(t.hdr, len, args[0]);
	}
	free(what);
	vc_luks_free(l);
	vc_target_close(&t);
	return r;
}

int vc_cmd_header_backup(const struct vc_opts *o, char **args)
{
	struct vc_luks *l = NULL;
	struct vc_target t = { .loop = { .fd = -1 } };
	int r;

	if (!o->header_backup_file)
		return vc_fail(-EINVAL, "give the backup file with --header-backup-file");
	r = vc_target_open(o, args[0], false, false, &t);
	if (!r)
		r = vc_target_load(&t, &l, NULL);
	if (!r)
		r = vc_luks_backup(l, o->header_backup_file);
	vc_luks_free(l);
	vc_target_close(&t);
	return r;
}

/*
 * The backup must be this image's: the same LUKS UUID as the header it
 * replaces and, with --key-file, a volume key that the header accepts.
 * Without a readable header there is nothing to compare.
 */
static int vc_restore_check(const struct vc_opts *o, struct vc_target *t,
			    const struct vc_luks_info *bk)
{
	struct vc_luks *cur = NULL, *back = NULL;
	struct vc_secret *vk = NULL;
	struct vc_passphrase_src src = { .tries = 1 };
	struct vc_luks_info ci, dummy;
	const char *backup = o->header_backup_file;
	int r;

	if (t->embedded && strcmp(bk->type, "LUKS1"))
		return vc_fail(-EINVAL, "%s is a %s header; a qcow2 holds LUKS1 only", backup,
			       bk->type);
	if (vc_luks_load(t->hdr, t->image, &cur, &ci)) {
		vc_clear_error();
		vc_warn("%s holds no readable LUKS header: the backup cannot be checked against "
			"it", t->image);
		return 0;
	}
	r = 0;
	if (strcmp(ci.uuid, bk->uuid) || ci.key_size != bk->key_size)
		r = vc_fail(-EINVAL, "the backup %s belongs to another LUKS header (UUID %s, %zu-bit "
			    "key; %s has UUID %s, %zu-bit key): not restored", backup, bk->uuid,
			    bk->key_size * 8, t->image, ci.uuid, ci.key_size * 8);
	if (!r && o->key_file) {
		src.key_file = o->key_file;
		src.keyfile_offset = o->keyfile_offset;
		src.keyfile_size = o->keyfile_size;
		r = vc_luks_load(backup, backup, &back, &dummy);
		if (!r)
			r = vc_luks_unlock(back, &src, -1, NULL, &vk);
		if (!r && vc_luks_verify_key(cur, vk))
			r = vc_fail(-EPERM, "the volume key of the backup %s is not the one of %s: "
				    "not restored", backup, t->image);
	}
	vc_passphrase_clear(&src);
	vc_secret_free(vk);
	vc_luks_free(back);
	vc_luks_free(cur);
	return r;
}

int vc_cmd_header_restore(const struct vc_opts *o, char **args)
{
	struct vc_luks_info bk;
	struct vc_target t = { .loop = { .fd = -1 } };
	char *what;
	int r;

	if (!o->header_backup_file)
		return vc_fail(-EINVAL, "give the backup file with --header-backup-file");
	r = vc_luks_peek(o->header_backup_file, &bk);
	if (r)
		return r;
	r = vc_target_open(o, args[0], true, false, &t);
	if (!r)
		r = vc_restore_check(o, &t, &bk);
	if (!r) {
		what = vc_asprintf("This replaces the LUKS header of %s and all its key slots by "
				   "the backup %s", o->header ? o->header : args[0],
				   o->header_backup_file);
		r = what ? vc_confirm(o->batch, what) : -ENOMEM;
		free(what);
	}
	if (!r)
		r = vc_luks_restore(t.hdr, o->header_backup_file, args[0]);
	vc_target_close(&t);
	return r;
}
