// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - open/close.
 *
 * open: parse the chain, derive every layer's key (OpenXT key files, LUKS
 * through libcryptsetup, legacy qcow2 AES, or a detached LUKS header), attach
 * the image files as read-only autoclear loop devices, then create the
 * vhdcrypt devices from the bottom layer up: "<name>-L<n>" (hidden) ...
 * "<name>-L1", then "<name>" on top, each one naming the one below as its
 * backing device. Any failure removes what was created.
 *
 * close: remove "<name>", then its lower layers, found through the
 * backing:<dev> option of each table; the loop devices detach themselves
 * (autoclear) when the last vhdcrypt device releases them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "activate.h"
#include "blkid.h"
#include "dm.h"
#include "keyring.h"
#include "loop.h"
#include "luks.h"
#include "openxt.h"
#include "secret.h"

#define VC_NAME_MAX 64

int vc_check_name(const char *name)
{
	const char *p;

	if (!*name)
		return vc_fail(-EINVAL, "the device name is empty");
	if (strlen(name) > VC_NAME_MAX)
		return vc_fail(-EINVAL, "device name %s is longer than %d characters",
			       name, VC_NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "control"))
		return vc_fail(-EINVAL, "\"%s\" cannot be used as a device name", name);
	for (p = name; *p; p++)
		if (*p == '/' || isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return vc_fail(-EINVAL, "device name \"%s\" contains '/', a space or "
				       "a control character", name);
	return 0;
}

void vc_layer_dm_name(char *out, size_t len, const char *name, int depth)
{
	if (depth == 0)
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%s-L%d", name, depth);
}

static void vc_layer_dm_uuid(struct vc_layer *l, const char *name)
{
	const char *t = l->fmt == VC_FMT_VHD ? "VHD" : "QCOW2";

	if (l->depth == 0)
		snprintf(l->dm_uuid, sizeof(l->dm_uuid), VC_DM_UUID_PREFIX "%s-%s-%s",
			 t, l->uuid, name);
	else
		snprintf(l->dm_uuid, sizeof(l->dm_uuid), VC_DM_UUID_PREFIX "%s-%s-%s-L%d",
			 t, l->uuid, name, l->depth);
}

static uint64_t vc_layer_sectors(const struct vc_layer *l)
{
	return (l->virtual_size >> 9) - l->data_offset;
}

char *vc_table_params(const struct vc_layer *l, dev_t image_dev, const char *image_str,
		      const char *key, dev_t backing, const char *backing_str)
{
	char dev[64], opts[256], *p;
	size_t len;
	int n = 0, o = 0;

	if (image_str)
		snprintf(dev, sizeof(dev), "%s", image_str);
	else
		vc_devt_str(dev, sizeof(dev), image_dev);
	opts[0] = '\0';
	if (backing || backing_str) {
		char b[64];

		if (backing_str)
			snprintf(b, sizeof(b), "%s", backing_str);
		else
			vc_devt_str(b, sizeof(b), backing);
		o += snprintf(opts + o, sizeof(opts) - o, " backing:%s", b);
		n++;
	}
	if (l->iv_host) {
		o += snprintf(opts + o, sizeof(opts) - o, " iv_sector:host");
		n++;
	}
	if (l->whole_disk) {
		o += snprintf(opts + o, sizeof(opts) - o, " whole_disk");
		n++;
	}
	if (l->data_offset) {
		o += snprintf(opts + o, sizeof(opts) - o, " data_offset:%llu",
			      (unsigned long long)l->data_offset);
		n++;
	}
	len = strlen(vc_fmt_name(l->fmt)) + strlen(dev) + strlen(l->cipher) + strlen(key) +
	      strlen(opts) + 64;
	p = vc_safe_alloc(len);
	if (!p) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	if (n)
		snprintf(p, len, "%s %s %s %s %llu %d%s", vc_fmt_name(l->fmt), dev, l->cipher,
			 key, (unsigned long long)l->iv_offset, n, opts);
	else
		snprintf(p, len, "%s %s %s %s %llu", vc_fmt_name(l->fmt), dev, l->cipher, key,
			 (unsigned long long)l->iv_offset);
	return p;
}

char *vc_table_mask(const char *params)
{
	char *out = malloc(strlen(params) + 64), *o;
	const char *p = params, *e;
	int field = 0;

	if (!out)
		return NULL;
	o = out;
	while (*p) {
		e = strchr(p, ' ');
		if (!e)
			e = p + strlen(p);
		if (field == 3 && *p != ':' && *p != '-')
			o += sprintf(o, "<hex-key-%d-bytes>", (int)((e - p) / 2));
		else {
			memcpy(o, p, e - p);
			o += e - p;
		}
		if (*e)
			*o++ = ' ';
		p = *e ? e + 1 : e;
		field++;
	}
	*o = '\0';
	return out;
}

/* ------------------------------------------------------------------------ */
/* keys */

/*
 * A detached LUKS header encrypts the virtual disk of the whole chain, as
 * "cryptsetup open --header" over the unencrypted mapping of the top image
 * would: the top layer gets the cipher with whole_disk (holes and backing
 * data are decrypted too), the lower layers are mapped with cipher none.
 * With a payload offset the top device starts there; the backing device is
 * still addressed by virtual sector, IVs count from the payload.
 */
static int vc_keys_header(const struct vc_open_opts *o, struct vc_layer *top,
			  struct vc_secret_src *src)
{
	struct vc_luks_info info;
	struct vc_key *vk = NULL;
	struct vc_layer *l;
	struct stat st;
	int r;

	if (stat(o->header, &st) < 0)
		return vc_fail(-ENOENT, "cannot open the LUKS header %s: %s", o->header,
			       strerror(errno));
	r = vc_blkid_luks(o->header, 0, 0, NULL, 0, NULL);
	if (r <= 0)
		return vc_fail(-EMEDIUMTYPE, "%s holds no LUKS header; check --header", o->header);
	for (l = top; l; l = l->parent) {
		if (!((l->fmt == VC_FMT_VHD && l->kh.set) ||
		      (l->fmt == VC_FMT_QCOW2 && l->qh.crypt_method)))
			continue;
		if (l == top)
			return vc_fail(-EINVAL, "%s has its own encryption; --header applies to "
				       "unencrypted images only", l->path);
		return vc_fail(-ENOTSUP, "%s, in the backing chain of %s, has its own "
			       "encryption; a detached LUKS header over an encrypted backing "
			       "image (two encryption layers) is not supported", l->path,
			       o->image);
	}
	r = vc_luks_unlock(o->header, o->image, src, o->key_slot, &info, &vk);
	if (r)
		return r;
	if (top->virtual_size >> 9 <= info.data_offset) {
		vc_key_free(vk);
		return vc_fail(-EINVAL, "the LUKS payload offset (%llu sectors) of %s lies beyond "
			       "the virtual disk of %s", (unsigned long long)info.data_offset,
			       o->header, o->image);
	}
	for (l = top->parent; l; l = l->parent) {
		l->enc = VC_ENC_NONE;
		snprintf(l->cipher, sizeof(l->cipher), "none");
	}
	top->enc = VC_ENC_HEADER;
	snprintf(top->cipher, sizeof(top->cipher), "%s", info.cipher);
	top->key = vk;
	top->iv_offset = info.iv_offset;
	top->data_offset = info.data_offset;
	top->whole_disk = true;
	return 0;
}

static int vc_key_qcow2_luks(const struct vc_open_opts *o, struct vc_layer *l,
			     struct vc_secret_src *src)
{
	struct vc_luks_info info;
	struct vc_loop lo;
	char label[4200];
	int r;

	if (o->dry_run && geteuid() != 0)
		return vc_fail(-EPERM, "reading the LUKS header of %s needs a loop device; "
			       "run as root", l->path);
	r = vc_loop_attach(l->path, l->fde_offset, l->fde_length, true, true, &lo);
	if (r)
		return r;
	snprintf(label, sizeof(label), "%s", l->path);
	r = vc_luks_unlock(lo.path, label, src, l->depth == 0 ? o->key_slot : -1, &info, &l->key);
	vc_loop_release(&lo);	/* autoclear: detaches now */
	if (r)
		return r;
	l->enc = VC_ENC_LUKS;
	snprintf(l->cipher, sizeof(l->cipher), "%s", info.cipher);
	l->iv_host = true;
	l->iv_offset = 0;
	if (!l->luks_uuid[0] && strlen(info.uuid) == 36) {
		snprintf(l->luks_uuid, sizeof(l->luks_uuid), "%s", info.uuid);
		snprintf(l->uuid, sizeof(l->uuid), "%s", info.uuid);
		l->uuid_source = "luks";
	}
	return 0;
}

static int vc_key_qcow2_aes(struct vc_layer *l, struct vc_secret_src *src)
{
	struct vc_key *pass = NULL;
	size_t n;
	int r;

	/* QEMU crypto/block-qcow.c: the first min(strlen(passphrase), 16) bytes, zero padded */
	r = vc_secret_get(src, l->path, 0, &pass);
	if (r == -EPERM)
		return vc_fail(-EPERM, "no passphrase for %s", l->path);
	if (r)
		return r;
	l->key = vc_key_new(16);
	if (!l->key) {
		vc_key_free(pass);
		return -ENOMEM;
	}
	n = strnlen((const char *)pass->data, pass->len);
	if (n > 16)
		n = 16;
	memset(l->key->data, 0, 16);
	memcpy(l->key->data, pass->data, n);
	vc_key_free(pass);
	l->enc = VC_ENC_AES;
	snprintf(l->cipher, sizeof(l->cipher), "aes-cbc-plain64");
	return 0;
}

int vc_chain_keys(const struct vc_open_opts *o, struct vc_layer *top, struct vc_secret_src *src)
{
	struct vc_openxt_node nodes[VC_CHAIN_MAX];
	struct vc_keydirs kd = { 0 };
	struct vc_key *top_key = NULL;
	struct vc_layer *l;
	int i, n = 0, r = 0;
	bool have_kd = false;

	if (o->header)
		return vc_keys_header(o, top, src);

	/* OpenXT walk nodes: VHD layers linked to their VHD parents */
	for (l = top; l; l = l->parent, n++) {
		nodes[n].path = l->path;
		nodes[n].kh = &l->kh;
		nodes[n].parent = NULL;
	}
	for (i = 0, l = top; l; l = l->parent, i++)
		if (l->fmt == VC_FMT_VHD && l->parent && l->parent->fmt == VC_FMT_VHD)
			nodes[i].parent = &nodes[i + 1];

	for (i = 0, l = top; l; l = l->parent, i++) {
		switch (l->fmt) {
		case VC_FMT_VHD:
			if (!have_kd) {
				r = o->key_dir ? vc_keydirs_parse(o->key_dir, "--key-dir", &kd)
					       : vc_keydirs_default(&kd);
				if (r)
					goto out;
				have_kd = true;
			}
			if (i == 0 && o->key_file && !top_key) {
				r = vc_read_secret_file(o->key_file, 65, &top_key);
				if (r)
					goto out;
				if (top_key->len != 32 && top_key->len != 64) {
					r = vc_fail(-EINVAL, "key file %s holds %zu bytes; an OpenXT "
						    "key has exactly 32 or 64 bytes", o->key_file,
						    top_key->len);
					goto out;
				}
			}
			r = vc_openxt_resolve(&nodes[i], &kd, i == 0 ? top_key : NULL,
					      o->key_file ? o->key_file : "", &l->key,
					      l->keyfile, sizeof(l->keyfile));
			if (r)
				goto out;
			if (l->key) {
				l->enc = VC_ENC_OPENXT;
				snprintf(l->cipher, sizeof(l->cipher), VC_OPENXT_CIPHER);
			}
			break;
		case VC_FMT_QCOW2:
			if (l->qh.crypt_method == QCOW2_CRYPT_LUKS)
				r = vc_key_qcow2_luks(o, l, src);
			else if (l->qh.crypt_method == QCOW2_CRYPT_AES)
				r = vc_key_qcow2_aes(l, src);
			if (r)
				goto out;
			break;
		default:
			break;
		}
		if (!l->key)
			snprintf(l->cipher, sizeof(l->cipher), "none");
	}
out:
	vc_key_free(top_key);
	if (have_kd)
		vc_keydirs_free(&kd);
	return r;
}

/* ------------------------------------------------------------------------ */
/* devices */

static int vc_check_top_free(struct vc_layer *top)
{
	char busy[256], holder[64];
	int fd, r;

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
	r = vc_loop_find_busy(top->st.st_dev, top->st.st_ino, busy, sizeof(busy));
	if (r > 0)
		return vc_fail(-EBUSY, "image %s is already in use by %s; close that first",
			       top->path, busy);
	return 0;
}

static void vc_rollback(struct vc_layer *top)
{
	struct vc_layer *l;

	/* created devices: top first */
	for (l = top; l; l = l->parent)
		if (l->dm_created) {
			vc_dm_remove(l->dm_name);
			l->dm_created = false;
		}
	for (l = top; l; l = l->parent)
		vc_loop_release(&l->loop);
}

static int vc_create_layer(const struct vc_open_opts *o, struct vc_layer *l, dev_t backing,
			   const char *backing_str, bool dry)
{
	int32_t serial = 0;
	char *keystr = NULL, *params = NULL, *masked;
	bool secure = false;
	int r;

	if (!l->key) {
		keystr = vc_strdup("-");
	} else if (o->disable_keyring) {
		keystr = vc_safe_alloc(l->key->len * 2 + 1);
		if (keystr)
			vc_hex(keystr, l->key->data, l->key->len);
		secure = true;
	} else {
		keystr = vc_keyring_table_ref(l->dm_name, l->key->len);
	}
	if (!keystr)
		return -ENOMEM;
	params = vc_table_params(l, l->devt, dry ? l->path : NULL, keystr, backing, backing_str);
	if (!params) {
		r = -ENOMEM;
		goto out;
	}
	masked = vc_table_mask(params);
	if (dry)
		printf("%s: 0 %llu vhdcrypt %s\n", l->dm_name,
		       (unsigned long long)vc_layer_sectors(l), masked ? masked : "?");
	vc_log_debug("table %s: 0 %llu vhdcrypt %s", l->dm_name,
		     (unsigned long long)vc_layer_sectors(l), masked ? masked : "?");
	vc_log_debug("uuid %s: %s", l->dm_name, l->dm_uuid);
	free(masked);
	if (dry) {
		r = 0;
		goto out;
	}
	if (l->key && !o->disable_keyring) {
		r = vc_keyring_add(l->dm_name, l->key, &serial);
		if (r)
			goto out;
	}
	r = vc_dm_create(l->dm_name, l->dm_uuid, vc_layer_sectors(l), params, secure,
			 l->depth > 0);
	vc_keyring_drop(serial);
	if (r)
		goto out;
	l->dm_created = true;
	{
		struct vc_dm_dev d;

		if (!vc_dm_query(l->dm_name, &d)) {
			l->dm_devt = d.devt;
			vc_dm_dev_clear(&d);
		}
	}
out:
	if (secure && keystr) {
		vc_safe_free(keystr);
		keystr = NULL;
	}
	free(keystr);
	vc_safe_free(params);
	return r;
}

int vc_open(const struct vc_open_opts *o)
{
	struct vc_secret_src src = { .key_file = o->key_file, .tries = o->tries };
	struct vc_layer *top = NULL, *l, *layers[VC_CHAIN_MAX];
	struct vc_dm_dev d;
	char ldname[160];
	int r, n, i;

	r = vc_check_name(o->name);
	if (r)
		return r;
	if (!o->dry_run) {
		r = vc_dm_check();
		if (r)
			return r;
		if (vc_dm_query(o->name, &d) == 0) {
			vc_dm_dev_clear(&d);
			return vc_fail(-EEXIST, "device %s already exists; choose another name or "
				       "close it first", o->name);
		}
	}
	r = vc_chain_open(o->image, o->type, &top);
	if (r)
		return r;
	n = 0;
	for (l = top; l; l = l->parent)
		layers[n++] = l;
	for (i = 0; i < n; i++) {
		l = layers[i];
		vc_layer_dm_name(l->dm_name, sizeof(l->dm_name), o->name, l->depth);
		vc_layer_dm_uuid(l, o->name);
		if (!o->dry_run && l->fmt != VC_FMT_RAW && i > 0 &&
		    vc_dm_query(l->dm_name, &d) == 0) {
			vc_dm_dev_clear(&d);
			r = vc_fail(-EEXIST, "device %s (a lower layer name) already exists; "
				    "remove it with dmsetup remove %s", l->dm_name, l->dm_name);
			goto out;
		}
	}
	if (!o->dry_run) {
		r = vc_check_top_free(top);
		if (r)
			goto out;
	}

	r = vc_chain_keys(o, top, &src);
	if (r)
		goto out;

	/* image devices, bottom first */
	for (i = n - 1; i >= 0 && !o->dry_run; i--) {
		l = layers[i];
		if (l->is_blockdev) {
			l->devt = l->st.st_rdev;
			continue;
		}
		r = vc_loop_attach(l->path, 0, 0, true, true, &l->loop);
		if (r)
			goto fail;
		l->devt = l->loop.devt;
	}

	/* vhdcrypt devices, bottom first */
	for (i = n - 1; i >= 0; i--) {
		dev_t backing = 0;
		const char *backing_str = NULL;

		l = layers[i];
		if (l->fmt == VC_FMT_RAW)
			continue;
		if (l->parent) {
			if (l->parent->fmt == VC_FMT_RAW)
				backing = l->parent->devt;
			else
				backing = l->parent->dm_devt;
			if (o->dry_run)
				backing_str = l->parent->fmt == VC_FMT_RAW ? l->parent->path
									   : l->parent->dm_name;
		}
		r = vc_create_layer(o, l, backing, backing_str, o->dry_run);
		if (r)
			goto fail;
	}
	for (i = 0; i < n; i++)
		vc_loop_release(&layers[i]->loop);
	vc_layer_dm_name(ldname, sizeof(ldname), o->name, 0);
	if (!o->dry_run)
		vc_log_verbose("%s opened as /dev/mapper/%s (%d layer%s)", o->image, ldname, n,
			       n > 1 ? "s" : "");
	r = 0;
	goto out;
fail:
	vc_rollback(top);
out:
	vc_secret_clear(&src);
	vc_chain_free(top);
	return r;
}

/* ------------------------------------------------------------------------ */
/* close */

int vc_table_devs(const char *params, dev_t *image, dev_t *backing)
{
	char *copy = strdup(params), *tok, *save = NULL;
	int field = 0;

	*image = 0;
	*backing = 0;
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 1)
			vc_parse_devt(tok, image);
		else if (field >= 6 && !strncmp(tok, "backing:", 8))
			vc_parse_devt(tok + 8, backing);
	}
	explicit_bzero(copy, strlen(params));
	free(copy);
	return 0;
}

int vc_close(const char *name)
{
	struct vc_dm_dev d;
	char names[VC_CHAIN_MAX][VC_DM_NAME_MAX + 1];
	dev_t loops[VC_CHAIN_MAX];
	static char lfiles[VC_CHAIN_MAX][4096];
	int nn = 0, nl = 0, i, r;
	dev_t image, backing;
	char expect[160];

	r = vc_check_name(name);
	if (r)
		return r;
	r = vc_dm_check();
	if (r)
		return r;
	r = vc_dm_query(name, &d);
	if (r == -ENODEV)
		return vc_fail(-ENODEV, "device %s is not active", name);
	if (r)
		return vc_fail(r, "cannot query device %s: %s", name, strerror(-r));
	if (strcmp(d.target_type, VC_DM_TARGET) ||
	    strncmp(d.uuid, VC_DM_UUID_PREFIX, strlen(VC_DM_UUID_PREFIX))) {
		vc_dm_dev_clear(&d);
		return vc_fail(-ENODEV, "device %s is not a vhdcrypt device; use dmsetup remove",
			       name);
	}
	/* collect the stack */
	for (;;) {
		struct vc_loop_info li;

		snprintf(names[nn++], sizeof(names[0]), "%s", d.name);
		vc_table_devs(d.params ? d.params : "", &image, &backing);
		vc_dm_dev_clear(&d);
		if (image && vc_loop_info(image, &li) == 0 && li.autoclear && nl < VC_CHAIN_MAX) {
			snprintf(lfiles[nl], sizeof(lfiles[nl]), "%s", li.backing_file);
			loops[nl++] = image;
		}
		if (!backing || nn >= VC_CHAIN_MAX)
			break;
		if (vc_dm_query_devt(backing, &d)) {
			/* a raw backing file's loop device */
			if (vc_loop_info(backing, &li) == 0 && li.autoclear && nl < VC_CHAIN_MAX) {
				snprintf(lfiles[nl], sizeof(lfiles[nl]), "%s", li.backing_file);
				loops[nl++] = backing;
			}
			break;
		}
		vc_layer_dm_name(expect, sizeof(expect), name, nn);
		if (strcmp(d.name, expect) || strcmp(d.target_type, VC_DM_TARGET)) {
			/* not one of ours (the user stacked it): leave it alone */
			vc_dm_dev_clear(&d);
			break;
		}
	}
	for (i = 0; i < nn; i++) {
		r = vc_dm_remove(names[i]);
		if (r) {
			if (i > 0)
				vc_fail(r, "%s was closed, but its lower layer %s could not be "
					"removed; remove it with dmsetup remove %s", name,
					names[i], names[i]);
			return r;
		}
		vc_log_debug("removed %s", names[i]);
	}
	/* autoclear loop devices detach on their last close; make sure */
	for (i = 0; i < nl; i++) {
		struct vc_loop_info li;

		if (vc_loop_info(loops[i], &li) == 0 && li.autoclear &&
		    !strcmp(li.backing_file, lfiles[i]) &&
		    !vc_blockdev_has_holders(loops[i], NULL, 0)) {
			vc_loop_detach(loops[i]);
			vc_log_debug("detached loop %u:%u", major(loops[i]), minor(loops[i]));
		}
	}
	return 0;
}
