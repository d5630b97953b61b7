/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - secrets (passphrases and keys) in locked memory left out
 * of core dumps, and key files read into it with libcryptsetup's key file
 * reader (the one cryptsetup uses for --key-file, --keyfile-offset and
 * --keyfile-size).
 */
#ifndef VC_SECRET_H
#define VC_SECRET_H

#include <stddef.h>
#include <stdint.h>

/* A passphrase or a key: data is secret memory, wiped by vc_secret_free(). */
struct vc_secret {
	size_t len;		/* bytes */
	unsigned char *data;
};

struct vc_secret *vc_secret_new(size_t len);
struct vc_secret *vc_secret_dup(const struct vc_secret *s);
void vc_secret_free(struct vc_secret *s);

/*
 * Secret memory for other buffers that hold key material (hex keys, tables):
 * mlocked, never in a core dump, wiped by vc_safe_free().
 */
void *vc_safe_alloc(size_t len);
void vc_safe_free(void *p);
void vc_safe_memzero(void *p, size_t len);
char *vc_safe_strdup(const char *s);

/*
 * Read key file path ("-": standard input) from byte offset: exactly size
 * bytes, or with size 0 all of it (at most libcryptsetup's limit, 8 MiB).
 * what names the option in messages ("--key-file"); with what NULL no
 * message is recorded (a lookup that tries several files). Returns 0,
 * -ENOENT (no such file, with what NULL), -EINVAL (no such file with what
 * given, shorter than size, too large, not readable) or another -errno. *file_size, if not NULL, receives the size of
 * a regular file (else UINT64_MAX).
 */
int vc_secret_read_file(const char *path, const char *what, uint64_t offset, size_t size,
			struct vc_secret **out, uint64_t *file_size);

#endif
