// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - passphrase input.
 *
 * The prompt turns echo off; SIGINT, SIGTERM, SIGHUP and SIGQUIT interrupt
 * its read (no SA_RESTART) so that echo is restored before the tool exits,
 * with "error reading the passphrase" and exit code 1, as cryptsetup does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "passphrase.h"
#include "util.h"

static const int vc_prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static volatile sig_atomic_t vc_prompt_interrupted;

static void vc_prompt_on_signal(int sig)
{
	vc_prompt_interrupted = sig;
}

bool vc_passphrase_interactive(const struct vc_passphrase_src *src)
{
	return !src->key_file && isatty(STDIN_FILENO);
}

/*
 * Read one line (without its newline) from fd into locked memory. *eof: the
 * input ended. -EINTR if a prompt signal arrived.
 */
static int vc_read_line(int fd, struct vc_secret **out, bool *eof)
{
	struct vc_secret *s = vc_secret_new(VC_PASSPHRASE_MAX + 1);
	size_t len = 0;
	ssize_t r;
	char c = 0;

	*out = NULL;
	*eof = false;
	if (!s)
		return -ENOMEM;
	for (;;) {
		r = vc_prompt_interrupted ? -1 : read(fd, &c, 1);
		if (r < 0 && errno == EINTR && !vc_prompt_interrupted)
			continue;
		if (vc_prompt_interrupted) {
			vc_secret_free(s);
			return -EINTR;
		}
		if (r <= 0)
			*eof = true;
		if (r <= 0 || c == '\n')
			break;
		if (len == VC_PASSPHRASE_MAX) {
			vc_secret_free(s);
			vc_safe_memzero(&c, 1);
			return vc_fail(-EINVAL, "passphrase longer than %d characters",
				       VC_PASSPHRASE_MAX);
		}
		s->data[len++] = (unsigned char)c;
	}
	vc_safe_memzero(&c, 1);
	s->len = len;
	*out = s;
	return 0;
}

static int vc_prompt(const char *label, struct vc_secret **out)
{
	struct sigaction sa, old[sizeof(vc_prompt_signals) / sizeof(vc_prompt_signals[0])];
	struct termios saved, noecho;
	int fd = STDIN_FILENO, r, i, n = sizeof(old) / sizeof(old[0]);
	bool restore = false, eof;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vc_prompt_on_signal;	/* no SA_RESTART: read() returns EINTR */
	sigemptyset(&sa.sa_mask);
	vc_prompt_interrupted = 0;
	for (i = 0; i < n; i++)
		sigaction(vc_prompt_signals[i], &sa, &old[i]);
	fprintf(stderr, "Enter passphrase for %s: ", label);
	fflush(stderr);
	if (tcgetattr(fd, &saved) == 0) {
		noecho = saved;
		noecho.c_lflag &= ~ECHO;
		restore = tcsetattr(fd, TCSAFLUSH, &noecho) == 0;
	}
	r = vc_read_line(fd, out, &eof);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &saved);
	for (i = 0; i < n; i++)
		sigaction(vc_prompt_signals[i], &old[i], NULL);
	fputc('\n', stderr);
	if (r == -EINTR)
		return vc_fail(-EINTR, "error reading the passphrase from the terminal "
			       "(interrupted)");
	return r;
}

int vc_passphrase_get(struct vc_passphrase_src *src, const char *label, int attempt,
		      struct vc_secret **out)
{
	struct vc_secret *s;
	bool eof;
	int r;

	*out = NULL;
	if (src->key_file) {
		if (!src->cached) {
			r = vc_secret_read_file(src->key_file, "--key-file", src->keyfile_offset,
						src->keyfile_size, &src->cached, NULL);
			if (r)
				return r;
		}
		/* a key file gives the same passphrase to every layer, once each */
		if (attempt > 0)
			return -EPERM;
		*out = vc_secret_dup(src->cached);
		return *out ? 0 : -ENOMEM;
	}
	if (vc_passphrase_interactive(src)) {
		if (attempt >= src->tries)
			return -EPERM;
		return vc_prompt(label, out);
	}
	/* standard input, not a terminal: one passphrase per line */
	while (attempt >= src->nlines) {
		if (src->stdin_eof || src->nlines == VC_PASSPHRASE_LINES)
			return -EPERM;
		r = vc_read_line(STDIN_FILENO, &s, &eof);
		if (r)
			return r;
		src->stdin_eof = eof;
		if (s->len == 0 && eof) {
			/* nothing more on standard input */
			vc_secret_free(s);
			if (src->nlines == 0)
				return vc_fail(-EINVAL, "%s needs a passphrase, but standard input "
					       "is empty and not a terminal; use --key-file", label);
			return -EPERM;
		}
		src->lines[src->nlines++] = s;
	}
	*out = vc_secret_dup(src->lines[attempt]);
	return *out ? 0 : -ENOMEM;
}

void vc_passphrase_clear(struct vc_passphrase_src *src)
{
	int i;

	vc_secret_free(src->cached);
	src->cached = NULL;
	for (i = 0; i < src->nlines; i++)
		vc_secret_free(src->lines[i]);
	src->nlines = 0;
}
