/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal TAP output for the vhdcryptsetup unit tests. */
#ifndef VC_TAP_H
#define VC_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_fail;

#define ok(cond, ...) do {						\
	int _ok_c = !!(cond);						\
	tap_n++;							\
	if (!_ok_c)							\
		tap_fail++;						\
	printf("%sok %d - ", _ok_c ? "" : "not ", tap_n);		\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!_ok_c)							\
		printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
} while (0)

#define is_str(got, want, ...) do {					\
	const char *_sg = (got), *_sw = (want);				\
	int _s_c = (_sg && _sw) ? !strcmp(_sg, _sw) : _sg == _sw;	\
	ok(_s_c, __VA_ARGS__);						\
	if (!_s_c)							\
		printf("#   got \"%s\", want \"%s\"\n", _sg ? _sg : "(null)", _sw ? _sw : "(null)"); \
} while (0)

#define is_int(got, want, ...) do {					\
	long long _ig = (got), _iw = (want);				\
	ok(_ig == _iw, __VA_ARGS__);					\
	if (_ig != _iw)							\
		printf("#   got %lld, want %lld\n", _ig, _iw);		\
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_fail ? 1 : 0;
}

#endif
