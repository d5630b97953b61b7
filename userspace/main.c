// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - set up vhdcrypt devices for VHD and qcow2 images.
 *
 * The command line follows cryptsetup's conventions (options anywhere,
 * exit codes); see vhdcryptsetup(8). A command is a line in vc_commands[]
 * with the options it takes, and a function in cmd-<name>.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dm.h"
#include "luks.h"
#include "util.h"

#ifndef VC_VERSION
#define VC_VERSION "0.1"
#endif

#define VC_OPEN_OPTIONS (VC_OPT_TYPE | VC_OPT_KEY_FILE | VC_OPT_KEYFILE_OFFSET | \
			 VC_OPT_KEYFILE_SIZE | VC_OPT_VOLUME_KEY_FILE | VC_OPT_KEY_DIR | \
			 VC_OPT_HEADER | VC_OPT_KEY_SLOT | VC_OPT_READONLY | \
			 VC_OPT_ALLOW_DISCARDS | VC_OPT_TRIES | VC_OPT_DISABLE_KEYRING | \
			 VC_OPT_DRY_RUN | VC_OPT_NO_PARTITIONS)

#define VC_PASS_OPTIONS (VC_OPT_KEY_FILE | VC_OPT_KEYFILE_OFFSET | VC_OPT_KEYFILE_SIZE)
#define VC_PBKDF_OPTIONS (VC_OPT_ITER_TIME | VC_OPT_PBKDF)
#define VC_CREATE_OPTIONS (VC_OPT_TYPE | VC_OPT_SIZE | VC_OPT_SUBFORMAT | VC_OPT_CLUSTER_SIZE | \
			   VC_OPT_CIPHER | VC_OPT_KEY_SIZE | VC_PASS_OPTIONS | VC_OPT_KEY_DIR | \
			   VC_OPT_NONCE | VC_OPT_HEADER | VC_OPT_LUKS_TYPE | VC_OPT_BACKING | \
			   VC_PBKDF_OPTIONS | VC_OPT_BATCH_MODE)
#define VC_CONVERT_OPTIONS (VC_OPT_TYPE | VC_OPT_CIPHER | VC_OPT_KEY_SIZE | VC_OPT_NEW_KEYFILE | \
			    VC_OPT_NEW_KEY_DIR | VC_OPT_NEW_HEADER | VC_OPT_LUKS_TYPE | \
			    VC_OPT_CLUSTER_SIZE | VC_OPT_SUBFORMAT | VC_PASS_OPTIONS | \
			    VC_OPT_VOLUME_KEY_FILE | VC_OPT_KEY_DIR | VC_OPT_HEADER | \
			    VC_OPT_NONCE | VC_PBKDF_OPTIONS | VC_OPT_BATCH_MODE)

static const struct vc_command vc_commands[] = {
	{ "open", "<image> <name>", 2, VC_OPEN_OPTIONS, vc_cmd_open },
	{ "close", "<name>", 1, 0, vc_cmd_close },
	{ "remove", "<name>", 1, 0, vc_cmd_close },	/* cryptsetup's old name */
	{ "status", "<name>", 1, VC_OPT_JSON, vc_cmd_status },
	{ "probe", "<image-or-device>", 1, 0, vc_cmd_probe },
	{ "create", "<image>", 1, VC_CREATE_OPTIONS, vc_cmd_create },
	{ "luksAddKey", "<image> <new-key-file>", 2,
	  VC_PASS_OPTIONS | VC_OPT_HEADER | VC_OPT_KEY_SLOT | VC_PBKDF_OPTIONS,
	  vc_cmd_luks_add_key },
	{ "luksChangeKey", "<image> <new-key-file>", 2,
	  VC_PASS_OPTIONS | VC_OPT_HEADER | VC_OPT_KEY_SLOT | VC_PBKDF_OPTIONS,
	  vc_cmd_luks_change_key },
	{ "luksRemoveKey", "<image> <key-file>", 2, VC_OPT_HEADER | VC_OPT_BATCH_MODE,
	  vc_cmd_luks_remove_key },
	{ "luksKillSlot", "<image> <key-slot>", 2,
	  VC_PASS_OPTIONS | VC_OPT_HEADER | VC_OPT_BATCH_MODE, vc_cmd_luks_kill_slot },
	{ "luksDump", "<image>", 1, VC_OPT_HEADER, vc_cmd_luks_dump },
	{ "isLuks", "<image>", 1, VC_OPT_HEADER, vc_cmd_is_luks },
	{ "erase", "<image>", 1, VC_OPT_HEADER | VC_OPT_KEY_DIR | VC_OPT_BATCH_MODE,
	  vc_cmd_erase },
	{ "luksErase", "<image>", 1, VC_OPT_HEADER | VC_OPT_KEY_DIR | VC_OPT_BATCH_MODE,
	  vc_cmd_erase },	/* cryptsetup's other name */
	{ "luksHeaderBackup", "<image>", 1, VC_OPT_HEADER | VC_OPT_HEADER_BACKUP_FILE,
	  vc_cmd_header_backup },
	{ "luksHeaderRestore", "<image>", 1, VC_PASS_OPTIONS | VC_OPT_HEADER |
	  VC_OPT_HEADER_BACKUP_FILE | VC_OPT_BATCH_MODE, vc_cmd_header_restore },
	{ "vhd-key", "--print|--check|--set <image>, or --calc", -1,
	  VC_OPT_VHDKEY_ACTION | VC_PASS_OPTIONS | VC_OPT_HASH | VC_OPT_NONCE, vc_cmd_vhd_key },
	{ "convert", "<source> <dest>", 2, VC_CONVERT_OPTIONS, vc_cmd_convert },
};

enum {
	OPT_TYPE = 256,
	OPT_KEYFILE_OFFSET,
	OPT_VOLUME_KEY_FILE,
	OPT_KEY_DIR,
	OPT_HEADER,
	OPT_ALLOW_DISCARDS,
	OPT_DISABLE_KEYRING,
	OPT_JSON,
	OPT_DRY_RUN,
	OPT_DEBUG,
	OPT_NO_PARTITIONS,
	OPT_SIZE,
	OPT_SUBFORMAT,
	OPT_CLUSTER_SIZE,
	OPT_NONCE,
	OPT_BACKING,
	OPT_PBKDF,
	OPT_HEADER_BACKUP_FILE,
	OPT_PRINT,
	OPT_CALC,
	OPT_CHECK,
	OPT_SET,
	OPT_HASH,
	OPT_NEW_KEYFILE,
	OPT_NEW_KEY_DIR,
	OPT_NEW_HEADER,
	OPT_LUKS_TYPE,
};

static const struct option vc_options[] = {
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "key-file", required_argument, NULL, 'd' },
	{ "keyfile-offset", required_argument, NULL, OPT_KEYFILE_OFFSET },
	{ "keyfile-size", required_argument, NULL, 'l' },
	{ "volume-key-file", required_argument, NULL, OPT_VOLUME_KEY_FILE },
	{ "key-dir", required_argument, NULL, OPT_KEY_DIR },
	{ "header", required_argument, NULL, OPT_HEADER },
	{ "key-slot", required_argument, NULL, 'S' },
	{ "readonly", no_argument, NULL, 'r' },
	{ "allow-discards", no_argument, NULL, OPT_ALLOW_DISCARDS },
	{ "tries", required_argument, NULL, 'T' },
	{ "disable-keyring", no_argument, NULL, OPT_DISABLE_KEYRING },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "no-partitions", no_argument, NULL, OPT_NO_PARTITIONS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "subformat", required_argument, NULL, OPT_SUBFORMAT },
	{ "cluster-size", required_argument, NULL, OPT_CLUSTER_SIZE },
	{ "cipher", required_argument, NULL, 'c' },
	{ "key-size", required_argument, NULL, 's' },
	{ "nonce", required_argument, NULL, OPT_NONCE },
	{ "backing", required_argument, NULL, OPT_BACKING },
	{ "iter-time", required_argument, NULL, 'i' },
	{ "pbkdf", required_argument, NULL, OPT_PBKDF },
	{ "batch-mode", no_argument, NULL, 'q' },
	{ "header-backup-file", required_argument, NULL, OPT_HEADER_BACKUP_FILE },
	{ "print", no_argument, NULL, OPT_PRINT },
	{ "calc", no_argument, NULL, OPT_CALC },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "set", no_argument, NULL, OPT_SET },
	{ "hash", required_argument, NULL, OPT_HASH },
	{ "new-keyfile", required_argument, NULL, OPT_NEW_KEYFILE },
	{ "new-key-dir", required_argument, NULL, OPT_NEW_KEY_DIR },
	{ "new-header", required_argument, NULL, OPT_NEW_HEADER },
	{ "luks-type", required_argument, NULL, OPT_LUKS_TYPE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* The VC_OPT_* bit of an option (0: one every command takes) and its name. */
static const struct {
	int val;
	unsigned int bit;
	const char *name;
} vc_option_bits[] = {
	{ OPT_TYPE, VC_OPT_TYPE, "--type" },
	{ 'd', VC_OPT_KEY_FILE, "--key-file" },
	{ OPT_KEYFILE_OFFSET, VC_OPT_KEYFILE_OFFSET, "--keyfile-offset" },
	{ 'l', VC_OPT_KEYFILE_SIZE, "--keyfile-size" },
	{ OPT_VOLUME_KEY_FILE, VC_OPT_VOLUME_KEY_FILE, "--volume-key-file" },
	{ OPT_KEY_DIR, VC_OPT_KEY_DIR, "--key-dir" },
	{ OPT_HEADER, VC_OPT_HEADER, "--header" },
	{ 'S', VC_OPT_KEY_SLOT, "--key-slot" },
	{ 'r', VC_OPT_READONLY, "--readonly" },
	{ OPT_ALLOW_DISCARDS, VC_OPT_ALLOW_DISCARDS, "--allow-discards" },
	{ 'T', VC_OPT_TRIES, "--tries" },
	{ OPT_DISABLE_KEYRING, VC_OPT_DISABLE_KEYRING, "--disable-keyring" },
	{ OPT_JSON, VC_OPT_JSON, "--json" },
	{ OPT_DRY_RUN, VC_OPT_DRY_RUN, "--dry-run" },
	{ OPT_NO_PARTITIONS, VC_OPT_NO_PARTITIONS, "--no-partitions" },
	{ OPT_SIZE, VC_OPT_SIZE, "--size" },
	{ OPT_SUBFORMAT, VC_OPT_SUBFORMAT, "--subformat" },
	{ OPT_CLUSTER_SIZE, VC_OPT_CLUSTER_SIZE, "--cluster-size" },
	{ 'c', VC_OPT_CIPHER, "--cipher" },
	{ 's', VC_OPT_KEY_SIZE, "--key-size" },
	{ OPT_NONCE, VC_OPT_NONCE, "--nonce" },
	{ OPT_BACKING, VC_OPT_BACKING, "--backing" },
	{ 'i', VC_OPT_ITER_TIME, "--iter-time" },
	{ OPT_PBKDF, VC_OPT_PBKDF, "--pbkdf" },
	{ 'q', VC_OPT_BATCH_MODE, "--batch-mode" },
	{ OPT_HEADER_BACKUP_FILE, VC_OPT_HEADER_BACKUP_FILE, "--header-backup-file" },
	{ OPT_PRINT, VC_OPT_VHDKEY_ACTION, "--print" },
	{ OPT_CALC, VC_OPT_VHDKEY_ACTION, "--calc" },
	{ OPT_CHECK, VC_OPT_VHDKEY_ACTION, "--check" },
	{ OPT_SET, VC_OPT_VHDKEY_ACTION, "--set" },
	{ OPT_HASH, VC_OPT_HASH, "--hash" },
	{ OPT_NEW_KEYFILE, VC_OPT_NEW_KEYFILE, "--new-keyfile" },
	{ OPT_NEW_KEY_DIR, VC_OPT_NEW_KEY_DIR, "--new-key-dir" },
	{ OPT_NEW_HEADER, VC_OPT_NEW_HEADER, "--new-header" },
	{ OPT_LUKS_TYPE, VC_OPT_LUKS_TYPE, "--luks-type" },
};

static void vc_usage(FILE *f)
{
	fprintf(f,
"Usage: " VC_PROG " <command> [options] <arguments>\n"
"\n"
"Commands:\n"
"  open [options] <image> <name>   map the virtual disk of a VHD or qcow2 image\n"
"                                  (and its backing chain), or a raw payload\n"
"                                  under --header, as /dev/mapper/<name>, and its\n"
"                                  partitions as /dev/mapper/<name>p<N>\n"
"  close <name>                    remove <name>, its partitions, lower layers and\n"
"                                  loop devices; trim a grown image file\n"
"  status [--json] <name>          show an open device\n"
"  probe <image-or-device>         print udev-style VHDCRYPT_* properties\n"
"  create --type qcow2|vhd --size SIZE [options] <image>\n"
"                                  make a new (encrypted) image, or format a device\n"
"  luksAddKey <image> <new-key-file>      add a passphrase (qcow2 LUKS, --header)\n"
"  luksChangeKey <image> <new-key-file>   replace the --key-file passphrase\n"
"  luksRemoveKey <image> <key-file>       remove the key slot of that passphrase\n"
"  luksKillSlot <image> <key-slot>        remove a key slot\n"
"  luksDump <image>                show the LUKS header and its key slots\n"
"  isLuks <image>                  exit 0 if the image has a LUKS header\n"
"  erase <image>                   destroy every key slot (OpenXT: the key hash)\n"
"  luksHeaderBackup --header-backup-file <file> <image>\n"
"  luksHeaderRestore --header-backup-file <file> <image>\n"
"  vhd-key --print|--check|--set <image>, vhd-key --calc\n"
"                                  OpenXT key hashes, as vhd-util key\n"
"  convert [options] <source> <dest>      copy into a new image, re-keyed\n"
"\n"
"Options for open:\n"
"      --type vhd|vpc|qcow2|raw    image format (default: detected from the content;\n"
"                                  raw: a payload under --header)\n"
"  -d, --key-file <file>           passphrase file (LUKS, legacy AES; - = stdin),\n"
"                                  or the raw 32/64-byte key of an OpenXT VHD\n"
"      --keyfile-offset <bytes>    skip this much of the key file\n"
"  -l, --keyfile-size <bytes>      read only this much of the key file\n"
"      --volume-key-file <file>    the top image's key itself: an OpenXT key, a\n"
"                                  LUKS volume key, the 16-byte legacy AES key\n"
"      --key-dir <dir>[,<dir>...]  OpenXT key directories (default:\n"
"                                  $TAPDISK3_CRYPTO_KEYDIR, $TAPDISK2_CRYPTO_KEYDIR,\n"
"                                  /config/platform-crypto-keys)\n"
"      --header <file-or-device>   detached LUKS1/LUKS2 header for the image's data\n"
"  -S, --key-slot <n>              try only this LUKS key slot\n"
"  -r, --readonly                  read-only mapping (default: read-write if the\n"
"                                  file and its format can be written)\n"
"      --allow-discards            pass discards to the image (read-write only)\n"
"      --no-partitions             do not map the partitions of the virtual disk\n"
"  -T, --tries <n>                 passphrase prompts (default 3)\n"
"      --disable-keyring           put the key in the table (hex), not in the keyring\n"
"      --dry-run                   print the tables (keys masked), create nothing\n"
"\n"
"Options for create, the key slot commands and convert (see vhdcryptsetup(8)):\n"
"      --size <bytes>[K|M|G|T]     virtual disk size\n"
"      --subformat dynamic|fixed   VHD kind (default dynamic)\n"
"      --cluster-size <bytes>      qcow2 cluster size (default 64K)\n"
"  -c, --cipher <spec>             cipher (default aes-xts-plain64; OpenXT: aes-xts-plain)\n"
"  -s, --key-size <bits>           key size (default 512)\n"
"      --nonce <hex>               OpenXT key hash nonce (64 hex digits)\n"
"      --hash <hex>                vhd-key --set: the key hash itself\n"
"      --backing <image>           overlay (qcow2) or differencing VHD of <image>\n"
"      --luks-type luks1|luks2     the --header made by create (default luks2)\n"
"  -i, --iter-time <ms>            PBKDF time for new key slots\n"
"      --pbkdf pbkdf2|argon2id|argon2i   PBKDF for new key slots\n"
"  -q, --batch-mode                no confirmation before overwriting or erasing\n"
"      --header-backup-file <file> luksHeaderBackup, luksHeaderRestore\n"
"      --new-keyfile <file>, --new-key-dir <dir>, --new-header <file>\n"
"                                  convert: the destination's key\n"
"\n"
"Options for status:\n"
"      --json                      status as JSON\n"
"\n"
"Other options:\n"
"  -v, --verbose                   more messages\n"
"      --debug                     debug messages (also VHDCRYPT_DEBUG=1)\n"
"  -h, --help                      this help\n"
"  -V, --version                   print the version\n"
"\n"
"Exit status, as cryptsetup's:\n"
"  0 success\n"
"  1 wrong parameters, not an image or damaged, unsupported, no device-mapper,\n"
"    no kernel target, not run as root, passphrase input failed\n"
"  2 wrong passphrase or key, no key found\n"
"  3 out of memory\n"
"  4 the image, a parent or the header does not exist; the device is not active\n"
"  5 the device exists, the image is in use (also by QEMU), or the device is busy\n"
"See vhdcryptsetup(8).\n");
}

static int vc_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int vc_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs(VC_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("; see '" VC_PROG " --help'\n", stderr);
	va_end(ap);
	return VC_EXIT_PARAM;
}

/* A number from min to max; 0, or an exit code. */
static int vc_parse_number(const char *opt, const char *arg, unsigned long long min,
			   unsigned long long max, unsigned long long *v)
{
	if (vc_parse_u64(arg, v) || *v < min || *v > max)
		return vc_usage_error("invalid %s \"%s\"", opt, arg);
	return 0;
}

/* One option into o; 0, or an exit code. */
static int vc_option(int c, struct vc_opts *o)
{
	unsigned long long v;
	uint64_t sz;
	size_t i;

	for (i = 0; i < sizeof(vc_option_bits) / sizeof(vc_option_bits[0]); i++)
		if (vc_option_bits[i].val == c)
			o->given |= vc_option_bits[i].bit;
	switch (c) {
	case OPT_TYPE:
		if (vc_fmt_parse(optarg, &o->type))
			return vc_usage_error("unknown --type \"%s\" (vhd, vpc, qcow2 or raw)",
					      optarg);
		return 0;
	case 'd':
		o->key_file = optarg;
		return 0;
	case OPT_KEYFILE_OFFSET:
		if (vc_parse_number("--keyfile-offset", optarg, 0, UINT64_MAX, &v))
			return VC_EXIT_PARAM;
		o->keyfile_offset = v;
		return 0;
	case 'l':
		if (vc_parse_number("--keyfile-size", optarg, 1, 8u << 20, &v))
			return VC_EXIT_PARAM;
		o->keyfile_size = v;
		return 0;
	case OPT_VOLUME_KEY_FILE:
		o->volume_key_file = optarg;
		return 0;
	case OPT_KEY_DIR:
		o->key_dir = optarg;
		return 0;
	case OPT_HEADER:
		o->header = optarg;
		return 0;
	case 'S':
		if (vc_parse_number("--key-slot", optarg, 0, 31, &v))
			return VC_EXIT_PARAM;
		o->key_slot = (int)v;
		return 0;
	case 'T':
		if (vc_parse_number("--tries", optarg, 1, 100, &v))
			return VC_EXIT_PARAM;
		o->tries = (int)v;
		return 0;
	case OPT_DISABLE_KEYRING:
		o->disable_keyring = true;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	case OPT_SIZE:
		if (vc_parse_size(optarg, &o->size) || !o->size || o->size & 511)
			return vc_usage_error("invalid --size \"%s\" (bytes, a multiple of 512; "
					      "suffixes K, M, G, T)", optarg);
		return 0;
	case OPT_SUBFORMAT:
		if (strcmp(optarg, "dynamic") && strcmp(optarg, "fixed"))
			return vc_usage_error("unknown --subformat \"%s\" (dynamic or fixed)",
					      optarg);
		o->fixed = !strcmp(optarg, "fixed");
		return 0;
	case OPT_CLUSTER_SIZE:
		if (vc_parse_size(optarg, &sz) || sz < 512 || sz > (2u << 20) || (sz & (sz - 1)))
			return vc_usage_error("invalid --cluster-size \"%s\" (a power of two from "
					      "512 to 2M)", optarg);
		o->cluster_bits = __builtin_ctzll(sz);
		return 0;
	case 'c':
		o->cipher = optarg;
		return 0;
	case 's':
		if (vc_parse_number("--key-size", optarg, 128, 512, &v) || v % 128)
			return vc_usage_error("invalid --key-size \"%s\" (bits: 128, 256, 384 "
					      "or 512)", optarg);
		o->key_bits = v;
		return 0;
	case OPT_NONCE:
		o->nonce = optarg;
		return 0;
	case OPT_BACKING:
		o->backing = optarg;
		return 0;
	case 'i':
		if (vc_parse_number("--iter-time", optarg, 1, 3600000, &v))
			return VC_EXIT_PARAM;
		o->iter_time = v;
		return 0;
	case OPT_PBKDF:
		if (strcmp(optarg, "pbkdf2") && strcmp(optarg, "argon2id") &&
		    strcmp(optarg, "argon2i"))
			return vc_usage_error("unknown --pbkdf \"%s\" (pbkdf2, argon2id or "
					      "argon2i)", optarg);
		o->pbkdf = optarg;
		return 0;
	case 'q':
		o->batch = true;
		return 0;
	case OPT_HEADER_BACKUP_FILE:
		o->header_backup_file = optarg;
		return 0;
	case OPT_PRINT:
	case OPT_CALC:
	case OPT_CHECK:
	case OPT_SET: {
		static const char act[] = { [OPT_PRINT - OPT_PRINT] = 'p', 'c', 'k', 's' };

		if (o->vhdkey_action && o->vhdkey_action != act[c - OPT_PRINT])
			return vc_usage_error("give one of --print, --calc, --check and --set");
		o->vhdkey_action = act[c - OPT_PRINT];
		return 0;
	}
	case OPT_HASH:
		o->hash = optarg;
		return 0;
	case OPT_NEW_KEYFILE:
		o->new_keyfile = optarg;
		return 0;
	case OPT_NEW_KEY_DIR:
		o->new_key_dir = optarg;
		return 0;
	case OPT_NEW_HEADER:
		o->new_header = optarg;
		return 0;
	case OPT_LUKS_TYPE:
		if (strcmp(optarg, "luks1") && strcmp(optarg, "luks2"))
			return vc_usage_error("unknown --luks-type \"%s\" (luks1 or luks2)",
					      optarg);
		o->luks_type = optarg;
		return 0;
	case 'r':
	case OPT_ALLOW_DISCARDS:
	case OPT_NO_PARTITIONS:
		return 0;	/* bits only: open looks at them */
	case 'v':
		vc_verbose = 1;
		return 0;
	case OPT_DEBUG:
		vc_debug = vc_debug ? vc_debug : 1;
		return 0;
	default:
		return VC_EXIT_PARAM;
	}
}

static const struct vc_command *vc_find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(vc_commands) / sizeof(vc_commands[0]); i++)
		if (!strcmp(vc_commands[i].name, name))
			return &vc_commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct vc_opts o = { .key_slot = -1, .tries = 3, .type = VC_FMT_UNKNOWN };
	const struct vc_command *cmd;
	const char *env, *m;
	size_t i;
	int c, r;

	env = getenv("VHDCRYPT_DEBUG");
	if (env && *env && strcmp(env, "0"))
		vc_debug = atoi(env) > 1 ? atoi(env) : 1;

	opterr = 0;
	/* the leading ':' tells a missing argument (':') from an unknown option ('?') */
	while ((c = getopt_long(argc, argv, ":d:l:S:rT:vhVc:s:i:q", vc_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			vc_usage(stdout);
			return 0;
		case 'V':
			printf(VC_PROG " " VC_VERSION "\n");
			return 0;
		case ':':
			if (argv[optind - 1][1] == '-')
				return vc_usage_error("option %s needs an argument",
						      argv[optind - 1]);
			return vc_usage_error("option -%c needs an argument", optopt);
		case '?':
			if (optopt)
				return vc_usage_error("unknown option -%c", optopt);
			return vc_usage_error("unknown option %s", argv[optind - 1]);
		default:
			r = vc_option(c, &o);
			if (r)
				return r;
		}
	}
	if (optind >= argc) {
		vc_usage(stderr);
		return VC_EXIT_PARAM;
	}
	cmd = vc_find_command(argv[optind]);
	if (!cmd)
		return vc_usage_error("unknown command \"%s\"", argv[optind]);
	if (cmd->nargs >= 0 && argc - optind - 1 != cmd->nargs)
		return vc_usage_error("%s needs %s", cmd->name, cmd->args);
	for (i = 0; i < sizeof(vc_option_bits) / sizeof(vc_option_bits[0]); i++)
		if (o.given & vc_option_bits[i].bit & ~cmd->options)
			return vc_usage_error("option %s does not apply to %s",
					      vc_option_bits[i].name, cmd->name);
	if ((o.given & (VC_OPT_KEYFILE_OFFSET | VC_OPT_KEYFILE_SIZE)) && !o.key_file)
		return vc_usage_error("--keyfile-offset and --keyfile-size apply to --key-file");

	vc_dm_init();
	vc_luks_init();
	r = cmd->run(&o, argv + optind + 1);
	if (r) {
		m = vc_last_error();
		fprintf(stderr, VC_PROG ": %s\n", *m ? m : strerror(-r));
		return vc_exit_code(r);
	}
	return 0;
}
