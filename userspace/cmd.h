/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - commands and their options. main.c parses the command
 * line into struct vc_opts and refuses an option the command does not
 * take; each command is one function in cmd-<name>.c.
 */
#ifndef VC_CMD_H
#define VC_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Options, as bits of vc_opts.given and vc_command.options. */
enum {
	VC_OPT_TYPE = 1u << 0,
	VC_OPT_KEY_FILE = 1u << 1,
	VC_OPT_KEYFILE_OFFSET = 1u << 2,
	VC_OPT_KEYFILE_SIZE = 1u << 3,
	VC_OPT_VOLUME_KEY_FILE = 1u << 4,
	VC_OPT_KEY_DIR = 1u << 5,
	VC_OPT_HEADER = 1u << 6,
	VC_OPT_KEY_SLOT = 1u << 7,
	VC_OPT_READONLY = 1u << 8,
	VC_OPT_ALLOW_DISCARDS = 1u << 9,
	VC_OPT_TRIES = 1u << 10,
	VC_OPT_DISABLE_KEYRING = 1u << 11,
	VC_OPT_JSON = 1u << 12,
	VC_OPT_DRY_RUN = 1u << 13,
};

struct vc_opts {
	unsigned int given;		/* VC_OPT_* on the command line */
	enum vc_fmt type;		/* --type, VC_FMT_UNKNOWN: detect */
	const char *key_file;
	uint64_t keyfile_offset;	/* bytes */
	size_t keyfile_size;		/* bytes, 0: all */
	const char *volume_key_file;
	const char *key_dir;		/* comma-separated list, NULL: default */
	const char *header;		/* detached LUKS header */
	int key_slot;			/* -1: any */
	int tries;
	bool disable_keyring;
	bool dry_run;			/* print the tables, create nothing */
	bool json;
};

struct vc_command {
	const char *name;
	const char *args;		/* for messages: "<image> <name>" */
	int nargs;
	unsigned int options;		/* the VC_OPT_* it takes */
	int (*run)(const struct vc_opts *o, char **args);
};

int vc_cmd_open(const struct vc_opts *o, char **args);
int vc_cmd_close(const struct vc_opts *o, char **args);
int vc_cmd_status(const struct vc_opts *o, char **args);
int vc_cmd_probe(const struct vc_opts *o, char **args);

#endif
