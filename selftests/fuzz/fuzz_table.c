// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for include/vhdcrypt/table.h: the input is the
 * argument string of a vhdcrypt table line,
 *
 *   <format> <image_dev> <cipher> <key> <iv_offset> [<#opts> <opts>...]
 *
 * split as device-mapper splits it (whitespace, backslash escapes), then
 * parsed as vc_ctr() parses it. dm core's own part (the count of optional
 * parameters) is modelled here. Besides "never crash", what the parsers
 * accept must satisfy the table format's rules, and some inputs built from
 * the fuzzed bytes must be accepted.
 */
#include <strings.h>
#include <vhdcrypt/table.h>

#include "fuzz.h"

#define MAX_ARGS 64

/* dm_split_args(): whitespace separates, a backslash quotes any byte. */
static int split_args(char *s, char **argv)
{
	int argc = 0;
	char *out;

	for (;;) {
		while (*s && vc_table_space(*s))
			s++;
		if (!*s || argc == MAX_ARGS)
			return argc;
		argv[argc++] = out = s;
		while (*s && !vc_table_space(*s)) {
			if (*s == '\\' && s[1])
				s++;
			*out++ = *s++;
		}
		if (*s)
			s++;
		*out = '\0';
	}
}

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static void check_cipher(const char *spec)
{
	struct vc_cipher_spec cs, cs2;
	const char *why = NULL, *d1, *d2;
	char capi[2 * VC_ALG_NAME_MAX + 600];
	int r;

	r = vc_cipher_spec_parse(spec, &cs, &why);
	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL);
	if (r)
		return;
	CHECK(strlen(cs.alg) < VC_ALG_NAME_MAX);
	CHECK(cs.iv_mode >= VC_IV_NULL && cs.iv_mode <= VC_IV_ESSIV);
	CHECK(cs.iv_mode != VC_IV_ESSIV || has_prefix(cs.alg, "essiv("));
	if (has_prefix(spec, "capi:"))
		return;

	/* <cipher>-<chain>-<iv> means capi:<chain>(<cipher>)-<iv> */
	d1 = strchr(spec, '-');
	CHECK(d1 && d1 > spec);
	d2 = strchr(d1 + 1, '-');
	CHECK(d2 || !strcmp(d1 + 1, "ecb"));
	if (d2 && (strchr(d2 + 1, '-') || strlen(spec) > 512))
		return;	/* capi: would split at the last '-' */
	snprintf(capi, sizeof(capi), "capi:%.*s(%.*s)-%s",
		 (int)(d2 ? d2 - d1 - 1 : 3), d1 + 1, (int)(d1 - spec), spec,
		 d2 ? d2 + 1 : "null");
	why = NULL;
	r = vc_cipher_spec_parse(capi, &cs2, &why);
	CHECK(r == 0);
	CHECK(!strcmp(cs.alg, cs2.alg));
	CHECK(cs.iv_mode == cs2.iv_mode);
}

static void check_key(const char *s)
{
	struct vc_key_spec k;
	const char *why = NULL;
	u8 key[VC_MAX_KEY_SIZE];
	char hex[3];
	int r;

	r = vc_key_spec_parse(s, &k, &why);
	CHECK_WHY(r, why);
	CHECK(r == 0 || r == -EINVAL);
	if (r)
		return;
	CHECK(k.size >= 1 && k.size <= VC_MAX_KEY_SIZE);
	if (k.kind == VC_KEY_HEX) {
		CHECK(strlen(s) == 2 * k.size);
		vc_key_hex_decode(s, key, k.size);
		for (unsigned int i = 0; i < k.size; i++) {
			snprintf(hex, sizeof(hex), "%02x", key[i]);
			CHECK(!strncasecmp(hex, s + 2 * i, 2));
		}
		return;
	}
	CHECK(k.kind == VC_KEY_LOGON || k.kind == VC_KEY_USER);
	CHECK(s[0] == ':' && strtoul(s + 1, NULL, 10) == k.size);
	CHECK(k.desc > s && k.desc < s + strlen(s));
	CHECK(has_prefix(k.desc - (k.kind == VC_KEY_LOGON ? 6 : 5),
			 k.kind == VC_KEY_LOGON ? "logon:" : "user:"));
	for (const char *p = s; *p; p++)
		CHECK(!vc_table_space(*p));
}

/* A well-formed keyring reference made of fuzzed bytes must be accepted. */
static void check_key_accepted(const uint8_t *d, size_t n)
{
	char s[128], desc[64];
	unsigned int size, len = 0;
	struct vc_key_spec k;
	const char *why = NULL;

	if (n < 2)
		return;
	size = 1 + (d[0] << 8 | d[1]) % VC_MAX_KEY_SIZE;
	for (size_t i = 2; i < n && len < sizeof(desc) - 1; i++)
		if (d[i] && !vc_table_space(d[i]))
			desc[len++] = d[i];
	if (!len)
		return;
	desc[len] = '\0';
	snprintf(s, sizeof(s), ":%u:%s:%s", size, d[1] & 1 ? "user" : "logon",
		 desc);
	CHECK(vc_key_spec_parse(s, &k, &why) == 0);
	CHECK(k.size == size && !strcmp(k.desc, desc));
	CHECK(k.kind == (d[1] & 1 ? VC_KEY_USER : VC_KEY_LOGON));
}

static int parse_opts(struct vc_table_opts *o, char **opts, int count,
		      bool reverse)
{
	const char *why = NULL;
	int r = 0;

	vc_table_opts_init(o);
	for (int i = 0; i < count && r >= 0; i++) {
		const char *opt = opts[reverse ? count - 1 - i : i];
		struct vc_table_opts again;

		why = NULL;
		r = vc_table_opt_parse(o, opt, &why);
		CHECK_WHY(r < 0, why);
		CHECK(r == -EINVAL || (r >= VC_OPT_BACKING &&
				       r <= VC_OPT_ALLOW_DISCARDS));
		if (r < 0)
			break;
		CHECK(o->seen & BIT(r));
		/* no option may be given twice */
		again = *o;
		CHECK(vc_table_opt_parse(&again, opt, &why) == -EINVAL);
	}
	return r;
}

static void check_combination(const struct vc_table_opts *o, bool encrypted)
{
	static const u64 lengths[] = { 1, 8, 4096 };

	for (int w = 0; w < 2; w++) {
		for (size_t i = 0; i < sizeof(lengths) / sizeof(*lengths); i++) {
			const char *why = NULL;
			u64 len = lengths[i];
			int r = vc_table_opts_check(o, encrypted, w, len, &why);

			CHECK_WHY(r, why);
			if (r)
				continue;
			CHECK(!(o->whole_disk && o->iv_host));
			CHECK(!o->whole_disk || encrypted);
			CHECK(o->sector_size == 512 || o->whole_disk);
			CHECK(!o->iv_large_sectors || o->sector_size == 4096);
			CHECK(len % (o->sector_size / 512) == 0);
			CHECK(o->data_offset % (o->sector_size / 512) == 0);
			CHECK(!o->allow_discards || w);
		}
	}
}

static void check_options(char **argv, int argc, bool encrypted)
{
	struct vc_table_opts o, rev;
	u64 count;

	/* dm_read_arg_group(): a count up to 7, no more than there are */
	if (!argc || !vc_table_u64(argv[0], &count) ||
	    count > VC_MAX_OPT_PARAMS || count > (u64)argc - 1)
		return;
	if (parse_opts(&o, argv + 1, count, false) < 0)
		return;
	/* the order does not matter to what is parsed */
	CHECK(!count || parse_opts(&rev, argv + 1, count, true) >= 0);
	if (count) {
		CHECK(o.seen == rev.seen && o.iv_host == rev.iv_host &&
		      o.whole_disk == rev.whole_disk &&
		      o.data_offset == rev.data_offset &&
		      o.sector_size == rev.sector_size &&
		      o.iv_large_sectors == rev.iv_large_sectors &&
		      o.allow_discards == rev.allow_discards);
		CHECK(!o.backing == !rev.backing);
		CHECK(!o.backing || !strcmp(o.backing, rev.backing));
	}
	check_combination(&o, encrypted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *argv[MAX_ARGS];
	u64 iv_offset;
	int argc;

	if (!line)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';
	argc = split_args(line, argv);
	for (int i = 0; i < argc; i++) {
		/* every argument through every parser */
		check_cipher(argv[i]);
		check_key(argv[i]);
		fz_sink += vc_table_u64(argv[i], &iv_offset);
	}
	if (argc >= 5)
		check_options(argv + 5, argc - 5, strcmp(argv[2], "none"));
	check_key_accepted(data, size);
	free(line);
	return 0;
}
