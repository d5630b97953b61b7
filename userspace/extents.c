// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - allocated ranges of a chain, read through the same table
 * scan and decoders as the image model.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extents.h"
#include "util.h"

void vc_extents_free(struct vc_extents *x)
{
	free(x->e);
	memset(x, 0, sizeof(*x));
}

/* Ranges arrive mostly in order: merging with the last one is the common case. */
int vc_extents_add(struct vc_extents *x, uint64_t start, uint64_t len)
{
	uint64_t end = start + len;
	size_t i, j;

	if (!len)
		return 0;
	/* the first extent that ends at or after start */
	for (i = x->n; i > 0 && x->e[i - 1].start + x->e[i - 1].len >= start; i--)
		;
	for (j = i; j < x->n && x->e[j].start <= end; j++) {
		uint64_t e_end = x->e[j].start + x->e[j].len;

		if (x->e[j].start < start)
			start = x->e[j].start;
		if (e_end > end)
			end = e_end;
	}
	if (j == i) {	/* nothing to merge: insert at i */
		if (x->n == x->cap) {
			size_t cap = x->cap ? 2 * x->cap : 64;
			struct vc_extent *e = realloc(x->e, cap * sizeof(*e));

			if (!e)
				return vc_fail(-ENOMEM, "out of memory");
			x->e = e;
			x->cap = cap;
		}
		memmove(x->e + i + 1, x->e + i, (x->n - i) * sizeof(*x->e));
		x->n++;
		j = i + 1;
	} else {
		for (size_t k = i; k < j; k++)
			x->bytes -= x->e[k].len;
	}
	x->e[i].start = start;
	x->e[i].len = end - start;
	x->bytes += end - start;
	memmove(x->e + i + 1, x->e + j, (x->n - j) * sizeof(*x->e));
	x->n -= j - i - 1;
	return 0;
}

struct vc_scan {
	struct vc_extents *x;
	int fd;
	uint64_t limit;		/* bytes of the top's virtual disk */
	u8 *l2;			/* one L2 table */
};

static int vc_scan_add(struct vc_scan *s, uint64_t start, uint64_t len)
{
	if (start >= s->limit)
		return 0;
	if (len > s->limit - start)
		len = s->limit - start;
	return vc_extents_add(s->x, start, len);
}

static int vc_scan_vhd(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx)
{
	uint64_t bs = (uint64_t)vhd_block_sectors(&img->vhd.header) << 9;

	if (vc_get_be32(entry) == VHD_BAT_UNUSED)
		return 0;
	return vc_scan_add(ctx, i * bs, bs);
}

static int vc_scan_qcow2(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx)
{
	const struct qcow2_header *h = &img->qcow2.header;
	struct vc_scan *s = ctx;
	uint64_t cl = qcow2_cluster_size(h), n = cl / qcow2_l2_entry_size(h), j;
	u64 l2_off;
	const char *why = NULL;
	int r;

	if (qcow2_l1_decode(h, vc_get_be64(entry), &l2_off, &why))
		return vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
	if (!l2_off)
		return 0;
	r = vc_pread_full(s->fd, s->l2, cl, l2_off);
	if (r)
		return vc_fail(r, "%s: cannot read an L2 table: %s", img->path, strerror(-r));
	for (j = 0; j < n && !r; j++) {
		const u8 *e = s->l2 + j * qcow2_l2_entry_size(h);
		bool used = vc_get_be64(e) || (qcow2_extended_l2(h) && vc_get_be64(e + 8));

		if (used)
			r = vc_scan_add(s, (i * n + j) * cl, cl);
	}
	return r;
}

int vc_chain_extents(const struct vc_chain *c, struct vc_extents *x)
{
	struct vc_scan s = { .x = x, .limit = c->img[0]->virtual_size };
	int i, r = 0;

	memset(x, 0, sizeof(*x));
	for (i = 0; i < c->n && !r; i++) {
		const struct vc_image *img = c->img[i];

		if (img->fmt == VC_FMT_RAW ||
		    (img->fmt == VC_FMT_VHD && img->vhd.footer.type == VHD_TYPE_FIXED)) {
			r = vc_scan_add(&s, 0, img->virtual_size ? img->virtual_size :
					img->file_size);
			continue;
		}
		s.fd = open(img->path, O_RDONLY | O_CLOEXEC);
		if (s.fd < 0)
			return vc_fail(-errno, "cannot open %s: %s", img->path, strerror(errno));
		if (img->fmt == VC_FMT_VHD) {
			r = vc_image_scan(s.fd, img, "VHD BAT", img->vhd.header.table_offset,
					  vhd_bat_entries_used(&img->vhd.footer, &img->vhd.header), 4,
					  vc_scan_vhd, &s);
		} else {
			s.l2 = vc_zalloc(qcow2_cluster_size(&img->qcow2.header));
			r = s.l2 ? vc_image_scan(s.fd, img, "qcow2 L1 table",
						 img->qcow2.header.l1_table_offset,
						 qcow2_l1_entries_needed(&img->qcow2.header), 8,
						 vc_scan_qcow2, &s) : -ENOMEM;
			free(s.l2);
			s.l2 = NULL;
		}
		close(s.fd);
	}
	if (r)
		vc_extents_free(x);
	return r;
}
