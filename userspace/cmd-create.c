// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup create: a new qcow2 (with LUKS1 inside, as QEMU makes it)
 * or VHD (with an OpenXT key hash), optionally with a detached LUKS header,
 * an overlay of a backing image, or formatted onto an existing device.
 *
 * The image structures are written by create-qcow2.c and create-vhd.c, the
 * LUKS header by libcryptsetup: for a qcow2 into a memory file first (its
 * size gives the LUKS region's), then copied into the region.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "confirm.h"
#include "create.h"
#include "luks.h"
#include "passphrase.h"
#include "scheme-openxt.h"
#include "util.h"

#define VC_DEFAULT_CIPHER	"aes-xts-plain64"
#define VC_LUKS1_MAX_BYTES	(4u << 20)	/* more than a LUKS1 header with 8 slots needs */
#define VC_LUKS2_HEADER_BYTES	(16u << 20)	/* libcryptsetup's default LUKS2 header */

int vc_new_passphrase(const char *key_file, uint64_t offset, size_t size, const char *label,
		      struct vc_secret **out)
{
	struct vc_passphrase_src src = { .tries = 1 };
	struct vc_secret *again = NULL;
	char *label2;
	int r;

	*out = NULL;
	if (strcmp(key_file, "-") || !isatty(STDIN_FILENO)) {
		r = vc_secret_read_file(key_file, "--key-file", offset, size, out, NULL);
		if (!r && !(*out)->len) {
			vc_secret_free(*out);
			*out = NULL;
			r = vc_fail(-EINVAL, "the passphrase in %s is empty",
				    strcmp(key_file, "-") ? key_file : "standard input");
		}
		return r;
	}
	label2 = vc_asprintf("%s (again)", label);
	if (!label2)
		return -ENOMEM;
	r = vc_passphrase_get(&src, label, 0, out);
	vc_passphrase_clear(&src);
	if (!r)
		r = vc_passphrase_get(&src, label2, 0, &again);
	vc_passphrase_clear(&src);
	free(label2);
	if (!r && ((*out)->len != again->len || memcmp((*out)->data, again->data, again->len)))
		r = vc_fail(-EINVAL, "the passphrases do not match");
	if (!r && !(*out)->len)
		r = vc_fail(-EINVAL, "the passphrase is empty");
	vc_secret_free(again);
	if (r) {
		vc_secret_free(*out);
		*out = NULL;
	}
	return r == -EPERM ? vc_fail(-EINVAL, "no passphrase given") : r;
}

/* State of one create. */
struct vc_new {
	struct vc_create *c;
	int fd;
	bool created;		/* path is a file this create made: removed on failure */
	bool header_created;
	bool is_blockdev;
	uint64_t device_size;
	struct vc_image *parent;	/* the backing image, opened */
	char *backing_path;	/* where it was found */
};

static int vc_new_parent(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	enum vc_fmt want = c->fmt == VC_FMT_VHD ? VC_FMT_VHD : VC_FMT_UNKNOWN;
	int r;

	/* the name is stored as given and, if relative, found next to the new image */
	nw->backing_path = vc_qcow2_backing_path(c->path, c->backing);
	if (!nw->backing_path)
		return vc_fail(-EINVAL, "backing image \"%s\" is not a local file", c->backing);
	r = vc_image_open(nw->backing_path, want, VC_OPEN_ALLOW_RAW | VC_OPEN_PARENT_OPTIONAL,
			  &nw->parent);
	if (r)
		return r;
	if (!c->size)
		c->size = nw->parent->virtual_size;
	return 0;
}

/* The parent as the VHD locators store it: relative to the child, "./" first. */
static char *vc_new_parent_rel(const struct vc_new *nw)
{
	char *child_dir, *cdir, *pfile, *prefix, *res = NULL;
	size_t i = 0, last = 0, ups = 0, j;

	child_dir = vc_dirname(nw->c->path);
	cdir = child_dir ? realpath(child_dir, NULL) : NULL;
	pfile = realpath(nw->backing_path, NULL);
	free(child_dir);
	if (!cdir || !pfile)
		goto out;
	if (strcmp(cdir, "/")) {
		/* the last '/' of the common directories */
		for (; cdir[i] && cdir[i] == pfile[i]; i++)
			if (cdir[i] == '/')
				last = i;
		if (!cdir[i] && pfile[i] == '/')
			last = i;
		for (j = last; cdir[j]; j++)
			ups += cdir[j] == '/';
	}
	prefix = vc_zalloc(3 * ups + 3);
	if (prefix) {
		strcpy(prefix, "./");
		for (j = 0; j < ups; j++)
			memcpy(prefix + 3 * j, "../", 3);
		res = vc_asprintf("%s%s", prefix, pfile + last + 1);
		free(prefix);
	}
out:
	free(cdir);
	free(pfile);
	return res;
}

static int vc_new_check(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	bool luks = c->pass != NULL;

	if (!c->size && !c->backing)
		return vc_fail(-EINVAL, "give the virtual disk size with --size");
	if (c->fmt == VC_FMT_QCOW2) {
		if (c->fixed)
			return vc_fail(-EINVAL, "--subformat is for VHD images");
		if (c->key_dir || c->vhd_key || c->nonce)
			return vc_fail(-EINVAL, "OpenXT keys (--key-dir, --nonce) are for VHD images; "
				       "a qcow2 takes a passphrase (--key-file)");
	} else {
		if (c->cluster_bits)
			return vc_fail(-EINVAL, "--cluster-size is for qcow2 images");
		if ((c->key_dir || c->vhd_key) && c->fixed)
			return vc_fail(-EINVAL, "a fixed VHD cannot carry an OpenXT key (OpenXT "
				       "refuses key hashes on fixed disks); make a dynamic one");
		if ((c->key_dir || c->vhd_key) && c->header)
			return vc_fail(-EINVAL, "give either an OpenXT key (--key-dir, --key-file) "
				       "or --header, not both");
		if (c->key_dir && c->vhd_key)
			return vc_fail(-EINVAL, "give either --key-dir (a new key) or --key-file "
				       "(an existing key)");
		if (c->fixed && c->backing)
			return vc_fail(-EINVAL, "a fixed VHD has no parent; --backing makes a "
				       "differencing VHD");
		if (luks && !c->header)
			return vc_fail(-EINVAL, "a VHD has no LUKS header inside: give --key-dir or "
				       "--header");
		if (c->cipher && strcmp(c->cipher, VC_OPENXT_CIPHER) && !c->header)
			return vc_fail(-EINVAL, "OpenXT VHDs use cipher %s only", VC_OPENXT_CIPHER);
		if (c->nonce && !c->key_dir && !c->vhd_key)
			return vc_fail(-EINVAL, "--nonce goes with an OpenXT key (--key-dir or "
				       "--key-file)");
		if (c->vhd_key && c->vhd_key->len != 32 && c->vhd_key->len != 64)
			return vc_fail(-EINVAL, "an OpenXT key has 32 or 64 bytes, the --key-file "
				       "has %zu", c->vhd_key->len);
		if (c->key_bytes && c->key_bytes != 32 && c->key_bytes != 64 && !c->header)
			return vc_fail(-EINVAL, "OpenXT keys have 256 or 512 bits");
		if (c->vhd_key && c->key_bytes && c->key_bytes != c->vhd_key->len)
			return vc_fail(-EINVAL, "--key-size does not match the key in --key-file");
		if (c->size > VHD_MAX_SECTORS << 9)
			return vc_fail(-EINVAL, "a VHD holds at most 2040 GiB");
	}
	if (!luks && (c->cipher && !c->vhd_key && !c->key_dir))
		return vc_fail(-EINVAL, "--cipher needs a key: give --key-file");
	if (luks && c->luks_type && !c->header)
		return vc_fail(-EINVAL, "--luks-type is the type of a detached --header (a qcow2 "
			       "holds LUKS1, as QEMU requires)");
	if (c->header && !luks)
		return vc_fail(-EINVAL, "--header needs the passphrase of its key slot: give "
			       "--key-file");
	if (luks && !c->header && c->pbkdf && strcmp(c->pbkdf, "pbkdf2"))
		return vc_fail(-EINVAL, "the LUKS1 header inside a qcow2 takes --pbkdf pbkdf2 only");
	return 0;
}

/* Open (and create) the target; an existing one only after confirmation. */
static int vc_new_open(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	struct stat st;
	char *what;
	int r;

	if (stat(c->path, &st) == 0) {
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			return vc_fail(-EINVAL, "%s is neither a regular file nor a block device",
				       c->path);
		nw->is_blockdev = S_ISBLK(st.st_mode);
		what = vc_asprintf("This will overwrite data on %s irrevocably", c->path);
		if (!what)
			return -ENOMEM;
		r = vc_confirm(c->batch, what);
		free(what);
		if (r)
			return r;
		nw->fd = open(c->path, O_RDWR | O_CLOEXEC | (nw->is_blockdev ? O_EXCL : O_TRUNC));
		if (nw->fd < 0)
			return vc_fail(errno == EBUSY ? -EBUSY : -errno, "cannot open %s: %s%s",
				       c->path, strerror(errno),
				       errno == EBUSY ? " (it is in use: mounted or open)" : "");
		if (nw->is_blockdev) {
			r = vc_fd_size(nw->fd, &nw->device_size);
			if (r)
				return vc_fail(r, "cannot get the size of %s", c->path);
		}
		return 0;
	} else if (errno != ENOENT) {
		return vc_fail(-errno, "cannot use %s: %s", c->path, strerror(errno));
	}
	nw->fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (nw->fd < 0)
		return vc_fail(errno == ENOENT ? -ENOENT : -errno, "cannot create %s: %s", c->path,
			       strerror(errno));
	nw->created = true;
	return 0;
}

/* The OpenXT key: a new one written to the key directory, or the one given. */
static int vc_new_vhd_key(struct vc_new *nw, struct vc_keyhash *kh)
{
	struct vc_create *c = nw->c;
	size_t bytes = c->key_bytes ? c->key_bytes : 64;
	char base[256], *other;
	struct stat st;
	int fd, r;

	memset(kh, 0, sizeof(*kh));
	if (!c->key_dir && !c->vhd_key)
		return 0;
	if (c->vhd_key) {
		c->key = vc_secret_dup(c->vhd_key);
		if (!c->key)
			return -ENOMEM;
	} else {
		vc_openxt_basename(c->path, base, sizeof(base));
		c->key_path = vc_asprintf("%s/%s,%s,%zu.key", c->key_dir, base, VC_OPENXT_CIPHER,
					  bytes * 8);
		other = vc_asprintf("%s/%s,%s,%zu.key", c->key_dir, base, VC_OPENXT_CIPHER,
				    bytes == 64 ? (size_t)256 : (size_t)512);
		if (!c->key_path || !other) {
			free(other);
			return -ENOMEM;
		}
		r = stat(c->key_path, &st) == 0 ? 1 : stat(other, &st) == 0 ? 2 : 0;
		if (r) {
			r = vc_fail(-EEXIST, "key file %s already exists; an image named %s would "
				    "use it (remove it, or choose another image name)",
				    r == 1 ? c->key_path : other, base);
			free(other);
			free(c->key_path);
			c->key_path = NULL;
			return r;
		}
		free(other);
		c->key = vc_secret_new(bytes);
		if (!c->key)
			return -ENOMEM;
		if (getrandom(c->key->data, bytes, 0) != (ssize_t)bytes)
			return vc_fail(-EIO, "cannot get random bytes for the key");
		fd = open(c->key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
		if (fd < 0) {
			r = vc_fail(errno == ENOENT ? -ENOENT : -errno, "cannot create key file %s: "
				    "%s", c->key_path, strerror(errno));
			free(c->key_path);
			c->key_path = NULL;
			return r;
		}
		r = vc_pwrite_full(fd, c->key->data, bytes, 0);
		if (!r && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (r)
			return vc_fail(r, "cannot write key file %s: %s", c->key_path, strerror(-r));
	}
	kh->set = true;
	if (c->nonce)
		memcpy(kh->nonce, c->nonce, 32);
	return vc_openxt_hash(kh->nonce, c->key, kh->hash) ?
		vc_fail(-EIO, "cannot compute the key hash") : 0;
}

/* The LUKS1 header of a qcow2, made in memory; *bytes its size. */
static int vc_new_qcow2_luks(struct vc_new *nw, int *mfd, uint64_t *bytes)
{
	struct vc_create *c = nw->c;
	struct vc_luks_new ln = {
		.type = "LUKS1",
		.cipher = c->cipher ? c->cipher : VC_DEFAULT_CIPHER,
		.key_size = c->key_bytes ? c->key_bytes : 64,
		.pbkdf = c->pbkdf,
		.iter_time = c->iter_time,
		.data_alignment = 8,	/* key slots 4 KiB aligned, no padding: as QEMU */
	};
	char path[64];

	*mfd = memfd_create("vhdcrypt-luks", MFD_CLOEXEC);
	if (*mfd < 0 || ftruncate(*mfd, VC_LUKS1_MAX_BYTES) < 0)
		return vc_fail(-errno, "cannot make a memory file for the LUKS header: %s",
			       strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", *mfd);
	return vc_luks_format(path, c->path, &ln, c->volume_key, c->pass, bytes);
}

static int vc_new_copy_region(int from, int to, uint64_t len, uint64_t off)
{
	unsigned char *buf = vc_safe_alloc(65536);
	uint64_t done;
	size_t n;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (done = 0; !r && done < len; done += n) {
		n = len - done < 65536 ? len - done : 65536;
		r = vc_pread_full(from, buf, n, done);
		if (!r)
			r = vc_pwrite_full(to, buf, n, off + done);
	}
	vc_safe_free(buf);
	return r;
}

static int vc_new_qcow2(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	struct vc_qcow2_new q = {
		.size = c->size,
		.cluster_bits = c->cluster_bits ? c->cluster_bits : 16,
	};
	uint64_t luks_off = 0, end;
	int mfd = -1, r = 0;

	if (c->backing) {
		q.backing_name = c->backing;
		q.backing_fmt = nw->parent->fmt == VC_FMT_VHD ? "vpc" : vc_fmt_name(nw->parent->fmt);
	}
	if (c->pass && !c->header)
		r = vc_new_qcow2_luks(nw, &mfd, &q.luks_len);
	if (!r)
		r = vc_qcow2_write_new(nw->fd, c->path, &q, &luks_off, &end);
	if (!r && mfd >= 0) {
		r = vc_new_copy_region(mfd, nw->fd, q.luks_len, luks_off);
		if (r)
			r = vc_fail(r, "cannot write the LUKS header into %s: %s", c->path,
				    strerror(-r));
	}
	if (!r && !nw->is_blockdev && ftruncate(nw->fd, end) < 0)
		r = vc_fail(-errno, "cannot size %s: %s", c->path, strerror(errno));
	if (!r && nw->is_blockdev && end > nw->device_size)
		r = vc_fail(-ENOSPC, "%s (%llu bytes) is too small for the qcow2 metadata",
			    c->path, (unsigned long long)nw->device_size);
	if (mfd >= 0)
		close(mfd);	/* a memory file: nothing of it stays */
	return r;
}

static int vc_new_vhd(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	struct vc_vhd_new v = {
		.size = c->size,
		.fixed = c->fixed,
		.device_size = nw->device_size,
	};
	struct vc_keyhash kh;
	char *rel = NULL;
	uint64_t end;
	int r;

	if (nw->is_blockdev && c->size + (c->fixed ? 512 : 65536) > nw->device_size)
		return vc_fail(-ENOSPC, "%s (%llu bytes) is too small for a VHD of %llu bytes",
			       c->path, (unsigned long long)nw->device_size,
			       (unsigned long long)c->size);
	if (c->backing) {
		if (nw->parent->fmt != VC_FMT_VHD)
			return vc_fail(-EINVAL, "the parent of a differencing VHD must be a VHD; %s "
				       "is %s", nw->backing_path, vc_fmt_name(nw->parent->fmt));
		rel = vc_new_parent_rel(nw);
		if (!rel)
			return vc_fail(-ENOMEM, "cannot find the path from %s to its parent %s",
				       c->path, nw->backing_path);
		if (c->size && c->size != nw->parent->virtual_size) {
			free(rel);
			return vc_fail(-EINVAL, "a differencing VHD has its parent's size (%llu "
				       "bytes): leave out --size", (unsigned long long)nw->parent->virtual_size);
		}
		v.parent = nw->parent;
		v.parent_rel = rel;
		v.size = nw->parent->virtual_size;
	}
	r = vc_new_vhd_key(nw, &kh);
	if (!r) {
		v.keyhash = &kh;
		r = vc_vhd_write_new(nw->fd, c->path, &v, &end);
	}
	if (!r && !nw->is_blockdev && ftruncate(nw->fd, end) < 0)
		r = vc_fail(-errno, "cannot size %s: %s", c->path, strerror(errno));
	free(rel);
	return r;
}

/* The detached header; the image exists, it is the header's payload. */
static int vc_new_header(struct vc_new *nw)
{
	struct vc_create *c = nw->c;
	bool luks1 = c->luks_type && !strcmp(c->luks_type, "luks1");
	struct vc_luks_new ln = {
		.type = luks1 ? "LUKS1" : "LUKS2",
		.cipher = c->cipher ? c->cipher : VC_DEFAULT_CIPHER,
		.key_size = c->key_bytes ? c->key_bytes : 64,
		.pbkdf = c->pbkdf,
		.iter_time = c->iter_time,
		.data_device = c->path,
	};
	int fd, r;

	fd = open(c->header, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vc_fail(errno == EEXIST ? -EEXIST : -errno, "cannot create the header file "
			       "%s: %s", c->header, errno == EEXIST ? "it exists (remove it first)" :
			       strerror(errno));
	nw->header_created = true;
	/* libcryptsetup does not grow a header file: room for the key slots, sparse */
	if (ftruncate(fd, luks1 ? VC_LUKS1_MAX_BYTES : VC_LUKS2_HEADER_BYTES) < 0)
		r = vc_fail(-errno, "cannot size %s: %s", c->header, strerror(errno));
	else
		r = vc_luks_format(c->header, c->path, &ln, c->volume_key, c->pass, NULL);
	close(fd);
	return r;
}

int vc_create_image(struct vc_create *c)
{
	struct vc_new nw = { .c = c, .fd = -1 };
	int r;

	if (c->backing) {
		r = vc_new_parent(&nw);
		if (r)
			goto out;
	}
	r = vc_new_check(&nw);
	if (!r && c->header && access(c->header, F_OK) == 0)
		r = vc_fail(-EEXIST, "the header file %s exists; remove it first (or use "
			    "luksHeaderRestore)", c->header);
	if (!r)
		r = vc_new_open(&nw);
	if (!r)
		r = c->fmt == VC_FMT_QCOW2 ? vc_new_qcow2(&nw) : vc_new_vhd(&nw);
	if (!r && fsync(nw.fd) < 0)
		r = vc_fail(-errno, "cannot write %s: %s", c->path, strerror(errno));
	if (!r && c->header)
		r = vc_new_header(&nw);
out:
	if (nw.fd >= 0)
		close(nw.fd);
	if (r && nw.created)
		unlink(c->path);
	if (r && nw.header_created)
		unlink(c->header);
	if (r && c->key_path) {
		unlink(c->key_path);
		free(c->key_path);
		c->key_path = NULL;
	}
	vc_image_free(nw.parent);
	free(nw.backing_path);
	return r;
}

void vc_create_done(struct vc_create *c)
{
	free(c->key_path);
	c->key_path = NULL;
	vc_secret_free(c->key);
	c->key = NULL;
}

int vc_cmd_create(const struct vc_opts *o, char **args)
{
	struct vc_secret *pass = NULL, *key = NULL;
	u8 nonce[32];
	struct vc_create c = {
		.path = args[0],
		.fmt = o->type,
		.size = o->size,
		.fixed = o->fixed,
		.cluster_bits = o->cluster_bits,
		.backing = o->backing,
		.batch = o->batch,
		.cipher = o->cipher,
		.key_bytes = o->key_bits / 8,
		.header = o->header,
		.luks_type = o->luks_type,
		.pbkdf = o->pbkdf,
		.iter_time = o->iter_time,
		.key_dir = o->key_dir,
	};
	int r;

	if (o->type != VC_FMT_QCOW2 && o->type != VC_FMT_VHD)
		return vc_fail(-EINVAL, "give the image format: --type qcow2 or --type vhd");
	if (o->nonce) {
		if (vc_unhex(o->nonce, nonce, sizeof(nonce)))
			return vc_fail(-EINVAL, "--nonce takes 64 hex digits");
		c.nonce = nonce;
	}
	if (o->key_file && o->type == VC_FMT_VHD && !o->header) {
		/* an existing OpenXT key */
		r = vc_secret_read_file(o->key_file, "--key-file", o->keyfile_offset,
					o->keyfile_size, &key, NULL);
		if (r)
			return r;
		c.vhd_key = key;
	} else if (o->key_file) {
		r = vc_new_passphrase(o->key_file, o->keyfile_offset, o->keyfile_size, args[0],
				      &pass);
		if (r)
			return r;
		c.pass = pass;
	}
	r = vc_create_image(&c);
	if (!r && c.key_path)
		vc_log_verbose("key file %s written", c.key_path);
	vc_create_done(&c);
	vc_secret_free(pass);
	vc_secret_free(key);
	return r;
}
