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
			 VC_OPT_DRY_RUN)

static const struct vc_command vc_commands[] = {
	{ "open", "<image> <name>", 2, VC_OPEN_OPTIONS, vc_cmd_open },
	{ "close", "<name>", 1, 0, vc_cmd_close },
	{ "remove", "<name>", 1, 0, vc_cmd_close },	/* cryptsetup's old name */
	{ "status", "<name>", 1, VC_OPT_JSON, vc_cmd_status },
	{ "probe", "<image-or-device>", 1, 0, vc_cmd_probe },
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
	{ "verbose", no_argument, NULL, 'v' },
	{ "debug", no_argument, NULL, OPT_DEBUG },
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
};

static void vc_usage(FILE *f)
{
	fprintf(f,
"Usage: " VC_PROG " <command> [options] <arguments>\n"
"\n"
"Commands:\n"
"  open [options] <image> <name>   map the virtual disk of a VHD or qcow2 image\n"
"                                  (and its backing chain), or a raw payload\n"
"                                  under --header, as /dev/mapper/<name>\n"
"  close <name>                    remove <name>, its lower layers and loop devices\n"
"  status [--json] <name>          show an open device\n"
"  probe <image-or-device>         print udev-style VHDCRYPT_* properties\n"
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
"  -r, --readonly                  read-only mapping (every mapping is, in this release)\n"
"      --allow-discards            no effect on a read-only mapping (a warning says so)\n"
"  -T, --tries <n>                 passphrase prompts (default 3)\n"
"      --disable-keyring           put the key in the table (hex), not in the keyring\n"
"      --dry-run                   print the tables (keys masked), create nothing\n"
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
"  5 the device exists, the image is in use, or the device is busy\n"
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
	case 'r':
	case OPT_ALLOW_DISCARDS:
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
	while ((c = getopt_long(argc, argv, ":d:l:S:rT:vhV", vc_options, NULL)) != -1) {
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
	if (argc - optind - 1 != cmd->nargs)
		return vc_usage_error("%s needs %s", cmd->name, cmd->args);
	for (i = 0; i < sizeof(vc_option_bits) / sizeof(vc_option_bits[0]); i++)
		if (o.given & vc_option_bits[i].bit & ~cmd->options)
			return vc_usage_error("option %s does not apply to %s",
					      vc_option_bits[i].name, cmd->name);

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
