// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - new qcow2 images (version 3, 16-bit refcounts), laid out
 * as qemu-img create lays them out: the header cluster (header, header
 * extensions, backing file name), the refcount table, the refcount blocks,
 * the L1 table, then the LUKS region. For the common sizes (one refcount
 * block) that is byte for byte qemu-img's image, but for the random parts
 * (the LUKS region, which the caller fills).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "create.h"
#include "util.h"

/* QEMU's feature name table: type, bit, name. */
static const struct {
	u8 type, bit;
	const char *name;
} vc_qcow2_features[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};

#define VC_QCOW2_FEATURE_SIZE	48	/* type, bit, 46 bytes of name */
#define VC_QCOW2_HEADER_LENGTH	112	/* version 3 with the compression type, padded */

/* Append header extension type at *off; -ENOSPC if it does not fit in len. */
static int vc_qcow2_ext(u8 *buf, size_t len, size_t *off, u32 type, const void *data,
			size_t dlen)
{
	size_t need = 8 + ((dlen + 7) & ~(size_t)7);

	if (*off + need > len)
		return -ENOSPC;
	vc_put_be32(buf + *off, type);
	vc_put_be32(buf + *off + 4, dlen);
	if (dlen)
		memcpy(buf + *off + 8, data, dlen);
	*off += need;
	return 0;
}

/* Extensions and the backing file name after the header; 0 or -ENOSPC. */
static int vc_qcow2_tail(u8 *buf, size_t cl, const struct vc_qcow2_new *n, uint64_t luks_off,
			 bool features)
{
	u8 fde[16], table[sizeof(vc_qcow2_features) / sizeof(vc_qcow2_features[0]) *
			  VC_QCOW2_FEATURE_SIZE];
	size_t off = VC_QCOW2_HEADER_LENGTH, i, blen;
	int r = 0;

	memset(buf + off, 0, cl - off);
	if (n->backing_name)
		r = vc_qcow2_ext(buf, cl, &off, QCOW2_EXT_BACKING_FORMAT, n->backing_fmt,
				 strlen(n->backing_fmt));
	if (!r && n->luks_len) {
		vc_put_be64(fde, luks_off);
		vc_put_be64(fde + 8, n->luks_len);
		r = vc_qcow2_ext(buf, cl, &off, QCOW2_EXT_FDE, fde, sizeof(fde));
	}
	if (!r && features) {
		memset(table, 0, sizeof(table));
		for (i = 0; i < sizeof(vc_qcow2_features) / sizeof(vc_qcow2_features[0]); i++) {
			u8 *e = table + i * VC_QCOW2_FEATURE_SIZE;

			e[0] = vc_qcow2_features[i].type;
			e[1] = vc_qcow2_features[i].bit;
			memcpy(e + 2, vc_qcow2_features[i].name, strlen(vc_qcow2_features[i].name));
		}
		r = vc_qcow2_ext(buf, cl, &off, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
	}
	if (!r)
		r = vc_qcow2_ext(buf, cl, &off, QCOW2_EXT_END, NULL, 0);
	if (r || !n->backing_name)
		return r;
	blen = strlen(n->backing_name);
	if (off + blen > cl)
		return -ENOSPC;
	memcpy(buf + off, n->backing_name, blen);
	vc_put_be64(buf + 8, off);
	vc_put_be32(buf + 16, blen);
	return 0;
}

int vc_qcow2_write_new(int fd, const char *path, const struct vc_qcow2_new *n,
		       uint64_t *luks_off, uint64_t *end)
{
	struct qcow2_header h = { .size = n->size, .cluster_bits = n->cluster_bits };
	uint64_t cl = 1ull << n->cluster_bits, l1_entries, l1c, lc, rt = 1, rb = 1, total, i;
	uint64_t rt_off, rb_off, l1_off, zero_end;
	u8 *buf;
	int r;

	l1_entries = qcow2_l1_entries_needed(&h);
	if (l1_entries * 8 > QCOW2_MAX_L1_BYTES)
		return vc_fail(-EINVAL, "a qcow2 of %llu bytes with %llu-byte clusters needs an "
			       "L1 table larger than QEMU's limit; use larger clusters",
			       (unsigned long long)n->size, (unsigned long long)cl);
	l1c = (l1_entries * 8 + cl - 1) / cl;
	lc = (n->luks_len + cl - 1) / cl;
	/* the refcount blocks and table cover every cluster, themselves included */
	for (;;) {
		uint64_t rb_need, rt_need;

		total = 1 + rt + rb + l1c + lc;
		rb_need = (total + cl / 2 - 1) / (cl / 2);
		rt_need = (rb_need * 8 + cl - 1) / cl;
		if (rb_need == rb && rt_need == rt)
			break;
		rb = rb_need;
		rt = rt_need;
	}
	rt_off = cl;
	rb_off = rt_off + rt * cl;
	l1_off = rb_off + rb * cl;
	*luks_off = l1_off + l1c * cl;
	*end = n->luks_len ? *luks_off + lc * cl : l1_off + l1_entries * 8;

	buf = vc_zalloc(cl);
	if (!buf)
		return -ENOMEM;
	vc_put_be32(buf, QCOW2_MAGIC);
	vc_put_be32(buf + 4, 3);
	vc_put_be32(buf + 20, n->cluster_bits);
	vc_put_be64(buf + 24, n->size);
	vc_put_be32(buf + 32, n->luks_len ? QCOW2_CRYPT_LUKS : QCOW2_CRYPT_NONE);
	vc_put_be32(buf + 36, l1_entries);
	vc_put_be64(buf + 40, l1_off);
	vc_put_be64(buf + 48, rt_off);
	vc_put_be32(buf + 56, rt);
	vc_put_be32(buf + 96, 4);	/* refcount_order: 16-bit refcounts */
	vc_put_be32(buf + 100, VC_QCOW2_HEADER_LENGTH);
	/* QEMU 7.2 writes the feature table only into clusters of 8 KiB or more */
	r = vc_qcow2_tail(buf, cl, n, *luks_off, n->cluster_bits >= 13);
	if (r) {
		r = vc_fail(-EINVAL, "the qcow2 header and backing file name do not fit in one "
			    "%llu-byte cluster; use larger clusters", (unsigned long long)cl);
		goto out;
	}
	r = vc_pwrite_full(fd, buf, cl, 0);
	/* the refcount table, then the refcount blocks: every cluster used has refcount 1 */
	for (i = 0; !r && i < rt; i++) {
		uint64_t e;

		memset(buf, 0, cl);
		for (e = 0; e < cl / 8 && i * (cl / 8) + e < rb; e++)
			vc_put_be64(buf + e * 8, rb_off + (i * (cl / 8) + e) * cl);
		r = vc_pwrite_full(fd, buf, cl, rt_off + i * cl);
	}
	for (i = 0; !r && i < rb; i++) {
		uint64_t e;

		memset(buf, 0, cl);
		for (e = 0; e < cl / 2 && i * (cl / 2) + e < total; e++)
			vc_put_be16(buf + e * 2, 1);
		r = vc_pwrite_full(fd, buf, cl, rb_off + i * cl);
	}
	/* the L1 table and the LUKS region are zeros; a device may hold old data there */
	zero_end = *luks_off + lc * cl;
	memset(buf, 0, cl);
	for (i = l1_off; !r && i < zero_end; i += cl)
		r = vc_pwrite_full(fd, buf, i + cl <= *end ? cl : *end - i, i);
	if (r)
		r = vc_fail(r, "cannot write %s: %s", path, strerror(-r));
out:
	free(buf);
	return r;
}
