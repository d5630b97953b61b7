/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - where passphrases come from: --key-file (its whole content
 * or --keyfile-offset/--keyfile-size of it, "-" = standard input), a prompt
 * on the terminal without echo, or the lines of standard input when it is
 * not a terminal.
 */
#ifndef VC_PASSPHRASE_H
#define VC_PASSPHRASE_H

#include <stdbool.h>
#include <stdint.h>

#include "secret.h"

#define VC_PASSPHRASE_MAX 512		/* a prompt or a line, as cryptsetup's */
#define VC_PASSPHRASE_LINES 32		/* lines kept from a non-terminal stdin */

struct vc_passphrase_src {
	const char *key_file;		/* NULL: prompt or standard input */
	uint64_t keyfile_offset;	/* bytes */
	size_t keyfile_size;		/* bytes, 0: the whole file */
	int tries;			/* prompts on a terminal, >= 1 */
	/* state */
	struct vc_secret *cached;	/* --key-file content, read once */
	struct vc_secret *lines[VC_PASSPHRASE_LINES];	/* read from a non-terminal stdin */
	int nlines;
	bool stdin_eof;
};

/* Whether another attempt can give a different passphrase (a terminal). */
bool vc_passphrase_interactive(const struct vc_passphrase_src *src);
/*
 * Get a passphrase for label (attempt 0, 1, ...). The caller frees *out with
 * vc_secret_free(). -EPERM when no further attempt is possible.
 *   --key-file: its content, attempt 0 only (every layer gets it);
 *   terminal: a prompt per attempt, up to tries; an interrupt (Ctrl-C)
 *   restores the terminal and fails with -EINTR;
 *   other stdin: attempt i is line i (lines are kept, so every layer of a
 *   chain tries all lines given so far, then reads more).
 */
int vc_passphrase_get(struct vc_passphrase_src *src, const char *label, int attempt,
		      struct vc_secret **out);
void vc_passphrase_clear(struct vc_passphrase_src *src);

#endif
