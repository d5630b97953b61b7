/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - the allocated ranges of a backing chain's virtual disk,
 * from each image's allocation map (qcow2 L1/L2 tables, VHD BAT): what a
 * copy of the chain has to read.
 */
#ifndef VC_EXTENTS_H
#define VC_EXTENTS_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"

struct vc_extent {
	uint64_t start, len;	/* bytes of the virtual disk */
};

struct vc_extents {
	struct vc_extent *e;	/* sorted, disjoint, not adjacent */
	size_t n, cap;
	uint64_t bytes;		/* the sum of their lengths */
};

/*
 * Every range of the top image's virtual disk that some image of c holds
 * data for (qcow2 clusters with data or zero flags, VHD blocks in the BAT,
 * all of a raw file), at cluster or block granularity.
 */
int vc_chain_extents(const struct vc_chain *c, struct vc_extents *x);
/* Add [start, start + len), keeping the list sorted and merged. */
int vc_extents_add(struct vc_extents *x, uint64_t start, uint64_t len);
void vc_extents_free(struct vc_extents *x);

#endif
