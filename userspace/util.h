/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - shared helpers: error reporting, exit codes, key buffers.
 *
 * Every failing function records ONE human-readable message with vc_fail()
 * and returns a negative errno; main() prints the first recorded message and
 * maps the errno to a cryptsetup-compatible exit code (vc_exit_code()).
 */
#ifndef VC_UTIL_H
#define VC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VC_PROG "vhdcryptsetup"

/* Exit codes, as cryptsetup(8) where they apply. */
enum {
	VC_EXIT_OK = 0,
	VC_EXIT_PARAM = 1,	/* wrong parameters, generic failure */
	VC_EXIT_PERM = 2,	/* no permission, bad passphrase or key */
	VC_EXIT_NOMEM = 3,	/* out of memory */
	VC_EXIT_DEVICE = 4,	/* wrong device or image */
	VC_EXIT_BUSY = 5,	/* device exists or is busy */
};

/* Record an error message (first one wins) and return err (negative errno). */
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
extern int vc_debug;		/* --debug or VHDCRYPT_DEBUG=1 */
void vc_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vc_log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that records -ENOMEM on failure. */
void *vc_zalloc(size_t len);
char *vc_strdup(const char *s);
char *vc_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Key material. data is always allocated with vc_safe_alloc() (libcryptsetup's
 * locked, wiped-on-free memory; see luks.c) and freed with vc_key_free().
 */
struct vc_key {
	size_t len;		/* bytes */
	unsigned char *data;
};
struct vc_key *vc_key_new(size_t len);
struct vc_key *vc_key_dup(const struct vc_key *k);
void vc_key_free(struct vc_key *k);

/* Secure memory (luks.c, libcryptsetup). */
void *vc_safe_alloc(size_t len);
void vc_safe_free(void *p);
void vc_safe_memzero(void *p, size_t len);

/*
 * Read a whole secret file (or standard input for "-") into safe memory,
 * at most max bytes (larger files are an error). Returns 0 or -errno.
 */
int vc_read_secret_file(const char *path, size_t max, struct vc_key **out);

/* Hex: out must hold 2*len+1 bytes. */
void vc_hex(char *out, const unsigned char *in, size_t len);

/* Parse "123" strictly into an unsigned long; 0 or -EINVAL. */
int vc_parse_ulong(const char *s, unsigned long *out);

/* pread that loops; returns 0 if all len bytes were read, -EIO/-errno else. */
int vc_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Size in bytes of a regular file or block device. */
int vc_fd_size(int fd, uint64_t *size);

/* Directory part of a path ("." if none); returned string is malloc'd. */
char *vc_dirname(const char *path);

/* "dev_t" <-> "major:minor" */
void vc_devt_str(char *buf, size_t len, dev_t dev);
int vc_parse_devt(const char *s, dev_t *dev);

#endif
