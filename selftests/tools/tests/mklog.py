#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Synthetic dm-log-writes logs for the replay-log tests (python3 stdlib).

  mklog.py make LOG SEED ENTRIES SECTOR_SIZE DEV_SECTORS EXPECTED_DIR
      write a random log (writes, FUA/METADATA writes, flushes, a flush with
      data, discards, marks, duplicate and odd mark names, the final
      "dm-log-writes-end" mark) and, in EXPECTED_DIR, what replay-log must
      print (list, flushes, marks), "points" (one "NAME INDEX" line per mark,
      first occurrence) and "sha256" (line i: the sha256 of a zeroed
      DEV_SECTORS device after replaying entries 0..i-1, discards as zeros)
  mklog.py poke FILE OFFSET VALUE [BYTES]
      store VALUE little-endian (default 8 bytes) at OFFSET
"""

import hashlib
import os
import random
import struct
import sys

FLUSH, FUA, DISCARD, MARK, METADATA = 1, 2, 4, 8, 16
MAGIC = 0x6a736677736872


def flag_text(flags):
    names = ["FLUSH", "FUA", "DISCARD", "MARK", "METADATA"]
    return "|".join(n for i, n in enumerate(names) if flags & (1 << i)) or "-"


def mark_text(name):
    return "".join(chr(b) if 0x20 < b < 0x7f and b != 0x5c else "\\x%02x" % b
                   for b in name)


def entries(rnd, n, dev):
    """Yield (sector, nr_sectors, flags, mark name bytes or None)."""
    names = 0
    for _ in range(n - 1):
        kind = rnd.random()
        sec = rnd.randrange(dev)
        nr = rnd.randint(1, min(64, dev - sec))
        if kind < 0.55:
            yield sec, nr, rnd.choice([0, 0, 0, FUA, METADATA]), None
        elif kind < 0.70:
            yield 0, 0, FLUSH, None
        elif kind < 0.72:
            yield sec, nr, FLUSH, None          # "a flush with data in it"
        elif kind < 0.80:
            yield sec, nr, DISCARD, None
        else:
            names += 1
            name = rnd.choice([b"m%d" % names, b"dup", b"odd\\name\x01", b"m%d" % names])
            yield 0, 0, MARK, name
    yield 0, 0, MARK, b"dm-log-writes-end"


def make(log, seed, n, ss, dev, outdir):
    rnd = random.Random(seed)
    image = bytearray(dev * ss)
    lines, flushes, marks, points, hashes = [], [], [], {}, []
    hashes.append(hashlib.sha256(image).hexdigest())
    with open(log, "wb") as f:
        f.write(struct.pack("<QQQI", MAGIC, 1, n, ss).ljust(ss, b"\0"))
        for i, (sec, nr, flags, name) in enumerate(entries(rnd, n, dev)):
            hdr = struct.pack("<QQQQ", sec, nr, flags, len(name) if name else 0)
            f.write((hdr + (name or b"")).ljust(ss, b"\0"))
            if flags & DISCARD:
                image[sec * ss:(sec + nr) * ss] = bytes(nr * ss)
            elif nr:
                data = rnd.randbytes(nr * ss)
                f.write(data)
                image[sec * ss:(sec + nr) * ss] = data
            hashes.append(hashlib.sha256(image).hexdigest())
            text = "%d %d %d %s" % (i, sec, nr, flag_text(flags))
            if name is not None:
                text += " " + mark_text(name)
                marks.append("%d %s" % (i, mark_text(name)))
                points.setdefault(name.decode("latin-1"), i)
            if flags & FLUSH:
                flushes.append(str(i))
            lines.append(text)
        f.write(rnd.randbytes(rnd.randrange(3 * ss)))   # unused log space
    head = "# index sector nr_sectors flags [mark]  (sectors of %d bytes)" % ss

    def put(name, rows):
        with open(os.path.join(outdir, name), "w") as o:
            o.write("".join(r + "\n" for r in rows))
    put("list", [head] + lines)
    put("flushes", flushes)
    put("marks", marks)
    put("points", ["%s %d" % (k, v) for k, v in points.items()
                   if k.isalnum() or k == "dm-log-writes-end"])
    put("sha256", hashes)


def main(argv):
    if len(argv) == 8 and argv[1] == "make":
        make(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), int(argv[6]), argv[7])
    elif len(argv) in (5, 6) and argv[1] == "poke":
        size = int(argv[5]) if len(argv) == 6 else 8
        with open(argv[2], "r+b") as f:
            f.seek(int(argv[3], 0))
            f.write((int(argv[4], 0) % (1 << (8 * size))).to_bytes(size, "little"))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
