// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - VHD images: footer (the trailing one, or libvhd's copy at
 * offset 0), dynamic header, BAT, OpenXT key hash (tapdisk's batmap header
 * or the extended attribute) and parent locators, as libvhd reads them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

/* UTF-16LE -> UTF-8 (surrogate pairs decoded); NULL on malformed input. */
static char *vc_utf16le_to_utf8(const u8 *in, size_t len)
{
	char *out = malloc(len * 2 + 1), *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	if (len >= 2 && in[0] == 0xff && in[1] == 0xfe)
		i = 2;	/* BOM */
	for (; i + 1 < len; i += 2) {
		uint32_t c = in[i] | (in[i + 1] << 8);

		if (c == 0)
			break;
		if (c >= 0xd800 && c <= 0xdbff) {
			uint32_t c2;

			if (i + 3 >= len)
				goto bad;
			c2 = in[i + 2] | (in[i + 3] << 8);
			if (c2 < 0xdc00 || c2 > 0xdfff)
				goto bad;
			c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
			i += 2;
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			goto bad;
		}
		if (c < 0x80) {
			*o++ = c;
		} else if (c < 0x800) {
			*o++ = 0xc0 | (c >> 6);
			*o++ = 0x80 | (c & 0x3f);
		} else if (c < 0x10000) {
			*o++ = 0xe0 | (c >> 12);
			*o++ = 0x80 | ((c >> 6) & 0x3f);
			*o++ = 0x80 | (c & 0x3f);
		} else {
			*o++ = 0xf0 | (c >> 18);
			*o++ = 0x80 | ((c >> 12) & 0x3f);
			*o++ = 0x80 | ((c >> 6) & 0x3f);
			*o++ = 0x80 | (c & 0x3f);
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

char *vc_vhd_locator_decode(u32 code, const u8 *data, size_t len)
{
	char *s, *p;

	switch (code) {
	case VHD_PLAT_MACX:
		/* UTF-8 "file://<path>" */
		s = strndup((const char *)data, len);
		if (!s)
			return NULL;
		if (strncmp(s, "file://", 7)) {
			free(s);
			return NULL;
		}
		memmove(s, s + 7, strlen(s + 7) + 1);
		break;
	case VHD_PLAT_W2KU:
	case VHD_PLAT_W2RU:
		s = vc_utf16le_to_utf8(data, len);
		if (!s)
			return NULL;
		for (p = s; *p; p++)
			if (*p == '\\')
				*p = '/';
		if ((s[0] == 'C' || s[0] == 'c') && s[1] == ':')
			memmove(s, s + 2, strlen(s + 2) + 1);
		break;
	default:
		return NULL;
	}
	if (!*s) {
		free(s);
		return NULL;
	}
	return s;
}

char *vc_vhd_parent_candidate(const char *child_path, const char *loc)
{
	char *dir, *rdir, *joined, *res;

	if (loc[0] == '/')
		return vc_path_clean(loc);
	if (loc[0] == '.') {
		dir = vc_dirname(child_path);	/* the child's directory as given */
	} else {
		rdir = realpath(child_path, NULL);
		dir = rdir ? vc_dirname(rdir) : vc_strdup(".");
		free(rdir);
	}
	if (!dir)
		return NULL;
	joined = vc_asprintf("%s/%s", dir, loc);
	free(dir);
	if (!joined)
		return NULL;
	res = vc_path_clean(joined);
	free(joined);
	return res;
}

/* Add path to the "a, b" list of candidates, once. */
static int vc_append_tried(char **list, const char *path)
{
	size_t n = strlen(path);
	const char *p = *list;
	char *s;

	while (p) {
		if (!strncmp(p, path, n) && (p[n] == '\0' || !strncmp(p + n, ", ", 2)))
			return 0;
		p = strstr(p, ", ");
		p = p ? p + 2 : NULL;
	}
	s = *list ? vc_asprintf("%s, %s", *list, path) : vc_strdup(path);
	if (!s)
		return -ENOMEM;
	free(*list);
	*list = s;
	return 0;
}

static void vc_keyhash_xattr(int fd, struct vc_image *img)
{
	struct vc_keyhash *kh = &img->vhd.keyhash;
	u8 buf[65];

	memset(kh, 0, sizeof(*kh));
	if (img->is_blockdev || fgetxattr(fd, VC_KEYHASH_XATTR, buf, sizeof(buf)) != sizeof(buf))
		return;
	kh->set = buf[0] != 0;
	memcpy(kh->nonce, buf + 1, 32);
	memcpy(kh->hash, buf + 33, 32);
}

/* The key hash: tapdisk's batmap header, else the extended attribute. */
static void vc_vhd_keyhash(int fd, struct vc_image *img)
{
	u8 bm[VHD_BATMAP_HEADER_SIZE];
	struct vhd_batmap_header b;
	const char *why = NULL;
	u64 off;

	vc_keyhash_xattr(fd, img);
	if (!vhd_has_batmap(&img->vhd.footer))
		return;
	off = vhd_batmap_header_offset(&img->vhd.header);
	if (vc_range_ok(off, sizeof(bm), img->file_size) &&
	    !vc_pread_full(fd, bm, sizeof(bm), off) &&
	    !vhd_batmap_header_decode(bm, &b, &why)) {
		img->vhd.keyhash.set = b.keyhash_set != 0;
		memcpy(img->vhd.keyhash.nonce, b.nonce, 32);
		memcpy(img->vhd.keyhash.hash, b.hash, 32);
	} else {
		vc_log_debug("%s: no usable batmap header (%s), key hash from the xattr",
			     img->path, why ? why : "read error");
	}
}

static int vc_vhd_check_block(const struct vc_image *img, uint64_t i, const u8 *entry,
			      void *ctx)
{
	const struct vhd_header *h = &img->vhd.header;
	u64 block_end = (u64)vhd_bitmap_sectors(h) + vhd_block_sectors(h);
	u32 bat = vc_get_be32(entry);

	(void)ctx;
	if (bat == VHD_BAT_UNUSED || vc_range_ok(bat, block_end, img->file_size >> VHD_SECTOR_SHIFT))
		return 0;
	return vc_fail(-EMEDIUMTYPE, "%s is damaged: VHD block %llu lies outside the file (%llu "
		       "bytes; is it truncated?)", img->path, (unsigned long long)i,
		       (unsigned long long)img->file_size);
}

/* The parent file, through the locators, as libvhd's vhd_find_parent(). */
static int vc_vhd_find_parent(int fd, struct vc_image *img, unsigned int flags)
{
	u8 zero[16] = { 0 };
	int r, i;

	/* a null parent uuid means a raw parent (libvhd vhd_parent_raw()) */
	img->parent_fmt = memcmp(img->vhd.header.parent_uuid, zero, 16) ? VC_FMT_VHD : VC_FMT_RAW;
	for (i = 0; i < VHD_MAX_LOCATORS && !img->parent_path; i++) {
		const struct vhd_parent_locator *loc = &img->vhd.header.loc[i];
		char *name, *cand;
		bool dot;
		u8 *data;

		if (loc->code != VHD_PLAT_MACX && loc->code != VHD_PLAT_W2KU &&
		    loc->code != VHD_PLAT_W2RU)
			continue;
		if (!loc->data_len || loc->data_len > vhd_locator_space(loc) ||
		    loc->data_len > 65536 ||
		    !vc_range_ok(loc->data_offset, loc->data_len, img->file_size))
			continue;
		data = vc_zalloc(loc->data_len);
		if (!data)
			return -ENOMEM;
		r = vc_pread_full(fd, data, loc->data_len, loc->data_offset);
		name = r ? NULL : vc_vhd_locator_decode(loc->code, data, loc->data_len);
		free(data);
		if (!name)
			continue;
		cand = vc_vhd_parent_candidate(img->path, name);
		dot = name[0] == '.';
		free(name);
		if (!cand || vc_append_tried(&img->parent_tried, cand)) {
			free(cand);
			return vc_fail(-ENOMEM, "out of memory");
		}
		if (access(cand, R_OK) == 0) {
			if (!dot) {
				/* absolute and real-directory locators give a real path */
				char *rp = realpath(cand, NULL);

				if (rp) {
					free(cand);
					cand = rp;
				}
			}
			img->parent_path = cand;
		} else {
			free(cand);
		}
	}
	if (img->parent_path || (flags & VC_OPEN_PARENT_OPTIONAL))
		return 0;
	if (!img->parent_tried)
		return vc_fail(-EMEDIUMTYPE, "%s is a differencing VHD without a usable parent "
			       "locator", img->path);
	return vc_fail(-ENOENT, "parent image of %s not found: tried %s; restore the parent "
		       "or fix the parent locator (vhd-util modify -p)", img->path,
		       img->parent_tried);
}

int vc_vhd_parse(int fd, struct vc_image *img, const u8 *head, const u8 *tail, bool tail_ok,
		 unsigned int flags)
{
	struct vhd_footer *f = &img->vhd.footer;
	u8 hdr[VHD_HEADER_SIZE];
	const char *why = NULL, *why0 = NULL;
	int r;

	r = tail_ok ? vhd_footer_decode(tail, f, &why) : -EINVAL;
	if (r) {
		/* libvhd and QEMU fall back to the copy at offset 0 (not for fixed disks) */
		if (img->file_size < 512 + VHD_FOOTER_SIZE)
			return vc_fail(-EMEDIUMTYPE, "%s is damaged: %llu bytes are too few for a "
				       "VHD (is it truncated?)", img->path,
				       (unsigned long long)img->file_size);
		if (vhd_footer_decode(head, f, &why0) || f->type == VHD_TYPE_FIXED)
			return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path,
				       why ? why : why0 ? why0 : "no VHD footer");
		img->damage = vc_asprintf("the footer at the end of the file is unusable (%s; "
					  "is the file truncated?), the copy at offset 0 is used",
					  why ? why : "no footer");
		if (!img->damage)
			return -ENOMEM;
	}
	vc_uuid_fmt(img->uuid, f->uuid);
	img->virtual_size = f->current_size;

	if (f->type == VHD_TYPE_FIXED) {
		if (img->file_size < f->current_size + VHD_FOOTER_SIZE)
			return vc_fail(-EMEDIUMTYPE, "%s is damaged: a fixed VHD of %llu bytes "
				       "needs %llu bytes with its footer, the file has %llu (is it "
				       "truncated?)", img->path, (unsigned long long)f->current_size,
				       (unsigned long long)f->current_size + VHD_FOOTER_SIZE,
				       (unsigned long long)img->file_size);
		vc_keyhash_xattr(fd, img);
		return 0;
	}

	if (!vc_range_ok(f->data_offset, VHD_HEADER_SIZE, img->file_size))
		return vc_fail(-EMEDIUMTYPE, "%s is damaged: the VHD dynamic header lies outside "
			       "the file (is it truncated?)", img->path);
	r = vc_pread_full(fd, hdr, sizeof(hdr), f->data_offset);
	if (r)
		return vc_fail(r, "%s: cannot read the VHD header: %s", img->path, strerror(-r));
	if (vhd_header_decode(hdr, &img->vhd.header, &why))
		return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
	if (vhd_layout_check(f, &img->vhd.header, img->file_size, &why)) {
		const struct vhd_header *h = &img->vhd.header;

		if (!vc_range_ok(h->table_offset, 4ull * h->max_bat_entries, img->file_size))
			return vc_fail(-EMEDIUMTYPE, "%s is damaged: %s (is the file truncated?)",
				       img->path, why);
		return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
	}
	/* every allocated block must lie inside the file, as the kernel target checks */
	r = vc_image_scan(fd, img, "VHD BAT", img->vhd.header.table_offset,
			  vhd_bat_entries_used(f, &img->vhd.header), 4, vc_vhd_check_block, NULL);
	if (r)
		return r;
	vc_vhd_keyhash(fd, img);
	if (f->type != VHD_TYPE_DIFF)
		return 0;
	return vc_vhd_find_parent(fd, img, flags);
}
