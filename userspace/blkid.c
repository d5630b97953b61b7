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

char *vc_blkid_devname(dev_t devt)
{
	return blkid_devno_to_devname(devt);
}
