// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - the only user of libdevmapper.
 *
 * Devices are created in one DM_DEVICE_CREATE task (create + table load +
 * resume) with a udev cookie, so that /dev/mapper/<name> exists when the
 * call returns. Tables that carry a key use dm_task_secure_data() so the
 * kernel wipes its ioctl buffer copies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libdevmapper.h>

#include "dm.h"
#include "table.h"
#include "util.h"

static char vc_dm_lasterr[512];

__attribute__((format(printf, 5, 6)))
static void vc_dm_log(int level, const char *file, int line, int dm_errno_or_class,
		      const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	(void)file;
	(void)line;
	(void)dm_errno_or_class;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	level &= 0xf;		/* syslog-style level; the high bits are flags */
	if (level <= 3)		/* error */
		snprintf(vc_dm_lasterr, sizeof(vc_dm_lasterr), "%s", buf);
	if (level <= 4 || vc_debug >= 2)	/* warning */
		vc_log_debug("libdevmapper: %s", buf);
}

void vc_dm_init(void)
{
	dm_log_with_errno_init(vc_dm_log);
	dm_udev_set_sync_support(1);
}

int vc_dm_check(int exit_code)
{
	char v[64];

	if (dm_driver_version(v, sizeof(v)))
		return 0;
	if (geteuid())
		return vc_fail_exit(exit_code, -EPERM, "cannot use device-mapper, running as "
				    "a non-root user; run as root");
	return vc_fail_exit(exit_code, -ENODEV, "cannot use device-mapper; load the dm_mod "
			    "kernel module (modprobe dm_mod)");
}

static int vc_dm_errno(struct dm_task *dmt)
{
	int e = dm_task_get_errno(dmt);

	return e > 0 ? -e : -EINVAL;
}

int vc_dm_create_dev(const struct vc_dm_new *n)
{
	struct dm_task *dmt;
	uint32_t cookie = 0;
	uint16_t flags = 0;
	int r = 0;

	if (n->hidden)
		flags |= DM_UDEV_DISABLE_DISK_RULES_FLAG | DM_UDEV_DISABLE_OTHER_RULES_FLAG;
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt)
		return vc_fail(-ENOMEM, "out of memory");
	vc_dm_lasterr[0] = '\0';
	if (!dm_task_set_name(dmt, n->name) || !dm_task_set_uuid(dmt, n->uuid) ||
	    !dm_task_add_target(dmt, 0, n->sectors, n->target, n->params) ||
	    (!n->writable && !dm_task_set_ro(dmt)) || (n->secure && !dm_task_secure_data(dmt)) ||
	    !dm_task_set_add_node(dmt, DM_ADD_NODE_ON_CREATE) ||
	    !dm_task_set_cookie(dmt, &cookie, flags)) {
		r = vc_fail(-ENOMEM, "cannot prepare the device-mapper request for %s", n->name);
		goto out;
	}
	if (!dm_task_run(dmt)) {
		r = vc_dm_errno(dmt);
		if (r == -EEXIST || r == -EBUSY)
			r = vc_fail(r, "device %s already exists (or its DM UUID is in use); "
				    "close it first", n->name);
		else
			r = vc_fail(r, "the kernel refused the %s%s table of %s: %s; "
				    "see dmesg for the reason", n->writable ? "writable " : "",
				    n->target, n->name, strerror(-r));
	}
out:
	if (cookie)
		dm_udev_wait(cookie);
	dm_task_destroy(dmt);
	return r;
}

int vc_dm_create(const char *name, const char *uuid, uint64_t sectors,
		 const char *params, bool secure, bool hidden)
{
	struct vc_dm_new n = {
		.name = name, .uuid = uuid, .target = VC_DM_TARGET, .sectors = sectors,
		.params = params, .secure = secure, .hidden = hidden,
	};

	return vc_dm_create_dev(&n);
}

int vc_dm_create_rw(const char *name, const char *uuid, uint64_t sectors,
		    const char *params, bool secure)
{
	struct vc_dm_new n = {
		.name = name, .uuid = uuid, .target = VC_DM_TARGET, .sectors = sectors,
		.params = params, .secure = secure, .hidden = true, .writable = true,
	};

	return vc_dm_create_dev(&n);
}

int vc_dm_remove(const char *name)
{
	struct dm_task *dmt;
	uint32_t cookie = 0;
	int r = 0;

	dmt = dm_task_create(DM_DEVICE_REMOVE);
	if (!dmt)
		return vc_fail(-ENOMEM, "out of memory");
	if (!dm_task_set_name(dmt, name) || !dm_task_retry_remove(dmt) ||
	    !dm_task_set_cookie(dmt, &cookie, 0)) {
		r = vc_fail(-ENOMEM, "cannot prepare the device-mapper request for %s", name);
		goto out;
	}
	if (!dm_task_run(dmt)) {
		r = vc_dm_errno(dmt);
		if (r == -EBUSY)
			r = vc_fail(r, "device %s is still in use (mounted or open); "
				    "unmount or close it, then retry", name);
		else
			r = vc_fail(r, "cannot remove device %s: %s", name, strerror(-r));
	}
out:
	if (cookie)
		dm_udev_wait(cookie);
	dm_task_destroy(dmt);
	return r;
}

static int vc_dm_query_task(struct dm_task *dmt, struct vc_dm_dev *dev)
{
	struct dm_info info;
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	const char *s;
	void *next = NULL;

	memset(dev, 0, sizeof(*dev));
	dm_task_secure_data(dmt);	/* the table may carry a hex key */
	if (!dm_task_run(dmt))
		return vc_dm_errno(dmt) == -ENXIO ? -ENODEV : vc_dm_errno(dmt);
	if (!dm_task_get_info(dmt, &info) || !info.exists)
		return -ENODEV;
	s = dm_task_get_name(dmt);
	snprintf(dev->name, sizeof(dev->name), "%s", s ? s : "");
	s = dm_task_get_uuid(dmt);
	snprintf(dev->uuid, sizeof(dev->uuid), "%s", s ? s : "");
	dev->devt = makedev(info.major, info.minor);
	dev->read_only = info.read_only;
	dev->suspended = info.suspended;
	dev->open_count = info.open_count;
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
		if (!type)
			break;
		if (dev->target_count++ == 0) {
			dev->start = start;
			dev->length = length;
			snprintf(dev->target_type, sizeof(dev->target_type), "%s", type);
			dev->params = strdup(params ? params : "");
			if (!dev->params)
				return -ENOMEM;
			dev->params_size = strlen(dev->params) + 1;
		}
	} while (next);
	return 0;
}

int vc_dm_query(const char *name, struct vc_dm_dev *dev)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TABLE);
	int r;

	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return -EINVAL;
	}
	r = vc_dm_query_task(dmt, dev);
	dm_task_destroy(dmt);
	return r;
}

int vc_dm_query_devt(dev_t devt, struct vc_dm_dev *dev)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TABLE);
	int r;

	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_major(dmt, major(devt)) || !dm_task_set_minor(dmt, minor(devt))) {
		dm_task_destroy(dmt);
		return -EINVAL;
	}
	r = vc_dm_query_task(dmt, dev);
	dm_task_destroy(dmt);
	return r;
}

int vc_dm_status(const char *name, char *buf, size_t len)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_STATUS);
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	int r = -ENODEV;

	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return -ENOMEM;
	}
	if (!dm_task_run(dmt)) {
		r = vc_dm_errno(dmt);
	} else {
		dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
		if (type) {
			snprintf(buf, len, "%s", params ? params : "");
			r = 0;
		}
	}
	dm_task_destroy(dmt);
	return r;
}

void vc_dm_dev_clear(struct vc_dm_dev *dev)
{
	if (dev->params) {
		explicit_bzero(dev->params, dev->params_size);
		free(dev->params);
	}
	dev->params = NULL;
}

int vc_dm_target_version(const char *target, unsigned int v[3])
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_GET_TARGET_VERSION);
	struct dm_versions *t;
	int r = -ENOENT;

	if (!dmt)
		return -ENOMEM;
	/* the kernel loads the target's module (dm-<target>) if it can */
	if (!dm_task_set_name(dmt, target)) {
		dm_task_destroy(dmt);
		return -ENOMEM;
	}
	if (dm_task_run(dmt)) {
		t = dm_task_get_versions(dmt);
		if (t && !strcmp(t->name, target)) {
			memcpy(v, t->version, sizeof(t->version));
			r = 0;
		}
	}
	dm_task_destroy(dmt);
	return r;
}

int vc_dm_need_target(const char *target, const char *module, const unsigned int min[3],
		      const char *feature)
{
	unsigned int v[3];

	if (vc_dm_target_version(target, v))
		return vc_fail_exit(VC_EXIT_PARAM, -ENODEV, "the %s kernel target is not "
				    "available; load the %s module (modprobe %s)", target,
				    module, module);
	if (v[0] < min[0] || (v[0] == min[0] && (v[1] < min[1] ||
						 (v[1] == min[1] && v[2] < min[2]))))
		return vc_fail(-ENOTSUP, "the %s kernel target is version %u.%u.%u; %s needs "
			       "%u.%u.%u or later: update %s", target, v[0], v[1], v[2],
			       feature ? feature : VC_PROG, min[0], min[1], min[2], module);
	return 0;
}
