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

struct vc_secret_src {
	const char *key_file;	/* NULL: prompt or standard input */
	int tries;		/* prompts on a terminal, >= 1 */
	struct vc_key *cached;	/* file / stdin content, read once */
	bool stdin_used;
};

/* Whether another attempt can give a different passphrase. */
bool vc_secret_interactive(const struct vc_secret_src *src);
/*
 * Get a passphrase for label (attempt 0, 1, ...). The caller frees *out with
 * vc_key_free(). -EPERM when no further attempt is possible.
 */
int vc_secret_get(struct vc_secret_src *src, const char *label, int attempt,
		  struct vc_key **out);
void vc_secret_clear(struct vc_secret_src *src);

#endif
