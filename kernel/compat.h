/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the supported kernels (6.1 and 6.12).
 *
 * Every difference is detected at build time by a probe in conftest/
 * (conftest.sh writes compat-probes.h); never by version numbers, since
 * distributions backport API changes without changing the version.
 */
#ifndef DM_VHDCRYPT_COMPAT_H
#define DM_VHDCRYPT_COMPAT_H

#include "compat-probes.h"

/* 6.5 replaced fmode_t by blk_mode_t for block device open modes. */
#ifdef HAVE_BLK_MODE_T
#define VC_MODE_READ	BLK_OPEN_READ
#define VC_MODE_WRITE	BLK_OPEN_WRITE
#else
#define VC_MODE_READ	FMODE_READ
#define VC_MODE_WRITE	FMODE_WRITE
#endif

/* 6.12 moved the unaligned access helpers out of asm/. */
#ifdef HAVE_LINUX_UNALIGNED_H
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#endif /* DM_VHDCRYPT_COMPAT_H */
