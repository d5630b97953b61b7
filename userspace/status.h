/* SPDX-License-Identifier: GPL-2.0 */
/* vhdcryptsetup - status of an open device (text or JSON). */
#ifndef VC_STATUS_H
#define VC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Parsed "vhdcrypt" table parameters. */
struct vc_table {
	char fmt[16];
	dev_t image;
	char cipher[128];
	char key_location[16];	/* "keyring", "table", "none" */
	size_t key_bytes;
	uint64_t iv_offset;	/* 512-byte sectors */
	dev_t backing;		/* 0 if none */
	bool iv_host;
	bool whole_disk;	/* the cipher covers holes and backing data too */
	uint64_t data_offset;	/* 512-byte sectors */
};
/* Parse params (never keeps key bytes); 0 or -EINVAL. */
int vc_table_parse(const char *params, struct vc_table *t);

int vc_status(const char *name, bool json);
/* "/dev/<DEVNAME>" of a block device, from sysfs; "" if unknown. */
void vc_devt_path(dev_t devt, char *buf, size_t len);

#endif
