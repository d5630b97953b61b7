// SPDX-License-Identifier: GPL-2.0
/*
 * OpenXT key lookup against copies of the fixture key directories and the
 * fixture images (prepared in tests/tmp by "make test"): key names, key
 * directory lists, 512-before-256, the keyhash, tapdisk's chain walk and
 * every negative case of selftests/fixtures/openxt/README.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "chain.h"
#include "scheme.h"
#include "scheme-openxt.h"
#include "tap.h"
#include "util.h"

static void test_basename(void)
{
	static const char *cases[][2] = {
		{ "disk.vhd", "disk" },
		{ "snap_abc.vhd.snap.tmp.vhd", "snap_abc" },
		{ "a.vhdx", "a" },
		{ "noext", "noext" },
		{ "/dir/./base.vhd", "base" },
		{ "././parent.vhd", "parent" },
		{ "/x.vhd/y.img", "y.img" },
		{ "dir.vhd/disk.vhd", "disk" },
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vc_openxt_basename(cases[i][0], out, sizeof(out));
		is_str(out, cases[i][1], "basename %s", cases[i][0]);
	}
}

static void test_keydirs(void)
{
	struct vc_keydirs kd;

	ok(!vc_keydirs_parse("keys-wrong,keys", "t", &kd) && kd.n == 2, "two dirs");
	is_str(kd.dirs[0], "keys-wrong", "first dir keeps its last character (legacy semantics)");
	is_str(kd.dirs[1], "keys", "second dir");
	vc_keydirs_free(&kd);
	ok(!vc_keydirs_parse(",a,,b,", "t", &kd) && kd.n == 2, "empty elements skipped");
	vc_keydirs_free(&kd);

	unsetenv(VC_OPENXT_ENV3);
	unsetenv(VC_OPENXT_ENV2);
	ok(!vc_keydirs_default(&kd) && kd.n == 1, "default list");
	is_str(kd.dirs[0], "/config/platform-crypto-keys", "default dir");
	vc_keydirs_free(&kd);
	setenv(VC_OPENXT_ENV2, "k2a,k2b", 1);
	ok(!vc_keydirs_default(&kd) && kd.n == 2, "TAPDISK2_CRYPTO_KEYDIR used");
	is_str(kd.source, VC_OPENXT_ENV2, "source named");
	vc_keydirs_free(&kd);
	setenv(VC_OPENXT_ENV3, "k3", 1);
	ok(!vc_keydirs_default(&kd) && kd.n == 1, "TAPDISK3_CRYPTO_KEYDIR wins");
	is_str(kd.dirs[0], "k3", "TAPDISK3 dir");
	vc_keydirs_free(&kd);
	setenv(VC_OPENXT_ENV3, "", 1);
	ok(!vc_keydirs_default(&kd) && !strcmp(kd.dirs[0], "k2a"), "empty TAPDISK3 is unset");
	vc_keydirs_free(&kd);
	unsetenv(VC_OPENXT_ENV3);
	unsetenv(VC_OPENXT_ENV2);
}

static void test_find_key(void)
{
	struct vc_keydirs kd;
	struct vc_secret *k = NULL;
	char *path = NULL, *note = NULL;
	int r;

	vc_keydirs_parse("keys-prefer512", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes128xts", &k, &path, &note);
	ok(r == 0 && k && k->len == 64, "512 file preferred over 256");
	is_str(path, "keys-prefer512/aes128xts,aes-xts-plain,512.key", "512 path");
	vc_secret_free(k);
	free(path);
	vc_keydirs_free(&kd);

	vc_keydirs_parse("keys-truncated", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes256xts-nonce", &k, &path, &note);
	is_int(r, -ENOENT, "short 512 file ignored, no 256 file: ENOENT");
	ok(note && strstr(note, "63 bytes") != NULL, "note names the short file");
	free(note);
	note = NULL;
	vc_keydirs_free(&kd);

	vc_keydirs_parse("keys-trailing-newline", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes128xts-nonce", &k, &path, &note);
	ok(r == 0 && k && k->len == 32, "33-byte 256 file: first 32 bytes");
	vc_secret_free(k);
	free(path);
	vc_keydirs_free(&kd);

	vc_keydirs_parse("nonexistent,keys", "t", &kd);
	r = vc_openxt_find_key(&kd, "parent", &k, &path, &note);
	ok(r == 0 && k && k->len == 64, "missing dir skipped");
	vc_secret_free(k);
	free(path);
	vc_keydirs_free(&kd);
	free(note);
}

static void test_hash(void)
{
	struct vc_secret *k = NULL;
	unsigned char nonce[32] = { 0 }, h[32];
	char hex[65];

	ok(!vc_secret_read_file("keys/aes256xts,aes-xts-plain,512.key", "t", 0, 64, &k, NULL),
	   "read key");
	ok(!vc_openxt_hash(nonce, k, h), "SHA-256 computed");
	vc_hex(hex, h, 32);
	is_str(hex, "8eed9c8f9e1df512df285ed74da300ee6b73bbe0776ec3d142bee6d716534d84",
	       "SHA256(zero nonce || key) = vhd-util key -p");
	vc_secret_free(k);
}

/* Open image and derive its chain's keys as open does. */
static int chain_keys(const char *image, const struct vc_key_opts *o, struct vc_chain *c,
		      struct vc_crypt *crypt)
{
	struct vc_unlock u = { .o = o };
	int r;

	vc_clear_error();
	r = vc_chain_open(image, VC_FMT_UNKNOWN, 0, c);
	if (r)
		return r;
	r = vc_chain_prepare(&u, c, crypt);
	if (!r)
		r = vc_chain_unlock(&u, c, crypt);
	vc_unlock_done(&u);
	return r;
}

static void chain_done(struct vc_chain *c, struct vc_crypt *crypt)
{
	vc_crypt_clear(crypt, c->n);
	vc_chain_free(c);
}

struct chain_case {
	int nr;
	const char *image;
	const char *keydir;	/* --key-dir, NULL: environment */
	const char *env3, *env2;
	int err;		/* expected result */
	int bits[4];		/* key bits per layer (0 = none), when err == 0 */
	const char *msg;	/* substring of the error message */
};

static const struct chain_case cases[] = {
	{ 1, "aes256xts.vhd", "keys-wrong", NULL, NULL, -ENOKEY, { 0 }, "wrong key" },
	{ 2, "plain.vhd", "keys-unkeyed", NULL, NULL, -EACCES, { 0 }, "has no key hash" },
	{ 3, "aes128xts.vhd", "keys-prefer512", NULL, NULL, -ENOKEY, { 0 }, "512.key does not match" },
	{ 4, "aes256xts.vhd", "keys-unkeyed", NULL, NULL, -ENOKEY, { 0 }, "no usable key file" },
	{ 5, "child-inherit.vhd", "keys-inherit-keyfile", NULL, NULL, -EACCES, { 0 }, "child-inherit.vhd, but that image has no key hash" },
	{ 6, "grandchild.vhd", "keys-inherit-keyfile", NULL, NULL, -EACCES, { 0 }, "child-inherit.vhd, but" },
	{ 7, "parent.vhd", "keys-inherit-keyfile", NULL, NULL, 0, { 512 }, NULL },
	{ 8, "grandchild.vhd", "keys-noparent", NULL, NULL, -ENOKEY, { 0 }, "parent.vhd is encrypted" },
	{ 9, "child-own.vhd", "keys-noparent", NULL, NULL, -ENOKEY, { 0 }, "parent.vhd is encrypted" },
	{ 10, "aes256xts-nonce.vhd", "keys-truncated", NULL, NULL, -ENOKEY, { 0 }, "63 bytes" },
	{ 11, "aes128xts-nonce.vhd", "keys-trailing-newline", NULL, NULL, 0, { 256 }, NULL },
	{ 12, "aes256xts.vhd", NULL, NULL, NULL, -ENOKEY, { 0 }, "/config/platform-crypto-keys" },
	{ 13, "plain.vhd", NULL, NULL, NULL, 0, { 0 }, NULL },
	{ 14, "aes256xts.vhd", "keys-wrong,keys", NULL, NULL, -ENOKEY, { 0 }, "wrong key" },
	{ 15, "aes256xts.vhd", "keys,keys-wrong", NULL, NULL, 0, { 512 }, NULL },
	{ 16, "aes256xts.vhd", NULL, "keys-unkeyed,keys-wrong,keys", NULL, -ENOKEY, { 0 }, "wrong key" },
	{ 17, "plain.vhd", "keys", NULL, NULL, 0, { 0 }, NULL },
	/* positive chains and the environment variables */
	{ 100, "child-own.vhd", "keys", NULL, NULL, 0, { 256, 512 }, NULL },
	{ 101, "child-inherit.vhd", "keys", NULL, NULL, 0, { 512, 512 }, NULL },
	{ 102, "grandchild.vhd", NULL, "keys", NULL, 0, { 256, 512, 512 }, NULL },
	{ 103, "grandchild.vhd", NULL, NULL, "keys", 0, { 256, 512, 512 }, NULL },
	{ 104, "aes256xts.vhd", NULL, "keys", "keys-wrong", 0, { 512 }, NULL },
	{ 105, "aes256xts.vhd", NULL, "", "keys-wrong", -ENOKEY, { 0 }, "keys-wrong/aes256xts" },
};

static void test_chains(void)
{
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct chain_case *t = &cases[c];
		struct vc_passphrase_src src = { .tries = 1 };
		struct vc_key_opts o = { .pass = &src, .key_dir = t->keydir, .key_slot = -1,
					 .dry_run = true };
		struct vc_crypt crypt[VC_CHAIN_MAX];
		struct vc_chain ch;
		int r, i;

		if (t->env3)
			setenv(VC_OPENXT_ENV3, t->env3, 1);
		else
			unsetenv(VC_OPENXT_ENV3);
		if (t->env2)
			setenv(VC_OPENXT_ENV2, t->env2, 1);
		else
			unsetenv(VC_OPENXT_ENV2);
		memset(crypt, 0, sizeof(crypt));
		r = chain_keys(t->image, &o, &ch, crypt);
		is_int(r, t->err, "case %d: %s with %s: result", t->nr, t->image,
		       t->keydir ? t->keydir : "environment");
		if (t->msg) {
			ok(strstr(vc_last_error(), t->msg) != NULL, "case %d: message has \"%s\"",
			   t->nr, t->msg);
			if (!strstr(vc_last_error(), t->msg))
				printf("#   message: %s\n", vc_last_error());
		}
		if (t->err)
			is_int(vc_errno_to_exit(r), 2, "case %d: exit code 2", t->nr);
		for (i = 0; !t->err && i < ch.n; i++) {
			is_int(crypt[i].key ? (long long)crypt[i].key->len * 8 : 0, t->bits[i],
			       "case %d: layer %d (%s) key bits", t->nr, i, ch.img[i]->path);
			is_str(crypt[i].cipher, crypt[i].key ? "aes-xts-plain" : "none",
			       "case %d: layer %d cipher", t->nr, i);
		}
		chain_done(&ch, crypt);
	}
	unsetenv(VC_OPENXT_ENV3);
	unsetenv(VC_OPENXT_ENV2);
}

static void test_inherited_key_bytes(void)
{
	struct vc_passphrase_src src = { .tries = 1 };
	struct vc_key_opts o = { .pass = &src, .key_dir = "keys", .key_slot = -1, .dry_run = true };
	struct vc_crypt crypt[VC_CHAIN_MAX] = { 0 };
	struct vc_secret *pk = NULL;
	struct vc_chain c;

	ok(!chain_keys("child-inherit.vhd", &o, &c, crypt), "child-inherit chain keys");
	ok(!vc_secret_read_file("keys/parent,aes-xts-plain,512.key", "t", 0, 64, &pk, NULL),
	   "parent key");
	ok(crypt[0].key && crypt[1].key && pk && !memcmp(crypt[0].key->data, pk->data, 64) &&
	   !memcmp(crypt[1].key->data, pk->data, 64),
	   "unkeyed child is decrypted with its parent's key, the parent too");
	is_str(crypt[0].key_source, "keys/parent,aes-xts-plain,512.key", "key file recorded");
	vc_secret_free(pk);
	chain_done(&c, crypt);
}

static void test_top_key_file(void)
{
	static const struct {
		const char *image, *key;
		bool volume_key;	/* --volume-key-file, else --key-file */
		size_t size;		/* --keyfile-size */
		int err;
	} kc[] = {
		{ "aes256xts.vhd", "keys/aes256xts,aes-xts-plain,512.key", false, 0, 0 },
		{ "aes256xts.vhd", "keys/aes256xts,aes-xts-plain,512.key", true, 0, 0 },
		{ "aes256xts.vhd", "keys-wrong/aes256xts,aes-xts-plain,512.key", false, 0, -ENOKEY },
		{ "aes256xts.vhd", "keys-wrong/aes256xts,aes-xts-plain,512.key", true, 0, -ENOKEY },
		{ "plain.vhd", "keys-unkeyed/plain,aes-xts-plain,512.key", false, 0, -EACCES },
		{ "aes256xts-nonce.vhd", "keys-truncated/aes256xts-nonce,aes-xts-plain,512.key",
		  false, 0, -EINVAL },
		{ "child-own.vhd", "keys/child-own,aes-xts-plain,256.key", false, 0, 0 },
		/* 33 bytes: the key directory reads 32 of them, so does --keyfile-size 32 */
		{ "aes128xts-nonce.vhd", "keys-trailing-newline/aes128xts-nonce,aes-xts-plain,256.key",
		  false, 0, -EINVAL },
		{ "aes128xts-nonce.vhd", "keys-trailing-newline/aes128xts-nonce,aes-xts-plain,256.key",
		  false, 32, 0 },
	};
	size_t c;

	for (c = 0; c < sizeof(kc) / sizeof(kc[0]); c++) {
		struct vc_passphrase_src src = { .key_file = kc[c].volume_key ? NULL : kc[c].key,
						 .keyfile_size = kc[c].size, .tries = 1 };
		struct vc_key_opts o = { .pass = &src, .key_dir = "keys", .key_slot = -1,
					 .key_file = src.key_file,
					 .volume_key_file = kc[c].volume_key ? kc[c].key : NULL,
					 .dry_run = true };
		struct vc_crypt crypt[VC_CHAIN_MAX] = { 0 };
		struct vc_chain ch;
		int r;

		r = chain_keys(kc[c].image, &o, &ch, crypt);
		is_int(r, kc[c].err, "%s %s%s for %s", kc[c].volume_key ? "--volume-key-file" :
		       "--key-file", kc[c].key, kc[c].size ? " --keyfile-size 32" : "", kc[c].image);
		if (r == -EINVAL)
			ok(strstr(vc_last_error(), "--keyfile-size"), "the message names "
			   "--keyfile-size (%s)", vc_last_error());
		vc_passphrase_clear(&src);
		chain_done(&ch, crypt);
	}
}

int main(void)
{
	if (chdir("tests/tmp")) {
		printf("Bail out! tests/tmp missing (run make test)\n");
		return 1;
	}
	test_basename();
	test_keydirs();
	test_find_key();
	test_hash();
	test_chains();
	test_inherited_key_bytes();
	test_top_key_file();
	return tap_done();
}
