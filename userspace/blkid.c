// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - libblkid helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "blkid.h"

int vc_blkid_luks(const char *path, uint64_t off, uint64_t size,
		  char *uuid, size_t uuid_len, int *version)
{
	static const char *types[] = { "crypto_LUKS", NULL };
	const char *val = NULL;
	blkid_probe pr;
	int fd, r;

	if (uuid && uuid_len)
		uuid[0] = '\0';
	if (version)
		*version = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pr = blkid_new_probe();
	if (!pr) {
		close(fd);
		return -ENOMEM;
	}
	r = -EINVAL;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size))
		goto out;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID |
					  BLKID_SUBLKS_VERSION);
	blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_ONLYIN, (char **)types);
	r = blkid_do_safeprobe(pr);
	if (r != 0) {
		r = 0;	/* nothing (1) or ambivalent (-2): not a clean LUKS header */
		goto out;
	}
	if (blkid_probe_lookup_value(pr, "TYPE", &val, NULL) || strcmp(val, "crypto_LUKS"))
		goto none;
	if (uuid && !blkid_probe_lookup_value(pr, "UUID", &val, NULL))
		snprintf(uuid, uuid_len, "%s", val);
	if (version && !blkid_probe_lookup_value(pr, "VERSION", &val, NULL))
		*version = atoi(val);
	r = 1;
	goto out;
none:
	r = 0;
out:
	blkid_free_probe(pr);
	close(fd);
	return r;
}

int vc_blkid_partitions(const char *path, uint64_t dev_sectors, struct vc_partition *parts,
			int max)
{
	blkid_partlist ls;
	blkid_partition p;
	blkid_probe pr;
	blkid_loff_t start, size;
	int i, n = 0, count;

	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return -errno ? -errno : -ENOMEM;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	ls = blkid_probe_get_partitions(pr);
	count = ls ? blkid_partlist_numof_partitions(ls) : 0;
	for (i = 0; i < count && n < max; i++) {
		p = blkid_partlist_get_partition(ls, i);
		if (!p || blkid_partition_is_extended(p))
			continue;
		start = blkid_partition_get_start(p);
		size = blkid_partition_get_size(p);
		/* the table is the image's: untrusted */
		if (start <= 0 || size <= 0 || (uint64_t)start >= dev_sectors ||
		    (uint64_t)size > dev_sectors - (uint64_t)start ||
		    blkid_partition_get_partno(p) <= 0)
			continue;
		parts[n].number = blkid_partition_get_partno(p);
		parts[n].start = start;
		parts[n].sectors = size;
		n++;
	}
	blkid_free_probe(pr);
	return n;
}

char *vc_blkid_devname(dev_t devt)
{
	return blkid_devno_to_devname(devt);
}
