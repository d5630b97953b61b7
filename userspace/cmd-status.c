// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup status: what the table says (cipher, key location, iv and
 * offsets, backing device, discards), what the DM UUID says (the key
 * scheme), what the target's status says (mode, the image's data end) and
 * what the image says (format details, read again from the image's
 * device), for the device and every lower layer; as text or JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blkid.h"
#include "chain.h"
#include "cmd.h"
#include "dm.h"
#include "dmname.h"
#include "loop.h"
#include "output.h"
#include "scheme.h"
#include "table.h"
#include "util.h"

struct vc_slayer {
	struct vc_dm_dev dm;
	struct vc_table t;	/* points into dm.params (its key is wiped) */
	bool dm_crypt;		/* a raw payload's dm-crypt device */
	const char *encryption;	/* the scheme's name */
	char *image_path;	/* the image file or block device */
	char *image_dev;	/* /dev/loopN or the block device */
	bool loop;
	struct vc_image *img;	/* format details, NULL if unreadable */
	char *raw_path;		/* backing: a raw file's loop device, not a vhdcrypt device */
	char *raw_dev;
	char mode[8];		/* the target's: ro, rw, failed */
	uint64_t data_end;	/* bytes of the image in use (the target's data_end) */
	uint64_t file_size;	/* bytes of the image file or device */
};

/* mode: and data_end: from the target's status line (fields by name). */
static void vc_status_target(struct vc_slayer *s)
{
	char line[1024], *tok, *save = NULL;
	unsigned long long v;

	snprintf(s->mode, sizeof(s->mode), "%s", s->dm.read_only ? "ro" : "rw");
	if (s->dm_crypt || vc_dm_status(s->dm.name, line, sizeof(line)))
		return;
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "mode:", 5))
			snprintf(s->mode, sizeof(s->mode), "%s", tok + 5);
		else if (sscanf(tok, "data_end:%llu", &v) == 1)
			s->data_end = v << 9;
	}
}

/* The size of the image file (a loop device's backing file) or device. */
static void vc_status_file_size(struct vc_slayer *s)
{
	struct stat st;

	if (s->loop && s->image_path && stat(s->image_path, &st) == 0)
		s->file_size = st.st_size;
	else if (s->img)
		s->file_size = s->img->file_size;
}

static const char *vc_key_location_name(enum vc_key_location l)
{
	return l == VC_KEY_KEYRING ? "keyring" : l == VC_KEY_TABLE ? "table" : "none";
}

/* The file behind a device: a loop device's backing file, else the device. */
static void vc_status_file(dev_t devt, char **dev, char **path, bool *loop)
{
	struct vc_loop_info li;

	*dev = vc_blkid_devname(devt);
	*loop = vc_loop_info(devt, &li) == 0;
	*path = *loop ? vc_strdup(li.backing_file) : vc_strdup(*dev ? *dev : "");
}

static int vc_status_fill(struct vc_slayer *s)
{
	const struct vc_scheme *scheme;
	enum vc_fmt f = VC_FMT_UNKNOWN;
	char tag[16];
	int r;

	s->dm_crypt = !strcmp(s->dm.target_type, VC_DM_CRYPT_TARGET);
	if (!s->dm.params)
		return -EINVAL;
	r = s->dm_crypt ? vc_crypt_table_parse(s->dm.params, &s->t) :
			  vc_table_parse(s->dm.params, &s->t);
	if (r)
		return vc_fail(r, "cannot read the table of %s", s->dm.name);
	vc_status_file(s->t.image_dev, &s->image_dev, &s->image_path, &s->loop);
	vc_status_target(s);
	if (s->dm_crypt) {	/* a raw payload: no format to show */
		s->encryption = vc_scheme_header.name;
		vc_status_file_size(s);
		return 0;
	}
	vc_dm_uuid_scheme(s->dm.uuid, tag, sizeof(tag));
	scheme = vc_scheme_by_tag(tag);
	s->encryption = scheme ? scheme->name : "unknown";
	if (vc_fmt_parse(s->t.format, &f) || !s->image_dev ||
	    vc_image_open(s->image_dev, f, VC_OPEN_PARENT_OPTIONAL, &s->img))
		s->img = NULL;
	vc_clear_error();
	vc_status_file_size(s);
	return 0;
}

static void vc_slayer_free(struct vc_slayer *s)
{
	if (!s)
		return;
	vc_dm_dev_clear(&s->dm);
	vc_image_free(s->img);
	free(s->image_path);
	free(s->image_dev);
	free(s->raw_path);
	free(s->raw_dev);
	free(s);
}

static const char *vc_vhd_type_name(const struct vc_image *img)
{
	switch (img->vhd.footer.type) {
	case VHD_TYPE_FIXED:
		return "fixed";
	case VHD_TYPE_DIFF:
		return "differencing";
	default:
		return "dynamic";
	}
}

static const char *vc_layer_type(const struct vc_slayer *s)
{
	return s->dm_crypt ? "raw" : s->t.format;
}

static void vc_status_text_layer(const struct vc_slayer *s, const char *ind)
{
	const struct vc_image *l = s->img;
	const struct vc_table *t = &s->t;

	printf("%stype:         %s\n", ind, vc_layer_type(s));
	printf("%sencryption:   %s\n", ind, s->encryption);
	if (l && l->fmt == VC_FMT_QCOW2)
		printf("%sformat:       qcow2 version %u, cluster size %llu bytes\n", ind,
		       l->qcow2.header.version,
		       (unsigned long long)qcow2_cluster_size(&l->qcow2.header));
	else if (l && l->fmt == VC_FMT_VHD)
		printf("%sformat:       VHD %u.%u %s, block size %u bytes, creator \"%.4s\"\n",
		       ind, l->vhd.footer.version >> 16, l->vhd.footer.version & 0xffff,
		       vc_vhd_type_name(l),
		       l->vhd.footer.type == VHD_TYPE_FIXED ? 0 : l->vhd.header.block_size,
		       l->vhd.footer.creator_app);
	if (l)
		printf("%svirtual size: %llu bytes\n", ind, (unsigned long long)l->virtual_size);
	printf("%ssize:         %llu sectors\n", ind, (unsigned long long)s->dm.length);
	printf("%scipher:       %s\n", ind, t->cipher);
	printf("%skeysize:      %zu bits\n", ind, t->key_bytes * 8);
	printf("%skey location: %s\n", ind, vc_key_location_name(t->key_location));
	printf("%ssector size:  %u bytes\n", ind, t->sector_size ? t->sector_size : 512);
	printf("%siv sector:    %s\n", ind, t->iv_host ? "host" : "virtual");
	printf("%siv offset:    %llu sectors\n", ind, (unsigned long long)t->iv_offset);
	printf("%soffset:       %llu sectors\n", ind, (unsigned long long)t->data_offset);
	if (strcmp(t->cipher, "none"))
		printf("%scipher covers: %s\n", ind,
		       t->whole_disk || s->dm_crypt ? "whole disk" : "image data");
	printf("%simage:        %s\n", ind, s->image_path ? s->image_path : "");
	if (s->loop)
		printf("%sloop:         %s\n", ind, s->image_dev ? s->image_dev : "");
	printf("%sdevice:       %u:%u\n", ind, major(t->image_dev), minor(t->image_dev));
	printf("%smode:         %s\n", ind, s->mode);
	printf("%sdiscards:     %s\n", ind, t->allow_discards ? "yes" : "no");
	if (s->data_end)
		printf("%sallocated:    %llu bytes\n", ind, (unsigned long long)s->data_end);
	if (s->file_size)
		printf("%sfile size:    %llu bytes\n", ind, (unsigned long long)s->file_size);
	printf("%sdm uuid:      %s\n", ind, s->dm.uuid);
	if (s->raw_path)
		printf("%sbacking:      %s (raw, %s)\n", ind, s->raw_path,
		       s->raw_dev ? s->raw_dev : "?");
}

static json_object *vc_status_json_format(const struct vc_image *l)
{
	json_object *f = json_object_new_object();
	char v[16], app[5];

	if (!f)
		return NULL;
	if (l && l->fmt == VC_FMT_QCOW2) {
		vc_json_u64(f, "version", l->qcow2.header.version);
		vc_json_u64(f, "cluster_size", qcow2_cluster_size(&l->qcow2.header));
	} else if (l && l->fmt == VC_FMT_VHD) {
		snprintf(v, sizeof(v), "%u.%u", l->vhd.footer.version >> 16,
			 l->vhd.footer.version & 0xffff);
		vc_json_str(f, "version", v);
		vc_json_str(f, "disk_type", vc_vhd_type_name(l));
		vc_json_u64(f, "block_size", l->vhd.footer.type == VHD_TYPE_FIXED ? 0 :
			    l->vhd.header.block_size);
		snprintf(app, sizeof(app), "%.4s", l->vhd.footer.creator_app);
		vc_json_str(f, "creator", app);
	}
	if (l) {
		vc_json_u64(f, "virtual_size", l->virtual_size);
		vc_json_str(f, "uuid", l->uuid);
	}
	return f;
}

static void vc_status_json_layer(json_object *j, const struct vc_slayer *s)
{
	const struct vc_table *t = &s->t;
	char devt[32];

	vc_json_str(j, "name", s->dm.name);
	vc_json_str(j, "type", vc_layer_type(s));
	vc_json_str(j, "encryption", s->encryption);
	json_object_object_add(j, "format", vc_status_json_format(s->img));
	vc_json_u64(j, "sectors", s->dm.length);
	vc_json_str(j, "cipher", t->cipher);
	vc_json_u64(j, "key_size", t->key_bytes * 8);
	vc_json_str(j, "key_location", vc_key_location_name(t->key_location));
	vc_json_u64(j, "sector_size", t->sector_size ? t->sector_size : 512);
	vc_json_str(j, "iv_sector", t->iv_host ? "host" : "virtual");
	vc_json_u64(j, "iv_offset", t->iv_offset);
	vc_json_u64(j, "data_offset", t->data_offset);
	vc_json_bool(j, "whole_disk", t->whole_disk || s->dm_crypt);
	vc_json_str(j, "image", s->image_path);
	vc_json_str(j, "loop_device", s->loop ? s->image_dev : NULL);
	snprintf(devt, sizeof(devt), "%u:%u", major(t->image_dev), minor(t->image_dev));
	vc_json_str(j, "image_device", devt);
	vc_json_bool(j, "read_only", s->dm.read_only);
	vc_json_str(j, "mode", s->mode);
	vc_json_bool(j, "discards", t->allow_discards);
	if (s->data_end)
		vc_json_u64(j, "allocated", s->data_end);
	if (s->file_size)
		vc_json_u64(j, "file_size", s->file_size);
	vc_json_str(j, "dm_uuid", s->dm.uuid);
	if (s->raw_path) {
		json_object *r = json_object_new_object();

		vc_json_str(r, "image", s->raw_path);
		vc_json_str(r, "loop_device", s->raw_dev);
		json_object_object_add(j, "raw_backing", r);
	}
}

static void vc_status_json(const char *name, struct vc_slayer **s, int n)
{
	json_object *j = json_object_new_object(), *chain = json_object_new_array(), *l;
	char *dev = vc_asprintf("/dev/mapper/%s", name);
	int i;

	vc_json_str(j, "device", dev);
	free(dev);
	vc_json_bool(j, "active", true);
	vc_json_bool(j, "in_use", s[0]->dm.open_count > 0);
	vc_status_json_layer(j, s[0]);
	for (i = 1; i < n; i++) {
		l = json_object_new_object();
		vc_status_json_layer(l, s[i]);
		json_object_array_add(chain, l);
	}
	json_object_object_add(j, "chain", chain);
	vc_json_print(j);
}

static void vc_status_text(const char *name, struct vc_slayer **s, int n)
{
	int i;

	printf("/dev/mapper/%s is active%s.\n", name, s[0]->dm.open_count > 0 ? " and is in use" : "");
	vc_status_text_layer(s[0], "  ");
	printf("  chain:        %d lower layer%s\n", n - 1, n == 2 ? "" : "s");
	for (i = 1; i < n; i++) {
		printf("  layer %d:      %s\n", i, s[i]->dm.name);
		vc_status_text_layer(s[i], "    ");
	}
}

/* The lower layers of s[0], found through the backing devices, into s[1..*n). */
static int vc_status_chain(struct vc_slayer **s, int *n)
{
	struct vc_slayer *x, *p;
	bool loop;

	for (*n = 1; *n < VC_CHAIN_MAX && s[*n - 1]->t.backing_dev;) {
		p = s[*n - 1];
		x = vc_zalloc(sizeof(*x));
		if (!x)
			return -ENOMEM;
		if (vc_dm_query_devt(p->t.backing_dev, &x->dm) == 0 &&
		    !strcmp(x->dm.target_type, VC_DM_TARGET)) {
			s[(*n)++] = x;
			if (vc_status_fill(x))
				return -EINVAL;
			continue;
		}
		vc_slayer_free(x);
		/* a raw backing file's loop device */
		vc_status_file(p->t.backing_dev, &p->raw_dev, &p->raw_path, &loop);
		break;
	}
	return 0;
}

int vc_cmd_status(const struct vc_opts *o, char **args)
{
	struct vc_slayer *s[VC_CHAIN_MAX] = { 0 };
	const char *name = args[0];
	int n = 1, i, r;

	r = vc_check_name(name);
	if (!r)
		r = vc_dm_check(VC_EXIT_PARAM);
	if (r)
		return r;
	s[0] = vc_zalloc(sizeof(*s[0]));
	if (!s[0])
		return -ENOMEM;
	r = vc_dm_query(name, &s[0]->dm);
	if (r == -ENODEV)
		r = vc_fail(-ENODEV, "device %s is not active", name);
	else if (r)
		r = vc_fail(r, "cannot query device %s: %s", name, strerror(-r));
	else if (strcmp(s[0]->dm.target_type, VC_DM_TARGET) &&
		 !(!strcmp(s[0]->dm.target_type, VC_DM_CRYPT_TARGET) &&
		   vc_dm_uuid_is_luks(s[0]->dm.uuid)))
		r = vc_fail(-ENODEV, "device %s is not a vhdcrypt device", name);
	if (!r)
		r = vc_status_fill(s[0]);
	if (!r)
		r = vc_status_chain(s, &n);
	if (!r) {
		if (o->json)
			vc_status_json(name, s, n);
		else
			vc_status_text(name, s, n);
	}
	for (i = 0; i < VC_CHAIN_MAX; i++)
		vc_slayer_free(s[i]);
	return r;
}
