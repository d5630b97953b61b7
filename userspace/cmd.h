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
	/* create, key slots, headers, vhd-key, convert */
	VC_OPT_SIZE = 1u << 14,
	VC_OPT_SUBFORMAT = 1u << 15,
	VC_OPT_CLUSTER_SIZE = 1u << 16,
	VC_OPT_CIPHER = 1u << 17,
	VC_OPT_KEY_SIZE = 1u << 18,
	VC_OPT_NONCE = 1u << 19,
	VC_OPT_BACKING = 1u << 20,
	VC_OPT_ITER_TIME = 1u << 21,
	VC_OPT_PBKDF = 1u << 22,
	VC_OPT_BATCH_MODE = 1u << 23,
	VC_OPT_HEADER_BACKUP_FILE = 1u << 24,
	VC_OPT_VHDKEY_ACTION = 1u << 25,	/* --print, --calc, --check, --set */
	VC_OPT_HASH = 1u << 26,
	VC_OPT_NEW_KEYFILE = 1u << 27,
	VC_OPT_NEW_KEY_DIR = 1u << 28,
	VC_OPT_NEW_HEADER = 1u << 29,
	VC_OPT_LUKS_TYPE = 1u << 30,
	VC_OPT_NO_PARTITIONS = 1u << 31,
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
	/* create, key slots, headers, vhd-key, convert */
	uint64_t size;			/* --size, bytes */
	bool fixed;			/* --subformat fixed */
	unsigned int cluster_bits;	/* --cluster-size, 0: 64 KiB */
	const char *cipher;		/* --cipher, dm-crypt syntax */
	unsigned int key_bits;		/* --key-size, 0: the default */
	const char *nonce;		/* --nonce, 64 hex digits */
	const char *backing;		/* --backing */
	unsigned int iter_time;		/* --iter-time, ms, 0: libcryptsetup's default */
	const char *pbkdf;		/* --pbkdf */
	bool batch;			/* --batch-mode: no confirmation */
	const char *header_backup_file;
	char vhdkey_action;		/* 'p'rint, 'c'alc, 'k' check, 's'et; 0: none */
	const char *hash;		/* --hash, 64 hex digits */
	const char *new_keyfile;	/* convert: --new-keyfile */
	const char *new_key_dir;	/* convert: --new-key-dir */
	const char *new_header;		/* convert: --new-header */
	const char *luks_type;		/* --luks-type luks1|luks2, NULL: luks2 */
};

struct vc_command {
	const char *name;
	const char *args;		/* for messages: "<image> <name>" */
	int nargs;			/* -1: the command checks (args end with NULL) */
	unsigned int options;		/* the VC_OPT_* it takes */
	int (*run)(const struct vc_opts *o, char **args);
};

int vc_cmd_open(const struct vc_opts *o, char **args);
int vc_cmd_close(const struct vc_opts *o, char **args);
int vc_cmd_status(const struct vc_opts *o, char **args);
int vc_cmd_probe(const struct vc_opts *o, char **args);
int vc_cmd_create(const struct vc_opts *o, char **args);
int vc_cmd_luks_add_key(const struct vc_opts *o, char **args);
int vc_cmd_luks_change_key(const struct vc_opts *o, char **args);
int vc_cmd_luks_remove_key(const struct vc_opts *o, char **args);
int vc_cmd_luks_kill_slot(const struct vc_opts *o, char **args);
int vc_cmd_luks_dump(const struct vc_opts *o, char **args);
int vc_cmd_is_luks(const struct vc_opts *o, char **args);
int vc_cmd_erase(const struct vc_opts *o, char **args);
int vc_cmd_header_backup(const struct vc_opts *o, char **args);
int vc_cmd_header_restore(const struct vc_opts *o, char **args);
int vc_cmd_vhd_key(const struct vc_opts *o, char **args);
int vc_cmd_convert(const struct vc_opts *o, char **args);

#endif
