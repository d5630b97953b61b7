// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - OpenXT key lookup, as tapdisk's drivers/block-crypto.c
 * behaves (facts: ../shared/specs/openxt-vhd.md sections 4 and 6), with the
 * legacy comma-list semantics (no blktap3 last-character bug).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "openxt.h"

int vc_keydirs_parse(const char *list, const char *source, struct vc_keydirs *kd)
{
	const char *p = list, *e;
	int n = 1;

	memset(kd, 0, sizeof(*kd));
	for (e = list; *e; e++)
		n += *e == ',';
	kd->dirs = calloc(n, sizeof(char *));
	kd->list = strdup(list);
	kd->source = strdup(source);
	if (!kd->dirs || !kd->list || !kd->source)
		goto nomem;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len) {
			kd->dirs[kd->n] = strndup(p, len);
			if (!kd->dirs[kd->n])
				goto nomem;
			kd->n++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
nomem:
	vc_keydirs_free(kd);
	return vc_fail(-ENOMEM, "out of memory");
}

int vc_keydirs_default(struct vc_keydirs *kd)
{
	const char *v = getenv(VC_OPENXT_ENV3);

	if (v && *v)
		return vc_keydirs_parse(v, VC_OPENXT_ENV3, kd);
	v = getenv(VC_OPENXT_ENV2);
	if (v && *v)
		return vc_keydirs_parse(v, VC_OPENXT_ENV2, kd);
	return vc_keydirs_parse(VC_OPENXT_DEFAULT_KEYDIR, "the default key directory", kd);
}

void vc_keydirs_free(struct vc_keydirs *kd)
{
	int i;

	if (kd->dirs)
		for (i = 0; i < kd->n; i++)
			free(kd->dirs[i]);
	free(kd->dirs);
	free(kd->list);
	free(kd->source);
	memset(kd, 0, sizeof(*kd));
}

void vc_openxt_basename(const char *path, char *out, size_t len)
{
	const char *b = strrchr(path, '/');
	const char *v;
	size_t n;

	b = b ? b + 1 : path;
	v = strstr(b, ".vhd");
	n = v ? (size_t)(v - b) : strlen(b);
	if (n >= len)
		n = len - 1;
	memcpy(out, b, n);
	out[n] = '\0';
}

/* Read exactly want bytes from the start of path into a new safe key. */
static int vc_openxt_read_key(const char *path, size_t want, struct vc_key **out, size_t *got)
{
	struct vc_key *k;
	size_t len = 0;
	ssize_t r;
	int fd;

	*got = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	k = vc_key_new(want);
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	while (len < want) {
		r = read(fd, k->data + len, want - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			r = -errno;
			close(fd);
			vc_key_free(k);
			return r;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	*got = len;
	if (len != want) {
		vc_key_free(k);
		return -EINVAL;	/* short read: tapdisk ignores this file */
	}
	*out = k;
	return 0;
}

int vc_openxt_find_key(const struct vc_keydirs *kd, const char *basename,
		       struct vc_key **key, char *path, size_t pathlen,
		       char *note, size_t notelen)
{
	static const int sizes[] = { 512, 256 };
	struct stat st;
	int s, d, r = -ENOENT;
	size_t got;

	*key = NULL;
	if (note && notelen)
		note[0] = '\0';
	for (s = 0; s < 2; s++) {
		for (d = 0; d < kd->n; d++) {
			snprintf(path, pathlen, "%s/%s," VC_OPENXT_CIPHER ",%d.key",
				 kd->dirs[d], basename, sizes[s]);
			if (stat(path, &st) == 0)
				break;
			if (errno != ENOENT) {
				r = -errno;
				return r;	/* as tapdisk: any other error aborts */
			}
		}
		if (d == kd->n) {
			r = -ENOENT;
			continue;
		}
		r = vc_openxt_read_key(path, sizes[s] / 8, key, &got);
		if (r == 0)
			return 0;
		if (r == -EINVAL && note && notelen)
			snprintf(note, notelen, "; %s was ignored: it holds %zu bytes, not %d",
				 path, got, sizes[s] / 8);
		if (r != -EINVAL)
			return r;
		/* short file: try the next size */
	}
	path[0] = '\0';
	return r;
}

void vc_openxt_hash(const unsigned char nonce[32], const struct vc_key *key,
		    unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;

	memset(out, 0, 32);
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, nonce, 32) != 1 ||
	    EVP_DigestUpdate(ctx, key->data, key->len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

int vc_openxt_check_key(const struct vc_keyhash *kh, const struct vc_key *key)
{
	unsigned char h[32];
	int r;

	if (!kh->set)
		return -ENOKEY;
	vc_openxt_hash(kh->nonce, key, h);
	r = memcmp(h, kh->hash, 32) ? -ENOKEY : 0;
	vc_safe_memzero(h, sizeof(h));
	return r;
}

static void vc_keydirs_describe(const struct vc_keydirs *kd, char *buf, size_t len)
{
	snprintf(buf, len, "%s (%s)", kd->list, kd->source);
}

int vc_openxt_resolve(const struct vc_openxt_node *node, const struct vc_keydirs *kd,
		      const struct vc_key *top_key, const char *top_key_name,
		      struct vc_key **keyp, char *keyfile, size_t keyfile_len)
{
	const struct vc_openxt_node *p;
	struct vc_key *key = NULL;
	char base[NAME_MAX + 1], dirs[PATH_MAX + 64], note[PATH_MAX + 64];
	int r;

	*keyp = NULL;
	keyfile[0] = '\0';
	for (p = node; p; p = p->parent) {
		vc_openxt_basename(p->path, base, sizeof(base));
		if (p == node && top_key) {
			key = vc_key_dup(top_key);
			if (!key)
				return -ENOMEM;
			snprintf(keyfile, keyfile_len, "%s", top_key_name);
			r = 0;
		} else {
			r = vc_openxt_find_key(kd, base, &key, keyfile, keyfile_len,
					       note, sizeof(note));
		}
		if (r == 0) {
			if (!p->kh->set) {
				vc_key_free(key);
				return vc_fail(-EACCES, "key %s found for %s, but that image has no "
					       "key hash; refusing to use a key for a plain image "
					       "(remove the key file or check the image)",
					       keyfile, p->path);
			}
			if (vc_openxt_check_key(p->kh, key)) {
				vc_key_free(key);
				return vc_fail(-ENOKEY, "key %s does not match the key hash of %s "
					       "(wrong key)", keyfile, p->path);
			}
			if (key->len != 32 && key->len != 64) {
				vc_key_free(key);
				return vc_fail(-EINVAL, "key %s for %s has %zu bytes; OpenXT keys "
					       "have 32 or 64", keyfile, p->path, key->len);
			}
			vc_log_debug("openxt: %s uses key %s (%zu bits)%s%s", node->path, keyfile,
				     key->len * 8, p == node ? "" : ", inherited from ",
				     p == node ? "" : p->path);
			*keyp = key;
			return 0;
		}
		if (r == -ENOENT) {
			if (p->kh->set) {
				vc_keydirs_describe(kd, dirs, sizeof(dirs));
				return vc_fail(-ENOKEY, "%s is encrypted, but no usable key file "
					       "%s," VC_OPENXT_CIPHER ",{512,256}.key was found in %s%s; "
					       "give the key directory with --key-dir",
					       p->path, base, dirs, note);
			}
			continue;	/* unkeyed: inherit from the parent */
		}
		if (r == -EINVAL)
			return vc_fail(-EINVAL, "no usable key for %s%s", p->path, note);
		return vc_fail(r, "cannot look up the key of %s in %s: %s", p->path,
			       keyfile[0] ? keyfile : kd->list, strerror(-r));
	}
	keyfile[0] = '\0';
	return 0;	/* no keyed image on the way up: plaintext */
}
