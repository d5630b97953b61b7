// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - passphrase input.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "secret.h"

bool vc_secret_interactive(const struct vc_secret_src *src)
{
	return !src->key_file && isatty(STDIN_FILENO);
}

static bool vc_stdin_eof;	/* the last vc_read_line() hit the end of input */

/* Read one line (without its newline) from fd into safe memory. */
static int vc_read_line(int fd, struct vc_key **out)
{
	struct vc_key *k = vc_key_new(VC_PASSPHRASE_MAX + 1);
	size_t len = 0;
	ssize_t r;
	char c;

	if (!k)
		return -ENOMEM;
	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			vc_stdin_eof = true;
		if (r <= 0 || c == '\n')
			break;
		if (len == VC_PASSPHRASE_MAX) {
			vc_key_free(k);
			return vc_fail(-EINVAL, "passphrase longer than %d characters",
				       VC_PASSPHRASE_MAX);
		}
		k->data[len++] = (unsigned char)c;
	}
	vc_safe_memzero(&c, 1);
	k->len = len;
	*out = k;
	return 0;
}

static int vc_prompt(const char *label, struct vc_key **out)
{
	struct termios old, noecho;
	int fd = STDIN_FILENO, r, restore = 0;

	fprintf(stderr, "Enter passphrase for %s: ", label);
	fflush(stderr);
	if (tcgetattr(fd, &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~ECHO;
		if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
			restore = 1;
	}
	r = vc_read_line(fd, out);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return r;
}

int vc_secret_get(struct vc_secret_src *src, const char *label, int attempt,
		  struct vc_key **out)
{
	int r;

	*out = NULL;
	if (vc_secret_interactive(src)) {
		if (attempt >= src->tries)
			return -EPERM;
		return vc_prompt(label, out);
	}
	if (src->key_file) {
		if (!src->cached) {
			r = vc_read_secret_file(src->key_file, VC_KEYFILE_MAX, &src->cached);
			if (r)
				return r;
		}
		/* a key file gives the same passphrase to every layer, once each */
		if (attempt > 0)
			return -EPERM;
		*out = vc_key_dup(src->cached);
		return *out ? 0 : -ENOMEM;
	}
	/* standard input, not a terminal: one passphrase per line */
	if (attempt >= VC_SECRET_LINES)
		return -EPERM;
	while (attempt >= src->nlines) {
		struct vc_key *k;

		if (src->stdin_eof || src->nlines == VC_SECRET_LINES)
			return -EPERM;
		r = vc_read_line(STDIN_FILENO, &k);
		if (r)
			return r;
		if (k->len == 0 && vc_stdin_eof) {
			/* nothing more on standard input */
			vc_key_free(k);
			src->stdin_eof = true;
			if (src->nlines == 0)
				return vc_fail(-EINVAL, "%s needs a passphrase, but standard input "
					       "is empty and not a terminal; use --key-file", label);
			return -EPERM;
		}
		src->lines[src->nlines++] = k;
		if (vc_stdin_eof)
			src->stdin_eof = true;
	}
	*out = vc_key_dup(src->lines[attempt]);
	return *out ? 0 : -ENOMEM;
}

void vc_secret_clear(struct vc_secret_src *src)
{
	int i;

	vc_key_free(src->cached);
	src->cached = NULL;
	for (i = 0; i < src->nlines; i++)
		vc_key_free(src->lines[i]);
	src->nlines = 0;
}
