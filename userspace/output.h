/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - output for machines: udev KEY=VALUE lines (probe) and
 * JSON through json-c (status --json). Values come from images and sysfs,
 * so they can hold any byte: udev values are escaped as \xNN, JSON strings
 * are made valid UTF-8.
 */
#ifndef VC_OUTPUT_H
#define VC_OUTPUT_H

#include <stdint.h>

#include <json.h>

/* "VHDCRYPT_<key>=<value>": printable ASCII except space, quotes and backslash; else \xNN. */
void vc_udev_str(const char *key, const char *val);
void vc_udev_u64(const char *key, unsigned long long val);

/* s with every byte that is not part of valid UTF-8 replaced by U+FFFD; malloc'd. */
char *vc_utf8_valid(const char *s);
/* Add key: a string (NULL: null), a number, a boolean. Out of memory is ignored. */
void vc_json_str(json_object *o, const char *key, const char *val);
void vc_json_u64(json_object *o, const char *key, uint64_t val);
void vc_json_bool(json_object *o, const char *key, int val);
/* Print o pretty (two-space indent) and a newline, then free it. */
void vc_json_print(json_object *o);

#endif
