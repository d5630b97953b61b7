#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Random O_DIRECT reads of a device, each compared with an expected file.

  randread.py DEVICE EXPECTED COUNT SEED [HOT_SECTOR...]

COUNT reads of 1..128 sectors at 512-byte aligned offsets; half of them land
within 256 sectors of a HOT_SECTOR (where the data is), the others anywhere.
Prints the first mismatches and exits 1 if any read differs or fails.
"""

import mmap
import os
import random
import sys

SECTOR = 512


def main(argv):
    dev, expected, count, seed = argv[1], argv[2], int(argv[3]), int(argv[4])
    hot = [int(h, 0) for h in argv[5:]]
    rnd = random.Random(seed)
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    sectors = os.lseek(fd, 0, os.SEEK_END) // SECTOR
    buf = mmap.mmap(-1, 128 * SECTOR)   # page aligned, as O_DIRECT wants
    bad = 0
    with open(expected, "rb") as exp:
        for _ in range(count):
            n = rnd.randint(1, 128)
            if hot and rnd.random() < 0.5:
                first = rnd.choice(hot) + rnd.randint(-256, 256)
            else:
                first = rnd.randrange(sectors)
            first = max(0, min(first, sectors - n))
            view = memoryview(buf)[:n * SECTOR]
            try:
                got = os.preadv(fd, [view], first * SECTOR)
            except OSError as e:
                print("read of sectors %d+%d failed: %s" % (first, n, e))
                bad += 1
                continue
            exp.seek(first * SECTOR)
            want = exp.read(n * SECTOR)
            if got != n * SECTOR or view != want:
                bad += 1
                if bad <= 5:
                    print("sectors %d+%d differ from the expected data" % (first, n))
            view.release()
    os.close(fd)
    if bad:
        print("%d of %d reads wrong" % (bad, count))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
