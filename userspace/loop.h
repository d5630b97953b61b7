/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - loop devices: attach image files (and the LUKS region of a
 * qcow2 image) as block devices for the kernel target and libcryptsetup.
 */
#ifndef VC_LOOP_H
#define VC_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define VC_LOOP_MAJOR 7

struct vc_loop {
	char path[32];		/* /dev/loopN */
	dev_t devt;
	int fd;			/* open until the dm table holds the device */
};

/*
 * Attach file read-only (ro) or read-write, from byte offset, limited to
 * sizelimit bytes (0 = to the end), with LO_FLAGS_AUTOCLEAR when autoclear:
 * the device detaches itself once the last opener (lo->fd, then the dm table)
 * releases it.
 */
int vc_loop_attach(const char *file, uint64_t offset, uint64_t sizelimit,
		   bool ro, bool autoclear, struct vc_loop *lo);
/*
 * The same for the file open at ffd (not closed): the loop device keeps that
 * open file description, and so its OFD locks (lock.h), until it detaches.
 */
int vc_loop_attach_fd(int ffd, const char *file, uint64_t offset, uint64_t sizelimit,
		      bool ro, bool autoclear, struct vc_loop *lo);
/* Close lo->fd (with autoclear and no other opener, the device detaches). */
void vc_loop_release(struct vc_loop *lo);

struct vc_loop_info {
	char backing_file[4096];	/* "" if unknown */
	uint64_t offset;		/* bytes */
	uint64_t sizelimit;		/* bytes, 0 = none */
	bool autoclear;
	bool read_only;
};
/* 0 if devt is a bound loop device, -ENODEV if not a (bound) loop device. */
int vc_loop_info(dev_t devt, struct vc_loop_info *info);
/* Detach a loop device (LOOP_CLR_FD); 0 or -errno. */
int vc_loop_detach(dev_t devt);

/*
 * Find a loop device whose backing file is (dev, ino) and that is in use
 * (held by another device, mounted or opened exclusively). Returns 1 and
 * fills busy_path, 0 if none, -errno on error.
 */
int vc_loop_find_busy(dev_t dev, ino_t ino, char *busy_path, size_t len);

/* Whether a block device has holders in sysfs (e.g. a dm device). */
bool vc_blockdev_has_holders(dev_t devt, char *holder, size_t len);

#endif
