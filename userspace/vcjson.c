// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - minimal JSON writer, pretty-printed with two-space indent.
 */
#include <inttypes.h>

#include "vcjson.h"

void vc_json_quote(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void vc_json_init(struct vc_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
}

static void vc_json_key(struct vc_json *j, const char *key)
{
	int i;

	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	j->first[j->depth] = false;
	if (key) {
		vc_json_quote(j->f, key);
		fputs(": ", j->f);
	}
}

static void vc_json_open(struct vc_json *j, const char *key, char c)
{
	vc_json_key(j, key);
	fputc(c, j->f);
	if (j->depth < 15)
		j->depth++;
	j->first[j->depth] = true;
}

static void vc_json_close(struct vc_json *j, char c)
{
	int i;
	bool empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty) {
		fputc('\n', j->f);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void vc_json_obj_begin(struct vc_json *j, const char *key)
{
	vc_json_open(j, key, '{');
}

void vc_json_obj_end(struct vc_json *j)
{
	vc_json_close(j, '}');
}

void vc_json_arr_begin(struct vc_json *j, const char *key)
{
	vc_json_open(j, key, '[');
}

void vc_json_arr_end(struct vc_json *j)
{
	vc_json_close(j, ']');
}

void vc_json_str(struct vc_json *j, const char *key, const char *val)
{
	vc_json_key(j, key);
	if (val)
		vc_json_quote(j->f, val);
	else
		fputs("null", j->f);
}

void vc_json_u64(struct vc_json *j, const char *key, uint64_t val)
{
	vc_json_key(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void vc_json_bool(struct vc_json *j, const char *key, bool val)
{
	vc_json_key(j, key);
	fputs(val ? "true" : "false", j->f);
}
