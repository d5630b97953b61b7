/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - where passphrases come from: --key-file (whole content,
 * "-" = all of standard input), a terminal prompt without echo, or the first
 * line of standard input when it is not a terminal (as cryptsetup does).
 */
#ifndef VC_SECRET_H
#define VC_SECRET_H

#include <stdbool.h>
#include "util.h"

#define VC_KEYFILE_MAX (8u << 20)	/* 8 MiB, cryptsetup's default limit */
#define VC_PASSPHRASE_MAX 512		/* interactive / line input */

#define VC_SECRET_LINES 32

struct vc_secret_src {
	const char *key_file;	/* NULL: prompt or standard input */
	int tries;		/* prompts on a terminal, >= 1 */
	struct vc_key *cached;	/* --key-file content, read once */
	struct vc_key *lines[VC_SECRET_LINES];	/* lines read from a non-terminal stdin */
	int nlines;
	bool stdin_eof;
};

/* Whether another attempt can give a different passphrase. */
bool vc_secret_interactive(const struct vc_secret_src *src);
/*
 * Get a passphrase for label (attempt 0, 1, ...). The caller frees *out with
 * vc_key_free(). -EPERM when no further attempt is possible.
 *   --key-file: its whole content, attempt 0 only (every layer gets it);
 *   terminal: a prompt per attempt, up to tries;
 *   other stdin: attempt i is line i (lines are kept, so every layer of a
 *   chain tries all lines given so far, then reads more).
 */
int vc_secret_get(struct vc_secret_src *src, const char *label, int attempt,
		  struct vc_key **out);
void vc_secret_clear(struct vc_secret_src *src);

#endif
