/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - backing chains: an image and its parents (VHD parent
 * locators, qcow2 backing file names), resolved as tapdisk and QEMU do.
 */
#ifndef VC_CHAIN_H
#define VC_CHAIN_H

#include "image.h"

#define VC_CHAIN_MAX 32		/* images */

struct vc_chain {
	int n;
	struct vc_image *img[VC_CHAIN_MAX];	/* img[0] is the top, img[n - 1] the base */
};

/*
 * Open path and all its parents; errors name the missing parent and the
 * paths tried. flags (VC_OPEN_*) apply to the top image; with
 * VC_OPEN_PARENT_OPTIONAL the chain ends at the first parent that is
 * missing or cannot be opened.
 */
int vc_chain_open(const char *path, enum vc_fmt want, unsigned int flags, struct vc_chain *c);
void vc_chain_free(struct vc_chain *c);

#endif
