// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup close: remove the partition devices of "<name>", then
 * "<name>" (the kernel target commits everything), then its lower layers,
 * found through the backing:<dev> option of each table; the loop devices
 * detach themselves (autoclear) when the last vhdcrypt device releases them,
 * and are detached here if they did not. Then the file of a read-write top
 * layer is trimmed back to the end of its data (grow.h). A dm-crypt device
 * of a LUKS header (a raw payload) is removed through libcryptsetup, as
 * cryptsetup close does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "chain.h"
#include "cmd.h"
#include "dm.h"
#include "dmname.h"
#include "grow.h"
#include "loop.h"
#include "luks.h"
#include "partitions.h"
#include "table.h"
#include "util.h"

struct vc_close {
	char *names[VC_CHAIN_MAX];	/* top first */
	int nnames;
	dev_t loops[VC_CHAIN_MAX];	/* attached by open (autoclear) */
	char *loop_files[VC_CHAIN_MAX];
	int nloops;
	const char *top_file;	/* the top image's file (in loop_files), NULL if a device */
};

static bool vc_close_add_loop(struct vc_close *c, dev_t devt)
{
	struct vc_loop_info li;

	if (!devt || c->nloops == VC_CHAIN_MAX || vc_loop_info(devt, &li) || !li.autoclear)
		return false;
	c->loop_files[c->nloops] = vc_strdup(li.backing_file);
	if (c->loop_files[c->nloops])
		c->loops[c->nloops++] = devt;
	return c->loop_files[c->nloops - 1] != NULL;
}

/* The devices of the stack under d (consumed), top first. */
static int vc_close_collect(struct vc_close *c, const char *name, struct vc_dm_dev *d)
{
	struct vc_table t;
	char *expect;
	bool ours;

	for (;;) {
		c->names[c->nnames++] = vc_strdup(d->name);
		if (!d->params || vc_table_parse(d->params, &t))
			memset(&t, 0, sizeof(t));
		vc_dm_dev_clear(d);
		if (!c->names[c->nnames - 1])
			return -ENOMEM;
		if (vc_close_add_loop(c, t.image_dev) && c->nnames == 1)
			c->top_file = c->loop_files[c->nloops - 1];
		if (!t.backing_dev || c->nnames == VC_CHAIN_MAX)
			return 0;
		if (vc_dm_query_devt(t.backing_dev, d)) {
			vc_close_add_loop(c, t.backing_dev);	/* a raw backing file */
			return 0;
		}
		expect = vc_layer_dm_name(name, c->nnames);
		ours = expect && !strcmp(d->name, expect) && !strcmp(d->target_type, VC_DM_TARGET);
		free(expect);
		if (!ours) {	/* not one of ours (the user stacked it): leave it alone */
			vc_dm_dev_clear(d);
			return 0;
		}
	}
}

static int vc_close_stack(struct vc_close *c, const char *name)
{
	struct vc_loop_info li;
	int i, r;

	for (i = 0; i < c->nnames; i++) {
		r = vc_dm_remove(c->names[i]);
		if (r) {
			if (i > 0)
				vc_fail(r, "%s was closed, but its lower layer %s could not be "
					"removed; remove it with dmsetup remove %s", name,
					c->names[i], c->names[i]);
			return r;
		}
		vc_log_debug("removed %s", c->names[i]);
	}
	/* autoclear loop devices detach on their last close; make sure */
	for (i = 0; i < c->nloops; i++) {
		if (vc_loop_info(c->loops[i], &li) == 0 && li.autoclear &&
		    !strcmp(li.backing_file, c->loop_files[i]) &&
		    !vc_blockdev_has_holders(c->loops[i], NULL, 0)) {
			vc_loop_detach(c->loops[i]);
			vc_log_debug("detached loop %u:%u", major(c->loops[i]),
				     minor(c->loops[i]));
		}
	}
	return 0;
}

/*
 * Trim the file of the top layer (read-write: rw) back to its data, never
 * below its size before open; a failure leaves a valid, larger image.
 */
static void vc_close_trim(const char *name, const char *file, bool rw)
{
	uint64_t size = 0;
	struct stat st;
	bool state;

	if (!file || stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
		vc_grow_state_remove(name);
		return;
	}
	state = vc_grow_state_load(name, &st, &size) == 0;
	vc_grow_state_remove(name);
	if (!state && !rw)
		return;
	if (vc_grow_trim(file, size)) {
		vc_warn("%s was not trimmed back (%s); it is a valid image, only larger", file,
			vc_last_error());
		vc_clear_error();
	}
}

int vc_cmd_close(const struct vc_opts *o, char **args)
{
	const char *name = args[0];
	struct vc_close c = { 0 };
	char tag[16], uuid[VC_DM_UUID_MAX + 1];
	struct vc_dm_dev d;
	bool rw;
	int r, i;

	(void)o;
	r = vc_check_name(name);
	if (!r)
		r = vc_dm_check(VC_EXIT_DEVICE);	/* as cryptsetup close: exit 4 */
	if (r)
		return r;
	r = vc_dm_query(name, &d);
	if (r == -ENODEV)
		return vc_fail(-ENODEV, "device %s is not active", name);
	if (r)
		return vc_fail(r, "cannot query device %s: %s", name, strerror(-r));
	memcpy(uuid, d.uuid, sizeof(uuid));
	rw = !d.read_only;
	if ((!strcmp(d.target_type, VC_DM_TARGET) && vc_dm_uuid_scheme(d.uuid, tag, sizeof(tag))) ||
	    (!strcmp(d.target_type, VC_DM_CRYPT_TARGET) && vc_dm_uuid_is_luks(d.uuid))) {
		r = vc_partitions_remove(uuid, d.devt);
		if (r) {
			vc_dm_dev_clear(&d);
			return r;
		}
	}
	if (!strcmp(d.target_type, VC_DM_CRYPT_TARGET) && vc_dm_uuid_is_luks(d.uuid)) {
		vc_dm_dev_clear(&d);
		return vc_luks_deactivate(name);
	}
	if (strcmp(d.target_type, VC_DM_TARGET) || !vc_dm_uuid_scheme(d.uuid, tag, sizeof(tag))) {
		vc_dm_dev_clear(&d);
		return vc_fail(-ENODEV, "device %s is not a vhdcrypt device; use dmsetup remove",
			       name);
	}
	r = vc_close_collect(&c, name, &d);
	if (!r)
		r = vc_close_stack(&c, name);
	if (!r)
		vc_close_trim(name, c.top_file, rw);
	for (i = 0; i < c.nnames; i++)
		free(c.names[i]);
	for (i = 0; i < c.nloops; i++)
		free(c.loop_files[i]);
	return r;
}
