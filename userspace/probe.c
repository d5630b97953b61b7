// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - probe an image file or block device and print udev
 * properties:
 *
 *   VHDCRYPT_TYPE=vhd|qcow2
 *   VHDCRYPT_VERSION=...            qcow2 version (2, 3) or VHD format version (1.0)
 *   VHDCRYPT_VHD_TYPE=fixed|dynamic|differencing
 *   VHDCRYPT_ENCRYPTION=luks|aes|openxt|none
 *   VHDCRYPT_UUID=...               footer uuid (VHD), LUKS UUID or derived (qcow2)
 *   VHDCRYPT_VIRTUAL_SIZE=<bytes>
 *   VHDCRYPT_CLUSTER_SIZE / VHDCRYPT_BLOCK_SIZE=<bytes>
 *   VHDCRYPT_LUKS_VERSION, VHDCRYPT_LUKS_UUID   (qcow2 with LUKS)
 *   VHDCRYPT_KEYHASH=0|1, VHDCRYPT_KEY_INHERITED=1   (VHD)
 *   VHDCRYPT_BACKING=<path>, VHDCRYPT_BACKING_FORMAT=..., VHDCRYPT_BACKING_FOUND=0|1
 *
 * Values: printable ASCII; space, quotes, backslash and other bytes as \xNN.
 * Not an image: no output, exit status 4.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "probe.h"

/* Value safe for udev: printable ASCII except space, quotes and backslash; else \xNN. */
static void vc_kv(const char *key, const char *val)
{
	const unsigned char *p;

	printf("VHDCRYPT_%s=", key);
	for (p = (const unsigned char *)val; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\' && *p != '"' && *p != '\'')
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
	putchar('\n');
}

static void vc_kv_u64(const char *key, unsigned long long v)
{
	printf("VHDCRYPT_%s=%llu\n", key, v);
}

/* Does an unkeyed VHD inherit a key from an ancestor (tapdisk's walk)? */
static bool vc_probe_inherits(const struct vc_layer *l)
{
	struct vc_layer *p = NULL, *cur;
	const struct vc_layer *c = l;
	bool keyed = false;
	int depth = 0;

	while (c->fmt == VC_FMT_VHD && c->parent_path && c->parent_fmt == VC_FMT_VHD &&
	       depth++ < VC_CHAIN_MAX) {
		if (vc_layer_open(c->parent_path, VC_FMT_VHD, VC_OPEN_PARENT_OPTIONAL, &cur))
			break;
		vc_layer_free(p);
		p = cur;
		c = p;
		if (p->kh.set) {
			keyed = true;
			break;
		}
	}
	vc_layer_free(p);
	vc_clear_error();
	return keyed;
}

int vc_probe(const char *path)
{
	struct vc_layer *l = NULL;
	const char *enc = "none";
	char v[32];
	int r;

	r = vc_layer_open(path, VC_FMT_UNKNOWN, VC_OPEN_PARENT_OPTIONAL, &l);
	if (r)
		return r;
	vc_kv("TYPE", vc_fmt_name(l->fmt));
	if (l->fmt == VC_FMT_QCOW2) {
		snprintf(v, sizeof(v), "%u", l->qh.version);
		vc_kv("VERSION", v);
		if (l->qh.crypt_method == QCOW2_CRYPT_LUKS)
			enc = "luks";
		else if (l->qh.crypt_method == QCOW2_CRYPT_AES)
			enc = "aes";
	} else {
		snprintf(v, sizeof(v), "%u.%u", l->vf.version >> 16, l->vf.version & 0xffff);
		vc_kv("VERSION", v);
		vc_kv("VHD_TYPE", l->vf.type == VHD_TYPE_FIXED ? "fixed" :
		      l->vf.type == VHD_TYPE_DIFF ? "differencing" : "dynamic");
		if (l->kh.set)
			enc = "openxt";
		else if (vc_probe_inherits(l))
			enc = "openxt";
	}
	vc_kv("ENCRYPTION", enc);
	vc_kv("UUID", l->uuid);
	vc_kv_u64("VIRTUAL_SIZE", l->virtual_size);
	if (l->fmt == VC_FMT_QCOW2) {
		vc_kv_u64("CLUSTER_SIZE", qcow2_cluster_size(&l->qh));
		if (l->qh.crypt_method == QCOW2_CRYPT_LUKS && l->luks_version) {
			vc_kv_u64("LUKS_VERSION", l->luks_version);
			vc_kv("LUKS_UUID", l->luks_uuid);
		}
	} else {
		if (l->vf.type != VHD_TYPE_FIXED)
			vc_kv_u64("BLOCK_SIZE", l->vh.block_size);
		vc_kv_u64("KEYHASH", l->kh.set);
		if (!l->kh.set && !strcmp(enc, "openxt"))
			vc_kv_u64("KEY_INHERITED", 1);
	}
	if (l->parent_path || l->parent_tried || l->backing_name) {
		const char *b = l->parent_path ? l->parent_path :
				l->parent_tried ? l->parent_tried : l->backing_name;
		char first[4096];

		/* parent_tried is "a, b, c": report the first candidate */
		snprintf(first, sizeof(first), "%s", b);
		if (!l->parent_path && l->parent_tried)
			first[strcspn(first, ",")] = '\0';
		if (l->parent_path) {
			char *rp = realpath(l->parent_path, NULL);

			if (rp)
				snprintf(first, sizeof(first), "%s", rp);
			free(rp);
		}
		vc_kv("BACKING", first);
		if (l->fmt == VC_FMT_QCOW2 && l->backing_fmt)
			vc_kv("BACKING_FORMAT", l->backing_fmt);
		else if (l->fmt == VC_FMT_VHD)
			vc_kv("BACKING_FORMAT", l->parent_fmt == VC_FMT_RAW ? "raw" : "vhd");
		vc_kv_u64("BACKING_FOUND", l->parent_path != NULL);
	}
	vc_layer_free(l);
	return 0;
}
