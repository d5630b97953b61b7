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

#include "activate.h"
#include "openxt.h"
#include "tap.h"

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
	struct vc_key *k = NULL;
	char path[4096], note[4096];
	int r;

	vc_keydirs_parse("keys-prefer512", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes128xts", &k, path, sizeof(path), note, sizeof(note));
	ok(r == 0 && k && k->len == 64, "512 file preferred over 256");
	is_str(path, "keys-prefer512/aes128xts,aes-xts-plain,512.key", "512 path");
	vc_key_free(k);
	vc_keydirs_free(&kd);

	vc_keydirs_parse("keys-truncated", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes256xts-nonce", &k, path, sizeof(path), note, sizeof(note));
	is_int(r, -ENOENT, "short 512 file ignored, no 256 file: ENOENT");
	ok(strstr(note, "63 bytes") != NULL, "note names the short file");
	vc_keydirs_free(&kd);

	vc_keydirs_parse("keys-trailing-newline", "t", &kd);
	r = vc_openxt_find_key(&kd, "aes128xts-nonce", &k, path, sizeof(path), note, sizeof(note));
	ok(r == 0 && k && k->len == 32, "33-byte 256 file: first 32 bytes");
	vc_key_free(k);
	vc_keydirs_free(&kd);

	vc_keydirs_parse("nonexistent,keys", "t", &kd);
	r = vc_openxt_find_key(&kd, "parent", &k, path, sizeof(path), note, sizeof(note));
	ok(r == 0 && k && k->len == 64, "missing dir skipped");
	vc_key_free(k);
	vc_keydirs_free(&kd);
}

static void test_hash(void)
{
	struct vc_key *k = NULL;
	unsigned char nonce[32] = { 0 }, h[32];
	char hex[65];

	ok(!vc_read_secret_file("keys/aes256xts,aes-xts-plain,512.key", 64, &k), "read key");
	vc_openxt_hash(nonce, k, h);
	vc_hex(hex, h, 32);
	is_str(hex, "8eed9c8f9e1df512df285ed74da300ee6b73bbe0776ec3d142bee6d716534d84",
	       "SHA256(zero nonce || key) = vhd-util key -p");
	vc_key_free(k);
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
		struct vc_open_opts o = { .image = t->image, .name = "t", .key_dir = t->keydir,
					  .key_slot = -1, .tries = 1, .dry_run = true };
		struct vc_secret_src src = { .tries = 1 };
		struct vc_layer *top = NULL, *l;
		int r, i;

		if (t->env3)
			setenv(VC_OPENXT_ENV3, t->env3, 1);
		else
			unsetenv(VC_OPENXT_ENV3);
		if (t->env2)
			setenv(VC_OPENXT_ENV2, t->env2, 1);
		else
			unsetenv(VC_OPENXT_ENV2);
		vc_clear_error();
		r = vc_chain_open(t->image, VC_FMT_UNKNOWN, &top);
		ok(r == 0, "case %d: %s opens (%s)", t->nr, t->image, vc_last_error());
		if (r)
			continue;
		r = vc_chain_keys(&o, top, &src);
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
		for (i = 0, l = top; !t->err && l; l = l->parent, i++) {
			is_int(l->key ? (long long)l->key->len * 8 : 0, t->bits[i],
			       "case %d: layer %d (%s) key bits", t->nr, i, l->path);
			is_str(l->cipher, l->key ? "aes-xts-plain" : "none",
			       "case %d: layer %d cipher", t->nr, i);
		}
		vc_chain_free(top);
	}
	unsetenv(VC_OPENXT_ENV3);
	unsetenv(VC_OPENXT_ENV2);
}

static void test_inherited_key_bytes(void)
{
	struct vc_open_opts o = { .image = "child-inherit.vhd", .name = "t", .key_dir = "keys",
				  .key_slot = -1, .tries = 1, .dry_run = true };
	struct vc_secret_src src = { .tries = 1 };
	struct vc_layer *top = NULL;
	struct vc_key *pk = NULL;

	ok(!vc_chain_open(o.image, VC_FMT_UNKNOWN, &top) && !vc_chain_keys(&o, top, &src),
	   "child-inherit chain keys");
	ok(!vc_read_secret_file("keys/parent,aes-xts-plain,512.key", 64, &pk), "parent key");
	ok(top->key && top->parent->key && pk && !memcmp(top->key->data, pk->data, 64) &&
	   !memcmp(top->parent->key->data, pk->data, 64),
	   "unkeyed child is decrypted with its parent's key, the parent too");
	is_str(top->keyfile, "keys/parent,aes-xts-plain,512.key", "key file recorded");
	vc_key_free(pk);
	vc_chain_free(top);
}

static void test_top_key_file(void)
{
	static const struct {
		const char *image, *key;
		int err;
	} kc[] = {
		{ "aes256xts.vhd", "keys/aes256xts,aes-xts-plain,512.key", 0 },
		{ "aes256xts.vhd", "keys-wrong/aes256xts,aes-xts-plain,512.key", -ENOKEY },
		{ "plain.vhd", "keys-unkeyed/plain,aes-xts-plain,512.key", -EACCES },
		{ "aes256xts-nonce.vhd", "keys-truncated/aes256xts-nonce,aes-xts-plain,512.key", -EINVAL },
		{ "child-own.vhd", "keys/child-own,aes-xts-plain,256.key", 0 },
	};
	size_t c;

	for (c = 0; c < sizeof(kc) / sizeof(kc[0]); c++) {
		struct vc_open_opts o = { .image = kc[c].image, .name = "t", .key_file = kc[c].key,
					  .key_dir = "keys", .key_slot = -1, .tries = 1,
					  .dry_run = true };
		struct vc_secret_src src = { .key_file = kc[c].key, .tries = 1 };
		struct vc_layer *top = NULL;
		int r;

		vc_clear_error();
		r = vc_chain_open(o.image, VC_FMT_UNKNOWN, &top);
		if (!r)
			r = vc_chain_keys(&o, top, &src);
		is_int(r, kc[c].err, "--key-file %s for %s", kc[c].key, kc[c].image);
		vc_secret_clear(&src);
		vc_chain_free(top);
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
