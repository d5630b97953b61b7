// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - extending image files before a read-write mapping and
 * trimming them after it (see grow.h). The sizes follow the kernel
 * target's allocator: qcow2 takes the first free cluster (refcount 0) and
 * moves a full refcount table behind everything it covers, VHD appends a
 * block at round_up(end + bitmap, 8 sectors) - bitmap and keeps a valid
 * footer in the device's last sector.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grow.h"
#include "lock.h"
#include "util.h"

#define VC_RUN_DIR "/run/vhdcryptsetup"
/* QEMU's limit on the refcount table, and the kernel target's */
#define VC_QCOW2_MAX_REFTABLE (8u << 20)
#define VC_QCOW2_SLACK_CLUSTERS 16

static uint64_t vc_div_up(uint64_t a, uint64_t b)
{
	return a / b + !!(a % b);
}

uint64_t vc_qcow2_max_size(const struct qcow2_header *h, uint64_t file_size)
{
	uint64_t cl = qcow2_cluster_size(h), per_block = 1ull << qcow2_refblock_bits(h);
	uint64_t base, total, refblocks, rt_clusters;
	int i;

	base = vc_div_up(file_size, cl) + vc_div_up(h->size, cl) + qcow2_l1_entries_needed(h) +
	       VC_QCOW2_SLACK_CLUSTERS;
	total = base;
	for (i = 0; i < 4; i++) {	/* the refcount structures describe themselves too */
		refblocks = vc_div_up(total, per_block) + 1;
		rt_clusters = vc_div_up(refblocks * 8, cl);
		/* a grown table is up to twice what it needs; the old ones until freed */
		total = base + refblocks + 4 * rt_clusters + 8;
	}
	return total * cl;
}

uint64_t vc_vhd_max_size(const struct vhd_header *h, uint64_t data_end, uint64_t free_blocks)
{
	uint64_t bm = vhd_bitmap_sectors(h), blk = vhd_block_sectors(h);
	uint64_t end = vc_div_up(data_end, VHD_SECTOR_SIZE), step;

	if (free_blocks) {
		/* the first block aligns its data; then each adds the same, if blocks are 4 KiB multiples */
		end = (end + bm + 7) / 8 * 8 + blk;
		step = blk % 8 ? bm + blk + 7 : (bm + 7) / 8 * 8 + blk;
		end += (free_blocks - 1) * step;
	}
	return end * VHD_SECTOR_SIZE + VHD_FOOTER_SIZE;
}

static int vc_qcow2_data_end(int fd, const struct vc_image *img, uint64_t *end)
{
	const struct qcow2_header *h = &img->qcow2.header;
	uint64_t cl = qcow2_cluster_size(h), per_block = 1ull << qcow2_refblock_bits(h);
	uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters << h->cluster_bits;
	uint64_t i, j, entries = rt_bytes / 8;
	u64 off;
	const char *why = NULL;
	u8 *rt, *rb = NULL;
	int r;

	if (rt_bytes > VC_QCOW2_MAX_REFTABLE ||
	    !vc_range_ok(h->refcount_table_offset, rt_bytes, img->file_size))
		return vc_fail(-EMEDIUMTYPE, "%s: the qcow2 refcount table is too large or lies "
			       "outside the file", img->path);
	rt = malloc(rt_bytes ? rt_bytes : 1);
	rb = malloc(cl);
	r = rt && rb ? 0 : vc_fail(-ENOMEM, "out of memory");
	if (!r)
		r = vc_pread_full(fd, rt, rt_bytes, h->refcount_table_offset);
	for (i = entries; !r && i-- > 0;) {
		r = qcow2_reftable_decode(h, vc_get_be64(rt + i * 8), &off, &why);
		if (r) {
			r = vc_fail(-EMEDIUMTYPE, "%s: %s", img->path, why);
			break;
		}
		if (!off)
			continue;
		if (!vc_range_ok(off, cl, img->file_size) ||
		    i >= (UINT64_MAX >> h->cluster_bits) / per_block) {
			r = vc_fail(-EMEDIUMTYPE, "%s: a qcow2 refcount block lies outside the file",
				    img->path);
			break;
		}
		r = vc_pread_full(fd, rb, cl, off);
		for (j = per_block; !r && j-- > 0;)
			if (qcow2_refcount_get(h, rb + qcow2_refcount_byte(h, j), j)) {
				*end = (i * per_block + j + 1) * cl;
				goto out;
			}
	}
	if (r == 0)
		r = vc_fail(-EMEDIUMTYPE, "%s: no qcow2 cluster has a refcount", img->path);
	else if (r != -EMEDIUMTYPE && r != -ENOMEM)
		r = vc_fail(r, "%s: cannot read the qcow2 refcounts: %s", img->path, strerror(-r));
out:
	free(rt);
	free(rb);
	return r;
}

struct vc_vhd_end {
	uint64_t end;		/* sectors */
	uint64_t free_blocks;
};

static int vc_vhd_block_end(const struct vc_image *img, uint64_t i, const u8 *entry, void *ctx)
{
	const struct vhd_header *h = &img->vhd.header;
	struct vc_vhd_end *e = ctx;
	u32 bat = vc_get_be32(entry);
	uint64_t end = (uint64_t)bat + vhd_bitmap_sectors(h) + vhd_block_sectors(h);

	(void)i;
	if (bat == VHD_BAT_UNUSED)
		e->free_blocks++;
	else if (end > e->end)
		e->end = end;
	return 0;
}

/* The end of the metadata in front of any block, as the kernel target counts it. */
static uint64_t vc_vhd_metadata_end(int fd, const struct vc_image *img)
{
	const struct vhd_header *h = &img->vhd.header;
	uint64_t end, off = vhd_batmap_header_offset(h);
	struct vhd_batmap_header b;
	u8 buf[VHD_BATMAP_HEADER_SIZE];
	const char *why;
	int i;

	end = img->vhd.footer.data_offset + VHD_HEADER_SIZE;
	if (h->table_offset + vc_div_up(4ull * h->max_bat_entries, 512) * 512 > end)
		end = h->table_offset + vc_div_up(4ull * h->max_bat_entries, 512) * 512;
	if (vhd_has_batmap(&img->vhd.footer) && !(off & 511) &&
	    vc_range_ok(off, sizeof(buf), img->file_size) &&
	    !vc_pread_full(fd, buf, sizeof(buf), off) && !vhd_batmap_header_decode(buf, &b, &why)) {
		if (off + sizeof(buf) > end)
			end = off + sizeof(buf);
		if (b.map_offset + ((uint64_t)b.map_sectors << VHD_SECTOR_SHIFT) > end)
			end = b.map_offset + ((uint64_t)b.map_sectors << VHD_SECTOR_SHIFT);
	}
	for (i = 0; i < VHD_MAX_LOCATORS; i++)
		if (h->loc[i].code &&
		    h->loc[i].data_offset + vhd_locator_space(&h->loc[i]) > end)
			end = h->loc[i].data_offset + vhd_locator_space(&h->loc[i]);
	return vc_div_up(end, VHD_SECTOR_SIZE);
}

int vc_grow_data_end(int fd, const struct vc_image *img, uint64_t *end, uint64_t *free_blocks)
{
	struct vc_vhd_end e = { 0 };
	int r;

	if (img->fmt == VC_FMT_QCOW2)
		return vc_qcow2_data_end(fd, img, end);
	if (img->fmt != VC_FMT_VHD || img->vhd.footer.type == VHD_TYPE_FIXED)
		return vc_fail(-EINVAL, "%s: only qcow2 and dynamic VHD images grow", img->path);
	e.end = vc_vhd_metadata_end(fd, img);
	r = vc_image_scan(fd, img, "VHD BAT", img->vhd.header.table_offset,
			  vhd_bat_entries_used(&img->vhd.footer, &img->vhd.header), 4,
			  vc_vhd_block_end, &e);
	if (r)
		return r;
	*end = e.end << VHD_SECTOR_SHIFT;
	if (free_blocks)
		*free_blocks = e.free_blocks;
	return 0;
}

bool vc_grow_needed(const struct vc_image *img)
{
	return !img->is_blockdev && (img->fmt == VC_FMT_QCOW2 ||
				     (img->fmt == VC_FMT_VHD &&
				      img->vhd.footer.type != VHD_TYPE_FIXED));
}

/* The VHD footer: the trailing one, or the copy at offset 0. */
static int vc_vhd_footer_bytes(int fd, const struct vc_image *img, u8 *buf)
{
	struct vhd_footer f;
	const char *why;
	int r;

	if (img->file_size >= VHD_FOOTER_SIZE &&
	    !vc_pread_full(fd, buf, VHD_FOOTER_SIZE, img->file_size - VHD_FOOTER_SIZE) &&
	    !vhd_footer_decode(buf, &f, &why))
		return 0;
	r = vc_pread_full(fd, buf, VHD_FOOTER_SIZE, 0);
	if (!r && vhd_footer_decode(buf, &f, &why))
		r = -EMEDIUMTYPE;
	return r ? vc_fail(r, "%s: no VHD footer to copy", img->path) : 0;
}

int vc_grow_extend(int fd, const struct vc_image *img, bool *grown)
{
	uint64_t end, free_blocks, size;
	u8 footer[VHD_FOOTER_SIZE];
	int r;

	*grown = false;
	if (img->fmt == VC_FMT_QCOW2) {
		size = vc_qcow2_max_size(&img->qcow2.header, img->file_size);
	} else {
		r = vc_grow_data_end(fd, img, &end, &free_blocks);
		if (r)
			return r;
		size = vc_vhd_max_size(&img->vhd.header, end, free_blocks);
	}
	if (size <= img->file_size)
		return 0;
	vc_log_debug("%s: extended from %llu to %llu bytes", img->path,
		     (unsigned long long)img->file_size, (unsigned long long)size);
	if (img->fmt == VC_FMT_QCOW2) {
		if (ftruncate(fd, size) < 0)
			return vc_fail(-errno, "cannot extend %s to %llu bytes: %s", img->path,
				       (unsigned long long)size, strerror(errno));
	} else {
		/* writing the footer at the new end extends the file: valid at every moment */
		r = vc_vhd_footer_bytes(fd, img, footer);
		if (!r && pwrite(fd, footer, sizeof(footer), size - VHD_FOOTER_SIZE) !=
		    sizeof(footer))
			r = vc_fail(errno ? -errno : -EIO, "cannot extend %s to %llu bytes: %s",
				    img->path, (unsigned long long)size, strerror(errno));
		if (r)
			return r;
	}
	*grown = true;
	if (fsync(fd) < 0)
		return vc_fail(-errno, "cannot sync %s: %s", img->path, strerror(errno));
	return 0;
}

/* Lock the file as a writer; the loop device of a close may take a moment to let go. */
static int vc_grow_lock(int fd, const char *path)
{
	int tries, r = 0;

	for (tries = 0; tries < 20; tries++) {
		r = vc_lock_image(fd, path, true);
		if (r != -EBUSY)
			return r;
		usleep(50000);
	}
	return r;
}

int vc_grow_trim(const char *path, uint64_t min_size)
{
	struct vc_image *img = NULL;
	u8 footer[VHD_FOOTER_SIZE];
	uint64_t end, size;
	int fd, r;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", path, strerror(errno));
	r = vc_grow_lock(fd, path);
	if (!r)
		r = vc_image_open(path, VC_FMT_UNKNOWN, VC_OPEN_PARENT_OPTIONAL, &img);
	if (!r && !vc_grow_needed(img))
		goto out;
	if (!r)
		r = vc_grow_data_end(fd, img, &end, NULL);
	if (r)
		goto out;
	if (img->fmt == VC_FMT_VHD) {
		/* the footer at the end of the data, or where it was before open */
		if (min_size >= VHD_FOOTER_SIZE && end < min_size - VHD_FOOTER_SIZE)
			end = min_size - VHD_FOOTER_SIZE;
		size = end + VHD_FOOTER_SIZE;
		r = vc_vhd_footer_bytes(fd, img, footer);
		if (!r && size < img->file_size &&
		    pwrite(fd, footer, sizeof(footer), end) != sizeof(footer))
			r = vc_fail(errno ? -errno : -EIO, "cannot write the VHD footer of %s: %s",
				    path, strerror(errno));
		if (!r && fsync(fd) < 0)
			r = vc_fail(-errno, "cannot sync %s: %s", path, strerror(errno));
	} else {
		size = end > min_size ? end : min_size;
	}
	if (r || size >= img->file_size)
		goto out;
	vc_log_debug("%s: trimmed from %llu to %llu bytes", path,
		     (unsigned long long)img->file_size, (unsigned long long)size);
	if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
		r = vc_fail(-errno, "cannot trim %s to %llu bytes: %s", path,
			    (unsigned long long)size, strerror(errno));
out:
	vc_image_free(img);
	close(fd);
	return r;
}

static char *vc_grow_state_path(const char *name)
{
	const char *dir = getenv("VHDCRYPT_RUN_DIR");

	return vc_asprintf("%s/%s", dir && *dir ? dir : VC_RUN_DIR, name);
}

int vc_grow_state_save(const char *name, const struct stat *st, uint64_t size)
{
	char *path = vc_grow_state_path(name), *dir;
	FILE *f;
	int r = 0;

	if (!path)
		return -ENOMEM;
	dir = vc_dirname(path);
	if (dir)
		mkdir(dir, 0700);
	free(dir);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%llu %llu %llu\n", (unsigned long long)st->st_dev,
			  (unsigned long long)st->st_ino, (unsigned long long)size) < 0)
		r = -errno;
	if (f && fclose(f) && !r)
		r = -errno;
	if (r)
		vc_warn("cannot write %s (%s): close will trim the image to the end of its "
			"data", path, strerror(-r));
	free(path);
	return r;
}

int vc_grow_state_load(const char *name, const struct stat *st, uint64_t *size)
{
	unsigned long long dev, ino, sz;
	char *path = vc_grow_state_path(name);
	FILE *f;
	int r = -ENOENT;

	if (!path)
		return -ENOMEM;
	f = fopen(path, "re");
	if (f && fscanf(f, "%llu %llu %llu", &dev, &ino, &sz) == 3 &&
	    dev == (unsigned long long)st->st_dev && ino == (unsigned long long)st->st_ino) {
		*size = sz;
		r = 0;
	}
	if (f)
		fclose(f);
	free(path);
	return r;
}

void vc_grow_state_remove(const char *name)
{
	char *path = vc_grow_state_path(name);

	if (path)
		unlink(path);
	free(path);
}
