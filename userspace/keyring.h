/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhdcryptsetup - kernel keyring: hand a volume key to the kernel as a
 * "logon" key (unreadable from userspace) for the table load.
 */
#ifndef VC_KEYRING_H
#define VC_KEYRING_H

#include <stdint.h>
#include "secret.h"

#define VC_KEY_DESC_PREFIX "vhdcrypt:"

/*
 * Add key k as logon key "vhdcrypt:<dm_name>" to the thread keyring.
 * *serial receives the key serial; the table then refers to it as
 * ":<len>:logon:vhdcrypt:<dm_name>" (vc_keyring_table_ref()).
 */
int vc_keyring_add(const char *dm_name, const struct vc_secret *k, int32_t *serial);
/* Revoke and unlink a key added by vc_keyring_add() (the kernel target has its copy). */
void vc_keyring_drop(int32_t serial);
/* ":<len>:logon:vhdcrypt:<dm_name>"; malloc'd. */
char *vc_keyring_table_ref(const char *dm_name, size_t len);

#endif
