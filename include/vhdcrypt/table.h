/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The grammar of a vhdcrypt table line (Documentation/table-format.md): the
 * cipher specification, the key string, numbers, and the optional
 * parameters with their repeat and combination rules.
 *
 * Pure functions over NUL-terminated strings, shared by the kernel target
 * and the fuzzers. On failure they return -EINVAL with the reason in *why,
 * which the kernel passes on as ti->error. The kernel keeps what needs it:
 * opening devices, allocating the cipher, reading keyring keys.
 */
#ifndef VHDCRYPT_TABLE_H
#define VHDCRYPT_TABLE_H

#include "types.h"

/* CRYPTO_MAX_ALG_NAME of the supported kernels. */
#define VC_ALG_NAME_MAX		128
#define VC_MAX_KEY_SIZE		256	/* bytes */
#define VC_MAX_OPT_PARAMS	7

enum vc_iv_mode {
	VC_IV_NONE,		/* cipher "none": no encryption */
	VC_IV_NULL,		/* all-zero IV */
	VC_IV_PLAIN,		/* le32 of the low 32 bits of the sector */
	VC_IV_PLAIN64,		/* le64 sector */
	VC_IV_PLAIN64BE,	/* be64 sector in the last 8 bytes */
	VC_IV_ESSIV,		/* le64 sector, encrypted by the essiv template */
};

/* A decimal number that fits in 64 bits, and nothing else. */
static inline bool vc_table_u64(const char *s, u64 *val)
{
	u64 v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned int d = (unsigned char)*s - '0';

		if (d > 9 || v > (~0ull - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*val = v;
	return true;
}

/*----------------------------------------------------------------*/
/* Cipher: "<cipher>-<chainmode>-<ivmode>[:<ivopts>]" or "capi:<alg>-<ivmode>" */

struct vc_cipher_spec {
	char alg[VC_ALG_NAME_MAX];	/* crypto API name, "xts(aes)" */
	enum vc_iv_mode iv_mode;
};

/* Append @len bytes of @s to the algorithm name; false if it gets too long. */
static inline bool vc_alg_append(struct vc_cipher_spec *cs, size_t *pos,
				 const char *s, size_t len)
{
	if (len >= VC_ALG_NAME_MAX - *pos)
		return false;
	memcpy(cs->alg + *pos, s, len);
	*pos += len;
	cs->alg[*pos] = '\0';
	return true;
}

/* The @len bytes at @s are @name. */
static inline bool vc_name_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && !memcmp(s, name, len);
}

static inline int vc_iv_mode_parse(const char *name, size_t len,
				   enum vc_iv_mode *mode)
{
	if (vc_name_is(name, len, "null"))
		*mode = VC_IV_NULL;
	else if (vc_name_is(name, len, "plain"))
		*mode = VC_IV_PLAIN;
	else if (vc_name_is(name, len, "plain64"))
		*mode = VC_IV_PLAIN64;
	else if (vc_name_is(name, len, "plain64be"))
		*mode = VC_IV_PLAIN64BE;
	else if (vc_name_is(name, len, "essiv"))
		*mode = VC_IV_ESSIV;
	else
		return -EINVAL;
	return 0;
}

/*
 * Turn a dm-crypt cipher specification (not "none") into a crypto API
 * algorithm name and an IV mode, as dm-crypt reads it.
 */
static inline int vc_cipher_spec_parse(const char *spec,
				       struct vc_cipher_spec *cs,
				       const char **why)
{
	const char *cipher, *chain = NULL, *iv, *ivopts, *dash;
	size_t cipher_len, chain_len = 0, iv_len, pos = 0;
	bool essiv, ok;

	if (!strncmp(spec, "capi:", 5)) {
		/* capi:<kernel algorithm>-<ivmode>[:<ivopts>] */
		cipher = spec + 5;
		dash = strrchr(cipher, '-');
		if (!dash) {
			*why = "capi: cipher needs an IV mode";
			return -EINVAL;
		}
		cipher_len = dash - cipher;
		iv = dash + 1;
	} else {
		cipher = spec;
		dash = strchr(spec, '-');
		cipher_len = dash ? (size_t)(dash - spec) : strlen(spec);
		if (dash) {
			chain = dash + 1;
			dash = strchr(chain, '-');
			chain_len = dash ? (size_t)(dash - chain) : strlen(chain);
		}
		if (!chain || !cipher_len || !chain_len) {
			*why = "cipher must be <cipher>-<chainmode>-<ivmode>";
			return -EINVAL;
		}
		if (memchr(cipher, ':', cipher_len)) {
			*why = "multi-key ciphers are not supported";
			return -EINVAL;
		}
		if (dash) {
			iv = dash + 1;
		} else if (vc_name_is(chain, chain_len, "ecb")) {
			iv = "null";
		} else {
			*why = "cipher needs an IV mode";
			return -EINVAL;
		}
	}

	ivopts = strchr(iv, ':');
	iv_len = ivopts ? (size_t)(ivopts - iv) : strlen(iv);
	if (ivopts)
		ivopts++;
	if (vc_iv_mode_parse(iv, iv_len, &cs->iv_mode)) {
		*why = "unsupported IV mode (plain, plain64, plain64be, essiv, null)";
		return -EINVAL;
	}
	essiv = cs->iv_mode == VC_IV_ESSIV;
	if (essiv != !!ivopts) {
		*why = "IV mode essiv needs a hash (essiv:<hash>), others take none";
		return -EINVAL;
	}

	/* [essiv(]<chain>(<cipher>)[,<hash>)], or the capi name as it is */
	cs->alg[0] = '\0';
	ok = true;
	if (essiv)
		ok = vc_alg_append(cs, &pos, "essiv(", 6);
	if (chain)
		ok = ok && vc_alg_append(cs, &pos, chain, chain_len) &&
		     vc_alg_append(cs, &pos, "(", 1);
	ok = ok && vc_alg_append(cs, &pos, cipher, cipher_len);
	if (chain)
		ok = ok && vc_alg_append(cs, &pos, ")", 1);
	if (essiv)
		ok = ok && vc_alg_append(cs, &pos, ",", 1) &&
		     vc_alg_append(cs, &pos, ivopts, strlen(ivopts)) &&
		     vc_alg_append(cs, &pos, ")", 1);
	if (!ok) {
		*why = "cipher name too long";
		return -EINVAL;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Key: hex digits, or ":<size>:<logon|user>:<description>" */

enum vc_key_kind {
	VC_KEY_HEX,
	VC_KEY_LOGON,
	VC_KEY_USER,
};

struct vc_key_spec {
	enum vc_key_kind kind;
	unsigned int size;	/* bytes */
	const char *desc;	/* keyring keys: the description, in the string */
};

/* The kernel's isspace(), Latin-1 no-break space included. */
static inline bool vc_table_space(char c)
{
	unsigned char u = c;

	return u == ' ' || (u >= '\t' && u <= '\r') || u == 0xa0;
}

static inline int vc_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Check the syntax of a key string; the kernel then reads or decodes it. */
static inline int vc_key_spec_parse(const char *s, struct vc_key_spec *k,
				    const char **why)
{
	size_t i, n, size;
	const char *p;

	if (s[0] != ':') {
		n = strlen(s);
		if (!n || n & 1 || n / 2 > VC_MAX_KEY_SIZE) {
			*why = "key must be an even number of hex digits";
			return -EINVAL;
		}
		for (i = 0; i < n; i++) {
			if (vc_hex_digit(s[i]) < 0) {
				*why = "key is not hex";
				return -EINVAL;
			}
		}
		k->kind = VC_KEY_HEX;
		k->size = n / 2;
		k->desc = NULL;
		return 0;
	}

	for (p = s; *p; p++) {
		if (vc_table_space(*p)) {
			*why = "invalid keyring key reference";
			return -EINVAL;
		}
	}
	/* ":<size>:", the size in decimal; once too large it stays so */
	size = 0;
	for (p = s + 1; *p >= '0' && *p <= '9'; p++)
		if (size <= VC_MAX_KEY_SIZE)
			size = size * 10 + (*p - '0');
	if (p == s + 1) {
		*why = "invalid keyring key reference";
		return -EINVAL;
	}
	if (*p != ':' || !size || size > VC_MAX_KEY_SIZE) {
		*why = "invalid keyring key size";
		return -EINVAL;
	}

	p++;
	if (!strncmp(p, "logon:", 6)) {
		k->kind = VC_KEY_LOGON;
		k->desc = p + 6;
	} else if (!strncmp(p, "user:", 5)) {
		k->kind = VC_KEY_USER;
		k->desc = p + 5;
	} else {
		k->desc = NULL;
	}
	if (!k->desc || !*k->desc) {
		*why = "cannot read the keyring key (missing, wrong size or type)";
		return -EINVAL;
	}
	k->size = size;
	return 0;
}

/* Decode the hex key @s that vc_key_spec_parse() accepted into @out. */
static inline void vc_key_hex_decode(const char *s, u8 *out, unsigned int size)
{
	unsigned int i;

	for (i = 0; i < size; i++)
		out[i] = vc_hex_digit(s[2 * i]) << 4 | vc_hex_digit(s[2 * i + 1]);
}

/*----------------------------------------------------------------*/
/* Optional parameters */

enum vc_table_opt {
	VC_OPT_BACKING,			/* backing:<dev> */
	VC_OPT_IV_SECTOR,		/* iv_sector:host, iv_sector:virtual */
	VC_OPT_WHOLE_DISK,		/* whole_disk */
	VC_OPT_DATA_OFFSET,		/* data_offset:<sectors> */
	VC_OPT_SECTOR_SIZE,		/* sector_size:<512|4096> */
	VC_OPT_IV_LARGE_SECTORS,	/* iv_large_sectors */
	VC_OPT_ALLOW_DISCARDS,		/* allow_discards */
};

struct vc_table_opts {
	u32 seen;			/* BIT(enum vc_table_opt) */
	const char *backing;		/* the backing device, in the option */
	bool iv_host;			/* IV from the host sector */
	bool whole_disk;
	u64 data_offset;		/* sectors */
	unsigned int sector_size;	/* bytes: 512 or 4096 */
	bool iv_large_sectors;
	bool allow_discards;
};

static inline void vc_table_opts_init(struct vc_table_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->sector_size = 512;
}

/*
 * Parse one optional parameter into @o: its enum vc_table_opt, or -EINVAL
 * for an unknown one, a bad value or a repeat.
 */
static inline int vc_table_opt_parse(struct vc_table_opts *o, const char *opt,
				     const char **why)
{
	int kind;
	u64 n = 0;

	if (!strncmp(opt, "backing:", 8))
		kind = VC_OPT_BACKING;
	else if (!strcmp(opt, "iv_sector:host") ||
		 !strcmp(opt, "iv_sector:virtual"))
		kind = VC_OPT_IV_SECTOR;
	else if (!strcmp(opt, "whole_disk"))
		kind = VC_OPT_WHOLE_DISK;
	else if (!strncmp(opt, "data_offset:", 12) && vc_table_u64(opt + 12, &n))
		kind = VC_OPT_DATA_OFFSET;
	else if (!strncmp(opt, "sector_size:", 12) && vc_table_u64(opt + 12, &n))
		kind = VC_OPT_SECTOR_SIZE;
	else if (!strcmp(opt, "iv_large_sectors"))
		kind = VC_OPT_IV_LARGE_SECTORS;
	else if (!strcmp(opt, "allow_discards"))
		kind = VC_OPT_ALLOW_DISCARDS;
	else
		kind = -1;
	if (kind < 0 || o->seen & BIT(kind)) {
		*why = "invalid or repeated optional parameter";
		return -EINVAL;
	}

	switch (kind) {
	case VC_OPT_BACKING:
		o->backing = opt + 8;
		break;
	case VC_OPT_IV_SECTOR:
		o->iv_host = !strcmp(opt, "iv_sector:host");
		break;
	case VC_OPT_WHOLE_DISK:
		o->whole_disk = true;
		break;
	case VC_OPT_DATA_OFFSET:
		o->data_offset = n;
		break;
	case VC_OPT_SECTOR_SIZE:
		if (n != 512 && n != 4096) {
			*why = "sector_size must be 512 or 4096";
			return -EINVAL;
		}
		o->sector_size = n;
		break;
	case VC_OPT_IV_LARGE_SECTORS:
		o->iv_large_sectors = true;
		break;
	case VC_OPT_ALLOW_DISCARDS:
		o->allow_discards = true;
		break;
	}
	o->seen |= BIT(kind);
	return kind;
}

/*
 * Combinations that make no sense, for a table of @len sectors with a
 * cipher (@encrypted) or not, loaded read-write (@writable) or not.
 */
static inline int vc_table_opts_check(const struct vc_table_opts *o,
				      bool encrypted, bool writable, u64 len,
				      const char **why)
{
	u64 unit = o->sector_size >> 9;

	if (o->whole_disk && o->iv_host) {
		*why = "whole_disk needs IVs from the virtual sector";
		return -EINVAL;
	}
	if (o->whole_disk && !encrypted) {
		*why = "whole_disk needs a cipher";
		return -EINVAL;
	}
	if (o->sector_size != 512 && !o->whole_disk) {
		*why = "sector_size other than 512 needs whole_disk (both formats fix 512)";
		return -EINVAL;
	}
	if (o->iv_large_sectors && o->sector_size == 512) {
		*why = "iv_large_sectors needs a sector_size above 512";
		return -EINVAL;
	}
	if ((len | o->data_offset) & (unit - 1)) {
		*why = "device size and data_offset must be multiples of sector_size";
		return -EINVAL;
	}
	if (o->allow_discards && !writable) {
		*why = "allow_discards needs a writable table";
		return -EINVAL;
	}
	return 0;
}

#endif /* VHDCRYPT_TABLE_H */
