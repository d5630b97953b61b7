// SPDX-License-Identifier: GPL-2.0
/* Probe: blk_mode_t and BLK_OPEN_* (6.5+). */
#include <linux/blkdev.h>

blk_mode_t vc_probe_blk_mode_t(void);
blk_mode_t vc_probe_blk_mode_t(void)
{
	return BLK_OPEN_READ | BLK_OPEN_WRITE;
}
