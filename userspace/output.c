// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - udev and JSON output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

void vc_udev_str(const char *key, const char *val)
{
	const unsigned char *p;

	printf("VHDCRYPT_%s=", key);
	for (p = (const unsigned char *)val; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\' && *p != '"' && *p != '\'')
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
	putchar('\n');
}

void vc_udev_u64(const char *key, unsigned long long val)
{
	printf("VHDCRYPT_%s=%llu\n", key, val);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629), 0 if there is none. */
static size_t vc_utf8_seq(const unsigned char *p)
{
	unsigned int c = p[0], n, i, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

char *vc_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(strlen(s) * 3 + 1), *o = out;
	size_t n;

	if (!out)
		return NULL;
	while (*p) {
		n = vc_utf8_seq(p);
		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);	/* U+FFFD */
			o += 3;
			p++;
		}
	}
	*o = '\0';
	return out;
}

void vc_json_str(json_object *o, const char *key, const char *val)
{
	char *v = val ? vc_utf8_valid(val) : NULL;

	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
	free(v);
}

void vc_json_u64(json_object *o, const char *key, uint64_t val)
{
	json_object_object_add(o, key, json_object_new_uint64(val));
}

void vc_json_bool(json_object *o, const char *key, int val)
{
	json_object_object_add(o, key, json_object_new_boolean(val));
}

void vc_json_print(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
