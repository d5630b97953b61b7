// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - partition devices of an opened virtual disk (see
 * partitions.h). The partitions are found with libblkid; close finds them
 * again as the holders of the disk whose DM UUID says they are its
 * partitions (sysfs), so it needs no record of what open made.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "blkid.h"
#include "dm.h"
#include "partitions.h"
#include "util.h"

#define VC_PARTITIONS_MAX 128	/* GPT's usual number of entries */

/* kpartx's DM UUID of partition number of the disk with uuid (cut to fit, as kpartx). */
static void vc_partition_uuid(char *buf, size_t len, int number, const char *uuid)
{
	snprintf(buf, len, "part%d-%s", number, uuid);
}

int vc_partitions_add(const char *name, const char *uuid, dev_t devt, uint64_t sectors,
		      bool writable)
{
	struct vc_partition *parts;
	char *disk, *pname = NULL, *params = NULL, puuid[VC_DM_UUID_MAX + 1];
	int n, i, r = 0;

	disk = vc_asprintf("/dev/mapper/%s", name);
	parts = calloc(VC_PARTITIONS_MAX, sizeof(*parts));
	if (!disk || !parts) {
		free(disk);
		free(parts);
		return vc_fail(-ENOMEM, "out of memory");
	}
	n = vc_blkid_partitions(disk, sectors, parts, VC_PARTITIONS_MAX);
	if (n < 0)
		r = vc_fail(n, "cannot read the partition table of %s: %s", disk, strerror(-n));
	for (i = 0; i < n && !r; i++) {
		struct vc_dm_new d = { .target = "linear", .writable = writable };

		pname = vc_asprintf("%sp%d", name, parts[i].number);
		params = vc_asprintf("%u:%u %llu", major(devt), minor(devt),
				     (unsigned long long)parts[i].start);
		if (!pname || !params) {
			r = vc_fail(-ENOMEM, "out of memory");
			break;
		}
		if (strlen(pname) > VC_DM_NAME_MAX) {
			r = vc_fail(-EINVAL, "the partition device name %s is too long; choose "
				    "a shorter name or use --no-partitions", pname);
			break;
		}
		vc_partition_uuid(puuid, sizeof(puuid), parts[i].number, uuid);
		d.name = pname;
		d.uuid = puuid;
		d.sectors = parts[i].sectors;
		d.params = params;
		r = vc_dm_create_dev(&d);
		if (!r)
			vc_log_debug("partition %s: 0 %llu linear %s", pname,
				     (unsigned long long)parts[i].sectors, params);
		free(pname);
		free(params);
		pname = params = NULL;
	}
	free(pname);
	free(params);
	free(parts);
	free(disk);
	if (r) {
		vc_partitions_remove(uuid, devt);
		return r;
	}
	return n;
}

/* Is holder (a dm-N of sysfs) a partition device of the disk with uuid? Its name in name. */
static bool vc_partition_of(const char *holder, const char *uuid, char *name, size_t len)
{
	char path[300], buf[VC_DM_UUID_MAX + 2], want[VC_DM_UUID_MAX + 1];
	int number;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/sys/block/%s/dm/uuid", holder);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok || sscanf(buf, "part%d-", &number) != 1)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	vc_partition_uuid(want, sizeof(want), number, uuid);
	if (strcmp(buf, want))
		return false;
	snprintf(path, sizeof(path), "/sys/block/%s/dm/name", holder);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(name, len, f) != NULL;
	fclose(f);
	name[strcspn(name, "\n")] = '\0';
	return ok && *name;
}

int vc_partitions_remove(const char *uuid, dev_t devt)
{
	char path[128], name[VC_DM_NAME_MAX + 2];
	struct dirent *de;
	bool found;
	DIR *d;
	int r;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(devt), minor(devt));
	do {	/* one at a time: a removal changes the directory */
		d = opendir(path);
		if (!d)
			return 0;
		found = false;
		while (!found && (de = readdir(d)))
			found = de->d_name[0] != '.' &&
				vc_partition_of(de->d_name, uuid, name, sizeof(name));
		closedir(d);
		r = found ? vc_dm_remove(name) : 0;
		if (!r && found)
			vc_log_debug("removed partition %s", name);
	} while (found && !r);
	return r;
}
