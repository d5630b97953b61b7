// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - OpenXT key lookup, as tapdisk's drivers/block-crypto.c
 * behaves (facts: ../shared/specs/openxt-vhd.md sections 4 and 6), with the
 * legacy comma-list semantics (no blktap3 last-character bug).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "scheme.h"
#include "scheme-openxt.h"
#include "util.h"

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

int vc_openxt_find_key(const struct vc_keydirs *kd, const char *basename,
		       struct vc_secret **key, char **pathp, char **note)
{
	static const int sizes[] = { 512, 256 };
	uint64_t fsize;
	struct stat st;
	char *path;
	int s, d, r = -ENOENT;

	*key = NULL;
	*pathp = NULL;
	for (s = 0; s < 2; s++) {
		path = NULL;
		for (d = 0; d < kd->n; d++) {
			path = vc_asprintf("%s/%s," VC_OPENXT_CIPHER ",%d.key", kd->dirs[d],
					   basename, sizes[s]);
			if (!path)
				return -ENOMEM;
			if (stat(path, &st) == 0)
				break;
			r = -errno;
			free(path);
			path = NULL;
			if (r != -ENOENT)
				return r;	/* as tapdisk: any other error aborts */
		}
		if (!path) {
			r = -ENOENT;
			continue;
		}
		/* tapdisk reads bits/8 bytes and ignores a shorter file */
		r = vc_secret_read_file(path, NULL, 0, sizes[s] / 8, key, &fsize);
		if (r == 0) {
			*pathp = path;
			return 0;
		}
		if (r == -EINVAL && fsize != UINT64_MAX) {
			free(*note);
			*note = vc_asprintf("%s was ignored: it holds %llu bytes, not %d", path,
					    (unsigned long long)fsize, sizes[s] / 8);
		}
		free(path);
		if (r != -EINVAL)
			return r;
		/* short file: try the next size */
	}
	return -ENOENT;
}

int vc_openxt_hash(const unsigned char nonce[32], const struct vc_secret *key,
		   unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;
	int ok;

	if (!ctx)
		return -EIO;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, nonce, 32) == 1 &&
	     EVP_DigestUpdate(ctx, key->data, key->len) == 1 &&
	     EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int vc_openxt_check_key(const struct vc_keyhash *kh, const struct vc_secret *key)
{
	unsigned char h[32];
	int r;

	if (!kh->set)
		return -ENOKEY;
	r = vc_openxt_hash(kh->nonce, key, h);
	if (!r && memcmp(h, kh->hash, 32))
		r = -ENOKEY;
	vc_safe_memzero(h, sizeof(h));
	return r;
}

/* "list (source)", and which directories do not exist. */
static char *vc_keydirs_describe(const struct vc_keydirs *kd)
{
	char *s = vc_asprintf("%s (%s)", kd->list, kd->source), *n;
	struct stat st;
	int i;

	for (i = 0; s && i < kd->n; i++) {
		if (stat(kd->dirs[i], &st) == 0 || errno != ENOENT)
			continue;
		n = vc_asprintf("%s; %s does not exist", s, kd->dirs[i]);
		free(s);
		s = n;
	}
	return s;
}

/* The key of image img was found: it must be the one its key hash names. */
static int vc_openxt_accept(const struct vc_image *img, const struct vc_secret *key,
			    const char *keyfile)
{
	int r;

	if (!img->vhd.keyhash.set)
		return vc_fail(-EACCES, "the key from %s was found for %s, but that image has no key "
			       "hash; refusing to use a key for a plain image (remove the key "
			       "file or check the image)", keyfile, img->path);
	r = vc_openxt_check_key(&img->vhd.keyhash, key);
	if (r == -ENOKEY)
		return vc_fail(-ENOKEY, "the key from %s does not match the key hash of %s "
			       "(wrong key)", keyfile, img->path);
	if (r)
		return vc_fail(r, "cannot compute the key hash of %s (SHA-256 failed)", img->path);
	if (key->len != 32 && key->len != 64)
		return vc_fail(-EINVAL, "the key from %s for %s has %zu bytes; OpenXT keys have 32 "
			       "or 64", keyfile, img->path, key->len);
	return 0;
}

/* No key file for a keyed image: say where we looked and what to do. */
static int vc_openxt_no_key(const struct vc_keydirs *kd, const struct vc_image *img,
			    const char *base, const char *note)
{
	char *dirs = vc_keydirs_describe(kd);
	bool given = !strcmp(kd->source, "--key-dir");
	int r;

	r = vc_fail(-ENOKEY, "%s is encrypted, but no usable key file %s," VC_OPENXT_CIPHER
		    ",{512,256}.key was found in %s%s%s; %s", img->path, base,
		    dirs ? dirs : kd->list, note ? ": " : "", note ? note : "",
		    given ? "check the --key-dir list, or give the key with --volume-key-file" :
			    "give the key directory with --key-dir");
	free(dirs);
	return r;
}

int vc_openxt_resolve(const struct vc_chain *c, int i, const struct vc_keydirs *kd,
		      const struct vc_secret *top_key, const char *top_key_name,
		      struct vc_secret **keyp, char **keyfile)
{
	struct vc_secret *key = NULL;
	char base[NAME_MAX + 1], *note = NULL;
	int j, r;

	*keyp = NULL;
	*keyfile = NULL;
	for (j = i; j < c->n; j++) {
		const struct vc_image *img = c->img[j];

		vc_openxt_basename(img->path, base, sizeof(base));
		if (j == 0 && top_key) {
			key = vc_secret_dup(top_key);
			*keyfile = vc_strdup(top_key_name);
			r = key && *keyfile ? 0 : -ENOMEM;
			if (r) {
				vc_secret_free(key);
				break;
			}
		} else {
			r = vc_openxt_find_key(kd, base, &key, keyfile, &note);
		}
		if (r == 0) {
			r = vc_openxt_accept(img, key, *keyfile);
			if (r) {
				vc_secret_free(key);
				break;
			}
			vc_log_debug("openxt: %s uses the key from %s (%zu bits)%s%s",
				     c->img[i]->path, *keyfile, key->len * 8,
				     j == i ? "" : ", inherited from ", j == i ? "" : img->path);
			*keyp = key;
			break;
		}
		if (r == -ENOENT && img->vhd.keyhash.set) {
			r = vc_openxt_no_key(kd, img, base, note);
			break;
		}
		if (r != -ENOENT) {
			r = vc_fail(r, "cannot look up the key of %s in %s: %s", img->path,
				    kd->list, strerror(-r));
			break;
		}
		/* unkeyed: inherit from a VHD parent, if it has one */
		r = 0;
		if (img->parent_fmt != VC_FMT_VHD || j + 1 == c->n ||
		    c->img[j + 1]->fmt != VC_FMT_VHD)
			break;
	}
	free(note);
	if (!*keyp) {
		free(*keyfile);
		*keyfile = NULL;
	}
	return r;
}

bool vc_openxt_keyed(const struct vc_chain *c, int i)
{
	for (; i < c->n && c->img[i]->fmt == VC_FMT_VHD; i++) {
		if (c->img[i]->vhd.keyhash.set)
			return true;
		if (c->img[i]->parent_fmt != VC_FMT_VHD)
			break;
	}
	return false;
}

/* The raw key of the top image: --volume-key-file, or --key-file (and its offset, size). */
static int vc_openxt_top_key(const struct vc_key_opts *o, struct vc_secret **key,
			     const char **name)
{
	const char *path = o->volume_key_file ? o->volume_key_file : o->key_file;
	int r;

	*key = NULL;
	*name = NULL;
	if (!path)
		return 0;
	if (o->volume_key_file)
		r = vc_volume_key(o, key);
	else
		r = vc_secret_read_file(path, "--key-file", o->pass->keyfile_offset,
					o->pass->keyfile_size, key, NULL);
	if (r)
		return r;
	*name = strcmp(path, "-") ? path : "standard input";
	if ((*key)->len == 32 || (*key)->len == 64)
		return 0;
	r = vc_fail(-EINVAL, "key file %s holds %zu bytes; an OpenXT key has exactly 32 or 64 "
		    "bytes%s", *name, (*key)->len, o->volume_key_file ? "" :
		    " (--keyfile-size reads only the first bytes of a longer file)");
	vc_secret_free(*key);
	*key = NULL;
	return r;
}

static int vc_openxt_unlock(struct vc_unlock *u, const struct vc_chain *c, int i,
			    struct vc_crypt *out)
{
	struct vc_secret *top_key = NULL;
	const char *top_name = NULL;
	int r;

	if (!u->keydirs) {
		u->keydirs = vc_zalloc(sizeof(*u->keydirs));
		if (!u->keydirs)
			return -ENOMEM;
		r = u->o->key_dir ? vc_keydirs_parse(u->o->key_dir, "--key-dir", u->keydirs) :
				    vc_keydirs_default(u->keydirs);
		if (r) {
			free(u->keydirs);
			u->keydirs = NULL;
			return r;
		}
	}
	if (i == 0) {
		r = vc_openxt_top_key(u->o, &top_key, &top_name);
		if (r)
			return r;
	}
	r = vc_openxt_resolve(c, i, u->keydirs, top_key, top_name, &out->key, &out->key_source);
	vc_secret_free(top_key);
	if (!r && out->key)
		snprintf(out->cipher, sizeof(out->cipher), VC_OPENXT_CIPHER);
	return r;
}

const struct vc_scheme vc_scheme_openxt = {
	.name = "openxt",
	.tag = "OPENXT",
	.unlock = vc_openxt_unlock,
};
