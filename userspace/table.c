// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - table parameters of vhdcrypt and dm-crypt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "table.h"
#include "util.h"

/* The key as the table shows it; masked: a hex key replaced by a placeholder. */
static char *vc_key_field(const char *key, bool mask, char *buf, size_t len)
{
	if (!mask || key[0] == ':' || !strcmp(key, "-"))
		return (char *)key;
	snprintf(buf, len, "<hex-key-%zu-bytes>", strlen(key) / 2);
	return buf;
}

static void vc_key_parse(char *tok, struct vc_table *t)
{
	if (tok[0] == ':') {
		t->key_location = VC_KEY_KEYRING;
		t->key_bytes = strtoul(tok + 1, NULL, 10);
	} else if (!strcmp(tok, "-")) {
		t->key_location = VC_KEY_NONE;
	} else {
		t->key_location = VC_KEY_TABLE;
		t->key_bytes = strlen(tok) / 2;
	}
	explicit_bzero(tok, strlen(tok));
	t->key = NULL;
}

/* "<fixed> [<n> <opts>]" in locked memory. */
static char *vc_join(const char *fixed, int nopts, const char *opts)
{
	size_t len = strlen(fixed) + strlen(opts) + 16;
	char *p = vc_safe_alloc(len);

	if (!p) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	if (nopts)
		snprintf(p, len, "%s %d%s", fixed, nopts, opts);
	else
		snprintf(p, len, "%s", fixed);
	return p;
}

/* The optional parameters both grammars share, appended to opts. */
static int vc_common_opts(const struct vc_table *t, char *opts, size_t len)
{
	size_t o = strlen(opts);
	int n = 0;

	if (t->allow_discards) {
		o += snprintf(opts + o, len - o, " allow_discards");
		n++;
	}
	if (t->sector_size && t->sector_size != 512) {
		o += snprintf(opts + o, len - o, " sector_size:%u", t->sector_size);
		n++;
	}
	if (t->iv_large_sectors) {
		snprintf(opts + o, len - o, " iv_large_sectors");
		n++;
	}
	return n;
}

/*
 * The fixed fields (in locked memory: they hold the key) and the options;
 * vhdcrypt's grammar with t->format, dm-crypt's without.
 */
static char *vc_format(const struct vc_table *t, const char *key, const char *opts, int nopts)
{
	size_t len = strlen(t->image) + strlen(t->cipher) + strlen(key) +
		     (t->format ? strlen(t->format) : 0) + 64;
	char *fixed = vc_safe_alloc(len), *p;

	if (!fixed) {
		vc_fail(-ENOMEM, "out of memory");
		return NULL;
	}
	if (t->format)
		snprintf(fixed, len, "%s %s %s %s %llu", t->format, t->image, t->cipher, key,
			 (unsigned long long)t->iv_offset);
	else
		snprintf(fixed, len, "%s %s %llu %s %llu", t->cipher, key,
			 (unsigned long long)t->iv_offset, t->image,
			 (unsigned long long)t->data_offset);
	p = vc_join(fixed, nopts, opts);
	vc_safe_free(fixed);
	return p;
}

char *vc_table_format(const struct vc_table *t, bool mask_key)
{
	char kbuf[48], *opts, *p;
	size_t len = (t->backing ? strlen(t->backing) : 0) + 128;
	size_t o = 0;
	int n = 0;

	opts = vc_zalloc(len);
	if (!opts)
		return NULL;
	if (t->backing) {
		o += snprintf(opts + o, len - o, " backing:%s", t->backing);
		n++;
	}
	if (t->iv_host) {
		o += snprintf(opts + o, len - o, " iv_sector:host");
		n++;
	}
	if (t->whole_disk) {
		o += snprintf(opts + o, len - o, " whole_disk");
		n++;
	}
	if (t->data_offset) {
		snprintf(opts + o, len - o, " data_offset:%llu",
			 (unsigned long long)t->data_offset);
		n++;
	}
	n += vc_common_opts(t, opts, len);
	p = vc_format(t, vc_key_field(t->key, mask_key, kbuf, sizeof(kbuf)), opts, n);
	free(opts);
	return p;
}

char *vc_crypt_table_format(const struct vc_table *t, bool mask_key)
{
	struct vc_table c = *t;
	char kbuf[48], opts[64] = "";
	int n = vc_common_opts(t, opts, sizeof(opts));

	c.format = NULL;
	return vc_format(&c, vc_key_field(t->key, mask_key, kbuf, sizeof(kbuf)), opts, n);
}

/* Split params into at most max fields; returns their number. */
static int vc_split(char *params, char **f, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(params, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	return n;
}

static bool vc_common_opt(const char *opt, struct vc_table *t)
{
	if (!strcmp(opt, "allow_discards")) {
		t->allow_discards = true;
		return true;
	}
	if (sscanf(opt, "sector_size:%u", &t->sector_size) == 1)
		return true;
	if (strcmp(opt, "iv_large_sectors"))
		return false;
	t->iv_large_sectors = true;
	return true;
}

#define VC_TABLE_FIELDS 24

int vc_table_parse(char *params, struct vc_table *t)
{
	char *f[VC_TABLE_FIELDS];
	unsigned long long v;
	int n, i;

	memset(t, 0, sizeof(*t));
	n = vc_split(params, f, VC_TABLE_FIELDS);
	if (n < 5)
		return -EINVAL;
	t->format = f[0];
	t->image = f[1];
	t->cipher = f[2];
	vc_key_parse(f[3], t);
	if (vc_parse_u64(f[4], &v) || vc_parse_devt(t->image, &t->image_dev))
		return -EINVAL;
	t->iv_offset = v;
	for (i = 6; i < n; i++) {	/* f[5]: #opts */
		if (!strncmp(f[i], "backing:", 8)) {
			t->backing = f[i] + 8;
			vc_parse_devt(t->backing, &t->backing_dev);
		} else if (!strcmp(f[i], "iv_sector:host")) {
			t->iv_host = true;
		} else if (!strcmp(f[i], "whole_disk")) {
			t->whole_disk = true;
		} else if (sscanf(f[i], "data_offset:%llu", &v) == 1) {
			t->data_offset = v;
		} else {
			vc_common_opt(f[i], t);
		}
	}
	return 0;
}

int vc_crypt_table_parse(char *params, struct vc_table *t)
{
	char *f[VC_TABLE_FIELDS];
	unsigned long long v, off;
	int n, i;

	memset(t, 0, sizeof(*t));
	n = vc_split(params, f, VC_TABLE_FIELDS);
	if (n < 5)
		return -EINVAL;
	t->cipher = f[0];
	vc_key_parse(f[1], t);
	t->image = f[3];
	if (vc_parse_u64(f[2], &v) || vc_parse_u64(f[4], &off) ||
	    vc_parse_devt(t->image, &t->image_dev))
		return -EINVAL;
	t->iv_offset = v;
	t->data_offset = off;
	for (i = 6; i < n; i++)		/* f[5]: #opts */
		vc_common_opt(f[i], t);
	return 0;
}
