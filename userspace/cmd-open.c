// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup open: parse the chain, read every layer's key metadata
 * (scheme.h: prepare), check the kernel, derive the keys (unlock), attach
 * the image files as autoclear loop devices (locked as QEMU locks them,
 * lock.h), then create the vhdcrypt devices from the bottom layer up:
 * "<name>-L<n>" (hidden) ... "<name>-L1", then "<name>" on top, each one
 * naming the one below as its backing device, and the partition devices
 * of the top one (partitions.h). Lower layers are read-only; the top one
 * is read-write unless asked, or unless the file or the format cannot be
 * written, and its file is extended to the most it can need (grow.h). Any
 * failure removes what was created. A raw payload under a detached header
 * becomes one dm-crypt device instead, through libcryptsetup.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fs.h>

#include "chain.h"
#include "cmd.h"
#include "dm.h"
#include "dmname.h"
#include "grow.h"
#include "keyring.h"
#include "lock.h"
#include "loop.h"
#include "luks.h"
#include "partitions.h"
#include "scheme.h"
#include "table.h"
#include "util.h"

/* The devices of one layer. */
struct vc_layer_dev {
	char *dm_name;
	char *dm_uuid;
	struct vc_loop loop;	/* the image's loop device, if it is a file */
	int file_fd;		/* the image, with QEMU's locks, until the loop holds it */
	dev_t devt;		/* the device holding the image */
	dev_t dm_devt;		/* the vhdcrypt device made from it */
	bool created;
};

struct vc_open {
	const struct vc_opts *o;
	const char *image;
	const char *name;
	struct vc_chain chain;
	struct vc_crypt crypt[VC_CHAIN_MAX];
	struct vc_layer_dev dev[VC_CHAIN_MAX];
	struct vc_passphrase_src pass;
	struct vc_key_opts keys;
	struct vc_unlock unlock;
	bool rw;		/* the top layer is mapped read-write */
	bool grown;		/* and its file was extended (to undo on failure) */
};

/* Options that contradict each other, before anything is read. */
static int vc_open_check_options(const struct vc_opts *o)
{
	if (o->header && o->key_dir)
		return vc_fail(-EINVAL, "--key-dir cannot be used with --header (a detached "
			       "header takes a passphrase; OpenXT keys are for VHDs without one)");
	if (o->key_file && o->volume_key_file)
		return vc_fail(-EINVAL, "give either --key-file or --volume-key-file");
	if (o->type == VC_FMT_RAW && !o->header)
		return vc_fail(-EINVAL, "--type raw is for a payload under a detached LUKS "
			       "header; give --header");
	return 0;
}

/* Options that do nothing for this chain: refused, or a warning. */
static int vc_open_check_use(const struct vc_open *op)
{
	const struct vc_scheme *top = op->crypt[0].scheme;
	const char *path = op->chain.img[0]->path;

	if (op->o->key_slot >= 0 && top != &vc_scheme_luks && top != &vc_scheme_header)
		return vc_fail(-EINVAL, "--key-slot selects a LUKS key slot, but %s has no LUKS "
			       "header (only a qcow2 with LUKS or --header has)", path);
	if (op->o->volume_key_file && top == &vc_scheme_none)
		return vc_fail(-EINVAL, "--volume-key-file gives the key of the top image, but "
			       "%s is not encrypted", path);
	return 0;
}

static bool vc_open_raw(const struct vc_open *op)
{
	return op->chain.img[0]->fmt == VC_FMT_RAW;
}

/* Why the image file or device itself cannot be written; NULL if it can. */
static const char *vc_open_file_readonly(const struct vc_image *img)
{
	int fd, ro = 0;

	if (img->is_blockdev) {
		fd = open(img->path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && ioctl(fd, BLKROGET, &ro) < 0)
			ro = 0;
		if (fd >= 0)
			close(fd);
		return ro ? "it is a read-only block device" : NULL;
	}
	if (!(img->st.st_mode & 0222))
		return "the file has no write permission";
	if (access(img->path, W_OK) < 0)
		return errno == EROFS ? "it is on a read-only file system" :
					"the file is not writable";
	return NULL;
}

/*
 * Read-write unless --readonly, or unless the file or its format cannot be
 * written (then a warning says why).
 */
static void vc_open_choose_mode(struct vc_open *op)
{
	const struct vc_image *top = op->chain.img[0];
	const char *why = NULL;
	unsigned int v[3];

	op->rw = false;
	if (!(op->o->given & VC_OPT_READONLY)) {
		if (!vc_open_raw(op))
			why = vc_image_write_refusal(top, op->crypt[0].sector_size);
		if (!why)
			why = vc_open_file_readonly(top);
		if (!why && !op->o->dry_run && !vc_open_raw(op) &&
		    !vc_dm_target_version(VC_DM_TARGET, v) && v[0] == 1 && v[1] < 2)
			why = "the vhdcrypt kernel target writes from version 1.2.0 on "
			      "(update dm-vhdcrypt)";
		if (why)
			vc_warn("%s is mapped read-only: %s", top->path, why);
		else
			op->rw = true;
	}
	if (!op->rw && (op->o->given & VC_OPT_ALLOW_DISCARDS))
		vc_warn("--allow-discards has no effect on a read-only mapping");
}

/*
 * The kernel has the target the tables need (before any loop device, LUKS
 * header or passphrase), and once the key metadata is read
 * (sector_size != 0), the version its features need.
 */
static int vc_open_check_kernel(const struct vc_open *op, bool features)
{
	static const unsigned int v1_0[3] = { 1, 0, 0 }, v1_2[3] = { 1, 2, 0 };
	int i;

	if (vc_open_raw(op))
		return vc_dm_need_target(VC_DM_CRYPT_TARGET, "dm-crypt", v1_0, NULL);
	for (i = 0; features && i < op->chain.n; i++)
		if (op->crypt[i].sector_size > 512)
			return vc_dm_need_target(VC_DM_TARGET, "dm-vhdcrypt", v1_2,
						 "a LUKS header with 4096-byte sectors");
	return vc_dm_need_target(VC_DM_TARGET, "dm-vhdcrypt", v1_0, NULL);
}

/* The image must not be in use: mounted, held by a device, opened exclusively. */
static int vc_open_check_free(const struct vc_image *top)
{
	char busy[256], holder[64];
	int fd;

	if (top->is_blockdev) {
		if (vc_blockdev_has_holders(top->st.st_rdev, holder, sizeof(holder)))
			return vc_fail(-EBUSY, "image %s is already in use (held by %s)",
				       top->path, holder);
		fd = open(top->path, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EBUSY)
			return vc_fail(-EBUSY, "image %s is already in use (mounted or open "
				       "exclusively)", top->path);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (vc_loop_find_busy(top->st.st_dev, top->st.st_ino, busy, sizeof(busy)) > 0)
		return vc_fail(-EBUSY, "image %s is already in use by %s; close that first",
			       top->path, busy);
	return 0;
}

/* Names and DM UUIDs of every layer; the names must be free. */
static int vc_open_names(struct vc_open *op)
{
	struct vc_dm_dev d;
	int i;

	for (i = 0; i < op->chain.n; i++) {
		const struct vc_image *img = op->chain.img[i];
		struct vc_layer_dev *dev = &op->dev[i];

		dev->dm_name = vc_layer_dm_name(op->name, i);
		dev->dm_uuid = vc_layer_dm_uuid(img->fmt == VC_FMT_VHD ? "VHD" : "QCOW2",
						img->uuid, op->crypt[i].scheme->tag, op->name, i);
		if (!dev->dm_name || !dev->dm_uuid)
			return -ENOMEM;
		if (op->o->dry_run || i == 0 || img->fmt == VC_FMT_RAW ||
		    vc_dm_query(dev->dm_name, &d))
			continue;
		vc_dm_dev_clear(&d);
		return vc_fail(-EEXIST, "device %s (a lower layer name) already exists; remove "
			       "it with dmsetup remove %s", dev->dm_name, dev->dm_name);
	}
	return 0;
}

/* The key as the table gives it, in locked memory; *secret: it is key material. */
static char *vc_layer_key(const struct vc_open *op, int i, bool *secret)
{
	const struct vc_secret *key = op->crypt[i].key;
	char *s, *ref;

	*secret = false;
	if (!key)
		return vc_safe_strdup("-");
	if (!op->o->disable_keyring) {
		ref = vc_keyring_table_ref(op->dev[i].dm_name, key->len);
		s = ref ? vc_safe_strdup(ref) : NULL;
		free(ref);
		return s;
	}
	s = vc_safe_alloc(key->len * 2 + 1);
	if (!s) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	vc_hex(s, key->data, key->len);
	*secret = true;
	return s;
}

static uint64_t vc_layer_sectors(const struct vc_open *op, int i)
{
	return (op->chain.img[i]->virtual_size >> 9) - op->crypt[i].data_offset;
}

/* The table parameters of layer i (devices by name for --dry-run). */
static char *vc_layer_params(const struct vc_open *op, int i, const char *key, bool mask)
{
	const struct vc_image *img = op->chain.img[i], *parent = NULL;
	const struct vc_crypt *cr = &op->crypt[i];
	bool dry = op->o->dry_run;
	char *image = NULL, *backing = NULL, *p = NULL;
	struct vc_table t = {
		.format = vc_fmt_name(img->fmt),
		.cipher = cr->cipher,
		.key = key,
		.iv_offset = cr->iv_offset,
		.iv_host = cr->iv_host,
		.whole_disk = cr->whole_disk,
		.data_offset = cr->data_offset,
		.sector_size = cr->sector_size,
		.allow_discards = i == 0 && op->rw && (op->o->given & VC_OPT_ALLOW_DISCARDS),
	};

	if (i + 1 < op->chain.n)
		parent = op->chain.img[i + 1];
	image = dry ? vc_strdup(img->path) : vc_devt_name(op->dev[i].devt);
	if (parent && parent->fmt == VC_FMT_RAW)
		backing = dry ? vc_strdup(parent->path) : vc_devt_name(op->dev[i + 1].devt);
	else if (parent)
		backing = dry ? vc_strdup(op->dev[i + 1].dm_name) :
				vc_devt_name(op->dev[i + 1].dm_devt);
	if (image && (!parent || backing)) {
		t.image = image;
		t.backing = backing;
		p = vc_table_format(&t, mask);
	}
	free(image);
	free(backing);
	return p;
}

static int vc_open_layer(struct vc_open *op, int i)
{
	struct vc_layer_dev *dev = &op->dev[i];
	char *key, *params = NULL, *masked = NULL;
	struct vc_dm_new n = {
		.name = dev->dm_name, .uuid = dev->dm_uuid, .target = VC_DM_TARGET,
		.sectors = vc_layer_sectors(op, i), .hidden = i > 0, .writable = i == 0 && op->rw,
	};
	struct vc_dm_dev d;
	int32_t serial = 0;
	bool secret;
	int r = -ENOMEM;

	key = vc_layer_key(op, i, &secret);
	if (!key)
		return -ENOMEM;
	params = vc_layer_params(op, i, key, false);
	masked = vc_layer_params(op, i, key, true);
	if (!params || !masked)
		goto out;
	if (op->o->dry_run)
		printf("%s: 0 %llu vhdcrypt %s\n", dev->dm_name,
		       (unsigned long long)vc_layer_sectors(op, i), masked);
	vc_log_debug("table %s: 0 %llu vhdcrypt %s", dev->dm_name,
		     (unsigned long long)vc_layer_sectors(op, i), masked);
	vc_log_debug("uuid %s: %s", dev->dm_name, dev->dm_uuid);
	r = 0;
	if (op->o->dry_run)
		goto out;
	if (op->crypt[i].key && !op->o->disable_keyring) {
		r = vc_keyring_add(dev->dm_name, op->crypt[i].key, &serial);
		if (r)
			goto out;
	}
	n.params = params;
	n.secure = secret;
	r = vc_dm_create_dev(&n);
	vc_keyring_drop(serial);
	if (r)
		goto out;
	dev->created = true;
	if (!vc_dm_query(dev->dm_name, &d)) {
		dev->dm_devt = d.devt;
		vc_dm_dev_clear(&d);
	}
out:
	vc_safe_free(key);
	vc_safe_free(params);
	vc_safe_free(masked);
	return r;
}

static void vc_open_rollback(struct vc_open *op)
{
	int i;

	for (i = 0; i < op->chain.n; i++)	/* top first */
		if (op->dev[i].created) {
			vc_dm_remove(op->dev[i].dm_name);
			op->dev[i].created = false;
		}
}

/*
 * The image of layer i, locked as QEMU locks an image it reads or writes
 * (rw), on a loop device if it is a file; a read-write top image file is
 * extended first. A file that cannot be opened for writing is mapped
 * read-only.
 */
static int vc_open_file(struct vc_open *op, int i, bool rw)
{
	const struct vc_image *img = op->chain.img[i];
	struct vc_layer_dev *dev = &op->dev[i];
	int r;

	dev->file_fd = open(img->path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (dev->file_fd < 0 && rw && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		vc_warn("%s is mapped read-only: it cannot be opened for writing (%s)",
			img->path, strerror(errno));
		op->rw = rw = false;
		dev->file_fd = open(img->path, O_RDONLY | O_CLOEXEC);
	}
	if (dev->file_fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", img->path, strerror(errno));
	r = vc_lock_image(dev->file_fd, img->path, rw);
	if (!r && rw && vc_grow_needed(img))
		r = vc_grow_extend(dev->file_fd, img, &op->grown);
	if (r)
		return r;
	if (img->is_blockdev) {
		dev->devt = img->st.st_rdev;
		return 0;
	}
	r = vc_loop_attach_fd(dev->file_fd, img->path, 0, 0, !rw, true, &dev->loop);
	if (!r)
		dev->devt = dev->loop.devt;
	return r;
}

/* Give the top image file its size before open back. */
static void vc_open_ungrow(struct vc_open *op)
{
	const struct vc_image *top = op->chain.img[0];

	if (op->grown && ftruncate(op->dev[0].file_fd, top->file_size) < 0)
		vc_warn("cannot trim %s back to %llu bytes: %s", top->path,
			(unsigned long long)top->file_size, strerror(errno));
	op->grown = false;
}

/* Every image file, bottom first; only the top one may be read-write. */
static int vc_open_loops(struct vc_open *op)
{
	int i, r = 0;

	for (i = op->chain.n - 1; i >= 0 && !r; i--)
		r = vc_open_file(op, i, i == 0 && op->rw);
	return r;
}

/* The kernel refused the writable top table: map it read-only, the file as it was. */
static int vc_open_top_readonly(struct vc_open *op)
{
	const struct vc_image *top = op->chain.img[0];
	struct vc_layer_dev *dev = &op->dev[0];
	int r = 0;

	vc_warn("the kernel refused to map %s read-write (see dmesg for the reason); "
		"mapping it read-only", top->path);
	vc_clear_error();
	op->rw = false;
	vc_loop_release(&dev->loop);	/* detaches it (autoclear) */
	vc_open_ungrow(op);
	vc_lock_downgrade(dev->file_fd);
	if (!top->is_blockdev) {
		r = vc_loop_attach_fd(dev->file_fd, top->path, 0, 0, true, true, &dev->loop);
		dev->devt = dev->loop.devt;
	}
	return r ? r : vc_open_layer(op, 0);
}

/* The vhdcrypt devices, bottom first (raw backing files are used as they are). */
static int vc_open_stack(struct vc_open *op)
{
	int i, r = 0;

	if (!op->o->dry_run)
		r = vc_open_loops(op);
	for (i = op->chain.n - 1; i > 0 && !r; i--)
		if (op->chain.img[i]->fmt != VC_FMT_RAW)
			r = vc_open_layer(op, i);
	if (!r) {
		r = vc_open_layer(op, 0);
		if (op->rw && (r == -EROFS || r == -EINVAL))
			r = vc_open_top_readonly(op);
	}
	if (r)
		vc_open_rollback(op);
	return r;
}

/* A raw payload: dm-crypt through libcryptsetup, over a loop device. */
static int vc_open_dm_crypt(struct vc_open *op)
{
	const struct vc_crypt *cr = &op->crypt[0];
	const struct vc_image *img = op->chain.img[0];
	struct vc_table t = {
		.image = img->path,
		.cipher = cr->cipher,
		.key = "",
		.iv_offset = cr->iv_offset,
		.data_offset = cr->data_offset,
		.sector_size = cr->sector_size,
		.allow_discards = op->rw && (op->o->given & VC_OPT_ALLOW_DISCARDS),
	};
	char *digits, *masked;
	int r;

	if (op->o->dry_run) {
		/* masked anyway: only the number of hex digits matters */
		digits = vc_zalloc(cr->key->len * 2 + 1);
		if (!digits)
			return -ENOMEM;
		memset(digits, '0', cr->key->len * 2);
		t.key = digits;
		masked = vc_crypt_table_format(&t, true);
		free(digits);
		if (!masked)
			return -ENOMEM;
		printf("%s: 0 %llu crypt %s\n", op->name,
		       (unsigned long long)vc_layer_sectors(op, 0), masked);
		vc_safe_free(masked);
		return 0;
	}
	r = vc_open_file(op, 0, op->rw);
	if (!r)
		r = vc_luks_activate(cr->luks, op->name,
				     img->is_blockdev ? img->path : op->dev[0].loop.path, cr->key,
				     !op->o->disable_keyring, op->rw, t.allow_discards);
	return r;
}

/* The partition devices of the new device; a failure is only a warning. */
static void vc_open_partitions(struct vc_open *op)
{
	struct vc_dm_dev d;
	int n;

	if (op->o->dry_run || (op->o->given & VC_OPT_NO_PARTITIONS) ||
	    vc_dm_query(op->name, &d))
		return;
	n = vc_partitions_add(op->name, d.uuid, d.devt, d.length, op->rw);
	vc_dm_dev_clear(&d);
	if (n < 0) {
		vc_warn("the partitions of /dev/mapper/%s are not mapped: %s", op->name,
			vc_last_error());
		vc_clear_error();
	} else if (n > 0) {
		vc_log_verbose("%d partition%s mapped as /dev/mapper/%sp<N>", n, n > 1 ? "s" : "",
			       op->name);
	}
}

static int vc_open_run(struct vc_open *op)
{
	const struct vc_opts *o = op->o;
	struct vc_dm_dev d;
	int r, i;

	if (!o->dry_run) {
		r = vc_dm_check(VC_EXIT_PARAM);
		if (r)
			return r;
		if (vc_dm_query(op->name, &d) == 0) {
			vc_dm_dev_clear(&d);
			return vc_fail(-EEXIST, "device %s already exists; choose another name or "
				       "close it first", op->name);
		}
	}
	r = vc_chain_open(op->image, o->type, o->header ? VC_OPEN_ALLOW_RAW : 0, &op->chain);
	if (r)
		return r;
	for (i = 0; i < op->chain.n; i++)
		if (op->chain.img[i]->damage)
			vc_warn("%s is damaged: %s", op->chain.img[i]->path,
				op->chain.img[i]->damage);
	r = o->dry_run ? 0 : vc_open_check_kernel(op, false);
	if (!r)
		r = vc_chain_prepare(&op->unlock, &op->chain, op->crypt);
	if (!r)
		r = vc_open_names(op);
	if (!r)
		r = vc_open_check_use(op);
	if (!r && !o->dry_run)
		r = vc_open_check_free(op->chain.img[0]);
	if (!r && !o->dry_run)
		r = vc_open_check_kernel(op, true);
	if (!r)
		r = vc_chain_unlock(&op->unlock, &op->chain, op->crypt);
	if (r)
		return r;
	vc_open_choose_mode(op);
	r = vc_open_raw(op) ? vc_open_dm_crypt(op) : vc_open_stack(op);
	if (r || o->dry_run)
		return r;
	if (op->grown)
		vc_grow_state_save(op->name, &op->chain.img[0]->st, op->chain.img[0]->file_size);
	else
		vc_grow_state_remove(op->name);
	vc_open_partitions(op);
	vc_log_verbose("%s opened %s as /dev/mapper/%s (%d layer%s)", op->image,
		       op->rw ? "read-write" : "read-only", op->name, op->chain.n,
		       op->chain.n > 1 ? "s" : "");
	return 0;
}

int vc_cmd_open(const struct vc_opts *o, char **args)
{
	struct vc_open *op;
	int r, i;

	r = vc_check_name(args[1]);
	if (!r)
		r = vc_open_check_options(o);
	if (r)
		return r;
	op = vc_zalloc(sizeof(*op));
	if (!op)
		return -ENOMEM;
	for (i = 0; i < VC_CHAIN_MAX; i++) {
		op->dev[i].loop.fd = -1;
		op->dev[i].file_fd = -1;
	}
	op->o = o;
	op->image = args[0];
	op->name = args[1];
	op->pass = (struct vc_passphrase_src){
		.key_file = o->key_file,
		.keyfile_offset = o->keyfile_offset,
		.keyfile_size = o->keyfile_size,
		.tries = o->tries,
	};
	op->keys = (struct vc_key_opts){
		.pass = &op->pass,
		.key_file = o->key_file,
		.volume_key_file = o->volume_key_file,
		.key_dir = o->key_dir,
		.header = o->header,
		.key_slot = o->key_slot,
		.dry_run = o->dry_run,
	};
	op->unlock.o = &op->keys;
	r = vc_open_run(op);
	for (i = 0; i < op->chain.n; i++)
		vc_loop_release(&op->dev[i].loop);	/* the tables hold them now */
	if (r)
		vc_open_ungrow(op);
	for (i = 0; i < op->chain.n; i++) {
		if (op->dev[i].file_fd >= 0)
			close(op->dev[i].file_fd);	/* the loop devices keep the locks */
		free(op->dev[i].dm_name);
		free(op->dev[i].dm_uuid);
	}
	vc_crypt_clear(op->crypt, op->chain.n);
	vc_unlock_done(&op->unlock);
	vc_passphrase_clear(&op->pass);
	vc_chain_free(&op->chain);
	free(op);
	return r;
}
