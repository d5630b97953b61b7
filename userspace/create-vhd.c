// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - new VHD images, as libvhd's vhd-util create (fixed and
 * dynamic) and snapshot (differencing) write them: footer copy at 0, dynamic
 * header at 512, BAT at 1536, tapdisk's batmap header and map after the BAT,
 * the parent locators (MacX, W2ku, W2ru, all with the relative path) after
 * the map, the footer after them. Creator "tap" 1.3, 2 MiB blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "create.h"
#include "util.h"

#define VC_VHD_BLOCK_SIZE	(2u << 20)	/* libvhd's VHD_BLOCK_SIZE */
#define VC_VHD_TABLE_OFFSET	1536
#define VC_VHD_CREATOR_VERSION	0x00010003u	/* libvhd's VHD_CURRENT_VERSION */
#define VC_VHD_BATMAP_VERSION	0x00010002u
#define VC_VHD_EPOCH		946684800	/* 2000-01-01 00:00 UTC */

static uint64_t vc_round512(uint64_t v)
{
	return (v + 511) & ~511ull;
}

static u32 vc_vhd_time(time_t t)
{
	return t > VC_VHD_EPOCH ? (u32)(t - VC_VHD_EPOCH) : 0;
}

/* CHS geometry of the VHD specification (libvhd's vhd_chs()). */
static u32 vc_vhd_chs(uint64_t size)
{
	uint64_t secs = size >> 9, cth;
	u32 spt, heads;

	if (secs > 65535ull * 16 * 255)
		secs = 65535ull * 16 * 255;
	if (secs >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = secs / spt;
	} else {
		spt = 17;
		cth = secs / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024ull || heads > 16) {
			spt = 31;
			heads = 16;
			cth = secs / spt;
		}
		if (cth >= heads * 1024ull) {
			spt = 63;
			heads = 16;
			cth = secs / spt;
		}
	}
	return (u32)(cth / heads) << 16 | heads << 8 | spt;
}

/* UTF-8 s into UTF-16 (big- or little-endian) at out (room for len bytes); bytes or -EINVAL. */
static int vc_utf16(const char *s, u8 *out, size_t len, bool be)
{
	const u8 *p = (const u8 *)s;
	size_t o = 0;

	while (*p) {
		u32 c = *p++, units[2];
		int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0, i, n;

		if (c >= 0x80 && c < 0xc0)
			return -EINVAL;
		c &= extra ? 0x3f >> extra : 0x7f;
		for (i = 0; i < extra; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return -EINVAL;
			c = c << 6 | (*p & 0x3f);
		}
		n = 1;
		units[0] = c;
		if (c >= 0x10000) {
			c -= 0x10000;
			units[0] = 0xd800 | (c >> 10);
			units[1] = 0xdc00 | (c & 0x3ff);
			n = 2;
		}
		for (i = 0; i < n; i++) {
			if (o + 2 > len)
				return -EINVAL;
			out[o + !be] = units[i] >> 8;
			out[o + be] = units[i] & 0xff;
			o += 2;
		}
	}
	return (int)o;
}

static void vc_vhd_footer(u8 *f, const struct vc_vhd_new *n, const u8 uuid[16], time_t now)
{
	memset(f, 0, VHD_FOOTER_SIZE);
	memcpy(f, "conectix", 8);
	vc_put_be32(f + 8, 2);	/* HD_RESERVED */
	vc_put_be32(f + 12, VHD_VERSION_1_0);
	vc_put_be64(f + 16, n->fixed ? VHD_NO_OFFSET : 512);
	vc_put_be32(f + 24, vc_vhd_time(now));
	memcpy(f + 28, "tap", 4);
	vc_put_be32(f + 32, VC_VHD_CREATOR_VERSION);
	vc_put_be64(f + 40, n->size);
	vc_put_be64(f + 48, n->size);
	vc_put_be32(f + 56, vc_vhd_chs(n->size));
	vc_put_be32(f + 60, n->fixed ? VHD_TYPE_FIXED : n->parent ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC);
	memcpy(f + 68, uuid, 16);
	vc_put_be32(f + 64, vhd_checksum(f, VHD_FOOTER_SIZE, 64));
}

/* The three parent locators' data at *off (advanced), their entries in hdr. */
static int vc_vhd_locators(u8 *hdr, u8 *meta, uint64_t meta_off, uint64_t *off,
			   const char *rel)
{
	static const u32 codes[3] = { VHD_PLAT_MACX, VHD_PLAT_W2KU, VHD_PLAT_W2RU };
	char *mac, *win, *p;
	int i, len, r = 0;

	mac = vc_asprintf("file://%s", rel);
	win = vc_strdup(rel);
	if (!mac || !win) {
		r = -ENOMEM;
		goto out;
	}
	for (p = win; *p; p++)
		if (*p == '/')
			*p = '\\';
	for (i = 0; i < 3; i++) {
		u8 *loc = hdr + 576 + 24 * i, *data = meta + (*off - meta_off);

		if (i == 0) {
			len = strlen(mac);
			if (len > 512) {
				r = -ENAMETOOLONG;
				break;
			}
			memcpy(data, mac, len);
		} else {
			len = vc_utf16(win, data, 512, false);
			if (len < 0) {
				r = -ENAMETOOLONG;
				break;
			}
		}
		vc_put_be32(loc, codes[i]);
		vc_put_be32(loc + 4, 512);	/* data_space in bytes, as libvhd writes it */
		vc_put_be32(loc + 8, len);
		vc_put_be64(loc + 16, *off);
		*off += 512;
	}
out:
	free(mac);
	free(win);
	return r;
}

int vc_vhd_write_new(int fd, const char *path, const struct vc_vhd_new *n, uint64_t *end)
{
	uint64_t max_bat, bat_bytes, batmap_off, map_secs, off, meta_len, footer_off;
	u8 footer[VHD_FOOTER_SIZE], uuid[16], *meta = NULL, *hdr, *bm;
	time_t now = time(NULL);
	const char *base;
	int r;

	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid))
		return vc_fail(-EIO, "cannot get random bytes for the VHD uuid");
	uuid[6] = (uuid[6] & 0x0f) | 0x40;	/* version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	vc_vhd_footer(footer, n, uuid, now);

	if (n->fixed) {
		footer_off = n->device_size ? n->device_size - VHD_FOOTER_SIZE : n->size;
		if (!n->device_size && ftruncate(fd, n->size) < 0)
			return vc_fail(-errno, "cannot size %s: %s", path, strerror(errno));
		r = vc_pwrite_full(fd, footer, sizeof(footer), footer_off);
		*end = footer_off + VHD_FOOTER_SIZE;
		return r ? vc_fail(r, "cannot write %s: %s", path, strerror(-r)) : 0;
	}

	max_bat = (n->size + VC_VHD_BLOCK_SIZE - 1) / VC_VHD_BLOCK_SIZE;
	bat_bytes = vc_round512(max_bat * 4);
	batmap_off = VC_VHD_TABLE_OFFSET + bat_bytes;
	map_secs = vc_round512((max_bat + 7) / 8) >> 9;
	off = batmap_off + 512 + (map_secs << 9);
	meta_len = off + (n->parent ? 3 * 512 : 0);
	meta = vc_zalloc(meta_len);
	if (!meta)
		return -ENOMEM;
	memcpy(meta, footer, sizeof(footer));

	hdr = meta + 512;
	memcpy(hdr, "cxsparse", 8);
	vc_put_be64(hdr + 8, VHD_NO_OFFSET);
	vc_put_be64(hdr + 16, VC_VHD_TABLE_OFFSET);
	vc_put_be32(hdr + 24, VHD_VERSION_1_0);
	vc_put_be32(hdr + 28, max_bat);
	vc_put_be32(hdr + 32, VC_VHD_BLOCK_SIZE);
	if (n->parent) {
		memcpy(hdr + 40, n->parent->vhd.footer.uuid, 16);
		vc_put_be32(hdr + 56, vc_vhd_time(n->parent->st.st_mtime));
		base = strrchr(n->parent->path, '/');
		base = base ? base + 1 : n->parent->path;
		r = vc_utf16(base, hdr + 64, 512, true);
		if (r >= 0)
			r = vc_vhd_locators(hdr, meta, 0, &off, n->parent_rel);
		if (r < 0) {
			r = vc_fail(-EINVAL, "the parent name %s is too long or not UTF-8",
				    n->parent_rel);
			goto out;
		}
	}
	vc_put_be32(hdr + 36, vhd_checksum(hdr, VHD_HEADER_SIZE, 36));

	memset(meta + VC_VHD_TABLE_OFFSET, 0xff, max_bat * 4);	/* every block unused */
	bm = meta + batmap_off;
	memcpy(bm, "tdbatmap", 8);
	vc_put_be64(bm + 8, batmap_off + 512);
	vc_put_be32(bm + 16, map_secs);
	vc_put_be32(bm + 20, VC_VHD_BATMAP_VERSION);
	vc_put_be32(bm + 24, 0xffffffffu);	/* the checksum of an all-zero map */
	if (n->keyhash && n->keyhash->set) {
		bm[29] = 1;
		memcpy(bm + 30, n->keyhash->nonce, 32);
		memcpy(bm + 62, n->keyhash->hash, 32);
	}

	footer_off = n->device_size ? n->device_size - VHD_FOOTER_SIZE : meta_len;
	r = vc_pwrite_full(fd, meta, meta_len, 0);
	if (!r)
		r = vc_pwrite_full(fd, footer, sizeof(footer), footer_off);
	if (r)
		r = vc_fail(r, "cannot write %s: %s", path, strerror(-r));
	*end = footer_off + VHD_FOOTER_SIZE;
out:
	free(meta);
	return r;
}

int vc_vhd_write_keyhash(const struct vc_image *img, const struct vc_keyhash *kh)
{
	u8 bm[VHD_BATMAP_HEADER_SIZE], x[65];
	struct vhd_batmap_header b;
	const char *why = NULL;
	uint64_t off;
	int fd, r;

	fd = open(img->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(-errno, "cannot open %s for writing: %s", img->path,
			       strerror(errno));
	if (img->vhd.footer.type != VHD_TYPE_FIXED && vhd_has_batmap(&img->vhd.footer)) {
		off = vhd_batmap_header_offset(&img->vhd.header);
		r = vc_pread_full(fd, bm, sizeof(bm), off);
		if (!r && vhd_batmap_header_decode(bm, &b, &why))
			r = vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
		if (r)
			goto out;
		memset(bm + 29, 0, 65);
		if (kh->set) {
			bm[29] = 1;
			memcpy(bm + 30, kh->nonce, 32);
			memcpy(bm + 62, kh->hash, 32);
		}
		r = vc_pwrite_full(fd, bm, sizeof(bm), off);
		if (!r && fsync(fd) < 0)
			r = -errno;
		if (r)
			r = vc_fail(r, "cannot write the key hash of %s: %s", img->path,
				    strerror(-r));
		goto out;
	}
	/* no batmap (a VHD not made by tapdisk): libvhd's extended attribute */
	x[0] = 1;
	memcpy(x + 1, kh->nonce, 32);
	memcpy(x + 33, kh->hash, 32);
	if (kh->set)
		r = fsetxattr(fd, VC_KEYHASH_XATTR, x, sizeof(x), 0) ? -errno : 0;
	else
		r = fremovexattr(fd, VC_KEYHASH_XATTR) && errno != ENODATA ? -errno : 0;
	if (r)
		r = vc_fail(r, "cannot write the key hash of %s (extended attribute %s): %s",
			    img->path, VC_KEYHASH_XATTR, strerror(-r));
out:
	close(fd);
	return r;
}
