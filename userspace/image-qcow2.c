// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - qcow2 images (versions 2 and 3): header, header
 * extensions (the LUKS region, the backing format), L1 table, backing file
 * name, as QEMU's block/qcow2.c reads them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkid.h"
#include "image.h"
#include "util.h"

char *vc_qcow2_backing_path(const char *child_path, const char *name)
{
	const char *slash, *colon;

	if (!strncmp(name, "file:", 5))
		name += 5;
	colon = strchr(name, ':');
	slash = strchr(name, '/');
	if (colon && (!slash || colon < slash))
		return NULL;	/* a protocol (nbd:, json:, ...): not a file */
	if (name[0] == '/')
		return strdup(name);
	slash = strrchr(child_path, '/');
	if (!slash)
		return strdup(name);
	return vc_asprintf("%.*s%s", (int)(slash - child_path + 1), child_path, name);
}

/*
 * Header extensions follow the header (72 bytes in version 2, header_length
 * in version 3) up to the backing file name or the end of the first cluster,
 * in both versions (QEMU's qcow2_read_extensions()).
 */
static int vc_qcow2_extensions(struct vc_image *img, const u8 *buf, size_t cl)
{
	const struct qcow2_header *h = &img->qcow2.header;
	size_t off = h->header_length, end = cl, doff;
	const char *why = NULL;
	u32 type, dlen;
	int r;

	if (h->backing_file_offset && h->backing_file_offset < end)
		end = h->backing_file_offset;
	while (off < end) {
		r = qcow2_extension_next(buf, end, &off, &type, &doff, &dlen, &why);
		if (r < 0)
			return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
		if (r == 0)
			break;
		if (type == QCOW2_EXT_FDE) {
			u64 fde_offset, fde_length;

			if (qcow2_fde_decode(buf + doff, dlen, &fde_offset, &fde_length, &why))
				return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
			img->qcow2.fde_offset = fde_offset;
			img->qcow2.fde_length = fde_length;
		} else if (type == QCOW2_EXT_BACKING_FORMAT) {
			free(img->qcow2.backing_fmt);
			img->qcow2.backing_fmt = vc_strndup((const char *)buf + doff, dlen);
			if (!img->qcow2.backing_fmt)
				return -ENOMEM;
		}
	}
	return 0;
}

static int vc_qcow2_check_l2(const struct vc_image *img, uint64_t i, const u8 *entry,
			     void *ctx)
{
	const struct qcow2_header *h = &img->qcow2.header;
	const char *why = NULL;
	u64 l2;

	(void)i;
	(void)ctx;
	if (qcow2_l1_decode(h, vc_get_be64(entry), &l2, &why))
		return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
	if (l2 && !vc_range_ok(l2, qcow2_cluster_size(h), img->file_size))
		return vc_fail(-EMEDIUMTYPE, "%s is damaged: a qcow2 L2 table lies outside the "
			       "file (%llu bytes; is it truncated?)", img->path,
			       (unsigned long long)img->file_size);
	return 0;
}

static int vc_qcow2_backing(struct vc_image *img, const u8 *buf, unsigned int flags)
{
	const struct qcow2_header *h = &img->qcow2.header;
	const char *bf = img->qcow2.backing_fmt;

	if (!h->backing_file_offset || !h->backing_file_size)
		return 0;
	/* the decoder checked its length and that it lies in the first cluster */
	img->qcow2.backing_name = vc_strndup((const char *)buf + h->backing_file_offset,
					     h->backing_file_size);
	if (!img->qcow2.backing_name)
		return -ENOMEM;
	img->parent_path = vc_qcow2_backing_path(img->path, img->qcow2.backing_name);
	if (!img->parent_path)
		return vc_fail(-ENOTSUP, "%s: backing file \"%s\" is not a local file", img->path,
			       img->qcow2.backing_name);
	img->parent_tried = vc_strdup(img->parent_path);
	if (!img->parent_tried)
		return -ENOMEM;
	img->parent_fmt = VC_FMT_UNKNOWN;
	if (bf && !strcmp(bf, "vpc"))
		img->parent_fmt = VC_FMT_VHD;
	else if (bf && (!strcmp(bf, "qcow2") || !strcmp(bf, "raw")))
		vc_fmt_parse(bf, &img->parent_fmt);
	else if (bf)
		return vc_fail(-ENOTSUP, "%s: backing file format \"%s\" is not supported "
			       "(qcow2, vpc and raw are)", img->path, bf);
	if (access(img->parent_path, R_OK) == 0)
		return 0;
	if (flags & VC_OPEN_PARENT_OPTIONAL) {
		free(img->parent_path);
		img->parent_path = NULL;
		return 0;
	}
	return vc_fail(-ENOENT, "backing file of %s not found: tried %s; restore it or fix the "
		       "name (qemu-img rebase -u)", img->path, img->parent_path);
}

int vc_qcow2_parse(int fd, struct vc_image *img, unsigned int flags)
{
	struct qcow2_header *h = &img->qcow2.header;
	const char *why = NULL;
	size_t cl, len;
	u8 bits_be[4];
	u8 *buf;
	u32 bits;
	int r;

	/* the decoders want the whole first cluster (header extensions) */
	if (img->file_size < QCOW2_V3_HEADER_SIZE)
		return vc_fail(-EMEDIUMTYPE, "%s is damaged: the qcow2 header is truncated",
			       img->path);
	r = vc_pread_full(fd, bits_be, sizeof(bits_be), 20);
	if (r)
		return vc_fail(r, "%s: cannot read the qcow2 header: %s", img->path, strerror(-r));
	bits = vc_get_be32(bits_be);
	if (bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS)
		return vc_fail(-EMEDIUMTYPE, "%s: qcow2 cluster size out of range", img->path);
	cl = (size_t)1 << bits;
	len = img->file_size < cl ? img->file_size : cl;
	buf = calloc(1, cl);	/* zeros past the end of a short file */
	if (!buf)
		return vc_fail(-ENOMEM, "out of memory");
	r = vc_pread_full(fd, buf, len, 0);
	if (r) {
		r = vc_fail(r, "%s: cannot read the qcow2 header: %s", img->path, strerror(-r));
		goto out;
	}
	r = qcow2_header_decode(buf, cl, h, &why);
	if (r) {
		r = vc_fail(r == -EOPNOTSUPP ? -ENOTSUP : -EMEDIUMTYPE, "%s: %s", img->path, why);
		goto out;
	}
	r = qcow2_layout_check(h, img->file_size, &why);
	if (r) {
		if (!vc_range_ok(h->l1_table_offset, 8ull * h->l1_size, img->file_size))
			r = vc_fail(-EMEDIUMTYPE, "%s is damaged: %s (is the file truncated?)",
				    img->path, why);
		else
			r = vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
		goto out;
	}
	img->virtual_size = h->size;
	r = vc_qcow2_extensions(img, buf, cl);
	if (!r)	/* every L2 table must lie inside the file: a truncated image fails here */
		r = vc_image_scan(fd, img, "qcow2 L1 table", h->l1_table_offset,
				  qcow2_l1_entries_needed(h), 8, vc_qcow2_check_l2, NULL);
	if (r)
		goto out;

	if (h->crypt_method == QCOW2_CRYPT_LUKS) {
		if (!img->qcow2.fde_length) {
			r = vc_fail(-EMEDIUMTYPE, "%s: LUKS-encrypted qcow2 without its "
				    "encryption header extension", img->path);
			goto out;
		}
		if (!vc_range_ok(img->qcow2.fde_offset, img->qcow2.fde_length, img->file_size)) {
			r = vc_fail(-EMEDIUMTYPE, "%s is damaged: the LUKS header region lies "
				    "outside the file (is it truncated?)", img->path);
			goto out;
		}
		if (vc_blkid_luks(img->path, img->qcow2.fde_offset, img->qcow2.fde_length,
				  img->qcow2.luks_uuid, sizeof(img->qcow2.luks_uuid),
				  &img->qcow2.luks_version) == 1 &&
		    strlen(img->qcow2.luks_uuid) == 36)
			memcpy(img->uuid, img->qcow2.luks_uuid, sizeof(img->uuid));
	}
	if (!img->uuid[0])
		vc_image_uuid_from_file(img);
	r = vc_qcow2_backing(img, buf, flags);
out:
	free(buf);
	return r;
}
