/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - confirmation of destructive commands, as cryptsetup asks
 * it: "Type 'yes' in capital letters" on a terminal, --batch-mode to skip.
 */
#ifndef VC_CONFIRM_H
#define VC_CONFIRM_H

#include <stdbool.h>

/*
 * 0 to go ahead: batch (--batch-mode), or YES typed on the terminal after
 * the warning what. Without a terminal and without batch, or on any other
 * answer, fails (exit code 1) and the caller changes nothing.
 */
int vc_confirm(bool batch, const char *what);

#endif
