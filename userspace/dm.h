/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - device-mapper access. dm.c is the ONLY file that talks to
 * libdevmapper; everything else goes through this interface.
 */
#ifndef VC_DM_H
#define VC_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VC_DM_NAME_MAX 127	/* DM_NAME_LEN - 1 */
#define VC_DM_UUID_MAX 128	/* DM_UUID_LEN - 1 */

struct vc_dm_dev {
	char name[VC_DM_NAME_MAX + 1];
	char uuid[VC_DM_UUID_MAX + 1];
	dev_t devt;
	bool read_only;
	bool suspended;
	int open_count;
	int target_count;
	/* the first target */
	uint64_t start;		/* 512-byte sectors */
	uint64_t length;	/* 512-byte sectors */
	char target_type[32];
	char *params;		/* malloc'd, may hold key material: free with vc_dm_dev_clear() */
	size_t params_size;	/* bytes allocated, all wiped by vc_dm_dev_clear() */
};

/* Set up logging and udev synchronisation. */
void vc_dm_init(void);
/*
 * Is the device-mapper driver usable at all? If not, fail with exit_code
 * (cryptsetup gives 1 for open and status, 4 for close).
 */
int vc_dm_check(int exit_code);

/* A device with one target "0 <sectors> <target> <params>". */
struct vc_dm_new {
	const char *name;
	const char *uuid;	/* DM UUID */
	const char *target;	/* VC_DM_TARGET, "linear" */
	uint64_t sectors;
	const char *params;
	bool secure;		/* params carry key material (dm_task_secure_data) */
	bool hidden;		/* a lower layer of a chain: udev disk and other rules
				 * disabled; /dev/mapper/<name> still exists */
	bool writable;		/* else a read-only table */
};
/* Create it; waits for udev so the node exists on return. */
int vc_dm_create_dev(const struct vc_dm_new *n);
/* A read-only vhdcrypt device. */
int vc_dm_create(const char *name, const char *uuid, uint64_t sectors,
		 const char *params, bool secure, bool hidden);
/*
 * The same, writable and hidden (a device only the tool itself uses: the
 * destination of convert).
 */
int vc_dm_create_rw(const char *name, const char *uuid, uint64_t sectors,
		    const char *params, bool secure);
/* Remove <name> (retrying while udev holds it briefly). */
int vc_dm_remove(const char *name);

/* Look up a device by name or dev_t; -ENODEV if there is none. */
int vc_dm_query(const char *name, struct vc_dm_dev *dev);
int vc_dm_query_devt(dev_t devt, struct vc_dm_dev *dev);
void vc_dm_dev_clear(struct vc_dm_dev *dev);
/* The status line of the first target of <name> (no key in it). */
int vc_dm_status(const char *name, char *buf, size_t len);

/*
 * Version of a target, its module loaded by the kernel if needed; -ENOENT if
 * the kernel has none.
 */
int vc_dm_target_version(const char *target, unsigned int v[3]);
/*
 * Fail (message, exit code 1) unless target is available in version min or
 * later; module names the kernel module, feature what needs min (NULL: the
 * tool itself).
 */
int vc_dm_need_target(const char *target, const char *module, const unsigned int min[3],
		      const char *feature);

#endif
