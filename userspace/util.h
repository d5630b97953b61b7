/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - error reporting, exit codes, logging and small helpers
 * that need no library.
 *
 * Every failing function records ONE human-readable message with vc_fail()
 * and returns a negative errno; main() prints the first recorded message and
 * maps the errno to cryptsetup's exit code for the same situation
 * (vc_exit_code()).
 */
#ifndef VC_UTIL_H
#define VC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VC_PROG "vhdcryptsetup"

/* Exit codes, as cryptsetup(8) and its binary give them. */
enum {
	VC_EXIT_OK = 0,
	VC_EXIT_PARAM = 1,	/* wrong parameters, not an image, no device-mapper */
	VC_EXIT_PERM = 2,	/* wrong passphrase or key */
	VC_EXIT_NOMEM = 3,	/* out of memory */
	VC_EXIT_DEVICE = 4,	/* the image or device does not exist */
	VC_EXIT_BUSY = 5,	/* the device exists or is busy */
};

/* Record an error message (the first one wins) and return err (negative errno). */
int vc_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record an error with an explicit exit code (overrides the errno mapping). */
int vc_fail_exit(int exit_code, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *vc_last_error(void);
void vc_clear_error(void);
/* Exit code for err: the explicit one given to vc_fail_exit() or the mapping. */
int vc_exit_code(int err);
int vc_errno_to_exit(int err);

extern int vc_verbose;		/* --verbose */
extern int vc_debug;		/* --debug or VHDCRYPT_DEBUG=1, 2 with library output */
void vc_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vc_log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line on stderr that does not stop the command. */
void vc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that records -ENOMEM on failure. */
void *vc_zalloc(size_t len);
char *vc_strdup(const char *s);
char *vc_strndup(const char *s, size_t n);
char *vc_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Hex: out must hold 2*len+1 bytes. */
void vc_hex(char *out, const unsigned char *in, size_t len);

/* Exactly 2*len hex digits (either case) into out; 0 or -EINVAL. */
int vc_unhex(const char *s, unsigned char *out, size_t len);

/* Parse "123" strictly into an unsigned long long; 0 or -EINVAL. */
int vc_parse_u64(const char *s, unsigned long long *out);
/* "123", "64K", "64M", "1G", "2T" (powers of 1024) into bytes; 0 or -EINVAL. */
int vc_parse_size(const char *s, uint64_t *out);

/* pread that loops; returns 0 if all len bytes were read, -EIO/-errno else. */
int vc_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* pwrite that loops; 0 or -errno. */
int vc_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Size in bytes of a regular file or block device. */
int vc_fd_size(int fd, uint64_t *size);

/* Directory part of a path ("." if none); malloc'd. */
char *vc_dirname(const char *path);
/*
 * path without "." components and repeated slashes ("./a//./b" -> "a/b");
 * ".." is kept (it is not resolvable without the file system). malloc'd.
 */
char *vc_path_clean(const char *path);

/* "dev_t" <-> "major:minor" (the result of vc_devt_name() is malloc'd) */
char *vc_devt_name(dev_t dev);
int vc_parse_devt(const char *s, dev_t *dev);

#endif
