// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for include/vhdcrypt/table.h: cipher specifications, key
 * strings, numbers and optional parameters of a table line
 * (Documentation/table-format.md).
 */
#include "unit.h"
#include <vhdcrypt/table.h>

static void assert_cipher(const char *spec, const char *alg,
			  enum vc_iv_mode mode)
{
	struct vc_cipher_spec cs;
	const char *why = NULL;

	assert_decoded(vc_cipher_spec_parse(spec, &cs, &why), why);
	assert_string_equal(cs.alg, alg);
	assert_int_equal(cs.iv_mode, mode);
}

static void assert_cipher_rejected(const char *spec, const char *reason)
{
	struct vc_cipher_spec cs;
	const char *why = NULL;

	assert_rejected(vc_cipher_spec_parse(spec, &cs, &why), -EINVAL, why);
	assert_string_equal(why, reason);
}

static void test_cipher_valid(void **state)
{
	(void)state;
	assert_cipher("aes-xts-plain64", "xts(aes)", VC_IV_PLAIN64);
	assert_cipher("aes-xts-plain", "xts(aes)", VC_IV_PLAIN);
	assert_cipher("aes-cbc-plain64be", "cbc(aes)", VC_IV_PLAIN64BE);
	assert_cipher("aes-cbc-essiv:sha256", "essiv(cbc(aes),sha256)",
		      VC_IV_ESSIV);
	assert_cipher("serpent-xts-null", "xts(serpent)", VC_IV_NULL);
	assert_cipher("aes-ecb", "ecb(aes)", VC_IV_NULL);
	assert_cipher("capi:xts(aes)-plain64", "xts(aes)", VC_IV_PLAIN64);
	/* capi: the IV mode follows the last '-' */
	assert_cipher("capi:xts(aes-generic)-plain", "xts(aes-generic)",
		      VC_IV_PLAIN);
	assert_cipher("capi:cbc(aes)-essiv:sha256", "essiv(cbc(aes),sha256)",
		      VC_IV_ESSIV);
}

static void test_cipher_rejected(void **state)
{
	const char *shape = "cipher must be <cipher>-<chainmode>-<ivmode>";
	const char *ivmode = "unsupported IV mode (plain, plain64, plain64be, essiv, null)";
	const char *essiv = "IV mode essiv needs a hash (essiv:<hash>), others take none";

	(void)state;
	assert_cipher_rejected("aes", shape);
	assert_cipher_rejected("-xts-plain64", shape);
	assert_cipher_rejected("aes--plain64", shape);
	assert_cipher_rejected("aes-", shape);
	assert_cipher_rejected("aes:2-xts-plain64",
			       "multi-key ciphers are not supported");
	assert_cipher_rejected("aes-xts", "cipher needs an IV mode");
	assert_cipher_rejected("capi:xts(aes)", "capi: cipher needs an IV mode");
	assert_cipher_rejected("aes-xts-", ivmode);
	assert_cipher_rejected("aes-xts-plain64-x", ivmode);
	assert_cipher_rejected("aes-xts-benbi", ivmode);
	assert_cipher_rejected("aes-cbc-essiv", essiv);
	assert_cipher_rejected("aes-xts-plain64:sha256", essiv);
}

static void test_cipher_name_length(void **state)
{
	char spec[200], alg[200];
	size_t n;

	(void)state;
	/* "xts(" + name + ")" must stay below 128 bytes */
	for (n = 120; n < 126; n++) {
		memset(spec, 'a', n);
		strcpy(spec + n, "-xts-plain64");
		memcpy(alg, "xts(", 4);
		memset(alg + 4, 'a', n);
		strcpy(alg + 4 + n, ")");
		if (n + 5 < VC_ALG_NAME_MAX)
			assert_cipher(spec, alg, VC_IV_PLAIN64);
		else
			assert_cipher_rejected(spec, "cipher name too long");
	}
	/* the essiv wrapper counts too: "essiv(cbc(aes)," + hash + ")" */
	strcpy(spec, "aes-cbc-essiv:");
	memset(spec + 14, 'h', 112);
	spec[14 + 111] = '\0';
	strcpy(alg, "essiv(cbc(aes),");
	memset(alg + 15, 'h', 111);
	strcpy(alg + 15 + 111, ")");
	assert_cipher(spec, alg, VC_IV_ESSIV);
	spec[14 + 111] = 'h';
	spec[14 + 112] = '\0';
	assert_cipher_rejected(spec, "cipher name too long");
}

static void assert_key(const char *s, enum vc_key_kind kind,
		       unsigned int size, const char *desc)
{
	struct vc_key_spec k;
	const char *why = NULL;

	assert_decoded(vc_key_spec_parse(s, &k, &why), why);
	assert_int_equal(k.kind, kind);
	assert_int_equal(k.size, size);
	if (desc)
		assert_string_equal(k.desc, desc);
	else
		assert_null(k.desc);
}

static void assert_key_rejected(const char *s, const char *reason)
{
	struct vc_key_spec k;
	const char *why = NULL;

	assert_rejected(vc_key_spec_parse(s, &k, &why), -EINVAL, why);
	assert_string_equal(why, reason);
}

static void test_key_hex(void **state)
{
	const char *hex = "00112233445566778899aabbccddeeffAABBCCDDEEFF0123";
	uint8_t out[24];
	char big[2 * 257 + 1];

	(void)state;
	assert_key(hex, VC_KEY_HEX, 24, NULL);
	vc_key_hex_decode(hex, out, sizeof(out));
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[9], 0x99);
	assert_int_equal(out[15], 0xff);
	assert_int_equal(out[16], 0xaa);
	assert_int_equal(out[23], 0x23);

	memset(big, 'f', 512);
	big[512] = '\0';
	assert_key(big, VC_KEY_HEX, 256, NULL);
	big[512] = 'f';
	big[513] = 'f';
	big[514] = '\0';
	assert_key_rejected(big, "key must be an even number of hex digits");
	assert_key_rejected("", "key must be an even number of hex digits");
	assert_key_rejected("abc", "key must be an even number of hex digits");
	assert_key_rejected("0g", "key is not hex");
	assert_key_rejected("-", "key must be an even number of hex digits");
}

static void test_key_keyring(void **state)
{
	const char *size = "invalid keyring key size";
	const char *ref = "invalid keyring key reference";
	const char *type = "cannot read the keyring key (missing, wrong size or type)";

	(void)state;
	assert_key(":64:logon:vhdcrypt:top", VC_KEY_LOGON, 64, "vhdcrypt:top");
	assert_key(":32:user:k", VC_KEY_USER, 32, "k");
	assert_key(":256:logon:k", VC_KEY_LOGON, 256, "k");
	assert_key(":032:logon:k", VC_KEY_LOGON, 32, "k");
	assert_key_rejected(":", ref);
	assert_key_rejected("::logon:k", ref);
	assert_key_rejected(":-1:logon:k", ref);
	assert_key_rejected(":32:logon:a b", ref);
	assert_key_rejected(":32:logon:a\tb", ref);
	assert_key_rejected(":32", size);
	assert_key_rejected(":0:logon:k", size);
	assert_key_rejected(":257:logon:k", size);
	/* once, the kernel's %u read 2^32 + 32 as 32 and ignored "x" */
	assert_key_rejected(":4294967328:logon:k", size);
	assert_key_rejected(":99999999999999999999999999:logon:k", size);
	assert_key_rejected(":32x:logon:k", size);
	assert_key_rejected(":32:", type);
	assert_key_rejected(":32:logon:", type);
	assert_key_rejected(":32:user", type);
	assert_key_rejected(":32:keyring:k", type);
}

static void test_u64(void **state)
{
	u64 v = 1;

	(void)state;
	assert_true(vc_table_u64("0", &v));
	assert_int_equal(v, 0);
	assert_true(vc_table_u64("18446744073709551615", &v));
	assert_true(v == ~0ull);
	assert_false(vc_table_u64("18446744073709551616", &v));
	assert_false(vc_table_u64("", &v));
	assert_false(vc_table_u64("1x", &v));
	assert_false(vc_table_u64("-1", &v));
	assert_false(vc_table_u64("+1", &v));
	assert_false(vc_table_u64(" 1", &v));
}

/* Parse @n options into @o; the result of the last one. */
static int parse_opts(struct vc_table_opts *o, const char **why, int n,
		      const char *const *opts)
{
	int i, r = 0;

	vc_table_opts_init(o);
	for (i = 0; i < n && r >= 0; i++)
		r = vc_table_opt_parse(o, opts[i], why);
	return r;
}

#define PARSE(o, why, ...)						\
	parse_opts(o, why,						\
		   sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
		   (const char *[]){ __VA_ARGS__ })

static void test_opts_valid(void **state)
{
	struct vc_table_opts o;
	const char *why = NULL;

	(void)state;
	vc_table_opts_init(&o);
	assert_int_equal(o.sector_size, 512);
	assert_null(o.backing);

	assert_int_equal(PARSE(&o, &why, "backing:254:2", "iv_sector:host",
			       "data_offset:4096", "allow_discards"),
			 VC_OPT_ALLOW_DISCARDS);
	assert_string_equal(o.backing, "254:2");
	assert_true(o.iv_host);
	assert_true(o.data_offset == 4096);
	assert_true(o.allow_discards);
	assert_false(o.whole_disk);

	assert_int_equal(PARSE(&o, &why, "whole_disk", "sector_size:4096",
			       "iv_large_sectors", "iv_sector:virtual"),
			 VC_OPT_IV_SECTOR);
	assert_true(o.whole_disk);
	assert_int_equal(o.sector_size, 4096);
	assert_true(o.iv_large_sectors);
	assert_false(o.iv_host);
	assert_int_equal(PARSE(&o, &why, "sector_size:512"), VC_OPT_SECTOR_SIZE);
	assert_int_equal(o.sector_size, 512);
	assert_int_equal(PARSE(&o, &why, "backing:"), VC_OPT_BACKING);
	assert_string_equal(o.backing, "");
}

/* @why is read after @r is worked out: pass its address. */
static void assert_opts_rejected(int r, const char *const *why,
				 const char *reason)
{
	assert_rejected(r, -EINVAL, *why);
	assert_string_equal(*why, reason);
}

static void test_opts_rejected(void **state)
{
	const char *bad = "invalid or repeated optional parameter";
	struct vc_table_opts o;
	const char *why = NULL;

	(void)state;
	assert_opts_rejected(PARSE(&o, &why, "backing:a", "backing:b"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "iv_sector:host",
				   "iv_sector:virtual"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "whole_disk", "whole_disk"), &why,
			     bad);
	assert_opts_rejected(PARSE(&o, &why, "data_offset:1", "data_offset:1"),
			     &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "allow_discards",
				   "allow_discards"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "iv_large_sectors",
				   "iv_large_sectors"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "sector_size:4096",
				   "sector_size:4096"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "iv_sector:"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "whole_disk:1"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "data_offset:"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "data_offset:1x"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "data_offset:-1"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why,
				   "data_offset:18446744073709551616"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "sector_size:4k"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, "sector_size:1024"), &why,
			     "sector_size must be 512 or 4096");
	/* once, the kernel's %u read 2^32 + 512 as 512 */
	assert_opts_rejected(PARSE(&o, &why, "sector_size:4294967808"), &why,
			     "sector_size must be 512 or 4096");
	assert_opts_rejected(PARSE(&o, &why, "ALLOW_DISCARDS"), &why, bad);
	assert_opts_rejected(PARSE(&o, &why, ""), &why, bad);
}

static int check(const char *const *opts, int n, bool encrypted,
		 bool writable, u64 len, const char **why)
{
	struct vc_table_opts o;
	int r;

	r = parse_opts(&o, why, n, opts);
	assert_true(r >= 0);
	*why = NULL;
	return vc_table_opts_check(&o, encrypted, writable, len, why);
}

#define CHECK_OPTS(enc, wr, len, why, ...)				\
	check((const char *[]){ __VA_ARGS__ },				\
	      sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *),	\
	      enc, wr, len, why)

static void test_opts_check(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_decoded(CHECK_OPTS(false, false, 7, &why, "iv_sector:host"), why);
	assert_decoded(CHECK_OPTS(true, false, 8, &why, "whole_disk",
				  "sector_size:4096", "iv_large_sectors",
				  "data_offset:16"), why);
	assert_decoded(CHECK_OPTS(false, true, 1, &why, "allow_discards"), why);

	assert_opts_rejected(CHECK_OPTS(true, false, 8, &why, "whole_disk",
					"iv_sector:host"), &why,
			     "whole_disk needs IVs from the virtual sector");
	assert_opts_rejected(CHECK_OPTS(false, false, 8, &why, "whole_disk"),
			     &why, "whole_disk needs a cipher");
	assert_opts_rejected(CHECK_OPTS(true, false, 8, &why,
					"sector_size:4096"), &why,
			     "sector_size other than 512 needs whole_disk (both formats fix 512)");
	assert_opts_rejected(CHECK_OPTS(true, false, 8, &why, "whole_disk",
					"iv_large_sectors"), &why,
			     "iv_large_sectors needs a sector_size above 512");
	assert_opts_rejected(CHECK_OPTS(true, false, 12, &why, "whole_disk",
					"sector_size:4096"), &why,
			     "device size and data_offset must be multiples of sector_size");
	assert_opts_rejected(CHECK_OPTS(true, false, 8, &why, "whole_disk",
					"sector_size:4096", "data_offset:1"), &why,
			     "device size and data_offset must be multiples of sector_size");
	assert_opts_rejected(CHECK_OPTS(false, false, 8, &why, "allow_discards"),
			     &why, "allow_discards needs a writable table");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cipher_valid),
		cmocka_unit_test(test_cipher_rejected),
		cmocka_unit_test(test_cipher_name_length),
		cmocka_unit_test(test_key_hex),
		cmocka_unit_test(test_key_keyring),
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_opts_valid),
		cmocka_unit_test(test_opts_rejected),
		cmocka_unit_test(test_opts_check),
	};

	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
