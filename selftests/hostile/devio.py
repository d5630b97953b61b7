#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Read (and write) across a block device, going on after errors.

  devio.py DEV [--write] [--seed N]

Reads the device with O_DIRECT in 64 KiB chunks: all of it up to 16 MiB,
else the first and last 4 MiB and 64 chunks spread over the rest.  With
--write, then writes the same chunks (a pattern naming the chunk and the
seed), flushes (fsync: a REQ_PREFLUSH), and reads them again.  Every error
is counted by errno; nothing stops the run.  Prints one line:

  read:N/M write:N/M flush:ok|ERRNO reread:N/M mismatch:N errors:EIO=N,...

(N chunks that failed of M; mismatch counts chunks written and flushed
without error that read back different, which damaged metadata can cause).
Exit status 0, or 3 if an error other than EIO or ENOSPC was seen.
"""

import errno
import mmap
import os
import sys

CHUNK = 64 * 1024
WHOLE = 16 << 20


def chunks(size):
    if size <= WHOLE:
        return [(o, min(CHUNK, size - o)) for o in range(0, size, CHUNK)]
    edge = 4 << 20
    offs = list(range(0, edge, CHUNK))
    step = (size - 2 * edge) // 64 // CHUNK * CHUNK
    offs += [edge + i * step for i in range(64)] if step else []
    offs += list(range(size - edge, size, CHUNK))
    return sorted({(o, min(CHUNK, size - o)) for o in offs})


def pattern(seed, off, n):
    head = ("devio seed %d offset %d\n" % (seed, off)).encode()
    return (head * (n // len(head) + 1))[:n]


def main(argv):
    dev = argv[1]
    write = "--write" in argv
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 1
    fd = os.open(dev, (os.O_RDWR if write else os.O_RDONLY) | os.O_DIRECT)
    size = os.lseek(fd, 0, os.SEEK_END)
    buf = mmap.mmap(-1, CHUNK)
    errs = {}
    plan = chunks(size)

    def note(e):
        name = errno.errorcode.get(e.errno, str(e.errno))
        errs[name] = errs.get(name, 0) + 1

    def read_all():
        bad, data = 0, {}
        for off, n in plan:
            view = memoryview(buf)[:n]
            try:
                got = os.preadv(fd, [view], off)
                data[off] = bytes(view[:got])
            except OSError as e:
                bad += 1
                note(e)
        return bad, data

    bad_read, _ = read_all()
    out = ["read:%d/%d" % (bad_read, len(plan))]
    if write:
        bad_write, written = 0, set()
        for off, n in plan:
            buf[:n] = pattern(seed, off, n)
            try:
                os.pwritev(fd, [memoryview(buf)[:n]], off)
                written.add(off)
            except OSError as e:
                bad_write += 1
                note(e)
        try:
            os.fsync(fd)
            flush = "ok"
        except OSError as e:
            note(e)
            flush = errno.errorcode.get(e.errno, str(e.errno))
        bad_reread, data = read_all()
        mismatch = 0
        if flush == "ok":
            mismatch = sum(1 for off, n in plan
                           if off in written and off in data and
                           data[off] != pattern(seed, off, n))
        out += ["write:%d/%d" % (bad_write, len(plan)), "flush:" + flush,
                "reread:%d/%d" % (bad_reread, len(plan)), "mismatch:%d" % mismatch]
    os.close(fd)
    out.append("errors:" + (",".join("%s=%d" % kv for kv in sorted(errs.items())) or "none"))
    print(" ".join(out))
    return 3 if set(errs) - {"EIO", "ENOSPC"} else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
