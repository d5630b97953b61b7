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

#include "chain.h"
#include "image.h"
#include "output.h"
#include "secret.h"
#include "table.h"
#include "tap.h"
#include "util.h"

static int sh(const char *cmd)
{
	int r = system(cmd);

	return r == 0 ? 0 : -1;
}

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
	static const struct {
		bool vhd;		/* VHD locator, else qcow2 backing name */
		const char *child, *name, *want;	/* want NULL: refused */
		const char *what;
	} cases[] = {
		{ true, "child-inherit.vhd", "./parent.vhd", "parent.vhd",
		  "\".\" locator joined to the child's directory, \".\" dropped" },
		{ true, "d/./child-inherit.vhd", "./parent.vhd", "d/parent.vhd", "two levels down" },
		{ true, "/a/b/c.vhd", "./p.vhd", "/a/b/p.vhd", "absolute child dir" },
		{ true, "d/c.vhd", "../p.vhd", "d/../p.vhd", "\"..\" kept (libvhd does not resolve it)" },
		{ true, "/a/b/c.vhd", "/abs/p.vhd", "/abs/p.vhd", "absolute locator" },
		{ false, "/a/b/top.qcow2", "base.qcow2", "/a/b/base.qcow2",
		  "qcow2 backing relative to the image" },
		{ false, "top.qcow2", "base.qcow2", "base.qcow2", "image without directory" },
		{ false, "d/top.qcow2", "../base.qcow2", "d/../base.qcow2", "not normalised" },
		{ false, "/a/top", "/abs/base", "/abs/base", "absolute backing" },
		{ false, "/a/top", "file:base", "/a/base", "file: prefix" },
		{ false, "/a/top", "nbd:host:10809", NULL, "protocol refused" },
		{ false, "/a/top", "json:{\"driver\":\"raw\"}", NULL, "json: refused" },
		{ false, "/a/top", "sub/x:y", "/a/sub/x:y", "colon after a slash is a file name" },
	};
	char *s, *cwd = getcwd(NULL, 0), want[4200];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = cases[i].vhd ? vc_vhd_parent_candidate(cases[i].child, cases[i].name) :
				   vc_qcow2_backing_path(cases[i].child, cases[i].name);
		is_str(s, cases[i].want, "%s", cases[i].what);
		free(s);
	}
	s = vc_vhd_parent_candidate("plain.vhd", "sub/p.vhd");
	snprintf(want, sizeof(want), "%s/sub/p.vhd", cwd);
	is_str(s, want, "other relative: the child's real directory");
	free(s);
	free(cwd);
}

static void test_path_clean(void)
{
	static const char *cases[][2] = {
		{ "./././parent.vhd", "parent.vhd" }, { "a//b/./c", "a/b/c" }, { "/./x", "/x" },
		{ ".", "." }, { "./", "." }, { "/", "/" }, { "a/../b", "a/../b" }, { "a/", "a" },
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = vc_path_clean(cases[i][0]);
		is_str(s, cases[i][1], "path clean %s", cases[i][0]);
		free(s);
	}
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
	struct vc_image *l = NULL;
	struct vc_chain c;
	int r;

	r = vc_image_open("plain.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_VHD, "plain.vhd is a VHD");
	is_int(l->virtual_size, 100663296, "plain.vhd current_size, not CHS");
	is_str(l->uuid, "fd0b0132-0103-4083-986b-b5b145d0583b", "footer uuid");
	ok(!l->vhd.keyhash.set && vhd_has_batmap(&l->vhd.footer), "no keyhash, batmap present");
	ok(!l->damage, "not damaged");
	vc_image_free(l);

	r = vc_image_open("aes256xts-nonce.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->vhd.keyhash.set, "aes256xts-nonce keyhash set");
	ok(l->vhd.keyhash.nonce[0] == 0xd0 && l->vhd.keyhash.nonce[31] == 0x84 &&
	   l->vhd.keyhash.hash[0] == 0xdc && l->vhd.keyhash.hash[31] == 0x11,
	   "nonce and hash at batmap+30 / +62");
	vc_image_free(l);

	r = vc_image_open("big.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->virtual_size == 2189359579136ull, "big.vhd: 2039 GiB");
	vc_image_free(l);

	r = vc_image_open("plain.vhd", VC_FMT_QCOW2, 0, &l);
	is_int(r, -EMEDIUMTYPE, "--type qcow2 on a VHD refused");
	ok(strstr(vc_last_error(), "not a qcow2 image") != NULL, "message: not a qcow2 image");
	vc_clear_error();

	r = vc_chain_open("grandchild.vhd", VC_FMT_UNKNOWN, 0, &c);
	ok(r == 0 && c.n == 3, "grandchild chain: 3 layers");
	if (!r) {
		is_str(c.img[1]->path, "child-inherit.vhd", "parent path, \".\" dropped");
		is_str(c.img[2]->path, "parent.vhd", "grandparent path");
		is_str(c.img[2]->uuid, "db22ce2c-afbf-436f-bba8-b6d50d3d3d53",
		       "grandparent uuid");
	}
	vc_chain_free(&c);
}

/* Truncated copies of an image: damaged, readable or not. */
static void test_truncated(void)
{
	struct vc_image *l = NULL;
	int r;

	r = sh("head -c 5242880 aes256xts.vhd >trunc5m.vhd");
	ok(r == 0, "truncated copy made");
	r = vc_image_open("trunc5m.vhd", VC_FMT_UNKNOWN, 0, &l);
	is_int(r, -EMEDIUMTYPE, "5 MiB of a 100 MiB OpenXT VHD: refused");
	ok(strstr(vc_last_error(), "is damaged: VHD block") && strstr(vc_last_error(), "truncated"),
	   "message: a block outside the file (%s)", vc_last_error());
	is_int(vc_exit_code(r), 1, "exit code 1, as cryptsetup for a damaged header");
	vc_clear_error();
}

static void test_qemu_images(void)
{
	struct vc_image *l = NULL;
	struct vc_chain c;
	char want[37];
	int r;

	if (sh("command -v qemu-img >/dev/null")) {
		ok(1, "# SKIP qemu-img not installed");
		return;
	}
	mkdir("gen", 0755);
	r = sh("cd gen && qemu-img create -q -f qcow2 base.qcow2 8M && "
	       "qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M && "
	       "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && "
	       "qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 v2top.qcow2 && "
	       "qemu-img create -q -f raw raw.img 4M && "
	       "qemu-img create -q -f qcow2 -b raw.img -F raw overraw.qcow2 && "
	       "qemu-img create -q -f qcow2 -b missing.qcow2 -F qcow2 -u orphan.qcow2 8M && "
	       "qemu-img create -q -f vpc vpc.vhd 8M && "
	       "qemu-img create -q -f vpc -o subformat=fixed,force_size=on fixed.vhd 8M && "
	       "qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 1M && "
	       /* QEMU times PBKDF2 and now and then fails on coarse clocks: retry */
	       "for v in 1.1 0.10; do for i in 1 2 3 4 5; do "
	       "qemu-img create -q -f qcow2 --object secret,id=s,data=pw "
	       "-o compat=$v,encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "
	       "luks-$v.qcow2 8M 2>/dev/null && break; done; test -s luks-$v.qcow2 || exit 1; done && "
	       "head -c 300 base.qcow2 >trunc300.qcow2 && head -c 2048 vpc.vhd >trunc2k.vhd");
	ok(r == 0, "qemu-img made the images");
	if (r)
		return;

	r = vc_image_open("gen/base.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_QCOW2 && l->qcow2.header.version == 3 &&
	   l->virtual_size == 8 << 20, "qcow2 v3, 8 MiB");
	if (!r) {
		snprintf(want, sizeof(want), "%08x-%04x-%04x-0000-%012llx",
			 (unsigned int)((uint64_t)l->st.st_dev >> 32),
			 (unsigned int)(l->st.st_dev >> 16) & 0xffff,
			 (unsigned int)l->st.st_dev & 0xffff, (unsigned long long)l->st.st_ino);
		is_str(l->uuid, want, "qcow2 without LUKS: uuid from st_dev and the inode");
	}
	vc_image_free(l);

	r = vc_image_open("gen/v2.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qcow2.header.version == 2, "qcow2 v2");
	vc_image_free(l);

	r = vc_image_open("gen/small.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qcow2.header.cluster_bits == 9, "512-byte clusters");
	vc_image_free(l);

	r = vc_chain_open("gen/top.qcow2", VC_FMT_UNKNOWN, 0, &c);
	ok(r == 0 && c.n == 2, "qcow2 backing chain");
	if (!r) {
		is_str(c.img[0]->parent_path, "gen/base.qcow2", "backing relative to the overlay");
		is_str(c.img[0]->qcow2.backing_fmt, "qcow2", "backing format extension");
	}
	vc_chain_free(&c);

	r = vc_chain_open("gen/v2top.qcow2", VC_FMT_UNKNOWN, 0, &c);
	ok(r == 0 && c.n == 2 && c.img[0]->qcow2.backing_fmt &&
	   !strcmp(c.img[0]->qcow2.backing_fmt, "qcow2"),
	   "qcow2 v2: backing format extension after the 72-byte header");
	vc_chain_free(&c);

	r = vc_chain_open("gen/overraw.qcow2", VC_FMT_UNKNOWN, 0, &c);
	ok(r == 0 && c.n == 2 && c.img[1]->fmt == VC_FMT_RAW, "raw backing file");
	vc_chain_free(&c);

	r = vc_chain_open("gen/orphan.qcow2", VC_FMT_UNKNOWN, 0, &c);
	is_int(r, -ENOENT, "missing backing file");
	ok(strstr(vc_last_error(), "gen/missing.qcow2") != NULL, "message names the path tried");
	is_int(vc_errno_to_exit(r), 4, "exit code 4");
	vc_clear_error();

	r = vc_image_open("gen/vpc.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->fmt == VC_FMT_VHD && l->vhd.footer.type == VHD_TYPE_DYNAMIC,
	   "qemu-img vpc dynamic");
	ok(r == 0 && !vhd_has_batmap(&l->vhd.footer) && !l->vhd.keyhash.set,
	   "qemu VHD: no batmap, no xattr");
	vc_image_free(l);

	r = vc_image_open("gen/fixed.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->vhd.footer.type == VHD_TYPE_FIXED && l->virtual_size == 8 << 20,
	   "fixed VHD");
	vc_image_free(l);

	r = vc_image_open("gen/luks-1.1.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qcow2.header.crypt_method == QCOW2_CRYPT_LUKS && l->qcow2.fde_length > 0,
	   "LUKS region from the FDE header extension");
	ok(r == 0 && l->qcow2.luks_version == 1 && !strcmp(l->uuid, l->qcow2.luks_uuid),
	   "libblkid finds LUKS1 in the region; uuid = LUKS UUID");
	vc_image_free(l);

	r = vc_image_open("gen/luks-0.10.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->qcow2.header.version == 2 && l->qcow2.fde_length > 0 &&
	   l->qcow2.luks_version == 1,
	   "qcow2 v2 with LUKS: the FDE extension follows the 72-byte header (%s)",
	   r ? vc_last_error() : "ok");
	vc_image_free(l);
	vc_clear_error();

	r = vc_image_open("gen/raw.img", VC_FMT_UNKNOWN, 0, &l);
	is_int(r, -EMEDIUMTYPE, "raw file is not an image");
	is_int(vc_errno_to_exit(r), 1, "exit code 1, as cryptsetup for not a LUKS device");
	vc_clear_error();
	r = vc_image_open("gen/raw.img", VC_FMT_UNKNOWN, VC_OPEN_ALLOW_RAW, &l);
	ok(r == 0 && l->fmt == VC_FMT_RAW && l->virtual_size == 4 << 20,
	   "raw file allowed: a payload");
	vc_image_free(l);

	r = vc_image_open("gen/trunc2k.vhd", VC_FMT_UNKNOWN, 0, &l);
	ok(r == 0 && l->damage && strstr(l->damage, "truncated"),
	   "an empty dynamic VHD without its trailing footer: readable, but damaged (%s)",
	   r ? vc_last_error() : l->damage ? l->damage : "no damage");
	vc_image_free(l);
	vc_clear_error();

	r = vc_image_open("gen/trunc300.qcow2", VC_FMT_UNKNOWN, 0, &l);
	ok(r == -EMEDIUMTYPE && strstr(vc_last_error(), "truncated"),
	   "truncated qcow2: the message says so (%s)", vc_last_error());
	vc_clear_error();
}

static void test_tables(void)
{
	struct vc_table t, in;
	char *p, *m;

	in = (struct vc_table){ .format = "qcow2", .image = "7:3", .cipher = "aes-xts-plain64",
				.key = ":64:logon:vhdcrypt:q", .backing = "254:1",
				.iv_host = true };
	p = vc_table_format(&in, false);
	is_str(p, "qcow2 7:3 aes-xts-plain64 :64:logon:vhdcrypt:q 0 2 backing:254:1 iv_sector:host",
	       "qcow2 LUKS layer over a backing device");
	ok(!vc_table_parse(p, &t) && t.iv_host && t.backing_dev == (dev_t)makedev(254, 1) &&
	   t.image_dev == (dev_t)makedev(7, 3) && t.key_bytes == 64 &&
	   t.key_location == VC_KEY_KEYRING && !t.key, "parsed back");
	vc_safe_free(p);

	in = (struct vc_table){ .format = "vhd", .image = "7:0", .cipher = "aes-xts-plain",
				.key = "00112233" };
	p = vc_table_format(&in, false);
	m = vc_table_format(&in, true);
	is_str(p, "vhd 7:0 aes-xts-plain 00112233 0", "OpenXT VHD, hex key");
	is_str(m, "vhd 7:0 aes-xts-plain <hex-key-4-bytes> 0", "hex key masked");
	ok(!vc_table_parse(p, &t) && t.key_location == VC_KEY_TABLE && t.key_bytes == 4,
	   "hex key: location table");
	ok(!memchr(p, '1', strlen("vhd 7:0 aes-xts-plain 00112233")), "parsing wiped the key");
	vc_safe_free(m);
	vc_safe_free(p);

	in = (struct vc_table){ .format = "qcow2", .image = "7:1", .cipher = "none", .key = "-",
				.data_offset = 4096 };
	p = vc_table_format(&in, false);
	m = vc_table_format(&in, true);
	is_str(p, "qcow2 7:1 none - 0 1 data_offset:4096", "unencrypted with data offset");
	is_str(m, p, "nothing to mask");
	ok(!vc_table_parse(p, &t) && t.data_offset == 4096 && t.key_location == VC_KEY_NONE,
	   "data_offset parsed");
	vc_safe_free(m);
	vc_safe_free(p);

	/* detached LUKS header over a chain: the top layer covers the whole disk */
	in = (struct vc_table){ .format = "qcow2", .image = "7:5", .cipher = "aes-xts-plain64",
				.key = ":64:logon:vhdcrypt:h", .backing = "254:4",
				.whole_disk = true, .data_offset = 2048 };
	p = vc_table_format(&in, false);
	is_str(p, "qcow2 7:5 aes-xts-plain64 :64:logon:vhdcrypt:h 0 3 backing:254:4 whole_disk "
	       "data_offset:2048", "whole_disk, in the kernel's option order");
	ok(!vc_table_parse(p, &t) && t.whole_disk && !t.iv_host && t.data_offset == 2048 &&
	   t.backing_dev == (dev_t)makedev(254, 4), "whole_disk parsed");
	vc_safe_free(p);
	in.data_offset = 0;
	in.backing = NULL;
	p = vc_table_format(&in, false);
	is_str(p, "qcow2 7:5 aes-xts-plain64 :64:logon:vhdcrypt:h 0 1 whole_disk",
	       "whole_disk alone");
	vc_safe_free(p);
	in.sector_size = 4096;
	p = vc_table_format(&in, false);
	is_str(p, "qcow2 7:5 aes-xts-plain64 :64:logon:vhdcrypt:h 0 2 whole_disk sector_size:4096",
	       "4096-byte encryption sectors, as cryptsetup's LUKS2 tables (no iv_large_sectors)");
	ok(!vc_table_parse(p, &t) && t.sector_size == 4096 && !t.iv_large_sectors,
	   "sector_size parsed");
	vc_safe_free(p);
	p = strdup("qcow2 7:5 none - 0");
	ok(!vc_table_parse(p, &t) && !t.whole_disk && !t.sector_size, "no options by default");
	free(p);
	p = strdup("qcow2 7:5 aes-xts-plain64 :64:logon:x 0 5 whole_disk sector_size:4096 "
		   "iv_large_sectors mode:rw data_offset:8");
	ok(!vc_table_parse(p, &t) && t.iv_large_sectors && t.data_offset == 8,
	   "options in any order, unknown ones ignored");
	free(p);

	/* dm-crypt, for a raw payload */
	in = (struct vc_table){ .image = "payload.raw", .cipher = "aes-xts-plain64",
				.key = "0011", .data_offset = 2048, .sector_size = 4096 };
	m = vc_crypt_table_format(&in, true);
	is_str(m, "aes-xts-plain64 <hex-key-2-bytes> 0 payload.raw 2048 1 sector_size:4096",
	       "dm-crypt table, key masked");
	vc_safe_free(m);
	p = strdup("aes-xts-plain64 :64:logon:cryptsetup:8498a1a5-d0 0 7:0 2048 1 sector_size:4096");
	ok(!vc_crypt_table_parse(p, &t) && t.image_dev == (dev_t)makedev(7, 0) &&
	   t.data_offset == 2048 && t.sector_size == 4096 && t.key_location == VC_KEY_KEYRING &&
	   t.key_bytes == 64 && !strcmp(t.cipher, "aes-xts-plain64"), "dm-crypt table parsed");
	free(p);
}

static void test_output(void)
{
	json_object *o;
	char *s;

	s = vc_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80");
	is_str(s, "caf\xc3\xa9 \xf0\x9f\x98\x80", "valid UTF-8 unchanged");
	free(s);
	s = vc_utf8_valid("/srv/caf\xe9.qcow2");
	is_str(s, "/srv/caf\xef\xbf\xbd.qcow2", "a Latin-1 byte becomes U+FFFD");
	free(s);
	s = vc_utf8_valid("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82");
	is_str(s, "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd",
	       "overlong, surrogate, beyond U+10FFFF, cut short: replaced byte by byte");
	free(s);

	o = json_object_new_object();
	vc_json_str(o, "image", "/srv/caf\xe9.qcow2");
	is_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE),
	       "{\"image\":\"/srv/caf\xef\xbf\xbd.qcow2\"}", "JSON: a path that is not UTF-8");
	json_object_put(o);
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
	test_path_clean();
	test_uuid();
	test_fixtures();
	test_truncated();
	test_qemu_images();
	test_tables();
	test_output();
	return tap_done();
}
