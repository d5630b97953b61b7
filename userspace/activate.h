/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - open and close: keys for every layer of a chain, loop
 * devices, keyring keys and the stack of vhdcrypt devices.
 */
#ifndef VC_ACTIVATE_H
#define VC_ACTIVATE_H

#include <stdbool.h>
#include "image.h"
#include "secret.h"

struct vc_open_opts {
	const char *image;
	const char *name;
	enum vc_fmt type;		/* VC_FMT_UNKNOWN: detect */
	const char *key_file;
	const char *key_dir;		/* comma-separated list, NULL: default */
	const char *header;		/* detached LUKS header */
	int key_slot;			/* -1: any */
	int tries;
	bool readonly;
	bool allow_discards;
	bool disable_keyring;
	bool dry_run;			/* print the tables, create nothing */
};

int vc_open(const struct vc_open_opts *o);
/*
 * Derive the key, cipher and IV options of every layer of an opened chain
 * (no device is created; LUKS in qcow2 needs a loop device). Exposed for the
 * unit tests.
 */
int vc_chain_keys(const struct vc_open_opts *o, struct vc_layer *top, struct vc_secret_src *src);
int vc_close(const char *name);

/* Name rules shared with status: 0 or -EINVAL with a message. */
int vc_check_name(const char *name);
/* "<name>-L<n>" for the layer at depth n (0 = name itself). */
void vc_layer_dm_name(char *out, size_t len, const char *name, int depth);

/*
 * The table parameters (after "vhdcrypt") of one layer: key is the key
 * string for the table (hex, keyring reference or "-"). backing: the lower
 * device, 0 for none. The result may hold key material: free with
 * vc_safe_free(). Exposed for the unit tests.
 */
char *vc_table_params(const struct vc_layer *l, dev_t image_dev, const char *image_str,
		      const char *key, dev_t backing, const char *backing_str);
/* Image and backing devices named by table params (0 if none). */
int vc_table_devs(const char *params, dev_t *image, dev_t *backing);
/* Copy of params with a hex key replaced by a placeholder (malloc'd). */
char *vc_table_mask(const char *params);

#endif
