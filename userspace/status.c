// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - status: what the table says (cipher, key location, iv and
 * offsets, backing device) plus what the image says (format details, read
 * again from the image's device), for the device and every lower layer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "activate.h"
#include "dm.h"
#include "image.h"
#include "vcjson.h"
#include "loop.h"
#include "status.h"

int vc_table_parse(const char *params, struct vc_table *t)
{
	char *copy = strdup(params), *tok, *save = NULL;
	unsigned long long v;
	int field = 0;

	memset(t, 0, sizeof(*t));
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		switch (field) {
		case 0:
			snprintf(t->fmt, sizeof(t->fmt), "%s", tok);
			break;
		case 1:
			vc_parse_devt(tok, &t->image);
			break;
		case 2:
			snprintf(t->cipher, sizeof(t->cipher), "%s", tok);
			break;
		case 3:
			if (tok[0] == ':') {
				snprintf(t->key_location, sizeof(t->key_location), "keyring");
				t->key_bytes = strtoul(tok + 1, NULL, 10);
			} else if (!strcmp(tok, "-")) {
				snprintf(t->key_location, sizeof(t->key_location), "none");
			} else {
				snprintf(t->key_location, sizeof(t->key_location), "table");
				t->key_bytes = strlen(tok) / 2;
			}
			explicit_bzero(tok, strlen(tok));
			break;
		case 4:
			t->iv_offset = strtoull(tok, NULL, 10);
			break;
		case 5:
			break;	/* #opt_params */
		default:
			if (!strncmp(tok, "backing:", 8))
				vc_parse_devt(tok + 8, &t->backing);
			else if (!strcmp(tok, "iv_sector:host"))
				t->iv_host = true;
			else if (!strcmp(tok, "whole_disk"))
				t->whole_disk = true;
			else if (sscanf(tok, "data_offset:%llu", &v) == 1)
				t->data_offset = v;
		}
	}
	explicit_bzero(copy, strlen(params));
	free(copy);
	return field >= 5 ? 0 : -EINVAL;
}

void vc_devt_path(dev_t devt, char *buf, size_t len)
{
	char path[128], line[256];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major(devt), minor(devt));
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "/dev/%s", line + 8);
			break;
		}
	}
	fclose(f);
}

struct vc_slayer {
	struct vc_dm_dev dm;
	struct vc_table t;
	char image_path[4096];	/* the image file (or block device) */
	char image_dev[64];	/* /dev/loopN or the block device */
	bool loop;
	struct vc_layer *img;	/* format details, NULL if unreadable */
	const char *enc;
	bool raw_backing;	/* backing is a raw file's loop device, not a vhdcrypt device */
	char raw_path[4096];
	char raw_dev[64];
};

static const char *vc_status_enc(struct vc_slayer *s)
{
	if (!strcmp(s->t.cipher, "none"))
		return "none";
	if (s->t.whole_disk)
		return "luks-header";
	if (!strcmp(s->t.fmt, "vhd"))
		return !strcmp(s->t.cipher, "aes-xts-plain") && !s->t.data_offset ?
			"openxt" : "luks-header";
	if (s->t.iv_host)
		return "luks";
	if (s->img && s->img->qh.crypt_method == QCOW2_CRYPT_AES)
		return "aes";
	return "luks-header";
}

static void vc_status_fill(struct vc_slayer *s)
{
	struct vc_loop_info li;
	enum vc_fmt f = VC_FMT_UNKNOWN;

	vc_table_parse(s->dm.params ? s->dm.params : "", &s->t);
	vc_dm_dev_clear(&s->dm);	/* drop the params (they may hold a key) */
	vc_devt_path(s->t.image, s->image_dev, sizeof(s->image_dev));
	if (vc_loop_info(s->t.image, &li) == 0) {
		s->loop = true;
		snprintf(s->image_path, sizeof(s->image_path), "%s", li.backing_file);
	} else {
		snprintf(s->image_path, sizeof(s->image_path), "%s", s->image_dev);
	}
	vc_fmt_parse(s->t.fmt, &f);
	if (s->image_dev[0] && vc_layer_open(s->image_dev, f, VC_OPEN_PARENT_OPTIONAL, &s->img))
		s->img = NULL;
	vc_clear_error();
	s->enc = vc_status_enc(s);
}

static void vc_status_text_layer(struct vc_slayer *s, const char *ind)
{
	struct vc_layer *l = s->img;

	printf("%stype:         %s\n", ind, s->t.fmt);
	printf("%sencryption:   %s\n", ind, s->enc);
	if (l && l->fmt == VC_FMT_QCOW2)
		printf("%sformat:       qcow2 version %u, cluster size %llu bytes\n", ind,
		       l->qh.version, (unsigned long long)qcow2_cluster_size(&l->qh));
	else if (l && l->fmt == VC_FMT_VHD)
		printf("%sformat:       VHD %u.%u %s, block size %u bytes, creator \"%.4s\"\n",
		       ind, l->vf.version >> 16, l->vf.version & 0xffff,
		       l->vf.type == VHD_TYPE_FIXED ? "fixed" :
		       l->vf.type == VHD_TYPE_DIFF ? "differencing" : "dynamic",
		       l->vf.type == VHD_TYPE_FIXED ? 0 : l->vh.block_size, l->vf.creator_app);
	if (l)
		printf("%svirtual size: %llu bytes\n", ind, (unsigned long long)l->virtual_size);
	printf("%ssize:         %llu sectors\n", ind, (unsigned long long)s->dm.length);
	printf("%scipher:       %s\n", ind, s->t.cipher);
	printf("%skeysize:      %zu bits\n", ind, s->t.key_bytes * 8);
	printf("%skey location: %s\n", ind, s->t.key_location);
	printf("%siv sector:    %s\n", ind, s->t.iv_host ? "host" : "virtual");
	printf("%siv offset:    %llu sectors\n", ind, (unsigned long long)s->t.iv_offset);
	printf("%soffset:       %llu sectors\n", ind, (unsigned long long)s->t.data_offset);
	if (strcmp(s->t.cipher, "none"))
		printf("%scipher covers: %s\n", ind,
		       s->t.whole_disk ? "whole disk" : "image data");
	printf("%simage:        %s\n", ind, s->image_path);
	if (s->loop)
		printf("%sloop:         %s\n", ind, s->image_dev);
	printf("%sdevice:       %u:%u\n", ind, major(s->t.image), minor(s->t.image));
	printf("%smode:         %s\n", ind, s->dm.read_only ? "readonly" : "read/write");
	printf("%sdiscards:     no\n", ind);
	printf("%sdm uuid:      %s\n", ind, s->dm.uuid);
	if (s->raw_backing)
		printf("%sbacking:      %s (raw, %s)\n", ind, s->raw_path, s->raw_dev);
}

static void vc_status_json_layer(struct vc_json *j, struct vc_slayer *s)
{
	struct vc_layer *l = s->img;
	char devt[32];

	vc_json_str(j, "name", s->dm.name);
	vc_json_str(j, "type", s->t.fmt);
	vc_json_str(j, "encryption", s->enc);
	vc_json_obj_begin(j, "format");
	if (l && l->fmt == VC_FMT_QCOW2) {
		vc_json_u64(j, "version", l->qh.version);
		vc_json_u64(j, "cluster_size", qcow2_cluster_size(&l->qh));
	} else if (l && l->fmt == VC_FMT_VHD) {
		char v[16], app[5];

		snprintf(v, sizeof(v), "%u.%u", l->vf.version >> 16, l->vf.version & 0xffff);
		vc_json_str(j, "version", v);
		vc_json_str(j, "disk_type", l->vf.type == VHD_TYPE_FIXED ? "fixed" :
			    l->vf.type == VHD_TYPE_DIFF ? "differencing" : "dynamic");
		vc_json_u64(j, "block_size", l->vf.type == VHD_TYPE_FIXED ? 0 : l->vh.block_size);
		snprintf(app, sizeof(app), "%.4s", l->vf.creator_app);
		vc_json_str(j, "creator", app);
	}
	if (l) {
		vc_json_u64(j, "virtual_size", l->virtual_size);
		vc_json_str(j, "uuid", l->uuid);
	}
	vc_json_obj_end(j);
	vc_json_u64(j, "sectors", s->dm.length);
	vc_json_str(j, "cipher", s->t.cipher);
	vc_json_u64(j, "key_size", s->t.key_bytes * 8);
	vc_json_str(j, "key_location", s->t.key_location);
	vc_json_str(j, "iv_sector", s->t.iv_host ? "host" : "virtual");
	vc_json_u64(j, "iv_offset", s->t.iv_offset);
	vc_json_u64(j, "data_offset", s->t.data_offset);
	vc_json_bool(j, "whole_disk", s->t.whole_disk);
	vc_json_str(j, "image", s->image_path);
	vc_json_str(j, "loop_device", s->loop ? s->image_dev : NULL);
	snprintf(devt, sizeof(devt), "%u:%u", major(s->t.image), minor(s->t.image));
	vc_json_str(j, "image_device", devt);
	vc_json_bool(j, "read_only", s->dm.read_only);
	vc_json_bool(j, "discards", false);
	vc_json_str(j, "dm_uuid", s->dm.uuid);
	if (s->raw_backing) {
		vc_json_obj_begin(j, "raw_backing");
		vc_json_str(j, "image", s->raw_path);
		vc_json_str(j, "loop_device", s->raw_dev);
		vc_json_obj_end(j);
	}
}

int vc_status(const char *name, bool json)
{
	struct vc_slayer *s[VC_CHAIN_MAX];
	int n = 0, i, r;

	r = vc_check_name(name);
	if (r)
		return r;
	r = vc_dm_check();
	if (r)
		return r;
	s[0] = vc_zalloc(sizeof(*s[0]));
	if (!s[0])
		return -ENOMEM;
	r = vc_dm_query(name, &s[0]->dm);
	if (r) {
		free(s[0]);
		if (r == -ENODEV)
			return vc_fail(-ENODEV, "device %s is not active", name);
		return vc_fail(r, "cannot query device %s: %s", name, strerror(-r));
	}
	if (strcmp(s[0]->dm.target_type, VC_DM_TARGET)) {
		vc_dm_dev_clear(&s[0]->dm);
		free(s[0]);
		return vc_fail(-ENODEV, "device %s is not a vhdcrypt device", name);
	}
	n = 1;
	vc_status_fill(s[0]);
	while (n < VC_CHAIN_MAX && s[n - 1]->t.backing) {
		struct vc_slayer *x = vc_zalloc(sizeof(*x));

		if (!x)
			break;
		if (vc_dm_query_devt(s[n - 1]->t.backing, &x->dm) == 0 &&
		    !strcmp(x->dm.target_type, VC_DM_TARGET)) {
			vc_status_fill(x);
			s[n++] = x;
			continue;
		}
		vc_dm_dev_clear(&x->dm);
		free(x);
		/* a raw backing file */
		{
			struct vc_slayer *p = s[n - 1];
			struct vc_loop_info li;

			p->raw_backing = true;
			vc_devt_path(p->t.backing, p->raw_dev, sizeof(p->raw_dev));
			if (vc_loop_info(p->t.backing, &li) == 0)
				snprintf(p->raw_path, sizeof(p->raw_path), "%s", li.backing_file);
			else
				snprintf(p->raw_path, sizeof(p->raw_path), "%s", p->raw_dev);
		}
		break;
	}

	if (json) {
		struct vc_json j;

		vc_json_init(&j, stdout);
		vc_json_obj_begin(&j, NULL);
		{
			char dev[200];

			snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
			vc_json_str(&j, "device", dev);
		}
		vc_json_bool(&j, "active", true);
		vc_json_bool(&j, "in_use", s[0]->dm.open_count > 0);
		vc_status_json_layer(&j, s[0]);
		vc_json_arr_begin(&j, "chain");
		for (i = 1; i < n; i++) {
			vc_json_obj_begin(&j, NULL);
			vc_status_json_layer(&j, s[i]);
			vc_json_obj_end(&j);
		}
		vc_json_arr_end(&j);
		vc_json_obj_end(&j);
	} else {
		printf("/dev/mapper/%s is active%s.\n", name,
		       s[0]->dm.open_count > 0 ? " and is in use" : "");
		vc_status_text_layer(s[0], "  ");
		printf("  chain:        %d lower layer%s\n", n - 1, n == 2 ? "" : "s");
		for (i = 1; i < n; i++) {
			printf("  layer %d:      %s\n", i, s[i]->dm.name);
			vc_status_text_layer(s[i], "    ");
		}
	}
	for (i = 0; i < n; i++) {
		vc_layer_free(s[i]->img);
		free(s[i]);
	}
	return 0;
}
