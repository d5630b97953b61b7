// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - opening one image: format detection, then the format's
 * parser (image-vhd.c, image-qcow2.c).
 *
 * Only the shared decoders of include/vhdcrypt/ interpret on-disk bytes;
 * these files read the bytes, apply tapdisk's and QEMU's rules for finding
 * parents, and turn decoder failures into one clear message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

const char *vc_fmt_name(enum vc_fmt f)
{
	switch (f) {
	case VC_FMT_VHD:
		return "vhd";
	case VC_FMT_QCOW2:
		return "qcow2";
	case VC_FMT_RAW:
		return "raw";
	default:
		return "unknown";
	}
}

int vc_fmt_parse(const char *s, enum vc_fmt *f)
{
	if (!strcmp(s, "vhd") || !strcmp(s, "vpc"))
		*f = VC_FMT_VHD;
	else if (!strcmp(s, "qcow2"))
		*f = VC_FMT_QCOW2;
	else if (!strcmp(s, "raw"))
		*f = VC_FMT_RAW;
	else
		return -EINVAL;
	return 0;
}

void vc_uuid_fmt(char out[37], const u8 u[16])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

void vc_image_uuid_from_file(struct vc_image *img)
{
	uint64_t dev = img->is_blockdev ? (uint64_t)img->st.st_rdev : (uint64_t)img->st.st_dev;
	uint64_t ino = img->is_blockdev ? 0 : (uint64_t)img->st.st_ino;

	snprintf(img->uuid, sizeof(img->uuid), "%08x-%04x-%04x-%04x-%012llx",
		 (unsigned int)(dev >> 32), (unsigned int)(dev >> 16) & 0xffff,
		 (unsigned int)dev & 0xffff, (unsigned int)(ino >> 48),
		 (unsigned long long)(ino & 0xffffffffffffull));
}

enum vc_fmt vc_detect(const u8 *head, size_t head_len, const u8 *tail512, bool have_tail)
{
	if (head_len >= 4 && vc_get_be32(head) == QCOW2_MAGIC)
		return VC_FMT_QCOW2;
	if (have_tail && !memcmp(tail512, "conectix", 8))
		return VC_FMT_VHD;
	/* dynamic VHD whose trailing footer is damaged: libvhd uses the copy at 0 */
	if (head_len >= 512 && !memcmp(head, "conectix", 8))
		return VC_FMT_VHD;
	return VC_FMT_UNKNOWN;
}

int vc_image_scan(int fd, const struct vc_image *img, const char *what, uint64_t off,
		  uint64_t entries, unsigned int esize,
		  int (*visit)(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx),
		  void *ctx)
{
	u8 buf[4096];
	uint64_t i, j, n;
	int r;

	for (i = 0; i < entries; i += n) {
		n = entries - i < sizeof(buf) / esize ? entries - i : sizeof(buf) / esize;
		r = vc_pread_full(fd, buf, n * esize, off + i * esize);
		if (r)
			return vc_fail(r, "%s: cannot read the %s: %s", img->path, what,
				       strerror(-r));
		for (j = 0; j < n; j++) {
			r = visit(img, i + j, buf + j * esize, ctx);
			if (r)
				return r;
		}
	}
	return 0;
}

/* The format from the content, checked against want. */
static int vc_image_format(struct vc_image *img, enum vc_fmt want, unsigned int flags,
			   const u8 *head, size_t head_len, const u8 *tail, bool tail_ok)
{
	enum vc_fmt f = vc_detect(head, head_len, tail, tail_ok);

	if (want == VC_FMT_RAW) {
		f = VC_FMT_RAW;
	} else if (f == VC_FMT_UNKNOWN) {
		if (!(flags & VC_OPEN_ALLOW_RAW))
			return vc_fail(-EMEDIUMTYPE, "%s is not a VHD or qcow2 image", img->path);
		f = VC_FMT_RAW;
	} else if (want != VC_FMT_UNKNOWN && want != f) {
		return vc_fail(-EMEDIUMTYPE, "%s is not a %s image (it looks like %s); check "
			       "--type", img->path, vc_fmt_name(want), vc_fmt_name(f));
	}
	img->fmt = f;
	return 0;
}

int vc_image_open(const char *path, enum vc_fmt want, unsigned int flags,
		  struct vc_image **out)
{
	struct vc_image *img;
	u8 head[4096], tail[512];
	size_t head_len;
	bool tail_ok = false;
	int fd, r;

	*out = NULL;
	img = vc_zalloc(sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->path = vc_strdup(path);
	if (!img->path) {
		free(img);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* as cryptsetup: a device that cannot be opened is a wrong device */
		r = vc_fail(-ENOENT, "cannot open image %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &img->st) < 0) {
		r = vc_fail(-errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(img->st.st_mode) && !S_ISBLK(img->st.st_mode)) {
		r = vc_fail(-ENOTBLK, "%s is neither a regular file nor a block device", path);
		goto fail;
	}
	img->is_blockdev = S_ISBLK(img->st.st_mode);
	r = vc_fd_size(fd, &img->file_size);
	if (r) {
		r = vc_fail(r, "cannot get the size of %s: %s", path, strerror(-r));
		goto fail;
	}
	head_len = img->file_size < sizeof(head) ? img->file_size : sizeof(head);
	memset(head, 0, sizeof(head));
	r = vc_pread_full(fd, head, head_len, 0);
	if (r) {
		r = vc_fail(r, "cannot read %s: %s", path, strerror(-r));
		goto fail;
	}
	if (img->file_size >= 512 && !vc_pread_full(fd, tail, 512, img->file_size - 512))
		tail_ok = true;

	r = vc_image_format(img, want, flags, head, head_len, tail, tail_ok);
	if (r)
		goto fail;
	switch (img->fmt) {
	case VC_FMT_VHD:
		r = vc_vhd_parse(fd, img, head, tail, tail_ok, flags);
		break;
	case VC_FMT_QCOW2:
		r = vc_qcow2_parse(fd, img, flags);
		break;
	default:
		img->virtual_size = img->file_size & ~511ull;
		vc_image_uuid_from_file(img);
		break;
	}
	if (r)
		goto fail;
	close(fd);
	*out = img;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	vc_image_free(img);
	return r;
}

/* The kernel target's rules for writable tables (table-format.md). */
const char *vc_image_write_refusal(const struct vc_image *img, unsigned int sector_size)
{
	const struct qcow2_header *q = &img->qcow2.header;
	const struct vhd_header *v = &img->vhd.header;

	if (!sector_size)
		sector_size = 512;
	if (img->fmt == VC_FMT_QCOW2) {
		if (q->crypt_method == QCOW2_CRYPT_AES)
			return "legacy qcow2 AES encryption cannot be written (convert the image "
			       "to LUKS encryption with qemu-img convert)";
		if (q->incompatible_features & QCOW2_INCOMPAT_DIRTY)
			return "the qcow2 dirty bit is set (lazy refcounts left by a crash); run "
			       "qemu-img check -r all to write it";
		if (q->incompatible_features & QCOW2_INCOMPAT_CORRUPT)
			return "the qcow2 image is marked corrupt; run qemu-img check -r all";
		if (qcow2_cluster_size(q) < sector_size)
			return "its qcow2 clusters are smaller than the encryption sector size";
	} else if (img->fmt == VC_FMT_VHD && img->vhd.footer.type != VHD_TYPE_FIXED) {
		if (v->block_size > (32u << 20))
			return "VHD blocks over 32 MiB cannot be written";
		if (v->block_size < sector_size)
			return "its VHD blocks are smaller than the encryption sector size";
		if (v->table_offset & 511)
			return "its VHD BAT does not start on a sector";
	}
	return NULL;
}

void vc_image_free(struct vc_image *img)
{
	if (!img)
		return;
	free(img->path);
	free(img->damage);
	free(img->qcow2.backing_name);
	free(img->qcow2.backing_fmt);
	free(img->parent_path);
	free(img->parent_tried);
	free(img);
}
