#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""img2seed.py IMAGE OUT: an image file as a sparse fuzz input (fuzz.h).

Keeps the non-zero 512-byte sectors, each run cut to its first 4 KiB:
metadata survives whole, data is only sampled (the harnesses map data,
they do not read it)."""
import struct
import sys

SECTOR = 512
RUN_MAX = 4096


def main():
    image, out = sys.argv[1], sys.argv[2]
    with open(image, 'rb') as f:
        data = f.read()
    chunks = []
    run = None
    for s in range(0, len(data), SECTOR):
        if any(data[s:s + SECTOR]):
            if run is None:
                run = s
        elif run is not None:
            chunks.append((run, s))
            run = None
    if run is not None:
        chunks.append((run, len(data)))
    with open(out, 'wb') as f:
        # flags: FZ_FIX_CHECKSUMS, so mutations keep them right
        f.write(struct.pack('>Q', 1 << 56 | len(data)))
        for start, end in chunks[:256]:
            part = data[start:min(end, start + RUN_MAX)]
            f.write(struct.pack('>IH', start // SECTOR, len(part)) + part)


if __name__ == '__main__':
    main()
