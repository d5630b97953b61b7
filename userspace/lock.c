// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - QEMU's image locks (see lock.h).
 *
 * The permission bits and what a user of a qcow2 or VHD image holds are
 * QEMU 7.2's, as /proc/locks shows them: a writer holds consistent read,
 * write and resize and shares neither write nor resize (bytes 100, 101,
 * 103, 201, 203); a reader holds consistent read and shares neither write
 * nor resize (100, 201, 203); "qemu-img -U" takes byte 100 only. Every
 * lock is a read lock, so they work on a read-only file description.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "util.h"

#define VC_LOCK_PERM_BASE	100
#define VC_LOCK_SHARED_BASE	200

/* QEMU's BLK_PERM_* bits, as bit numbers */
enum { VC_PERM_CONSISTENT_READ, VC_PERM_WRITE, VC_PERM_WRITE_UNCHANGED, VC_PERM_RESIZE,
       VC_PERM_BITS };

static const char *const vc_perm_names[VC_PERM_BITS] = {
	"consistent read", "write", "write unchanged", "resize",
};

#define VC_BIT(p) (1u << (p))
#define VC_READER_PERMS VC_BIT(VC_PERM_CONSISTENT_READ)
#define VC_WRITER_PERMS (VC_READER_PERMS | VC_BIT(VC_PERM_WRITE) | VC_BIT(VC_PERM_RESIZE))
/* what neither a reader nor a writer of a format image shares */
#define VC_UNSHARED (VC_BIT(VC_PERM_WRITE) | VC_BIT(VC_PERM_RESIZE))

static int vc_lock_byte(int fd, int cmd, short type, off_t byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));	/* OFD locks want l_pid 0 */
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	return cmd == F_OFD_GETLK && fl.l_type != F_UNLCK ? 1 : 0;
}

/* Does another file description hold byte (a conflicting shared lock)? */
static int vc_lock_held(int fd, off_t byte)
{
	return vc_lock_byte(fd, F_OFD_GETLK, F_WRLCK, byte);
}

int vc_lock_image(int fd, const char *path, bool write)
{
	unsigned int perms = write ? VC_WRITER_PERMS : VC_READER_PERMS;
	int p, r;

	/* as QEMU: take the locks, then look for conflicts (one of two racing users sees it) */
	for (p = 0; p < VC_PERM_BITS; p++) {
		r = 0;
		if (perms & VC_BIT(p))
			r = vc_lock_byte(fd, F_OFD_SETLK, F_RDLCK, VC_LOCK_PERM_BASE + p);
		if (!r && (VC_UNSHARED & VC_BIT(p)))
			r = vc_lock_byte(fd, F_OFD_SETLK, F_RDLCK, VC_LOCK_SHARED_BASE + p);
		if (r == -EAGAIN || r == -EACCES)
			return vc_fail(-EBUSY, "image %s is in use: another process (QEMU?) holds "
				       "it so that it cannot be %s; stop it first", path,
				       write ? "written" : "read");
		if (r == -EINVAL || r == -ENOLCK || r == -EOPNOTSUPP) {
			vc_log_debug("%s: no file locks (%s): not locked", path, strerror(-r));
			return 0;
		}
		if (r)
			return vc_fail(r, "cannot lock image %s: %s", path, strerror(-r));
	}
	for (p = 0; p < VC_PERM_BITS; p++) {
		/* someone does not share what we take, or takes what we do not share */
		r = perms & VC_BIT(p) ? vc_lock_held(fd, VC_LOCK_SHARED_BASE + p) : 0;
		if (!r && (VC_UNSHARED & VC_BIT(p)))
			r = vc_lock_held(fd, VC_LOCK_PERM_BASE + p);
		if (r > 0)
			return vc_fail(-EBUSY, "image %s is in use: another process (QEMU, or "
				       "another vhdcryptsetup mapping) holds its \"%s\" lock; "
				       "stop or close it first", path, vc_perm_names[p]);
		if (r < 0)
			return vc_fail(r, "cannot test the locks of image %s: %s", path,
				       strerror(-r));
	}
	return 0;
}

int vc_lock_downgrade(int fd)
{
	int p, r;

	for (p = 0; p < VC_PERM_BITS; p++) {
		if (!(VC_WRITER_PERMS & ~VC_READER_PERMS & VC_BIT(p)))
			continue;
		r = vc_lock_byte(fd, F_OFD_SETLK, F_UNLCK, VC_LOCK_PERM_BASE + p);
		if (r)
			return r;
	}
	return 0;
}
