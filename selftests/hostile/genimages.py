#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Hostile images for the vhdcrypt selftests (python3, stdlib only).

Derives damaged images from valid ones: every header field set to values
out of range or pointing where it must not, L1/L2/refcount/BAT pointers past
the end, into metadata and into each other, shared tables and clusters,
compressed descriptors that overflow, truncations at every structure
boundary, bitmaps past block ends, broken key hashes, self-referencing
backing chains.

  genimages.py make-vhd KIND FILE     write a small VHD this script builds
                                      itself (KIND: small = dynamic, 64 KiB
                                      blocks; child = differencing child of
                                      small.vhd in the same directory)
  genimages.py gen BASEDIR OUTDIR [--quick|--sample] [--only SUBSTR[|SUBSTR...]]
                                      derive images from the bases in BASEDIR
                                      (names below) into OUTDIR and write
                                      OUTDIR/manifest
  genimages.py compare BEFORE AFTER   fail if a write changed what no write
                                      may change (see protected_regions)
  genimages.py list BASEDIR           the manifest only, nothing written

A base is BASEDIR/<name>.qcow2 or BASEDIR/<name>.vhd; each base found is
used.  Manifest lines are tab-separated:

  ID BASE CATEGORY EXPECT TOOL SECTORS FILE DESCRIPTION

EXPECT says what a table load and a read of the whole mapped device must
do: "refuse" (the load fails), "eio" (the load fails, or some read fails
with EIO) or "any" (either, or a clean read).  TOOL says what
"vhdcryptsetup open" must do: "refuse", or "any" (must not crash; the same
as the table load when the load is refused).  SECTORS is the table length:
the virtual size the image claims (at least 1).  --sample writes only a
representative subset (SAMPLE), --quick a smaller one for make check
(QUICK: a damaged L1, L2, refcount, BAT, bitmap, compressed descriptor,
extended L2 entry, LUKS and key hash, a cut, and the looping chains).
"""

import hashlib
import os
import random
import struct
import sys

SECTOR = 512
MiB = 1 << 20


def be(buf, off, size):
    return int.from_bytes(buf[off:off + size], "big")


def put(buf, off, size, value):
    buf[off:off + size] = (value % (1 << (8 * size))).to_bytes(size, "big")


def round_up(n, to):
    return (n + to - 1) // to * to


# ---------------------------------------------------------------------------
# qcow2

QCOW2_MAGIC = 0x514649FB
COPIED = 1 << 63
COMPRESSED = 1 << 62
OFFSET_MASK = 0x00FFFFFFFFFFFE00

QCOW2_FIELDS = [  # name, offset, size (QEMU's docs/interop/qcow2.txt)
    ("magic", 0, 4), ("version", 4, 4), ("backing_file_offset", 8, 8),
    ("backing_file_size", 16, 4), ("cluster_bits", 20, 4), ("size", 24, 8),
    ("crypt_method", 32, 4), ("l1_size", 36, 4), ("l1_table_offset", 40, 8),
    ("refcount_table_offset", 48, 8), ("refcount_table_clusters", 56, 4),
    ("nb_snapshots", 60, 4), ("snapshots_offset", 64, 8),
    ("incompatible_features", 72, 8), ("compatible_features", 80, 8),
    ("autoclear_features", 88, 8), ("refcount_order", 96, 4),
    ("header_length", 100, 4), ("compression_type", 104, 1),
]
QF = {name: (off, size) for name, off, size in QCOW2_FIELDS}
# Header fields damaged on the bases that are not damaged field by field.
BASE_FIELDS = {
    "qluks": {"crypt_method": [0, 1]},
    "qext": {"incompatible_features": [lambda q: q.incompat & ~16]},
    "qcomp": {"incompatible_features": [lambda q: q.incompat | 8]},
    "qzstd": {"incompatible_features": [lambda q: q.incompat & ~8]},
    "qback": {"backing_file_offset": [lambda q: q.cs - 4], "backing_file_size": [1024]},
    "q512": {"cluster_bits": [10], "l1_size": [lambda q: q.l1_size - 1]},
    "q3s": {"l1_size": [lambda q: q.l1_size - 1], "refcount_order": [3]},
    "qsnap": {"nb_snapshots": [0xFFFFFFFF], "snapshots_offset": [1 << 40]},
    "q2": {"version": [3], "l1_size": [0xFFFFFFFF], "cluster_bits": [8, 22],
           "backing_file_offset": [8]},
}


class Qcow2:
    """The parts of a (valid) qcow2 image the mutations aim at."""

    def __init__(self, data):
        d = self.d = data
        self.version = be(d, 4, 4)
        self.cb = be(d, 20, 4)
        self.cs = 1 << self.cb
        self.size = be(d, 24, 8)
        self.l1_size = be(d, 36, 4)
        self.l1_off = be(d, 40, 8)
        self.rt_off = be(d, 48, 8)
        self.rt_clusters = be(d, 56, 4)
        self.snap_off = be(d, 64, 8)
        self.nb_snap = be(d, 60, 4)
        self.snap_l1 = be(d, self.snap_off, 8) if self.nb_snap else 0
        self.incompat = be(d, 72, 8) if self.version >= 3 else 0
        self.header_length = be(d, 100, 4) if self.version >= 3 else 72
        self.refcount_order = be(d, 96, 4) if self.version >= 3 else 4
        self.ext_l2 = bool(self.incompat & 16)
        self.esize = 16 if self.ext_l2 else 8
        self.l2_entries = self.cs // self.esize
        self.exts = []          # (type, offset of the type field, length)
        off = self.header_length
        while off + 8 <= self.cs:
            t, n = be(d, off, 4), be(d, off + 4, 4)
            if t == 0:
                break
            self.exts.append((t, off, n))
            off += 8 + round_up(n, 8)
        self.ext_end = off + 8   # after the end marker
        self.fde = None
        for t, o, n in self.exts:
            if t == 0x0537BE77:
                self.fde = (be(d, o + 8, 8), be(d, o + 16, 8))
        self.l1 = [be(d, self.l1_off + 8 * i, 8) for i in range(self.l1_size)]
        # Allocated L2 entries: (file offset of the entry, entry, bitmap)
        self.entries = []
        self.l2_tables = []
        for e in self.l1:
            t = e & OFFSET_MASK
            if not t:
                continue
            self.l2_tables.append(t)
            for j in range(self.l2_entries):
                p = t + j * self.esize
                v = be(d, p, 8)
                bm = be(d, p + 8, 8) if self.ext_l2 else 0
                if v or bm:
                    self.entries.append((p, v, bm))
        self.rt = [be(d, self.rt_off + 8 * i, 8)
                   for i in range(self.rt_clusters * self.cs // 8)]
        self.refblocks = [e & ~0x1FF for e in self.rt if e]

    def data_entries(self):
        return [x for x in self.entries
                if not x[1] & COMPRESSED and x[1] & OFFSET_MASK]

    def compressed_entries(self):
        return [x for x in self.entries if x[1] & COMPRESSED]

    def comp_x(self):
        return 62 - (self.cb - 8)

    def refcount_pos(self, cluster):
        """(byte offset, bit shift, bits) of a cluster's refcount."""
        per_block = self.cs * 8 >> self.refcount_order
        blk = self.rt[cluster // per_block] & ~0x1FF
        bits = 1 << self.refcount_order
        bit = (cluster % per_block) * bits
        return blk + bit // 8, bit % 8, bits

    def set_refcount(self, d, cluster, value):
        off, shift, bits = self.refcount_pos(cluster)
        if bits >= 8:
            put(d, off, bits // 8, value)
        else:
            mask = ((1 << bits) - 1) << shift
            d[off] = (d[off] & ~mask) | ((value << shift) & mask)


def qcow2_claimed_sectors(d, default):
    if len(d) < 32 or be(d, 0, 4) != QCOW2_MAGIC:
        return default
    return max(1, be(d, 24, 8) // SECTOR)


# ---------------------------------------------------------------------------
# VHD

VHD_UNUSED = 0xFFFFFFFF


def vhd_checksum(buf, csum_off):
    s = sum(buf) - sum(buf[csum_off:csum_off + 4])
    return ~s & 0xFFFFFFFF


def vhd_footer_ok(f):
    """What the kernel's vhd_footer_decode accepts (enough to pick a copy)."""
    if len(f) < 512 or f[:8] != b"conectix":
        return False
    if vhd_checksum(f[:512], 64) != be(f, 64, 4):
        hidden_ok = (f[28:31] == b"tap" and f[85] and
                     be(f, 32, 4) in (1, 0x10001) and
                     (vhd_checksum(f[:512], 64) + f[85]) & 0xFFFFFFFF == be(f, 64, 4))
        if not hidden_ok:
            return False
    return (be(f, 12, 4) >> 16) == 1 and be(f, 60, 4) in (2, 3, 4) and \
        be(f, 48, 8) % 512 == 0 and be(f, 48, 8) >> 9 <= 0xFF000000


def vhd_footer(d):
    """The footer the kernel would use: the trailing one, else the copy."""
    if len(d) >= 512 and vhd_footer_ok(d[-512:]):
        return bytes(d[-512:])
    if len(d) >= 512 and vhd_footer_ok(d[:512]) and be(d, 60, 4) != 2:
        return bytes(d[:512])
    return None


def vhd_claimed_sectors(d, default):
    f = vhd_footer(d)
    return default if f is None else max(1, be(f, 48, 8) // SECTOR)


def vhd_fix(d, header_off=None):
    """Recompute the checksums of both footer copies and the header."""
    for off in (0, len(d) - 512):
        if off >= 0 and d[off:off + 8] == b"conectix":
            put(d, off + 64, 4, vhd_checksum(d[off:off + 512], 64))
    if header_off is not None and header_off + 1024 <= len(d) and \
            d[header_off:header_off + 8] == b"cxsparse":
        put(d, header_off + 36, 4, vhd_checksum(d[header_off:header_off + 1024], 36))


class Vhd:
    def __init__(self, data):
        d = self.d = data
        self.footer = d[-512:]
        self.type = be(self.footer, 60, 4)
        self.size = be(self.footer, 48, 8)
        self.uuid = bytes(self.footer[68:84])
        if self.type == 2:
            return
        self.hoff = be(self.footer, 16, 8)
        h = d[self.hoff:self.hoff + 1024]
        self.bat_off = be(h, 16, 8)
        self.max_entries = be(h, 28, 4)
        self.block_size = be(h, 32, 4)
        self.block_sectors = self.block_size // SECTOR
        self.bitmap_sectors = round_up((self.block_sectors + 7) // 8, SECTOR) // SECTOR
        self.entries = (self.size + self.block_size - 1) // self.block_size
        self.bat = [be(d, self.bat_off + 4 * i, 4) for i in range(self.max_entries)]
        self.blocks = [(i, s) for i, s in enumerate(self.bat[:self.entries])
                       if s != VHD_UNUSED]
        self.bat_end = self.bat_off + round_up(4 * self.max_entries, SECTOR)
        self.batmap = None
        if d[self.bat_end:self.bat_end + 8] == b"tdbatmap":
            self.batmap = self.bat_end
        self.locators = []
        for i in range(8):
            lo = self.hoff + 576 + 24 * i
            if be(d, lo, 4):
                self.locators.append(lo)

    def bat_pos(self, block):
        return self.bat_off + 4 * block


def make_small_vhd(path, parent=None):
    """A dynamic VHD (4 MiB, 64 KiB blocks, some sectors present) or, with
    @parent, a differencing child of it naming it in two locators."""
    size, block = 4 * MiB, 64 * 1024
    nblocks = size // block
    rnd = random.Random(7 if parent is None else 8)

    def footer(dtype, uuid):
        f = bytearray(512)
        f[0:8] = b"conectix"
        put(f, 8, 4, 2)
        put(f, 12, 4, 0x10000)
        put(f, 16, 8, 512)
        f[28:32] = b"vhtt"
        put(f, 32, 4, 0x10000)
        f[36:40] = b"Wi2k"
        put(f, 40, 8, size)
        put(f, 48, 8, size)
        put(f, 56, 4, (1024 << 16) | (4 << 8) | 2)
        put(f, 60, 4, dtype)
        f[68:84] = uuid
        put(f, 64, 4, vhd_checksum(f, 64))
        return f

    uuid = hashlib.sha256(path.encode()).digest()[:16]
    hdr = bytearray(1024)
    hdr[0:8] = b"cxsparse"
    put(hdr, 8, 8, (1 << 64) - 1)
    bat_off = 1536
    put(hdr, 16, 8, bat_off)
    put(hdr, 24, 4, 0x10000)
    put(hdr, 28, 4, nblocks)
    put(hdr, 32, 4, block)
    locdata = []
    if parent is not None:
        pf = open(parent, "rb").read()
        hdr[40:56] = pf[-512 + 68:-512 + 84]
        name = "./" + os.path.basename(parent)
        hdr[64:64 + 2 * len(name)] = name.encode("utf-16-be")
        locdata = [(0x57327275, name.encode("utf-16-le")),
                   (0x4D616358, ("file://" + name).encode())]
    bat_end = bat_off + round_up(4 * nblocks, SECTOR)
    pos = bat_end
    for i, (code, data) in enumerate(locdata):
        lo = 576 + 24 * i
        put(hdr, lo, 4, code)
        put(hdr, lo + 4, 4, 1)          # one sector
        put(hdr, lo + 8, 4, len(data))
        put(hdr, lo + 16, 8, pos)
        pos += SECTOR
    put(hdr, 36, 4, vhd_checksum(hdr, 36))
    bat = [VHD_UNUSED] * nblocks
    blocks = []
    for b in range(nblocks):
        if (b * 7 + (parent is not None)) % 5:
            continue                    # about one block in five
        bat[b] = pos // SECTOR
        bitmap = bytearray(SECTOR)
        data = bytearray(block)
        for s in range(block // SECTOR):
            if rnd.random() < 0.6:
                bitmap[s // 8] |= 0x80 >> (s % 8)
                tag = ("%s b%d s%d" % ("child" if parent else "small", b, s)).encode()
                data[s * SECTOR:s * SECTOR + len(tag)] = tag
        blocks.append((pos, bitmap + data))
        pos += SECTOR + block
    out = bytearray(pos + 512)
    ft = footer(4 if parent is not None else 3, uuid)
    out[0:512] = ft
    out[512:1536] = hdr
    for i, s in enumerate(bat):
        put(out, bat_off + 4 * i, 4, s)
    for i, (code, data) in enumerate(locdata):
        o = be(hdr, 576 + 24 * i + 16, 8)
        out[o:o + len(data)] = data
    for o, b in blocks:
        out[o:o + len(b)] = b
    out[-512:] = ft
    with open(path, "wb") as f:
        f.write(out)


# ---------------------------------------------------------------------------
# Mutations.  Each is (category, name, expect, tool, fn); fn takes a
# bytearray copy of the base and returns the damaged image (a bytearray;
# may be shorter), or None when it does not apply to this base.

class Catalogue:
    """The mutations of one base.  Bases other than the ones damaged in
    depth get only the first few of each kind (CAPS), the others all on q3
    and vdyn and a few more on the rest (DEEP_CAPS); images in SAMPLE are
    always made."""

    CAPS = {"l1": 2, "l2": 4, "l2:compressed": 4, "refcount": 3, "ext": 1, "ext:fde": 6,
            "bat": 3, "bitmap": 1, "batmap": 7, "locator": 1, "header": 4, "footer": 3}
    DEEP = ("q3", "q3s", "q512", "qluks", "qext", "qcomp", "vdyn", "vsmall", "vfix",
            "oxt128")
    DEEP_CAPS = {"l1": 6, "l2": 8, "l2:compressed": 8, "refcount": 7, "truncate": 6,
                 "header": 8, "footer": 8, "flip": 4}


    def __init__(self, base):
        self.base = base
        self.items = []
        self.count = {}

    def add(self, cat, name, fn, expect="any", tool="any"):
        key = cat if cat in self.CAPS else cat.split(":")[0]
        n = self.count[key] = self.count.get(key, 0) + 1
        caps = self.CAPS if self.base not in self.DEEP else \
            {} if self.base in ("q3", "vdyn") else self.DEEP_CAPS
        if key in caps and n > caps[key] and not in_sample(self.base, name):
            return
        self.items.append((cat, name, expect, tool, fn))


def poker(*edits):
    """fn that stores big-endian (offset, size, value) edits."""
    def fn(d):
        for off, size, value in edits:
            if off < 0:
                off += len(d)
            if off + size > len(d):
                return None
            put(d, off, size, value)
        return d
    return fn


def truncate_to(n):
    def fn(d):
        if n <= 0 or n >= len(d):
            return None
        return d[:n]
    return fn


def bitflips(seed, first, last, count):
    def fn(d):
        r = random.Random(seed)
        for _ in range(count):
            i = r.randint(first, min(last, len(d) - 1))
            d[i] ^= 1 << r.randrange(8)
        return d
    return fn


def qcow2_catalogue(c, d):
    q = Qcow2(d)
    cs, end = q.cs, len(d)
    far = 1 << 40                       # a cluster-aligned offset past the end
    v3 = q.version >= 3

    def hdr(name, value):
        off, size = QF[name]
        return poker((off, size, value))

    # Header fields, each with values out of range or pointing elsewhere.
    rich = c.base == "q3"               # the whole list on one base
    fields = {
        "magic": [QCOW2_MAGIC ^ 1],
        "version": [0, 1, 4, 0xFFFFFFFF, 2 if v3 else 3],
        "backing_file_offset": [(1 << 64) - 1, cs - 4, 8, 1 << 62],
        "backing_file_size": [0xFFFFFFFF, 1024],
        "cluster_bits": [0, 8, 22, 31, 63, q.cb - 1, q.cb + 1],
        "size": [0, 1, 1 << 63, (1 << 64) - 512, 1 << 62, q.size * 2,
                 q.size - 512, q.size + 1],
        "crypt_method": [1, 2, 3, 0xFFFFFFFF],
        "l1_size": [0, 0xFFFFFFFF, 0x400000, 1 << 22 | 1,
                    max(q.l1_size - 1, 0), q.l1_size + 100000],
        "l1_table_offset": [0, far, 1 << 63, q.l1_off + 512, q.rt_off,
                            q.refblocks[0], end - cs // 2 // 512 * 512,
                            round_up(end, cs)],
        "refcount_table_offset": [0, far, q.l1_off, q.rt_off + 512, 1 << 63,
                                  round_up(end, cs)],
        "refcount_table_clusters": [0, 0xFFFFFFFF, 1 << 20, (8 * MiB // cs) + 1],
        "nb_snapshots": [0xFFFFFFFF, 65536],
        "snapshots_offset": [far, 512, (1 << 64) - 512],
    }
    if v3:
        fields.update({
            "incompatible_features": [1, 2, 4, 8, 16, 32, 1 << 63,
                                      (1 << 64) - 1, q.incompat & ~16],
            "compatible_features": [(1 << 64) - 1, 1],
            "autoclear_features": [(1 << 64) - 1, 1, 2],
            "refcount_order": [0, 3, 5, 6, 7, 31, 0xFFFFFFFF],
            "header_length": [0, 72, 100, 103, 105, 112, cs, cs + 8,
                              0xFFFFFFFF],
            "compression_type": [1, 2, 255],
        })
    if not rich:
        # Fields that point at other structures, and what this base is about.
        pick = {"l1_table_offset": [q.rt_off], "refcount_table_offset": [q.l1_off],
                "size": [q.size * 2]}
        pick.update(BASE_FIELDS.get(c.base, {}))
        fields = {k: [v(q) if callable(v) else v for v in vals] for k, vals in pick.items()}
    for name, values in fields.items():
        for v in dict.fromkeys(values):
            if name == "incompatible_features" and v == q.incompat:
                continue
            expect = "any"
            if name in ("magic",) or (name == "version" and v in (0, 1, 4, 0xFFFFFFFF)) \
                    or (name == "cluster_bits" and v in (0, 8, 22, 31, 63)) \
                    or (name == "crypt_method" and v in (3, 0xFFFFFFFF)) \
                    or (name == "l1_size" and v in (0xFFFFFFFF, 0x400000)) \
                    or (name == "l1_table_offset" and v in (far, 1 << 63)):
                expect = "refuse"
            c.add("header:" + name, "%s = %#x" % (name, v), hdr(name, v),
                  expect=expect, tool="refuse" if expect == "refuse" else "any")
    # Seeded bit flips, one image per field.
    for i, (name, off, size) in enumerate(QCOW2_FIELDS if rich else []):
        if off >= q.header_length or name in ("magic", "nb_snapshots", "autoclear_features",
                                               "compatible_features", "crypt_method",
                                               "backing_file_size", "snapshots_offset"):
            continue
        c.add("flip:" + name, "3 bit flips in %s (seed %d)" % (name, i),
              bitflips(1000 + i, off, off + size - 1, 3))
    # A compression type the clusters are not in.
    if c.base == "qcomp":
        c.add("header:compression_type", "zlib clusters read as zstd",
              poker((72, 8, q.incompat | 8), (104, 1, 1)), expect="eio")

    # Header extensions.
    if q.exts:
        t, o, n = q.exts[0]
        c.add("ext", "first extension length 0xffffffff", poker((o + 4, 4, 0xFFFFFFFF)))
        c.add("ext", "first extension runs past the cluster",
              poker((o + 4, 4, cs - o - 4)))
    c.add("ext", "no end marker: 0xff up to the cluster end",
          lambda d: d[:q.ext_end - 8] + b"\xff" * (cs - q.ext_end + 8) + d[cs:]
          if q.ext_end <= cs else None)
    c.add("ext", "data file extension without its feature bit",
          lambda d: ext_insert(d, q, 0x44415441, b"/etc/passwd"))
    c.add("ext", "unknown extension, 4000 bytes",
          lambda d: ext_insert(d, q, 0x12345678, bytes(range(256)) * 15 + b"x" * 160))
    c.add("ext", "backing format extension 'vpc' on no backing",
          lambda d: ext_insert(d, q, 0xE2792ACA, b"vpc"))
    if q.fde:
        fo, fl = q.fde
        for (where, what, exp) in ((far, "past the end", "refuse"),
                                   (0, "at the header", "refuse"),
                                   (q.l1_off, "at the L1 table", "refuse")):
            c.add("ext:fde", "LUKS header %s" % what,
                  lambda d, w=where: fde_set(d, q, w, fl), tool="refuse")
        c.add("ext:fde", "LUKS header length 0xffffffffffff",
              lambda d: fde_set(d, q, fo, 0xFFFFFFFFFFFF), tool="refuse")
        c.add("ext:fde", "LUKS key slot area flipped", bitflips(77, fo + 4096, fo + 8192, 64),
              tool="refuse")
        c.add("ext:fde", "LUKS header magic gone", poker((fo, 4, 0)), tool="refuse")

    # L1 entries.
    if q.l2_tables:
        l2a = q.l2_tables[0]
        l1p = q.l1_off                 # the first L1 entry
        for what, value, exp in (
                ("past the end", COPIED | far, "eio"),
                ("at the L1 table itself", COPIED | q.l1_off, "any"),
                ("at the refcount table", COPIED | q.rt_off, "any"),
                ("at a refcount block", COPIED | q.refblocks[0], "any"),
                ("not cluster aligned", COPIED | (l2a + 512), "eio"),
                ("reserved bits", l2a | COPIED | 0x1FF, "eio"),
                ("offset bit 56", COPIED | (1 << 56) | l2a, "eio"),
                ("without COPIED", l2a, "any")):
            if value & OFFSET_MASK == l2a + 512 and cs == 512:
                continue
            c.add("l1", "L1 entry 0 %s" % what, poker((l1p, 8, value)),
                  expect=exp)
        data = q.data_entries()
        if data:
            c.add("l1", "L1 entry 0 at a data cluster",
                  poker((l1p, 8, COPIED | (data[-1][1] & OFFSET_MASK))))
        if len(q.l2_tables) >= 2:
            c.add("l1", "two L1 entries share one L2 table",
                  poker((l1p + 8, 8, q.l1[0])))
            c.add("l1", "L1 entry 1 at the L2 table of entry 0, without COPIED",
                  poker((l1p + 8, 8, l2a)))
        if q.l1_size > 1:
            c.add("l1", "L1 entries past the disk size hold garbage",
                  poker((q.l1_off + 8 * (q.l1_size - 1), 8, COPIED | far)))
        c.add("l1", "64 random bit flips in the L1 table",
              bitflips(2, q.l1_off, q.l1_off + 8 * q.l1_size - 1, 64))

    # L2 entries.
    data = q.data_entries()
    if data:
        p, v, bm = data[0]
        p2, v2, _ = data[-1]
        targets = [("past the end", COPIED | far, "eio", True),
                   ("at the L1 table", COPIED | q.l1_off, "any", True),
                   ("at the refcount table", COPIED | q.rt_off, "any", True),
                   ("at a refcount block", COPIED | q.refblocks[0], "any", True),
                   ("at its own L2 table", COPIED | (p & ~(cs - 1)), "any", True),
                   ("not cluster aligned", v + 512, "eio", False),
                   ("reserved bits 1-8", v | 0x1FE, "eio", False),
                   ("offset bit 56", v | (1 << 56), "eio", False),
                   ("at the last cluster of the file, straddling the end",
                    COPIED | ((end - 1) // cs * cs), "any", True),
                   ("one cluster past the end", COPIED | round_up(end, cs), "eio", False)]
        if q.version == 2:
            targets.append(("zero flag in a v2 image", v | 1, "eio", False))
        if q.fde:
            targets.append(("into the LUKS header", COPIED | (q.fde[0] // cs * cs),
                            "any", True))
        if len(q.l2_tables) >= 2:
            targets.append(("at another L2 table", COPIED | q.l2_tables[1], "any", True))
        if q.nb_snap:
            targets.append(("into the snapshot table", COPIED | (q.snap_off // cs * cs),
                            "any", True))
            targets.append(("at a snapshot's L1 table", COPIED | q.snap_l1, "any", True))
        for what, value, exp, _ in targets:
            if what == "not cluster aligned" and cs == 512:
                continue        # every 512-byte offset is aligned there
            if q.ext_l2 and exp == "eio" and what != "past the end":
                exp = "any"
            # Not grown by the test: these are about where the file ends.
            at_end = "straddling" in what or what == "one cluster past the end"
            cat = "l2:at-end" if at_end else "l2"
            c.add(cat, "L2 entry %s" % what, poker((p, 8, value)), expect=exp)
        if len(data) >= 2:
            c.add("l2", "two L2 entries share a data cluster, both COPIED",
                  poker((p2, 8, v)))
            c.add("l2", "two L2 entries share a data cluster, without COPIED",
                  poker((p2, 8, v & ~COPIED), (p, 8, v & ~COPIED)))
        c.add("l2", "COPIED cleared on every entry",
              lambda d: [put(d, pp, 8, vv & ~COPIED) for pp, vv, _ in data] and d)
        if any(not vv & COPIED for _, vv, _ in data):
            c.add("l2", "COPIED set on every data entry (clusters a snapshot shares)",
                  lambda d: [put(d, pp, 8, vv | COPIED) for pp, vv, _ in data] and d)
        if q.ext_l2:
            c.add("l2:ext", "subclusters both allocated and zero",
                  poker((p + 8, 8, 0x0000FFFF0000FFFF)), expect="eio")
            c.add("l2:ext", "allocated subclusters without a host cluster",
                  poker((p, 8, 0), (p + 8, 8, 0xFFFFFFFF)), expect="eio")
            c.add("l2:ext", "zero flag set in an extended entry",
                  poker((p, 8, v | 1)), expect="eio")
            c.add("l2:ext", "every subcluster allocated",
                  poker((p + 8, 8, 0xFFFFFFFF)))
        c.add("l2", "64 random bit flips in the first L2 table",
              bitflips(3, q.l2_tables[0], q.l2_tables[0] + cs - 1, 64))
    # The snapshot table (the module walks it for its overlap check).
    if q.nb_snap:
        so = q.snap_off
        for what, edit in (("extra_data_size = 0xffffffff", (so + 36, 4, 0xFFFFFFFF)),
                           ("L1 table past the end", (so, 8, far)),
                           ("L1 table at the active L1 table", (so, 8, q.l1_off)),
                           ("L1 table at the refcount table", (so, 8, q.rt_off)),
                           ("L1 table not cluster aligned", (so, 8, q.snap_l1 + 512)),
                           ("l1_size = 0x10000000", (so + 8, 4, 0x10000000)),
                           ("name_size = 0xffff", (so + 14, 2, 0xFFFF))):
            if what == "L1 table not cluster aligned" and cs == 512:
                continue
            c.add("snapshot", "first snapshot's %s" % what, poker(edit))
    comp = q.compressed_entries()
    if comp:
        x = q.comp_x()
        p, v, _ = comp[0]
        off = v & ((1 << x) - 1)
        nbits = 62 - x

        def centry(offset, sectors):
            return COMPRESSED | ((sectors - 1) << x) | offset
        for what, value, exp, _ in (
                ("past the end", centry(far, 2), "eio", True),
                ("at the header", centry(0, 2), "eio", False),
                ("at the last byte of the file", centry(end - 1, 1), "eio", False),
                ("largest sector count", centry(off, 1 << nbits), "any", True),
                ("largest offset and sector count", centry((1 << x) - 1, 1 << nbits),
                 "eio", True),
                ("offset bit 56", centry(off | (1 << 56), 2) if x > 56 else None, "eio",
                 False),
                ("with COPIED", v | COPIED, "eio", False),
                ("at a data cluster", centry(data[0][1] & OFFSET_MASK, 2) if data else None,
                 "eio", False),
                ("one sector", centry(off, 1), "any", False)):
            if value is None:
                continue
            c.add("l2:compressed", "compressed cluster %s" % what,
                  poker((p, 8, value)), expect=exp)
        c.add("l2:compressed", "compressed stream garbage",
              bitflips(4, off, off + 200, 200), expect="any")

    # Refcounts.
    rbp = q.rt_off
    for what, value, _ in (("past the end", far, True),
                              ("at the header", 0, False),
                              ("at the L1 table", q.l1_off, True),
                              ("at an L2 table", q.l2_tables[0] if q.l2_tables else None, True),
                              ("not cluster aligned", q.refblocks[0] + 512, False),
                              ("reserved bits", q.refblocks[0] | 0x100, False)):
        if value is None or (what == "not cluster aligned" and cs == 512):
            continue
        c.add("refcount", "refcount table entry 0 %s" % what, poker((rbp, 8, value)))

    def refcount_zero(cluster):
        def fn(dd):
            q.set_refcount(dd, cluster, 0)
            return dd
        return fn
    zero_targets = [("the header", 0, False), ("the L1 table", q.l1_off // cs, True),
                    ("the refcount table", q.rt_off // cs, True),
                    ("the refcount block", q.refblocks[0] // cs, True)]
    if q.l2_tables:
        zero_targets.append(("an L2 table", q.l2_tables[0] // cs, True))
    if data:
        zero_targets.append(("a data cluster", (data[0][1] & OFFSET_MASK) // cs, True))
    if q.fde:
        zero_targets.append(("the LUKS header", q.fde[0] // cs, True))
    if q.nb_snap:
        zero_targets.append(("the snapshot table", q.snap_off // cs, True))
        zero_targets.append(("a snapshot's L1 table", q.snap_l1 // cs, True))
    for what, cluster, _ in zero_targets:
        c.add("refcount", "refcount 0 for %s" % what, refcount_zero(cluster))
    c.add("refcount", "first refcount block all zero",
          lambda dd: dd[:q.refblocks[0]] + bytes(cs) + dd[q.refblocks[0] + cs:])
    c.add("refcount", "first refcount block all ones (no free cluster)",
          lambda dd: dd[:q.refblocks[0]] + b"\xff" * cs + dd[q.refblocks[0] + cs:])
    c.add("refcount", "refcount table full of garbage",
          bitflips(5, q.rt_off, q.rt_off + 8 * min(len(q.rt), 64) - 1, 128))

    # Truncations at structure boundaries.
    cuts = {"after the first sector": 512, "inside the header cluster": cs // 2 // 512 * 512
            if cs > 1024 else 0, "at the refcount table": q.rt_off,
            "at the L1 table": q.l1_off, "at the first refcount block": q.refblocks[0],
            "inside the L1 table": q.l1_off + 512 if q.l1_size * 8 > 512 else 0,
            "by one sector": end - 512, "by one byte": end - 1}
    for i, t in enumerate(sorted(q.l2_tables)):
        cuts["at L2 table %d" % i] = t
        cuts["inside L2 table %d" % i] = t + cs // 2 // 512 * 512 if cs > 512 else 0
    if data:
        last = max(x[1] & OFFSET_MASK for x in data)
        cuts["at the last data cluster"] = last
        cuts["inside the last data cluster"] = last + cs // 2 // 512 * 512 if cs > 512 else 0
    if q.fde:
        cuts["inside the LUKS header"] = q.fde[0] + 4096
    seen = set()
    for what, n in cuts.items():
        if n <= 0 or n >= end or n in seen:
            continue
        if not rich and what not in ("at the L1 table", "at L2 table 0", "by one sector",
                                     "inside the last data cluster", "inside the LUKS header"):
            continue
        seen.add(n)
        c.add("truncate", "cut %s (%d bytes)" % (what, n), truncate_to(n))


def ext_insert(d, q, etype, payload):
    """Insert a header extension before the end marker (if it fits)."""
    o = q.ext_end - 8
    rec = struct.pack(">II", etype, len(payload)) + payload
    rec += bytes(round_up(len(rec), 8) - len(rec))
    if o + len(rec) + 8 > q.cs or (q.version < 3):
        return None
    if q.version >= 3 and be(d, 8, 8) and be(d, 8, 8) < o + len(rec) + 8:
        return None                     # would overwrite the backing name
    d[o:o + len(rec)] = rec
    d[o + len(rec):o + len(rec) + 8] = bytes(8)
    return d


def fde_set(d, q, offset, length):
    for t, o, n in q.exts:
        if t == 0x0537BE77:
            put(d, o + 8, 8, offset)
            put(d, o + 16, 8, length)
    return d


def vhd_catalogue(c, d):
    v = Vhd(d)
    end = len(d)
    dynamic = v.type != 2
    nsec = end // SECTOR

    def footer_edit(off, size, value, copies="both"):
        def fn(dd):
            offs = {"both": (0, len(dd) - 512), "end": (len(dd) - 512,),
                    "copy": (0,)}[copies]
            for fo in offs:
                if not dynamic and fo == 0:
                    continue
                put(dd, fo + off, size, value)
            vhd_fix(dd, v.hoff if dynamic else None)
            return dd
        return fn

    def header_edit(off, size, value, fix=True):
        def fn(dd):
            put(dd, v.hoff + off, size, value)
            if fix:
                vhd_fix(dd, v.hoff)
            return dd
        return fn

    rich = c.base in ("vdyn", "vfix")
    fsize = v.size
    footer_fields = [
        ("cookie", 0, 8, 0x636F6E6563746978 ^ 1, "refuse"),
        ("features", 8, 4, 0xFFFFFFFF, "any"),
        ("version", 12, 4, 0x20000, "refuse"),
        ("version", 12, 4, 0, "refuse"),
        ("current_size", 48, 8, 0, "any"),
        ("current_size", 48, 8, 511, "refuse"),
        ("current_size", 48, 8, (0xFF000000 + 1) * 512, "refuse"),
        ("current_size", 48, 8, fsize * 2, "any"),
        ("current_size", 48, 8, fsize - 512, "any"),
        ("current_size", 48, 8, 1 << 63, "refuse"),
        ("disk_type", 60, 4, 0, "refuse"),
        ("disk_type", 60, 4, 5, "refuse"),
        ("disk_type", 60, 4, 0xFFFFFFFF, "refuse"),
        ("disk_type", 60, 4, 2 if dynamic else 3, "any"),
        ("disk_type", 60, 4, 4 if v.type == 3 else 3, "any"),
        ("saved_state", 84, 1, 1, "any"),
        ("creator tap 0.1 (LSB-first bitmaps)", 28, 8, 0x7461700000000001, "any"),
        ("creator tap 1.3 (batmap expected)", 28, 8, 0x7461700000010003, "any"),
    ]
    if dynamic:
        footer_fields += [
            ("data_offset", 16, 8, 0, "refuse"),
            ("data_offset", 16, 8, 513, "refuse"),
            ("data_offset", 16, 8, 1 << 40, "refuse"),
            ("data_offset", 16, 8, (1 << 64) - 1, "refuse"),
            ("data_offset", 16, 8, v.bat_off, "refuse"),
            ("data_offset", 16, 8, end - 512, "refuse"),
        ]
    if not rich:
        footer_fields = [x for x in footer_fields
                         if x[0] in ("current_size", "disk_type") and x[4] == "any"]
    for name, off, size, value, exp in footer_fields:
        c.add("footer:" + name.split()[0], "footer %s = %#x" % (name, value),
              footer_edit(off, size, value), expect=exp,
              tool="refuse" if exp == "refuse" else "any")
        if rich and dynamic and (name, value) in (("data_offset", 1 << 40),
                                                  ("current_size", fsize * 2),
                                                  ("disk_type", 5)):
            c.add("footer:" + name.split()[0], "trailing footer only: %s = %#x" % (name, value),
                  footer_edit(off, size, value, "end"))
            c.add("footer:" + name.split()[0], "footer copy only: %s = %#x" % (name, value),
                  footer_edit(off, size, value, "copy"))
    c.add("footer:checksum", "trailing footer checksum wrong",
          poker((-512 + 64, 4, be(d, end - 512 + 64, 4) ^ 1)),
          expect="refuse" if not dynamic else "any")
    if dynamic:
        c.add("footer:checksum", "both footer checksums wrong",
              poker((-512 + 64, 4, be(d, end - 512 + 64, 4) ^ 1), (64, 4, be(d, 64, 4) ^ 1)),
              expect="refuse", tool="refuse")
    if rich:
        c.add("flip:footer", "24 bit flips in the footer fields, checksum fixed",
              lambda dd: footer_flips(dd, v, 3))
    if not dynamic:
        c.add("fixed", "fixed disk larger than the file",
              footer_edit(48, 8, fsize + 1024 * 1024), expect="refuse", tool="refuse")
        c.add("fixed", "footer lost (one sector cut)", truncate_to(end - 512),
              expect="refuse", tool="refuse")
        c.add("fixed", "half the data cut, footer kept",
              lambda dd: dd[:end // 2 // 512 * 512] + dd[-512:], expect="refuse",
              tool="refuse")
        return

    # Dynamic header.
    hdr_fields = [
        ("cookie", 0, 8, 0x6378737061727365 ^ 1, "refuse"),
        ("data_offset", 8, 8, 0, "refuse"),
        ("table_offset", 16, 8, 0, "any"),
        ("table_offset", 16, 8, 512, "any"),
        ("table_offset", 16, 8, v.bat_off + 2, "refuse"),
        ("table_offset", 16, 8, v.bat_off + 4, "any"),
        ("table_offset", 16, 8, 1 << 40, "refuse"),
        ("table_offset", 16, 8, 1 << 63, "refuse"),
        ("table_offset", 16, 8, end - 4, "refuse"),
        ("table_offset", 16, 8, v.blocks[0][1] * 512 if v.blocks else 0, "any"),
        ("version", 24, 4, 0, "refuse"),
        ("version", 24, 4, 0x20000, "refuse"),
        ("max_table_entries", 28, 4, 0, "refuse"),
        ("max_table_entries", 28, 4, v.entries - 1, "refuse"),
        ("max_table_entries", 28, 4, 0xFFFFFFFF, "refuse"),
        ("max_table_entries", 28, 4, v.entries + 100, "any"),
        ("block_size", 32, 4, 0, "refuse"),
        ("block_size", 32, 4, 256, "refuse"),
        ("block_size", 32, 4, 512, "any"),
        ("block_size", 32, 4, 3 * MiB, "refuse"),
        ("block_size", 32, 4, 1 << 31, "any"),
        ("block_size", 32, 4, v.block_size * 2, "any"),
        ("block_size", 32, 4, v.block_size // 2, "any"),
        ("block_size", 32, 4, 0xFFFFFFFF, "refuse"),
    ]
    if not rich:
        hdr_fields = [x for x in hdr_fields
                      if x[0] in ("table_offset", "block_size") and x[4] == "any"][::2]
    for name, off, size, value, exp in hdr_fields:
        # A BAT that runs past the end stays so: the test does not grow it.
        at_end = ":at-end" if name == "table_offset" and value == end - 4 else ""
        c.add("header:" + name + at_end, "dynamic header %s = %#x" % (name, value),
              header_edit(off, size, value), expect=exp,
              tool="refuse" if exp == "refuse" else "any")
    c.add("header:checksum", "dynamic header checksum wrong",
          header_edit(36, 4, be(d, v.hoff + 36, 4) ^ 1, fix=False), expect="refuse",
          tool="refuse")
    for seed in range(4 if rich else 0):
        c.add("flip:header", "3 bit flips in the dynamic header fields, checksum fixed (seed %d)"
              % seed, lambda dd, s=seed: header_flips(dd, v, s))
    # Parent locators (in the first locator slot).
    lo = v.hoff + 576
    for what, edits in (("data beyond the end", [(lo, 4, 0x57327275), (lo + 4, 4, 1),
                                                 (lo + 8, 4, 20), (lo + 16, 8, 1 << 40)]),
                        ("offset that overflows", [(lo, 4, 0x57326B75), (lo + 4, 4, 1),
                                                   (lo + 8, 4, 20),
                                                   (lo + 16, 8, (1 << 64) - 256)]),
                        ("space 0xffffffff over the BAT", [(lo, 4, 0x4D616358),
                                                           (lo + 4, 4, 0xFFFFFFFF),
                                                           (lo + 8, 4, 0xFFFFFFFF),
                                                           (lo + 16, 8, v.bat_off)])):
        def fn(dd, e=edits):
            for o, s, val in e:
                put(dd, o, s, val)
            vhd_fix(dd, v.hoff)
            return dd
        c.add("locator", "parent locator with %s" % what, fn)

    # BAT entries.
    if v.blocks:
        b0, s0 = v.blocks[0]
        bl, sl = v.blocks[-1]
        span = v.bitmap_sectors + v.block_sectors
        for what, value, exp, _ in (
                ("past the end", 0x7FFFFFF0, "refuse", True),
                ("at the footer copy", 0, "any", True),
                ("at the dynamic header", v.hoff // 512, "any", True),
                ("at the BAT", v.bat_off // 512, "any", True),
                ("0xfffffffe", 0xFFFFFFFE, "refuse", False),
                ("half past the end", nsec - span // 2, "refuse", False),
                ("ending on the trailing footer", nsec - span, "any", True),
                ("inside another block", sl + v.bitmap_sectors + 1, "any", True)):
            # The test does not grow the file for the blocks placed by its
            # end: growing would move the trailing footer away from them.
            at_end = what in ("half past the end", "ending on the trailing footer")
            cat = "bat:at-end" if at_end else "bat"
            c.add(cat, "BAT entry %d %s" % (b0, what), poker((v.bat_pos(b0), 4, value)),
                  expect=exp, tool="refuse" if exp == "refuse" else "any")
        unused = [i for i in range(v.entries) if v.bat[i] == VHD_UNUSED]
        if unused:
            c.add("bat", "two BAT entries for one block",
                  poker((v.bat_pos(unused[0]), 4, s0)))
        if v.max_entries > v.entries:
            c.add("bat", "BAT entries past the disk size hold garbage",
                  poker((v.bat_pos(v.max_entries - 1), 4, 0x7FFFFFF0)))
        c.add("bat", "every BAT entry the same block",
              lambda dd: [put(dd, v.bat_pos(i), 4, s0) for i in range(v.entries)] and dd)
        c.add("flip:bat", "64 random bit flips in the BAT",
              bitflips(6, v.bat_off, v.bat_off + 4 * v.entries - 1, 64))
        # Bitmaps.
        bm = s0 * 512
        c.add("bitmap", "bitmap of block %d all ones" % b0,
              lambda dd: dd[:bm] + b"\xff" * (v.bitmap_sectors * 512) +
              dd[bm + v.bitmap_sectors * 512:])
        c.add("bitmap", "bitmap of block %d all zeros" % b0,
              lambda dd: dd[:bm] + bytes(v.bitmap_sectors * 512) +
              dd[bm + v.bitmap_sectors * 512:])
        used = (v.block_sectors + 7) // 8
        if used < v.bitmap_sectors * 512:
            c.add("bitmap", "bits past the end of block %d set" % b0,
                  lambda dd: dd[:bm + used] + b"\xff" * (v.bitmap_sectors * 512 - used) +
                  dd[bm + v.bitmap_sectors * 512:])
    # Batmap (tapdisk, OpenXT key hash).
    if v.batmap:
        bo = v.batmap
        c.add("batmap", "batmap cookie broken (key hash lost)", poker((bo, 8, 0)),
              tool="refuse")
        c.add("batmap", "key hash flipped", poker((bo + 62, 1, d[bo + 62] ^ 1)),
              tool="refuse")
        c.add("batmap", "key hash nonce flipped", poker((bo + 30, 1, d[bo + 30] ^ 0x80)),
              tool="refuse")
        c.add("batmap", "keyhash_set 0", poker((bo + 29, 1, 0)), tool="refuse")
        c.add("batmap", "batmap map past the end", poker((bo + 8, 8, 1 << 40)))
        c.add("batmap", "batmap map sectors 0xffffffff", poker((bo + 16, 4, 0xFFFFFFFF)))
        c.add("batmap", "batmap version 0xffffffff", poker((bo + 20, 4, 0xFFFFFFFF)))
        mo = be(d, bo + 8, 8)
        if mo + 512 <= end:
            c.add("batmap", "batmap marks every block full",
                  lambda dd: dd[:mo] + b"\xff" * 512 + dd[mo + 512:])
    # Truncations.
    cuts = {"after the footer copy": 512, "after the dynamic header": v.hoff + 1024,
            "inside the BAT": v.bat_off + 512 if v.max_entries > 128 else 0,
            "after the BAT": v.bat_end, "before the trailing footer": end - 512,
            "by one byte": end - 1}
    if v.batmap:
        cuts["after the batmap header"] = v.batmap + 512
    if v.blocks:
        first = min(s for _, s in v.blocks) * 512
        last = max(s for _, s in v.blocks) * 512
        cuts["at the first block"] = first
        cuts["inside the first bitmap"] = first + 256 // 512 * 512 if v.bitmap_sectors > 1 else 0
        cuts["after the first bitmap"] = first + v.bitmap_sectors * 512
        cuts["inside the last block"] = last + (v.bitmap_sectors + v.block_sectors // 2) * 512
    seen = set()
    for what, n in cuts.items():
        if n <= 0 or n >= end or n in seen:
            continue
        if not rich and what not in ("before the trailing footer", "inside the last block",
                                     "after the batmap header"):
            continue
        seen.add(n)
        exp = "any" if what in ("before the trailing footer", "by one byte") else "refuse"
        c.add("truncate", "cut %s (%d bytes)" % (what, n), truncate_to(n), expect=exp,
              tool="refuse" if exp == "refuse" else "any")


def footer_flips(d, v, seed):
    r = random.Random(seed)
    for _ in range(24):
        i = r.randrange(8, 64)          # the fields between cookie and checksum
        d[len(d) - 512 + i] ^= 1 << r.randrange(8)
    d[:512] = d[-512:] if v.type != 2 else d[:512]
    vhd_fix(d, v.hoff if v.type != 2 else None)
    return d


def header_flips(d, v, seed):
    r = random.Random(100 + seed)
    for _ in range(3):
        i = r.randrange(8, 36)          # data_offset .. block_size
        d[v.hoff + i] ^= 1 << r.randrange(8)
    vhd_fix(d, v.hoff)
    return d


# ---------------------------------------------------------------------------
# Self-referencing chains (for vhdcryptsetup open)

def qcow2_set_backing(d, name):
    """Point the backing file name at @name (stored at 0x1000 of the first
    cluster, clear of the extensions)."""
    q = Qcow2(d)
    at = min(0x1000, q.cs - 1024)
    if at < q.ext_end:
        return None
    nb = name.encode()
    d[at:at + len(nb)] = nb
    put(d, 8, 8, at)
    put(d, 16, 4, len(nb))
    return d


def vhd_set_parent(d, name, uuid):
    """Make both locators of a differencing VHD name @name, and the parent
    uuid @uuid."""
    v = Vhd(d)
    d[v.hoff + 40:v.hoff + 56] = uuid
    pn = name.encode("utf-16-be")
    d[v.hoff + 64:v.hoff + 576] = pn + bytes(512 - len(pn))
    for lo in v.locators:
        code, off = be(d, lo, 4), be(d, lo + 16, 8)
        space = be(d, lo + 4, 4)
        space = space * 512 if space < 512 else space
        if code == 0x4D616358:
            data = ("file://" + name).encode()
        elif code == 0x57326B75:
            data = os.path.abspath(name).encode("utf-16-le")
        else:
            data = name.encode("utf-16-le")
        if len(data) > space:
            return None
        d[off:off + space] = data + bytes(space - len(data))
        put(d, lo + 8, 4, len(data))
    vhd_fix(d, v.hoff)
    return d


def chain_images(bases, out):
    """(file, base, description) of chains that loop.  The files must keep
    their names: they point at each other by name."""
    made = []
    qback = bases.get("qback")
    if qback:
        d = bytearray(open(qback, "rb").read())
        for name, desc in (("loop-self.qcow2", "qcow2 whose backing file is itself"),):
            x = qcow2_set_backing(bytearray(d), name)
            if x is not None:
                write_image(os.path.join(out, name), x)
                made.append((name, "qback", desc))
        a = qcow2_set_backing(bytearray(d), "loop-b.qcow2")
        b = qcow2_set_backing(bytearray(d), "loop-a.qcow2")
        if a is not None and b is not None:
            write_image(os.path.join(out, "loop-a.qcow2"), a)
            write_image(os.path.join(out, "loop-b.qcow2"), b)
            made.append(("loop-a.qcow2", "qback", "qcow2 chain a -> b -> a"))
    vchild = bases.get("vchild")
    if vchild:
        d = bytearray(open(vchild, "rb").read())
        own = bytes(d[-512 + 68:-512 + 84])
        x = vhd_set_parent(bytearray(d), "./loop-self.vhd", own)
        if x is not None:
            write_image(os.path.join(out, "loop-self.vhd"), x)
            made.append(("loop-self.vhd", "vchild", "differencing VHD whose parent is itself"))
        a = bytearray(d)
        b = bytearray(d)
        b[-512 + 68:-512 + 84] = hashlib.sha256(b"loop-b").digest()[:16]
        b[68:84] = b[-512 + 68:-512 + 84]
        vhd_fix(b, Vhd(b).hoff)
        a = vhd_set_parent(a, "./loop-b.vhd", bytes(b[-512 + 68:-512 + 84]))
        b = vhd_set_parent(b, "./loop-a.vhd", bytes(a[-512 + 68:-512 + 84])) if a else None
        if a is not None and b is not None:
            write_image(os.path.join(out, "loop-a.vhd"), a)
            write_image(os.path.join(out, "loop-b.vhd"), b)
            made.append(("loop-a.vhd", "vchild", "differencing VHD chain a -> b -> a"))
    return made


# ---------------------------------------------------------------------------

def write_image(path, d):
    """Write @d sparsely (holes for zero 4 KiB blocks)."""
    zero = bytes(4096)
    with open(path, "wb") as f:
        for i in range(0, len(d), 4096):
            blk = d[i:i + 4096]
            if blk == zero[:len(blk)]:
                f.seek(len(blk), 1)
            else:
                f.write(blk)
        f.truncate(len(d))


def find_bases(basedir):
    bases = {}
    for fn in sorted(os.listdir(basedir)):
        name, ext = os.path.splitext(fn)
        if ext in (".qcow2", ".vhd") and "-" not in name and name != "parent":
            bases[name] = os.path.join(basedir, fn)
    return bases


# The sample (--sample): (base, start of the description) of each image
# make check runs; the full set (make check-full) is everything.
SAMPLE = [
    ("q3", "magic ="), ("q3", "version = 0x4"), ("q3", "cluster_bits = 0x16"),
    ("q3", "size = 0x8000000000000000"), ("q3", "size = 0x800000"),
    ("q3", "l1_size = 0x400000"), ("q3", "l1_table_offset = 0x0"),
    ("q3", "l1_table_offset = 0x10000"), ("q3", "refcount_table_offset = 0x30000"),
    ("q3", "refcount_table_clusters = 0xffffffff"), ("q3", "incompatible_features = 0x2"),
    ("q3", "incompatible_features = 0x10"), ("q3", "refcount_order = 0x3"),
    ("q3", "refcount_order = 0x7"), ("q3", "header_length = 0x10008"),
    ("q3", "first extension length"), ("q3", "3 bit flips in l1_table_offset"),
    ("q3", "L1 entry 0 at the refcount table"), ("q3", "L1 entry 0 at a refcount block"),
    ("q3", "L2 entry at the L1 table"), ("q3", "L2 entry at its own L2 table"),
    ("q3", "L2 entry at the last cluster"), ("q3", "two L2 entries share a data cluster, both"),
    ("q3", "refcount 0 for the L1 table"), ("q3", "refcount 0 for an L2 table"),
    ("q3", "refcount 0 for a data cluster"), ("q3", "first refcount block all zero"),
    ("q3", "cut inside the last data cluster"), ("q3", "cut at L2 table 0"),
    ("q3", "L2 entry one cluster past the end"),
    ("q3s", "two L1 entries share one L2 table"), ("q3s", "L2 entry at another L2 table"),
    ("q3s", "refcount 0 for the refcount block"), ("q3s", "L1 entries past the disk size"),
    ("q512", "L2 entry past the end"), ("q512", "refcount 0 for an L2 table"),
    ("q512", "cut at L2 table 0"),
    ("q2", "version = 0x3"), ("q2", "L2 entry zero flag"), ("q2", "L1 entry 0 past the end"),
    ("qluks", "crypt_method = 0x0"), ("qluks", "LUKS header past the end"),
    ("qluks", "LUKS key slot area flipped"), ("qluks", "L2 entry into the LUKS header"),
    ("qluks", "refcount 0 for the LUKS header"), ("qluks", "L2 entry past the end"),
    ("qluks", "cut inside the LUKS header"), ("qluks", "L1 entry 0 at a refcount block"),
    ("qluks", "two L2 entries share a data cluster, both"),
    ("qext", "subclusters both allocated and zero"),
    ("qext", "allocated subclusters without a host cluster"),
    ("qext", "every subcluster allocated"), ("qext", "incompatible_features"),
    ("qext", "L2 entry past the end"), ("qext", "cut inside the last data cluster"),
    ("qcomp", "zlib clusters read as zstd"),
    ("qcomp", "compressed cluster largest offset and sector count"),
    ("qcomp", "compressed cluster largest sector count"), ("qcomp", "compressed stream garbage"),
    ("qcomp", "compressed cluster with COPIED"),
    ("qzstd", "compressed stream garbage"), ("qzstd", "compressed cluster past the end"),
    ("qsnap", "COPIED set on every data entry"), ("qsnap", "nb_snapshots"),
    ("qsnap", "L2 entry into the snapshot table"), ("qsnap", "L2 entry at a snapshot's L1"),
    ("qsnap", "refcount 0 for the snapshot table"),
    ("qsnap", "refcount 0 for a snapshot's L1 table"),
    ("qsnap", "first snapshot's"),
    ("qback", "backing_file_offset"), ("qback", "L2 entry past the end"),
    ("vdyn", "footer cookie"), ("vdyn", "trailing footer only: data_offset"),
    ("vdyn", "footer copy only: current_size"), ("vdyn", "footer current_size = 0x1000000"),
    ("vdyn", "dynamic header table_offset = 0x200"),
    ("vdyn", "dynamic header max_table_entries = 0x68"),
    ("vdyn", "BAT entry 0 at the footer copy"), ("vdyn", "BAT entry 0 at the dynamic header"),
    ("vdyn", "BAT entry 0 at the BAT"), ("vdyn", "BAT entry 0 ending on the trailing footer"),
    ("vdyn", "two BAT entries for one block"), ("vdyn", "cut inside the last block"),
    ("vdyn", "cut before the trailing footer"), ("vdyn", "parent locator with offset that"),
    ("vdyn", "24 bit flips in the footer"),
    ("vsmall", "bits past the end of block"), ("vsmall", "bitmap of block 0 all ones"),
    ("vsmall", "BAT entry 0 inside another block"), ("vsmall", "every BAT entry the same"),
    ("vfix", "fixed disk larger than the file"), ("vfix", "footer disk_type = 0x3"),
    ("vchild", "bitmap of block"), ("vchild", "footer disk_type"),
    ("oxt128", "key hash flipped"), ("oxt128", "batmap cookie broken"),
    ("oxt128", "batmap marks every block full"), ("oxt128", "keyhash_set 0"),
    ("oxt128", "BAT entry 0 ending on the trailing footer"),
    ("oxt128", "BAT entry 0 half past the end"),
    ("oxtchild", "BAT entry 0 at the footer copy"), ("oxtchild", "cut before the trailing"),
]


# The quick set (--quick, make check): a part of SAMPLE.
QUICK = [
    ("q3", "l1_table_offset = 0x10000"), ("q3", "L2 entry at its own L2 table"),
    ("q3", "refcount 0 for an L2 table"), ("q3", "cut at L2 table 0"),
    ("q512", "L2 entry past the end"), ("qluks", "L2 entry into the LUKS header"),
    ("qext", "subclusters both allocated and zero"), ("qext", "cut inside the last data"),
    ("qcomp", "compressed cluster largest offset and sector count"),
    ("vdyn", "two BAT entries for one block"), ("vsmall", "bits past the end of block"),
    ("vfix", "fixed disk larger than the file"), ("oxt128", "key hash flipped"),
]


def in_sample(base, desc, sample=None):
    return [x for x in sample or SAMPLE if x[0] == base and desc.startswith(x[1])]


def catalogue(name, path):
    d = bytearray(open(path, "rb").read())
    c = Catalogue(name)
    if path.endswith(".qcow2"):
        qcow2_catalogue(c, d)
    else:
        vhd_catalogue(c, d)
    return d, c.items


def cmd_gen(args, write=True):
    basedir, out = args[0], args[1] if write else None
    sample = QUICK if "--quick" in args else SAMPLE if "--sample" in args else None
    only = args[args.index("--only") + 1] if "--only" in args else None
    bases = find_bases(basedir)
    if write:
        os.makedirs(out, exist_ok=True)
    lines, n = [], 0
    unused = set(x for x in sample or SAMPLE if x[0] in bases)
    for name, path in bases.items():
        d, items = catalogue(name, path)
        ext = os.path.splitext(path)[1]
        fmt = "qcow2" if ext == ".qcow2" else "vhd"
        base_sectors = (Qcow2(d).size if fmt == "qcow2" else Vhd(d).size) // SECTOR
        for cat, desc, expect, tool, fn in items:
            hits = in_sample(name, desc, sample)
            unused.difference_update(hits)
            if sample and not hits:
                continue
            if only and not any(o in "%s %s %s" % (name, cat, desc)
                                for o in only.split("|")):
                continue
            x = fn(bytearray(d))
            if x is None:
                continue
            n += 1
            fn_out = "%03d-%s%s" % (n, name, ext)
            claimed = (qcow2_claimed_sectors if fmt == "qcow2" else
                       vhd_claimed_sectors)(x, base_sectors)
            if write:
                write_image(os.path.join(out, fn_out), x)
            lines.append("\t".join([str(n), name, cat, expect, tool, str(claimed),
                                    fn_out, desc]))
    if write:
        for fn_out, name, desc in chain_images(bases, out):
            n += 1
            lines.append("\t".join([str(n), name, "chain", "any", "refuse", "0", fn_out,
                                    desc]))
        with open(os.path.join(out, "manifest"), "w") as f:
            f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    if unused and not only:
        sys.stderr.write("genimages.py: SAMPLE entries that match no image: %s\n" %
                         sorted(unused))
        return 1
    return 0


# ---------------------------------------------------------------------------
# compare: what a write may never change

def protected_regions(d):
    """(start, end, what, check) of regions no write may change; check is
    None (bytes identical) or a function(before, after) -> problem text."""
    regs = []
    size = len(d)
    if size >= 104 and be(d, 0, 4) == QCOW2_MAGIC:
        version = be(d, 4, 4)
        cs = 1 << min(max(be(d, 20, 4), 9), 21)
        hlen = be(d, 100, 4) if version >= 3 else 72
        hend = min(cs, size)
        regs.append((0, hend, "qcow2 header cluster", qcow2_header_check(version, hend)))
        try:
            q = Qcow2(d)
        except (IndexError, ValueError):
            return regs
        if q.fde and q.fde[0] < size and q.fde[1] < 1 << 30:
            regs.append((q.fde[0], min(size, q.fde[0] + q.fde[1]), "LUKS header", None))
        del hlen
        return regs
    f = vhd_footer(d)
    if f is None:
        return regs
    if be(f, 60, 4) != 2:
        regs.append((0, 512, "footer copy", None))
        ho = be(f, 16, 8)
        if ho + 1024 <= size and d[ho:ho + 8] == b"cxsparse":
            regs.append((ho, ho + 1024, "dynamic header", None))
            bat, n = be(d, ho + 16, 8), be(d, ho + 28, 4)
            if bat + 4 * n <= size:
                regs.append((bat, bat + 4 * n, "BAT", bat_check))
                bm = bat + round_up(4 * n, 512)
                if d[bm:bm + 8] == b"tdbatmap":
                    regs.append((bm, bm + 512, "batmap header", None))
                    mo, ms = be(d, bm + 8, 8), be(d, bm + 16, 4)
                    if mo + ms * 512 <= size:
                        regs.append((mo, mo + ms * 512, "batmap", None))
            for i in range(8):
                lo = ho + 576 + 24 * i
                code, sp, off = be(d, lo, 4), be(d, lo + 4, 4), be(d, lo + 16, 8)
                sp = sp * 512 if sp < 512 else sp
                if code and off + sp <= size:
                    regs.append((off, off + sp, "parent locator %d" % i, None))
    if vhd_footer_ok(d[-512:]):
        regs.append((size - 512, size, "trailing footer", None))
    return regs


def qcow2_header_check(version, hend):
    def check(a, b):
        # May change: refcount_table_offset/_clusters (the table grew),
        # the corrupt bit set, autoclear bits cleared.
        x, y = bytearray(a), bytearray(b)
        for off, n in ((48, 12), (88, 8)):
            x[off:off + n] = y[off:off + n] = bytes(n)
        if version >= 3:
            ia, ib = be(a, 72, 8), be(b, 72, 8)
            if ib & ~2 != ia & ~2:
                return "incompatible features changed from %#x to %#x" % (ia, ib)
            x[72:80] = y[72:80] = bytes(8)
        if x != y:
            i = next(i for i in range(len(x)) if x[i] != y[i])
            return "changed at byte %d" % i
        return None
    return check


def bat_check(a, b):
    for i in range(0, len(a), 4):
        if a[i:i + 4] != b[i:i + 4] and a[i:i + 4] != b"\xff\xff\xff\xff":
            return "BAT entry %d changed from %#x to %#x" % (
                i // 4, be(a, i, 4), be(b, i, 4))
    return None


def cmd_compare(args):
    before = open(args[0], "rb").read()
    after = open(args[1], "rb").read()
    bad = 0
    for start, end, what, check in protected_regions(before):
        a, b = before[start:end], after[start:end]
        if a == b:
            continue
        why = check(a, b) if check else "changed"
        if why:
            first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), 0)
            print("%s (bytes %d-%d): %s (first difference at byte %d)" %
                  (what, start, end - 1, why, start + first))
            bad = 1
    return bad


def main(argv):
    if len(argv) >= 3 and argv[1] == "make-vhd":
        path = argv[3]
        parent = os.path.join(os.path.dirname(path) or ".", "vsmall.vhd") \
            if argv[2] == "child" else None
        make_small_vhd(path, parent)
        return 0
    if len(argv) >= 4 and argv[1] == "gen":
        return cmd_gen(argv[2:])
    if len(argv) >= 3 and argv[1] == "list":
        return cmd_gen(argv[2:], write=False)
    if len(argv) == 4 and argv[1] == "compare":
        return cmd_compare(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
