// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - loop device handling (LOOP_CTL_GET_FREE + LOOP_CONFIGURE,
 * with a LOOP_SET_FD/LOOP_SET_STATUS64 fallback for kernels before 5.8).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
#endif

static int vc_loop_configure(int lfd, int ffd, const char *file, uint64_t offset,
			     uint64_t sizelimit, bool ro, bool autoclear)
{
	struct loop_config cfg;
	struct loop_info64 info;

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = ffd;
	cfg.block_size = 0;	/* default 512 */
	cfg.info.lo_offset = offset;
	cfg.info.lo_sizelimit = sizelimit;
	cfg.info.lo_flags = (ro ? LO_FLAGS_READ_ONLY : 0) | (autoclear ? LO_FLAGS_AUTOCLEAR : 0);
	snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", file);
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -errno;

	/* old kernel: LOOP_SET_FD then LOOP_SET_STATUS64 */
	if (ioctl(lfd, LOOP_SET_FD, ffd) < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.lo_offset = offset;
	info.lo_sizelimit = sizelimit;
	info.lo_flags = autoclear ? LO_FLAGS_AUTOCLEAR : 0;
	snprintf((char *)info.lo_file_name, LO_NAME_SIZE, "%s", file);
	if (ioctl(lfd, LOOP_SET_STATUS64, &info) < 0) {
		int e = errno;

		ioctl(lfd, LOOP_CLR_FD, 0);
		return -e;
	}
	return 0;
}

int vc_loop_attach_fd(int ffd, const char *file, uint64_t offset, uint64_t sizelimit,
		      bool ro, bool autoclear, struct vc_loop *lo)
{
	int ctl, lfd = -1, nr, r = 0, tries;
	struct stat st;

	memset(lo, 0, sizeof(*lo));
	lo->fd = -1;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		r = vc_fail(errno == EACCES ? -EPERM : -ENODEV,
			    "cannot open /dev/loop-control: %s; run as root and load the loop module (modprobe loop)",
			    strerror(errno));
		goto out;
	}
	for (tries = 0; tries < 16; tries++) {
		nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (nr < 0) {
			r = vc_fail(-errno, "no free loop device: %s", strerror(errno));
			goto out;
		}
		snprintf(lo->path, sizeof(lo->path), "/dev/loop%d", nr);
		lfd = open(lo->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0) {
			r = vc_fail(-errno, "cannot open %s: %s", lo->path, strerror(errno));
			goto out;
		}
		r = vc_loop_configure(lfd, ffd, file, offset, sizelimit, ro, autoclear);
		if (r == -EBUSY) {	/* raced with another user of that device */
			close(lfd);
			lfd = -1;
			continue;
		}
		break;
	}
	if (r) {
		r = vc_fail(r, "cannot attach %s to a loop device: %s", file, strerror(-r));
		goto out;
	}
	if (fstat(lfd, &st) < 0) {
		r = vc_fail(-errno, "cannot stat %s: %s", lo->path, strerror(errno));
		goto out;
	}
	lo->devt = st.st_rdev;
	lo->fd = lfd;
	lfd = -1;
	vc_log_debug("loop: %s -> %s offset %llu sizelimit %llu%s%s", file, lo->path,
		     (unsigned long long)offset, (unsigned long long)sizelimit,
		     ro ? " ro" : "", autoclear ? " autoclear" : "");
out:
	if (lfd >= 0) {
		ioctl(lfd, LOOP_CLR_FD, 0);
		close(lfd);
	}
	if (ctl >= 0)
		close(ctl);
	return r;
}

int vc_loop_attach(const char *file, uint64_t offset, uint64_t sizelimit,
		   bool ro, bool autoclear, struct vc_loop *lo)
{
	int ffd, r;

	lo->fd = -1;
	ffd = open(file, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (ffd < 0)
		return vc_fail(-errno, "cannot open %s: %s", file, strerror(errno));
	r = vc_loop_attach_fd(ffd, file, offset, sizelimit, ro, autoclear, lo);
	close(ffd);
	return r;
}

void vc_loop_release(struct vc_loop *lo)
{
	if (lo->fd >= 0)
		close(lo->fd);
	lo->fd = -1;
}

static int vc_sysfs_read(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n'))
		buf[--n] = '\0';
	return 0;
}

int vc_loop_info(dev_t devt, struct vc_loop_info *info)
{
	char path[128], val[64];

	memset(info, 0, sizeof(*info));
	if (major(devt) != VC_LOOP_MAJOR)
		return -ENODEV;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(devt), minor(devt));
	if (vc_sysfs_read(path, info->backing_file, sizeof(info->backing_file)) < 0)
		return -ENODEV;	/* unbound */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/offset", major(devt), minor(devt));
	if (!vc_sysfs_read(path, val, sizeof(val)))
		info->offset = strtoull(val, NULL, 10);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/sizelimit", major(devt), minor(devt));
	if (!vc_sysfs_read(path, val, sizeof(val)))
		info->sizelimit = strtoull(val, NULL, 10);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/autoclear", major(devt), minor(devt));
	if (!vc_sysfs_read(path, val, sizeof(val)))
		info->autoclear = val[0] == '1';
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/ro", major(devt), minor(devt));
	if (!vc_sysfs_read(path, val, sizeof(val)))
		info->read_only = val[0] == '1';
	return 0;
}

int vc_loop_detach(dev_t devt)
{
	char path[64];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/dev/loop%u", minor(devt));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, LOOP_CLR_FD, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

bool vc_blockdev_has_holders(dev_t devt, char *holder, size_t len)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	bool found = false;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(devt), minor(devt));
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (holder)
			snprintf(holder, len, "%s", de->d_name);
		found = true;
		break;
	}
	closedir(d);
	return found;
}

int vc_loop_find_busy(dev_t dev, ino_t ino, char *busy_path, size_t len)
{
	struct vc_loop_info info;
	struct dirent *de;
	struct stat st;
	char path[300], holder[64];
	DIR *d;
	int fd, found = 0;

	d = opendir("/sys/block");
	if (!d)
		return 0;
	while ((de = readdir(d)) && !found) {
		unsigned int nr;
		char c;

		if (sscanf(de->d_name, "loop%u%c", &nr, &c) != 1)
			continue;
		snprintf(path, sizeof(path), "/dev/loop%u", nr);
		if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
			continue;
		if (vc_loop_info(st.st_rdev, &info) < 0)
			continue;
		if (stat(info.backing_file, &st) < 0 || st.st_dev != dev || st.st_ino != ino)
			continue;
		if (vc_blockdev_has_holders(makedev(VC_LOOP_MAJOR, nr), holder, sizeof(holder))) {
			snprintf(busy_path, len, "/dev/loop%u (held by %s)", nr, holder);
			found = 1;
			break;
		}
		fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EBUSY) {
			snprintf(busy_path, len, "/dev/loop%u (mounted or open exclusively)", nr);
			found = 1;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return found;
}
