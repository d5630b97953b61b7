// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - set up vhdcrypt devices for VHD and qcow2 images.
 *
 *   vhdcryptsetup open [options] <image> <name>
 *   vhdcryptsetup close <name>
 *   vhdcryptsetup status [--json] <name>
 *   vhdcryptsetup probe <image-or-device>
 *
 * The command line follows cryptsetup's conventions (options anywhere,
 * exit codes); see vhdcryptsetup(8).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activate.h"
#include "dm.h"
#include "luks.h"
#include "probe.h"
#include "status.h"
#include "util.h"

#ifndef VC_VERSION
#define VC_VERSION "0.1"
#endif

enum {
	OPT_TYPE = 256,
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

static void vc_usage(FILE *f)
{
	fprintf(f,
"Usage: " VC_PROG " <command> [options] <arguments>\n"
"\n"
"Commands:\n"
"  open [options] <image> <name>   map the virtual disk of a VHD or qcow2 image\n"
"                                  (and its backing chain) as /dev/mapper/<name>\n"
"  close <name>                    remove <name>, its lower layers and loop devices\n"
"  status [--json] <name>          show an open device\n"
"  probe <image-or-device>         print udev-style VHDCRYPT_* properties\n"
"\n"
"Options for open:\n"
"      --type vhd|qcow2            image format (default: detected from the content)\n"
"  -d, --key-file <file>           LUKS passphrase file (whole content, - = stdin),\n"
"                                  or the raw 32/64-byte key of an OpenXT VHD\n"
"      --key-dir <dir>[,<dir>...]  OpenXT key directories (default:\n"
"                                  $TAPDISK3_CRYPTO_KEYDIR, $TAPDISK2_CRYPTO_KEYDIR,\n"
"                                  /config/platform-crypto-keys)\n"
"      --header <file-or-device>   detached LUKS1/LUKS2 header for the image's data\n"
"  -S, --key-slot <n>              try only this LUKS key slot\n"
"  -r, --readonly                  read-only mapping (always, in this release)\n"
"      --allow-discards            accepted; takes effect with the write path\n"
"  -T, --tries <n>                 passphrase prompts (default 3)\n"
"      --disable-keyring           put the key in the table (hex), not in the keyring\n"
"      --dry-run                   print the tables (keys masked), create nothing\n"
"\n"
"Other options:\n"
"      --json                      status as JSON\n"
"  -v, --verbose                   more messages\n"
"      --debug                     debug messages (also VHDCRYPT_DEBUG=1)\n"
"  -h, --help                      this help\n"
"  -V, --version                   print the version\n"
"\n"
"Exit status: 0 success, 1 wrong parameters, 2 no permission or bad passphrase/key,\n"
"3 out of memory, 4 wrong device or image, 5 device exists or is busy.\n"
"See vhdcryptsetup(8).\n");
}

static int vc_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, VC_PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see '" VC_PROG " --help'\n");
	return VC_EXIT_PARAM;
}

int main(int argc, char **argv)
{
	struct vc_open_opts o = { .key_slot = -1, .tries = 3, .type = VC_FMT_UNKNOWN };
	const char *cmd, *env;
	bool json = false;
	unsigned long v;
	int c, r, nargs;
	char **args;

	env = getenv("VHDCRYPT_DEBUG");
	if (env && *env && strcmp(env, "0"))
		vc_debug = atoi(env) > 1 ? atoi(env) : 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:S:rT:vhV", vc_options, NULL)) != -1) {
		switch (c) {
		case OPT_TYPE:
			if (vc_fmt_parse(optarg, &o.type) || !strcmp(optarg, "vpc"))
				return vc_usage_error("unknown --type \"%s\" (vhd or qcow2)", optarg);
			break;
		case 'd':
			o.key_file = optarg;
			break;
		case OPT_KEY_DIR:
			o.key_dir = optarg;
			break;
		case OPT_HEADER:
			o.header = optarg;
			break;
		case 'S':
			if (vc_parse_ulong(optarg, &v) || v > 31)
				return vc_usage_error("invalid --key-slot \"%s\"", optarg);
			o.key_slot = (int)v;
			break;
		case 'r':
			o.readonly = true;
			break;
		case OPT_ALLOW_DISCARDS:
			o.allow_discards = true;
			break;
		case 'T':
			if (vc_parse_ulong(optarg, &v) || v < 1 || v > 100)
				return vc_usage_error("invalid --tries \"%s\"", optarg);
			o.tries = (int)v;
			break;
		case OPT_DISABLE_KEYRING:
			o.disable_keyring = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case 'v':
			vc_verbose = 1;
			break;
		case OPT_DEBUG:
			vc_debug = vc_debug ? vc_debug : 1;
			break;
		case 'h':
			vc_usage(stdout);
			return 0;
		case 'V':
			printf(VC_PROG " " VC_VERSION "\n");
			return 0;
		default:
			if (optopt && optopt < 256)
				fprintf(stderr, VC_PROG ": unknown option -%c or missing argument; "
					"see '" VC_PROG " --help'\n", optopt);
			else
				fprintf(stderr, VC_PROG ": unknown option %s or missing argument; "
					"see '" VC_PROG " --help'\n", argv[optind - 1]);
			return VC_EXIT_PARAM;
		}
	}
	nargs = argc - optind;
	args = argv + optind;
	if (nargs < 1) {
		vc_usage(stderr);
		return VC_EXIT_PARAM;
	}
	cmd = args[0];
	args++;
	nargs--;

	vc_dm_init();
	vc_luks_init();

	if (!strcmp(cmd, "open")) {
		if (nargs != 2)
			return vc_usage_error("%s needs <image> <name>", "open");
		if (o.key_file && o.key_dir && o.header)
			return vc_usage_error("%s", "--key-dir cannot be used with --header");
		o.image = args[0];
		o.name = args[1];
		r = vc_open(&o);
	} else if (!strcmp(cmd, "close") || !strcmp(cmd, "remove")) {
		if (nargs != 1)
			return vc_usage_error("%s needs <name>", "close");
		r = vc_close(args[0]);
	} else if (!strcmp(cmd, "status")) {
		if (nargs != 1)
			return vc_usage_error("%s needs <name>", "status");
		r = vc_status(args[0], json);
	} else if (!strcmp(cmd, "probe")) {
		if (nargs != 1)
			return vc_usage_error("%s needs <image-or-device>", "probe");
		r = vc_probe(args[0]);
	} else {
		return vc_usage_error("unknown command \"%s\"", cmd);
	}
	if (r) {
		const char *m = vc_last_error();

		fprintf(stderr, VC_PROG ": %s\n", *m ? m : strerror(-r));
		return vc_exit_code(r);
	}
	return 0;
}
