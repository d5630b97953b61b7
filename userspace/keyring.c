// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - kernel keyring through the raw add_key/keyctl syscalls
 * (no libkeyutils dependency).
 *
 * The key is added to the thread keyring right before the table load, so the
 * kernel target's request_key() in its constructor (which runs in this
 * thread's context) finds it; afterwards it is revoked and unlinked: the
 * target keeps its own copy and no key stays reachable from userspace.
 */
#include <errno.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keyring.h"
#include "util.h"

static long vc_add_key(const char *type, const char *desc, const void *payload,
		       size_t plen, int32_t ring)
{
	return syscall(SYS_add_key, type, desc, payload, plen, ring);
}

static long vc_keyctl(int cmd, unsigned long a2, unsigned long a3)
{
	return syscall(SYS_keyctl, cmd, a2, a3, 0UL, 0UL);
}

int vc_keyring_add(const char *dm_name, const struct vc_secret *k, int32_t *serial)
{
	char desc[256];
	long r;

	snprintf(desc, sizeof(desc), VC_KEY_DESC_PREFIX "%s", dm_name);
	r = vc_add_key("logon", desc, k->data, k->len, KEY_SPEC_THREAD_KEYRING);
	if (r < 0) {
		int e = errno;

		return vc_fail(-e, "cannot add the volume key to the kernel keyring: %s; "
			       "retry with --disable-keyring", strerror(e));
	}
	*serial = (int32_t)r;
	vc_log_debug("keyring: added logon key %s (serial %d)", desc, *serial);
	return 0;
}

void vc_keyring_drop(int32_t serial)
{
	if (serial <= 0)
		return;
	vc_keyctl(KEYCTL_REVOKE, (unsigned long)serial, 0);
	vc_keyctl(KEYCTL_UNLINK, (unsigned long)serial, (unsigned long)KEY_SPEC_THREAD_KEYRING);
}

char *vc_keyring_table_ref(const char *dm_name, size_t len)
{
	return vc_asprintf(":%zu:logon:" VC_KEY_DESC_PREFIX "%s", len, dm_name);
}
