/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - names and DM UUIDs of the devices it creates:
 *
 *   <name>, <name>-L1, <name>-L2 ...     the top image and its lower layers
 *   VHDCRYPT-<FORMAT>-<uuid>-<SCHEME>-<name>[-L<n>]
 *
 * FORMAT is VHD or QCOW2, uuid the image's (8-4-4-4-12), SCHEME the key
 * scheme of the layer (NONE, OPENXT, LUKS, AES, HEADER), so status knows it
 * without guessing. A raw payload under a detached header is a dm-crypt
 * device made by libcryptsetup: CRYPT-LUKS1-... or CRYPT-LUKS2-..., as
 * cryptsetup names it.
 */
#ifndef VC_DMNAME_H
#define VC_DMNAME_H

#include <stdbool.h>
#include <stddef.h>

#define VC_NAME_MAX 64			/* characters of <name> */
#define VC_DM_UUID_PREFIX "VHDCRYPT-"
#define VC_DM_CRYPT_UUID_PREFIX "CRYPT-LUKS"

/* Name rules: 0 or -EINVAL with a message. */
int vc_check_name(const char *name);
/* "<name>-L<depth>" (depth 0: name itself); malloc'd. */
char *vc_layer_dm_name(const char *name, int depth);
/* The DM UUID of a layer; malloc'd. format "VHD"/"QCOW2", scheme a tag. */
char *vc_layer_dm_uuid(const char *format, const char *uuid, const char *scheme,
		       const char *name, int depth);
/*
 * The scheme tag of a vhdcrypt DM UUID, copied into tag (empty for a UUID
 * without one); false if uuid is not one of vhdcrypt's.
 */
bool vc_dm_uuid_scheme(const char *uuid, char *tag, size_t len);
/* A dm-crypt device of a LUKS header (CRYPT-LUKS1/2-...)? */
bool vc_dm_uuid_is_luks(const char *uuid);

#endif
