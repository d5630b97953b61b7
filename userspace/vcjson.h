/* SPDX-License-Identifier: GPL-2.0 */
/* vhdcryptsetup - minimal JSON output (status --json); named vcjson.h to avoid json-c's json.h. */
#ifndef VC_JSON_H
#define VC_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vc_json {
	FILE *f;
	int depth;
	bool first[16];
};

void vc_json_init(struct vc_json *j, FILE *f);
void vc_json_obj_begin(struct vc_json *j, const char *key);	/* key NULL in arrays / top */
void vc_json_obj_end(struct vc_json *j);
void vc_json_arr_begin(struct vc_json *j, const char *key);
void vc_json_arr_end(struct vc_json *j);
void vc_json_str(struct vc_json *j, const char *key, const char *val);	/* val NULL: null */
void vc_json_u64(struct vc_json *j, const char *key, uint64_t val);
void vc_json_bool(struct vc_json *j, const char *key, bool val);
/* JSON string literal of s (quotes included) into f. */
void vc_json_quote(FILE *f, const char *s);

#endif
