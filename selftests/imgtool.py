#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Byte-level helper for the vhdcrypt selftests (python3, stdlib only).

Reads the few VHD and qcow2 header fields the tests need and damages images
on purpose.  Offsets may be negative: they then count from the end of the
file (-512 is the VHD footer at the end).

  imgtool.py vhd-info FILE           shell assignments: vhd_type= vhd_current_size= ...
  imgtool.py vhd-fix FILE            recompute the checksums of both footer copies
                                     and of the dynamic header
  imgtool.py vhd-bat-entry FILE BLK  file offset of BAT entry BLK, and its value
  imgtool.py qcow2-info FILE         shell assignments: q_version= q_cluster_bits= ...
  imgtool.py qcow2-l2-entry FILE OFF file offset of the L2 entry that maps virtual
                                     byte OFF, and its value in hex (fails if the
                                     L2 table is missing)
  imgtool.py peek FILE OFFSET SIZE   print the big-endian integer there
  imgtool.py poke FILE OFFSET SIZE VALUE   store VALUE as a big-endian integer
                                     (negative: two's complement)
  imgtool.py xor FILE OFFSET MASK [OFFSET MASK...]   xor bytes with masks
"""

import os
import struct
import sys

VHD_TYPES = {2: "fixed", 3: "dynamic", 4: "differencing"}


def num(s):
    return int(s, 0)


def pos(f, offset):
    if offset < 0:
        return os.fstat(f.fileno()).st_size + offset
    return offset


def read_at(f, offset, size):
    f.seek(pos(f, offset))
    data = f.read(size)
    if len(data) != size:
        raise SystemExit("short read at %d" % offset)
    return data


def be(f, offset, size):
    return int.from_bytes(read_at(f, offset, size), "big")


def vhd_checksum(buf, csum_off):
    """Ones' complement of the byte sum, skipping the 4-byte checksum field."""
    s = sum(buf[:csum_off]) + sum(buf[csum_off + 4:])
    return ~s & 0xFFFFFFFF


def vhd_footer(f):
    """The footer at the end of the file (fixed disks have no other copy),
    else, as readers do after a crash or a grow, the copy at offset 0."""
    ft = read_at(f, -512, 512)
    if ft[0:8] != b"conectix":
        head = read_at(f, 0, 512)
        if head[0:8] == b"conectix":
            return head
    return ft


def vhd_info(f):
    ft = vhd_footer(f)
    cyl, heads, spt = struct.unpack(">HBB", ft[56:60])
    dtype = struct.unpack(">I", ft[60:64])[0]
    out = {
        "vhd_cookie": ft[0:8].decode("latin-1").strip("\0") or "none",
        "vhd_type": VHD_TYPES.get(dtype, str(dtype)),
        "vhd_creator": ft[28:32].decode("latin-1").strip("\0 ") or "none",
        "vhd_current_size": struct.unpack(">Q", ft[48:56])[0],
        "vhd_chs_sectors": cyl * heads * spt,
        "vhd_data_offset": struct.unpack(">Q", ft[16:24])[0],
    }
    if dtype in (3, 4):
        hdr = read_at(f, out["vhd_data_offset"], 1024)
        out["vhd_table_offset"] = struct.unpack(">Q", hdr[16:24])[0]
        out["vhd_max_table_entries"] = struct.unpack(">I", hdr[28:32])[0]
        out["vhd_block_size"] = struct.unpack(">I", hdr[32:36])[0]
    return out


def vhd_fix(path):
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        sparse = struct.unpack(">I", read_at(f, -512, 512)[60:64])[0] in (3, 4)
        # Dynamic and differencing disks keep a footer copy at offset 0.
        for p in (size - 512, 0) if sparse else (size - 512,):
            ft = bytearray(read_at(f, p, 512))
            ft[64:68] = struct.pack(">I", vhd_checksum(ft, 64))
            f.seek(p)
            f.write(ft)
        hoff = struct.unpack(">Q", read_at(f, -512, 512)[16:24])[0]
        if sparse and hoff + 1024 <= size:     # (a damaged header may be anywhere)
            hdr = bytearray(read_at(f, hoff, 1024))
            hdr[36:40] = struct.pack(">I", vhd_checksum(hdr, 36))
            f.seek(hoff)
            f.write(hdr)


def qcow2_info(f):
    h = read_at(f, 0, 104)
    if h[0:4] != b"QFI\xfb":
        raise SystemExit("not a qcow2 image")
    version = struct.unpack(">I", h[4:8])[0]
    out = {
        "q_version": version,
        "q_backing_file_offset": struct.unpack(">Q", h[8:16])[0],
        "q_backing_file_size": struct.unpack(">I", h[16:20])[0],
        "q_cluster_bits": struct.unpack(">I", h[20:24])[0],
        "q_size": struct.unpack(">Q", h[24:32])[0],
        "q_crypt_method": struct.unpack(">I", h[32:36])[0],
        "q_l1_size": struct.unpack(">I", h[36:40])[0],
        "q_l1_table_offset": struct.unpack(">Q", h[40:48])[0],
        "q_refcount_table_offset": struct.unpack(">Q", h[48:56])[0],
        "q_nb_snapshots": struct.unpack(">I", h[60:64])[0],
        "q_incompatible_features": 0,
        "q_header_length": 72,
    }
    if version >= 3:
        out["q_incompatible_features"] = struct.unpack(">Q", h[72:80])[0]
        out["q_header_length"] = struct.unpack(">I", h[100:104])[0]
    return out


def qcow2_l2_entry(f, voff):
    q = qcow2_info(f)
    cb = q["q_cluster_bits"]
    ext_l2 = q["q_incompatible_features"] & (1 << 4)
    entry_size = 16 if ext_l2 else 8
    l2_entries = (1 << cb) // entry_size
    cluster = voff >> cb
    l1_index, l2_index = divmod(cluster, l2_entries)
    if l1_index >= q["q_l1_size"]:
        raise SystemExit("offset beyond L1")
    l1e = be(f, q["q_l1_table_offset"] + 8 * l1_index, 8)
    l2_off = l1e & 0x00FFFFFFFFFFFE00
    if not l2_off:
        raise SystemExit("no L2 table for that offset")
    where = l2_off + entry_size * l2_index
    return where, be(f, where, 8)


def emit(d):
    for k, v in d.items():
        print("%s=%s" % (k, v))


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    cmd, path, args = argv[1], argv[2], argv[3:]
    if cmd == "vhd-fix":
        vhd_fix(path)
        return 0
    mode = "r+b" if cmd in ("poke", "xor") else "rb"
    with open(path, mode) as f:
        if cmd == "vhd-info":
            emit(vhd_info(f))
        elif cmd == "vhd-bat-entry":
            info = vhd_info(f)
            where = info["vhd_table_offset"] + 4 * num(args[0])
            print(where, be(f, where, 4))
        elif cmd == "qcow2-info":
            emit(qcow2_info(f))
        elif cmd == "qcow2-l2-entry":
            where, value = qcow2_l2_entry(f, num(args[0]))
            print(where, "0x%016x" % value)
        elif cmd == "peek":
            print(be(f, num(args[0]), num(args[1])))
        elif cmd == "poke":
            # negative values (bash's 64-bit arithmetic) as two's complement
            size = num(args[1])
            f.seek(pos(f, num(args[0])))
            f.write((num(args[2]) % (1 << (8 * size))).to_bytes(size, "big"))
        elif cmd == "xor":
            for off, mask in zip(args[0::2], args[1::2]):
                p = pos(f, num(off))
                b = read_at(f, p, 1)[0] ^ num(mask)
                f.seek(p)
                f.write(bytes([b]))
        else:
            raise SystemExit("unknown command %r\n%s" % (cmd, __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
