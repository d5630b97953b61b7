// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup convert: copy an image (any format and key scheme open
 * takes, its whole chain flattened) into a new image with its own key,
 * copying only the allocated ranges. The kernel does the work: the source is
 * opened read-only as open does it, the destination is made by create and
 * mapped read-write through a vhdcrypt table (allocation and encryption in
 * the target), then both are closed, the destination is trimmed to its data
 * and parsed again. A failure removes the destination (and its new key file
 * or header).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "cmd.h"
#include "create.h"
#include "dm.h"
#include "dmname.h"
#include "extents.h"
#include "keyring.h"
#include "loop.h"
#include "scheme-openxt.h"
#include "table.h"
#include "util.h"

#define VC_COPY_CHUNK	(1u << 20)
#define VC_ZERO_GRAIN	65536	/* all-zero pieces of this size are not written */

struct vc_conv {
	const struct vc_opts *o;
	const char *src, *dst;
	char src_name[48], dst_name[48];
	bool src_open, dst_mapped, dst_made, dst_blockdev;
	/* the source, from its tables */
	uint64_t sectors;		/* of its device */
	uint64_t data_offset;		/* sectors: its device starts there */
	char cipher[128];		/* of the first encrypted layer, "none" */
	size_t key_bytes;
	bool src_passphrase;		/* LUKS or legacy AES: a passphrase opened it */
	bool src_whole;			/* the device shows more than the allocated ranges */
	/* the destination */
	struct vc_create c;
	struct vc_secret *pass, *vk, *raw_key;
	const struct vc_secret *table_key;
	struct vc_loop loop;
	uint64_t end;			/* bytes of the image file before growing it */
	u8 footer[VHD_FOOTER_SIZE];	/* a VHD's trailing footer */
};

static int vc_conv_check_options(const struct vc_opts *o)
{
	/* --new-keyfile is the passphrase of a --new-header */
	if (o->new_key_dir && (o->new_keyfile || o->new_header))
		return vc_fail(-EINVAL, "--new-key-dir makes a new OpenXT key: give neither "
			       "--new-keyfile nor --new-header with it");
	if (o->type != VC_FMT_UNKNOWN && o->type != VC_FMT_QCOW2 && o->type != VC_FMT_VHD)
		return vc_fail(-EINVAL, "convert makes a qcow2 or a VHD (--type qcow2 or vhd)");
	if (o->new_key_dir && o->type != VC_FMT_VHD)
		return vc_fail(-EINVAL, "--new-key-dir makes an OpenXT key: give --type vhd");
	return 0;
}

/* Open the source read-only, as open does, under a private name. */
static int vc_conv_open_source(struct vc_conv *cv)
{
	struct vc_opts so = *cv->o;
	char *args[3] = { (char *)cv->src, cv->src_name, NULL };
	int r;

	so.type = VC_FMT_UNKNOWN;
	so.given &= VC_OPT_KEY_FILE | VC_OPT_KEYFILE_OFFSET | VC_OPT_KEYFILE_SIZE |
		    VC_OPT_VOLUME_KEY_FILE | VC_OPT_KEY_DIR | VC_OPT_HEADER;
	so.given |= VC_OPT_READONLY | VC_OPT_NO_PARTITIONS;
	so.dry_run = false;
	r = vc_cmd_open(&so, args);
	cv->src_open = !r;
	return r;
}

/* Cipher and key size of the first encrypted layer, size and offsets of the top. */
static int vc_conv_read_source(struct vc_conv *cv)
{
	struct vc_dm_dev d;
	struct vc_table t;
	char tag[16];
	int depth, r;

	snprintf(cv->cipher, sizeof(cv->cipher), "none");
	for (depth = 0;; depth++) {
		char *name = vc_layer_dm_name(cv->src_name, depth);

		if (!name)
			return -ENOMEM;
		r = vc_dm_query(name, &d);
		free(name);
		if (r)
			return depth ? 0 : vc_fail(r, "the source device %s is gone", cv->src_name);
		memset(&t, 0, sizeof(t));
		if (!strcmp(d.target_type, VC_DM_CRYPT_TARGET))
			r = vc_crypt_table_parse(d.params, &t);
		else
			r = vc_table_parse(d.params, &t);
		if (depth == 0) {
			cv->sectors = d.length;
			cv->data_offset = t.data_offset;
			cv->src_whole = t.whole_disk || !strcmp(d.target_type, VC_DM_CRYPT_TARGET);
		}
		tag[0] = '\0';
		vc_dm_uuid_scheme(d.uuid, tag, sizeof(tag));
		if (!r && strcmp(t.cipher, "none") && !strcmp(cv->cipher, "none")) {
			snprintf(cv->cipher, sizeof(cv->cipher), "%s", t.cipher);
			cv->key_bytes = t.key_bytes;
			cv->src_passphrase = strcmp(tag, "OPENXT") != 0;
		}
		vc_dm_dev_clear(&d);
		if (r)
			return vc_fail(-EINVAL, "cannot read the table of the source device");
		if (!t.backing)
			return 0;
	}
}

/* The key of the destination; *scheme for messages. */
static int vc_conv_keys(struct vc_conv *cv)
{
	const struct vc_opts *o = cv->o;
	struct vc_create *c = &cv->c;
	bool encrypted = strcmp(cv->cipher, "none") != 0;
	size_t bytes;
	int r;

	if (c->fmt == VC_FMT_VHD && !o->new_header) {
		if (o->new_key_dir) {
			c->key_dir = o->new_key_dir;
		} else if (o->new_keyfile) {
			r = vc_secret_read_file(o->new_keyfile, "--new-keyfile", 0, 0, &cv->raw_key,
						NULL);
			if (r)
				return r;
			c->vhd_key = cv->raw_key;
		} else if (encrypted) {
			return vc_fail(-EINVAL, "the source is encrypted: a VHD destination needs "
				       "--new-key-dir (a new OpenXT key) or --new-keyfile (a key)");
		}
		if (!c->key_bytes && cv->key_bytes)
			c->key_bytes = cv->key_bytes == 32 || cv->key_bytes == 64 ? cv->key_bytes : 64;
		if (c->vhd_key)
			c->key_bytes = 0;
		c->cipher = NULL;
		return 0;
	}
	/* a passphrase: qcow2 with LUKS, or the new detached header */
	if (o->new_keyfile) {
		r = vc_new_passphrase(o->new_keyfile, 0, 0, cv->dst, &cv->pass);
	} else if (encrypted && cv->src_passphrase && o->key_file) {
		r = vc_secret_read_file(o->key_file, "--key-file", o->keyfile_offset,
					o->keyfile_size, &cv->pass, NULL);
	} else if ((encrypted || o->new_header) && isatty(STDIN_FILENO)) {
		r = vc_new_passphrase("-", 0, 0, cv->dst, &cv->pass);
	} else if (encrypted || o->new_header) {
		return vc_fail(-EINVAL, "give the passphrase of %s with --new-keyfile%s", cv->dst,
			       cv->src_passphrase ? " (or the source's with --key-file)" : "");
	} else {
		return 0;	/* an unencrypted copy */
	}
	if (r)
		return r;
	c->pass = cv->pass;
	c->header = o->new_header;
	if (!c->cipher)
		c->cipher = encrypted ? cv->cipher : "aes-xts-plain64";
	if (!c->key_bytes)
		c->key_bytes = cv->key_bytes ? cv->key_bytes : 64;
	bytes = c->key_bytes;
	cv->vk = vc_secret_new(bytes);
	if (!cv->vk)
		return -ENOMEM;
	if (getrandom(cv->vk->data, bytes, 0) != (ssize_t)bytes)
		return vc_fail(-EIO, "cannot get random bytes for the volume key");
	c->volume_key = cv->vk;
	return 0;
}

/* The image file grows (sparsely) so the target can allocate; a VHD keeps its footer last. */
static int vc_conv_grow(struct vc_conv *cv, uint64_t copy_bytes)
{
	uint64_t size = cv->sectors << 9;
	uint64_t grow = copy_bytes + copy_bytes / 16 + size / 32 + (64u << 20);
	struct stat st;
	int fd, r = 0;

	fd = open(cv->dst, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", cv->dst, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	cv->dst_blockdev = S_ISBLK(st.st_mode);
	cv->end = st.st_size;
	if (cv->dst_blockdev)
		goto out;	/* a device has its size */
	if (cv->c.fmt == VC_FMT_VHD)
		r = vc_pread_full(fd, cv->footer, sizeof(cv->footer), cv->end - VHD_FOOTER_SIZE);
	if (!r && ftruncate(fd, cv->end + grow) < 0)
		r = -errno;
	if (!r && cv->c.fmt == VC_FMT_VHD)
		r = vc_pwrite_full(fd, cv->footer, sizeof(cv->footer),
				   cv->end + grow - VHD_FOOTER_SIZE);
out:
	close(fd);
	return r ? vc_fail(r, "cannot grow %s: %s", cv->dst, strerror(-r)) : 0;
}

/* Cut the file after its data (the status's data_end); a VHD's footer goes there. */
static int vc_conv_trim(struct vc_conv *cv, uint64_t data_end)
{
	uint64_t end = data_end << 9;
	int fd, r = 0;

	if (cv->dst_blockdev)
		return 0;
	fd = open(cv->dst, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", cv->dst, strerror(errno));
	if (end < cv->end - (cv->c.fmt == VC_FMT_VHD ? VHD_FOOTER_SIZE : 0))
		end = cv->end - (cv->c.fmt == VC_FMT_VHD ? VHD_FOOTER_SIZE : 0);
	if (cv->c.fmt == VC_FMT_VHD)
		r = vc_pwrite_full(fd, cv->footer, sizeof(cv->footer), end);
	if (!r && ftruncate(fd, end + (cv->c.fmt == VC_FMT_VHD ? VHD_FOOTER_SIZE : 0)) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r ? vc_fail(r, "cannot trim %s: %s", cv->dst, strerror(-r)) : 0;
}

/* The destination through a writable vhdcrypt table. */
static int vc_conv_map(struct vc_conv *cv)
{
	static const unsigned int v1_2[3] = { 1, 2, 0 };
	const struct vc_secret *key = cv->table_key;
	struct vc_table t = {
		.format = vc_fmt_name(cv->c.fmt),
		.cipher = key ? (cv->c.key ? VC_OPENXT_CIPHER : cv->c.cipher) : "none",
		.iv_host = key && cv->c.fmt == VC_FMT_QCOW2 && !cv->c.header,
		.whole_disk = cv->c.header != NULL,
	};
	char *image = NULL, *ref = NULL, *params = NULL, *uuid = NULL;
	int32_t serial = 0;
	int r;

	r = vc_dm_need_target(VC_DM_TARGET, "dm-vhdcrypt", v1_2, "convert (a writable table)");
	if (r)
		return r;
	r = vc_loop_attach(cv->dst, 0, 0, false, true, &cv->loop);
	if (r)
		return r;
	image = vc_devt_name(cv->loop.devt);
	uuid = vc_asprintf("VHDCRYPT-CONVERT-%s", cv->dst_name);
	if (key) {
		ref = vc_keyring_table_ref(cv->dst_name, key->len);
		r = ref ? vc_keyring_add(cv->dst_name, key, &serial) : -ENOMEM;
	}
	if (!r && (!image || !uuid))
		r = -ENOMEM;
	if (!r) {
		t.image = image;
		t.key = ref ? ref : "-";
		params = vc_table_format(&t, false);
		r = params ? 0 : -ENOMEM;
	}
	if (!r) {
		vc_log_debug("table %s: 0 %llu vhdcrypt %s", cv->dst_name,
			     (unsigned long long)cv->sectors, params);
		r = vc_dm_create_rw(cv->dst_name, uuid, cv->sectors, params, false);
	}
	vc_keyring_drop(serial);
	cv->dst_mapped = !r;
	vc_safe_free(params);
	free(image);
	free(ref);
	free(uuid);
	vc_loop_release(&cv->loop);	/* the table holds it */
	return r;
}

static bool vc_all_zero(const u8 *b, size_t n)
{
	return !b[0] && !memcmp(b, b + 1, n - 1);
}

/* Copy the ranges of x (virtual bytes) from the source device to the destination. */
static int vc_conv_copy(struct vc_conv *cv, const struct vc_extents *x, uint64_t total)
{
	bool progress = isatty(STDERR_FILENO), keep_zeros = cv->c.header != NULL;
	uint64_t size = cv->sectors << 9, base = cv->data_offset << 9, done = 0;
	char *sp = vc_asprintf("/dev/mapper/%s", cv->src_name);
	char *dp = vc_asprintf("/dev/mapper/%s", cv->dst_name);
	int sfd = -1, dfd = -1, pct = -1, r = 0;
	u8 *buf = NULL;
	size_t i;

	if (!sp || !dp || posix_memalign((void **)&buf, 4096, VC_COPY_CHUNK)) {
		r = vc_fail(-ENOMEM, "out of memory");
		goto out;
	}
	sfd = open(sp, O_RDONLY | O_CLOEXEC);
	dfd = open(dp, O_WRONLY | O_CLOEXEC);
	if (sfd < 0 || dfd < 0) {
		r = vc_fail(-errno, "cannot open the devices of the copy: %s", strerror(errno));
		goto out;
	}
	for (i = 0; !r && i < x->n; i++) {
		uint64_t start = x->e[i].start, end = start + x->e[i].len, off;

		/* virtual bytes to device bytes (a header's payload offset) */
		start = start > base ? start - base : 0;
		end = end > base ? end - base : 0;
		if (end > size)
			end = size;
		for (off = start; !r && off < end;) {
			size_t n = end - off < VC_COPY_CHUNK ? end - off : VC_COPY_CHUNK, k;

			r = vc_pread_full(sfd, buf, n, off);
			for (k = 0; !r && k < n; k += VC_ZERO_GRAIN) {
				size_t m = n - k < VC_ZERO_GRAIN ? n - k : VC_ZERO_GRAIN;

				if (keep_zeros || !vc_all_zero(buf + k, m))
					r = vc_pwrite_full(dfd, buf + k, m, off + k);
			}
			off += n;
			done += n;
			if (progress && total && (int)(done * 100 / total) != pct) {
				pct = done * 100 / total;
				fprintf(stderr, "\rconvert: %3d%% of %llu KiB", pct,
					(unsigned long long)(total >> 10));
			}
		}
	}
	if (progress)
		fputc('\n', stderr);
	if (!r && fsync(dfd) < 0)
		r = -errno;
	if (r && !vc_last_error()[0])
		r = vc_fail(r, "copying %s to %s failed: %s", cv->src, cv->dst, strerror(-r));
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(buf);
	free(sp);
	free(dp);
	return r;
}

/* What to copy: the allocated ranges, or the whole disk where holes do not read as zeros. */
static int vc_conv_ranges(struct vc_conv *cv, struct vc_extents *x)
{
	struct vc_chain chain = { 0 };
	uint64_t size = (cv->sectors + cv->data_offset) << 9;
	int r;

	if (cv->src_whole || cv->c.header) {
		memset(x, 0, sizeof(*x));
		return vc_extents_add(x, 0, size);
	}
	r = vc_chain_open(cv->src, VC_FMT_UNKNOWN, 0, &chain);
	if (!r)
		r = vc_chain_extents(&chain, x);
	vc_chain_free(&chain);
	return r;
}

static uint64_t vc_status_data_end(const char *status)
{
	const char *p = strstr(status, " data_end:");

	return p ? strtoull(p + 10, NULL, 10) : 0;
}

/* Unmap the destination, trim it; close the source. */
static int vc_conv_finish(struct vc_conv *cv)
{
	char status[512];
	uint64_t data_end = 0;
	int r = 0;

	if (cv->dst_mapped) {
		r = vc_dm_status(cv->dst_name, status, sizeof(status));
		if (!r)
			data_end = vc_status_data_end(status);
		if (!vc_dm_remove(cv->dst_name))
			cv->dst_mapped = false;
		else if (!r)
			r = -EBUSY;
		if (!r && !data_end)
			r = vc_fail(-EIO, "the kernel target gave no data_end for %s", cv->dst);
		if (!r)
			r = vc_conv_trim(cv, data_end);
	}
	if (cv->src_open) {
		char *args[2] = { cv->src_name, NULL };

		if (!vc_cmd_close(cv->o, args))
			cv->src_open = false;
	}
	return r;
}

int vc_cmd_convert(const struct vc_opts *o, char **args)
{
	struct vc_conv cv = { .o = o, .src = args[0], .dst = args[1], .loop = { .fd = -1 } };
	struct vc_extents x = { 0 };
	struct vc_image *img = NULL;
	u8 nonce[32];
	int r;

	r = vc_conv_check_options(o);
	if (r)
		return r;
	if (o->nonce && vc_unhex(o->nonce, nonce, sizeof(nonce)))
		return vc_fail(-EINVAL, "--nonce takes 64 hex digits");
	snprintf(cv.src_name, sizeof(cv.src_name), "vhdcrypt-convert-%d", (int)getpid());
	snprintf(cv.dst_name, sizeof(cv.dst_name), "vhdcrypt-convert-%d-new", (int)getpid());
	r = vc_dm_check(VC_EXIT_PARAM);
	if (!r)
		r = vc_conv_open_source(&cv);
	if (!r)
		r = vc_conv_read_source(&cv);
	if (r)
		goto out;
	cv.c = (struct vc_create){
		.path = cv.dst,
		.fmt = o->type ? o->type : VC_FMT_QCOW2,
		.size = cv.sectors << 9,
		.fixed = o->fixed,
		.cluster_bits = o->cluster_bits,
		.batch = o->batch,
		.cipher = o->cipher,
		.key_bytes = o->key_bits / 8,
		.luks_type = o->luks_type,
		.pbkdf = o->pbkdf,
		.iter_time = o->iter_time,
		.nonce = o->nonce ? nonce : NULL,
	};
	r = vc_conv_keys(&cv);
	if (!r)
		r = vc_conv_ranges(&cv, &x);
	if (!r)
		r = vc_create_image(&cv.c);
	if (r)
		goto out;
	cv.dst_made = true;
	cv.table_key = cv.c.key ? cv.c.key : cv.vk;
	r = vc_conv_grow(&cv, x.bytes);
	if (!r)
		r = vc_conv_map(&cv);
	if (!r)
		r = vc_conv_copy(&cv, &x, x.bytes);
	if (!r)
		r = vc_conv_finish(&cv);
	if (!r)	/* the result must parse as the image it is */
		r = vc_image_open(cv.dst, cv.c.fmt, VC_OPEN_PARENT_OPTIONAL, &img);
	if (!r && img->damage)
		r = vc_fail(-EIO, "%s is damaged after the copy: %s", cv.dst, img->damage);
	if (!r && cv.c.key_path)
		vc_log_verbose("key file %s written", cv.c.key_path);
out:
	vc_conv_finish(&cv);
	if (r && cv.dst_made) {
		if (!cv.dst_blockdev)
			unlink(cv.dst);
		if (cv.c.key_path)
			unlink(cv.c.key_path);
		if (cv.c.header)
			unlink(cv.c.header);
	}
	vc_image_free(img);
	vc_extents_free(&x);
	vc_create_done(&cv.c);
	vc_secret_free(cv.pass);
	vc_secret_free(cv.vk);
	vc_secret_free(cv.raw_key);
	return r;
}
