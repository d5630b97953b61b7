// SPDX-License-Identifier: GPL-2.0
/* Probe: <linux/unaligned.h> (6.12; older kernels have <asm/unaligned.h>). */
#include <linux/unaligned.h>

u32 vc_probe_unaligned(const void *p);
u32 vc_probe_unaligned(const void *p)
{
	return get_unaligned_be32(p);
}
