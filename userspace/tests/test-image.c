// SPDX-License-Identifier: GPL-2.0
/*
 * Image parsing and chain resolution: format detection, VHD parent
 * locators (decoding and libvhd's path rule), qcow2 backing file names
 * (QEMU's rule), the fixture images, images made by qemu-img, the table
 * lines vhdcryptsetup generates and their parser.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "activate.h"
#include "image.h"
#include "vcjson.h"
#include "status.h"
#include "tap.h"

static void test_detect(void)
{
	u8 head[4096] = { 0 }, tail[512] = { 0 };

	is_int(vc_detect(head, sizeof(head), tail, true), VC_FMT_UNKNOWN, "zeros: unknown");
	memcpy(head, "QFI\xfb", 4);
	is_int(vc_detect(head, sizeof(head), tail, true), VC_FMT_QCOW2, "qcow2 magic");
	memset(head, 0, 4);
	memcpy(tail, "conectix", 8);
	is_int(vc_detect(head, sizeof(head), tail, true), VC_FMT_VHD, "VHD footer cookie at the end");
	memset(tail, 0, 8);
	memcpy(head, "conectix", 8);
	is_int(vc_detect(head, sizeof(head), tail, true), VC_FMT_VHD, "VHD footer copy at 0");
	is_int(vc_detect(head, 100, tail, false), VC_FMT_UNKNOWN, "short file");
}

static void test_locators(void)
{
	static const u8 w2ru[] = { '.', 0, '\\', 0, 'p', 0, 'a', 0, 'r', 0, '.', 0, 'v', 0, 'h', 0, 'd', 0 };
	static const u8 w2ku[] = { 'C', 0, ':', 0, '\\', 0, 'd', 0, '\\', 0, 'p', 0, 0, 0, 'x', 0 };
	static const u8 utf16[] = { 0x3d, 0xd8, 0x00, 0xde, 'a', 0, 0xe9, 0 };	/* U+1F600 a é */
	static const u8 bad16[] = { 0x00, 0xdc, 'a', 0 };
	char *s;

	s = vc_vhd_locator_decode(VHD_PLAT_MACX, (const u8 *)"file://./parent.vhd", 19);
	is_str(s, "./parent.vhd", "MacX file:// stripped");
	free(s);
	s = vc_vhd_locator_decode(VHD_PLAT_MACX, (const u8 *)"./parent.vhd", 12);
	ok(!s, "MacX without file:// refused (libvhd)");
	free(s);
	s = vc_vhd_locator_decode(VHD_PLAT_W2RU, w2ru, sizeof(w2ru));
	is_str(s, "./par.vhd", "W2ru UTF-16LE, backslashes");
	free(s);
	s = vc_vhd_locator_decode(VHD_PLAT_W2KU, w2ku, sizeof(w2ku));
	is_str(s, "/d/p", "W2ku drive letter dropped, stops at NUL");
	free(s);
	s = vc_vhd_locator_decode(VHD_PLAT_W2KU, utf16, sizeof(utf16));
	is_str(s, "\xf0\x9f\x98\x80" "a\xc3\xa9", "surrogate pair and Latin-1 to UTF-8");
	free(s);
	s = vc_vhd_locator_decode(VHD_PLAT_W2KU, bad16, sizeof(bad16));
	ok(!s, "lone low surrogate refused");
	free(s);
	s = vc_vhd_locator_decode(0x4d616320, (const u8 *)"x", 1);
	ok(!s, "\"Mac \" alias locators ignored");
	free(s);
}

static void test_paths(void)
{
	char *s, *cwd = getcwd(NULL, 0), want[4200];

	s = vc_vhd_parent_candidate("child-inherit.vhd", "./parent.vhd");
	is_str(s, "././parent.vhd", "\".\" locator joined to \".\" unnormalised (tapdisk)");
	free(s);
	s = vc_vhd_parent_candidate("././child-inherit.vhd", "./parent.vhd");
	is_str(s, "./././parent.vhd", "two levels down");
	free(s);
	s = vc_vhd_parent_candidate("/a/b/c.vhd", "./p.vhd");
	is_str(s, "/a/b/./p.vhd", "absolute child dir");
	free(s);
	s = vc_vhd_parent_candidate("/a/b/c.vhd", "/abs/p.vhd");
	is_str(s, "/abs/p.vhd", "absolute locator");
	free(s);
	s = vc_vhd_parent_candidate("plain.vhd", "sub/p.vhd");
	snprintf(want, sizeof(want), "%s/sub/p.vhd", cwd);
	is_str(s, want, "other relative: the child's real directory");
	free(s);

	s = vc_qcow2_backing_path("/a/b/top.qcow2", "base.qcow2");
	is_str(s, "/a/b/base.qcow2", "qcow2 backing relative to the image");
	free(s);
	s = vc_qcow2_backing_path("top.qcow2", "base.qcow2");
	is_str(s, "base.qcow2", "image without directory");
	free(s);
	s = vc_qcow2_backing_path("d/top.qcow2", "../base.qcow2");
	is_str(s, "d/../base.qcow2", "not normalised");
	free(s);
	s = vc_qcow2_backing_path("/a/top", "/abs/base");
	is_str(s, "/abs/base", "absolute backing");
	free(s);
	s = vc_qcow2_backing_path("/a/top", "file:base");
	is_str(s, "/a/base", "file: prefix");
	free(s);
	s = vc_qcow2_backing_path("/a/top", "nbd:host:10809");
	ok(!s, "protocol refused");
	free(s);
	s = vc_qcow2_backing_path("/a/top", "json:{\"driver\":\"raw\"}");
	ok(!s, "json: refused");
	free(s);
	s = vc_qcow2_backing_path("/a/top", "sub/x:y");
	is_str(s, "/a/sub/x:y", "colon after a slash is a file name");
	free(s);
	free(cwd);
}

static void test_uuid(void)
{
	const u8 u[16] = { 0xdb, 0x22, 0xce, 0x2c, 0xaf, 0xbf, 0x43, 0x6f,
			   0xbb, 0xa8, 0xb6, 0xd5, 0x0d, 0x3d, 0x3d, 0x53 };
	char s[37];

	vc_uuid_fmt(s, u);
	is_str(s, "db22ce2c-afbf-436f-bba8-b6d50d3d3d53", "uuid 8-4-4-4-12");
}

static void test_fixtures(void)
{
	struct vc_layer *l = NULL, *top = NULL;
	int r;

	r = vc_layer_open("plain.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_VHD, "plain.vhd is a VHD");
	is_int(l->virtual_size, 100663296, "plain.vhd current_size, not CHS");
	is_str(l->uuid, "fd0b0132-0103-4083-986b-b5b145d0583b", "footer uuid");
	ok(!l->kh.set && !strcmp(l->kh_source, "batmap"), "no keyhash, batmap present");
	vc_layer_free(l);

	r = vc_layer_open("aes256xts-nonce.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->kh.set, "aes256xts-nonce keyhash set");
	ok(l->kh.nonce[0] == 0xd0 && l->kh.nonce[31] == 0x84 && l->kh.hash[0] == 0xdc &&
	   l->kh.hash[31] == 0x11, "nonce and hash at batmap+30 / +62");
	vc_layer_free(l);

	r = vc_layer_open("big.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->virtual_size == 2189359579136ull, "big.vhd: 2039 GiB");
	vc_layer_free(l);

	r = vc_layer_open("plain.vhd", VC_FMT_QCOW2, 0, &l);
	is_int(r, -EMEDIUMTYPE, "--type qcow2 on a VHD refused");
	ok(strstr(vc_last_error(), "not a qcow2 image") != NULL, "message: not a qcow2 image");
	vc_clear_error();

	r = vc_chain_open("grandchild.vhd", VC_FMT_UNKNOWN, &top);
	ok(r == 0 && vc_chain_length(top) == 3, "grandchild chain: 3 layers");
	if (!r) {
		is_str(top->parent->path, "././child-inherit.vhd", "parent path as tapdisk opens it");
		is_str(top->parent->parent->path, "./././parent.vhd", "grandparent path");
		is_str(top->parent->parent->uuid, "db22ce2c-afbf-436f-bba8-b6d50d3d3d53",
		       "grandparent uuid");
	}
	vc_chain_free(top);
}

static int sh(const char *cmd)
{
	int r = system(cmd);

	return r == 0 ? 0 : -1;
}

static void test_qemu_images(void)
{
	struct vc_layer *l = NULL, *top = NULL;
	int r;

	if (sh("command -v qemu-img >/dev/null")) {
		ok(1, "# SKIP qemu-img not installed");
		return;
	}
	mkdir("gen", 0755);
	r = sh("cd gen && qemu-img create -q -f qcow2 base.qcow2 8M && "
	       "qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M && "
	       "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && "
	       "qemu-img create -q -f raw raw.img 4M && "
	       "qemu-img create -q -f qcow2 -b raw.img -F raw overraw.qcow2 && "
	       "qemu-img create -q -f qcow2 -b missing.qcow2 -F qcow2 -u orphan.qcow2 8M && "
	       "qemu-img create -q -f vpc vpc.vhd 8M && "
	       "qemu-img create -q -f vpc -o subformat=fixed,force_size=on fixed.vhd 8M && "
	       "qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 1M && "
	       /* QEMU times PBKDF2 and now and then fails on coarse clocks: retry */
	       "for i in 1 2 3 4 5; do qemu-img create -q -f qcow2 --object secret,id=s,data=pw "
	       "-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 luks.qcow2 8M "
	       "2>/dev/null && break; done && test -s luks.qcow2");
	ok(r == 0, "qemu-img made the images");
	if (r)
		return;

	r = vc_layer_open("gen/base.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_QCOW2 && l->qh.version == 3 && l->virtual_size == 8 << 20,
	   "qcow2 v3, 8 MiB");
	ok(!strcmp(l->uuid_source, "inode"), "qcow2 without LUKS: uuid from the inode");
	vc_layer_free(l);

	r = vc_layer_open("gen/v2.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qh.version == 2, "qcow2 v2");
	vc_layer_free(l);

	r = vc_layer_open("gen/small.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qh.cluster_bits == 9, "512-byte clusters");
	vc_layer_free(l);

	r = vc_chain_open("gen/top.qcow2", VC_FMT_UNKNOWN, &top);
	ok(r == 0 && vc_chain_length(top) == 2, "qcow2 backing chain");
	if (!r) {
		is_str(top->parent_path, "gen/base.qcow2", "backing relative to the overlay");
		is_str(top->backing_fmt, "qcow2", "backing format extension");
	}
	vc_chain_free(top);

	r = vc_chain_open("gen/overraw.qcow2", VC_FMT_UNKNOWN, &top);
	ok(r == 0 && vc_chain_length(top) == 2 && top->parent->fmt == VC_FMT_RAW,
	   "raw backing file");
	vc_chain_free(top);

	r = vc_chain_open("gen/orphan.qcow2", VC_FMT_UNKNOWN, &top);
	is_int(r, -ENOENT, "missing backing file");
	ok(strstr(vc_last_error(), "gen/missing.qcow2") != NULL, "message names the path tried");
	is_int(vc_errno_to_exit(r), 4, "exit code 4");
	vc_clear_error();

	r = vc_layer_open("gen/vpc.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_VHD && l->vf.type == VHD_TYPE_DYNAMIC, "qemu-img vpc dynamic");
	ok(r == 0 && !strcmp(l->kh_source, "none") && !l->kh.set, "qemu VHD: no batmap, no xattr");
	vc_layer_free(l);

	r = vc_layer_open("gen/fixed.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->vf.type == VHD_TYPE_FIXED && l->virtual_size == 8 << 20, "fixed VHD");
	vc_layer_free(l);

	r = vc_layer_open("gen/luks.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qh.crypt_method == QCOW2_CRYPT_LUKS && l->fde_length > 0,
	   "LUKS region from the FDE header extension");
	ok(r == 0 && l->luks_version == 1 && !strcmp(l->uuid_source, "luks") &&
	   !strcmp(l->uuid, l->luks_uuid), "libblkid finds LUKS1 in the region; uuid = LUKS UUID");
	vc_layer_free(l);

	r = vc_layer_open("gen/raw.img", VC_FMT_UNKNOWN, 0, &l);
	is_int(r, -EMEDIUMTYPE, "raw file is not an image");
	is_int(vc_errno_to_exit(r), 4, "exit code 4");
	vc_clear_error();
}

static void test_tables(void)
{
	struct vc_layer l;
	struct vc_table t;
	char *p, *m;

	memset(&l, 0, sizeof(l));
	l.fmt = VC_FMT_QCOW2;
	snprintf(l.cipher, sizeof(l.cipher), "aes-xts-plain64");
	l.iv_host = true;
	p = vc_table_params(&l, makedev(7, 3), NULL, ":64:logon:vhdcrypt:q", makedev(254, 1), NULL);
	is_str(p, "qcow2 7:3 aes-xts-plain64 :64:logon:vhdcrypt:q 0 2 backing:254:1 iv_sector:host",
	       "qcow2 LUKS layer over a backing device");
	ok(!vc_table_parse(p, &t) && t.iv_host && t.backing == (dev_t)makedev(254, 1) &&
	   t.image == (dev_t)makedev(7, 3) && t.key_bytes == 64 && !strcmp(t.key_location, "keyring"),
	   "parsed back");
	vc_safe_free(p);

	memset(&l, 0, sizeof(l));
	l.fmt = VC_FMT_VHD;
	snprintf(l.cipher, sizeof(l.cipher), "aes-xts-plain");
	p = vc_table_params(&l, makedev(7, 0), NULL, "00112233", 0, NULL);
	is_str(p, "vhd 7:0 aes-xts-plain 00112233 0", "OpenXT VHD, hex key");
	m = vc_table_mask(p);
	is_str(m, "vhd 7:0 aes-xts-plain <hex-key-4-bytes> 0", "hex key masked");
	ok(!vc_table_parse(p, &t) && !strcmp(t.key_location, "table") && t.key_bytes == 4,
	   "hex key: location table");
	free(m);
	vc_safe_free(p);

	memset(&l, 0, sizeof(l));
	l.fmt = VC_FMT_QCOW2;
	snprintf(l.cipher, sizeof(l.cipher), "none");
	l.data_offset = 4096;
	p = vc_table_params(&l, makedev(7, 1), NULL, "-", 0, NULL);
	is_str(p, "qcow2 7:1 none - 0 1 data_offset:4096", "unencrypted with data offset");
	m = vc_table_mask(p);
	is_str(m, p, "nothing to mask");
	ok(!vc_table_parse(p, &t) && t.data_offset == 4096 && !strcmp(t.key_location, "none"),
	   "data_offset parsed");
	free(m);
	vc_safe_free(p);

	/* detached LUKS header over a chain: the top layer covers the whole disk */
	memset(&l, 0, sizeof(l));
	l.fmt = VC_FMT_QCOW2;
	snprintf(l.cipher, sizeof(l.cipher), "aes-xts-plain64");
	l.whole_disk = true;
	l.data_offset = 2048;
	p = vc_table_params(&l, makedev(7, 5), NULL, ":64:logon:vhdcrypt:h", makedev(254, 4), NULL);
	is_str(p, "qcow2 7:5 aes-xts-plain64 :64:logon:vhdcrypt:h 0 3 backing:254:4 whole_disk "
	       "data_offset:2048", "whole_disk, in the kernel's option order");
	ok(!vc_table_parse(p, &t) && t.whole_disk && !t.iv_host && t.data_offset == 2048 &&
	   t.backing == (dev_t)makedev(254, 4), "whole_disk parsed");
	vc_safe_free(p);
	l.data_offset = 0;
	p = vc_table_params(&l, makedev(7, 5), NULL, ":64:logon:vhdcrypt:h", 0, NULL);
	is_str(p, "qcow2 7:5 aes-xts-plain64 :64:logon:vhdcrypt:h 0 1 whole_disk",
	       "whole_disk alone");
	vc_safe_free(p);
	ok(!vc_table_parse("qcow2 7:5 none - 0", &t) && !t.whole_disk, "no whole_disk by default");
}

static void test_json(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	vc_json_quote(f, "a\"b\\c\n\x01");
	fclose(f);
	is_str(buf, "\"a\\\"b\\\\c\\n\\u0001\"", "JSON string escaping");
	free(buf);
}

int main(void)
{
	if (chdir("tests/tmp")) {
		printf("Bail out! tests/tmp missing (run make test)\n");
		return 1;
	}
	test_detect();
	test_locators();
	test_paths();
	test_uuid();
	test_fixtures();
	test_qemu_images();
	test_tables();
	test_json();
	return tap_done();
}
