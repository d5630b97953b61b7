// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - confirmation of destructive commands.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "confirm.h"
#include "util.h"

int vc_confirm(bool batch, const char *what)
{
	char line[64];

	if (batch)
		return 0;
	if (!isatty(STDIN_FILENO))
		return vc_fail_exit(VC_EXIT_PARAM, -EPERM, "%s; confirm it on a terminal or give "
				    "--batch-mode (nothing was changed)", what);
	fprintf(stderr, "\nWARNING!\n========\n%s.\n\nAre you sure? (Type 'yes' in capital "
		"letters): ", what);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin) || strcmp(line, "YES\n"))
		return vc_fail_exit(VC_EXIT_PARAM, -EPERM, "operation aborted (nothing was "
				    "changed)");
	return 0;
}
