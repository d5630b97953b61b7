/* SPDX-License-Identifier: GPL-2.0 */
/* vhdcryptsetup - probe: udev-style KEY=VALUE lines for IMPORT{program}. */
#ifndef VC_PROBE_H
#define VC_PROBE_H

int vc_probe(const char *path);

#endif
