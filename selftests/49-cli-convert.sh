#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.1
#
# vhdcryptsetup convert, in the kernel: a qcow2 with LUKS that QEMU wrote
# becomes an OpenXT-keyed VHD (a new key in a key directory), which becomes
# a qcow2 with LUKS again (a new passphrase); an OpenXT chain made by the
# real tools (child with its own key over a keyed parent) is flattened into
# one VHD.  Each result is checked by qemu-img (with the passphrase) or by
# vhdcheck (with the key dir) and must show byte for byte what the source
# showed through the tool.  A convert that fails (wrong passphrase, an
# existing destination without --batch-mode) leaves no destination behind
# and no device mapped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"
. "$(dirname "$0")/lib-img.sh"

start_cli_test qemu-img qemu-io cmp xz
VHDCHECK=$VHDCRYPT_SRC/selftests/tools/vhdcheck
FX=${VHDCRYPT_FIXTURES:-$(dirname "$0")/fixtures}/openxt
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcv$$
printf pw-one >pw1
printf pw-two >pw2
printf wrong >pw-bad
mkdir keys

sec() { echo "secret,id=s,data=$1"; }
iopts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=s"; }

# shown IMAGE OUT OPEN-ARGS...: what the tool's read-only open of IMAGE shows, into OUT.
shown() {
	local img=$1 out=$2 name=$P-s$RANDOM
	shift 2
	at_exit close_quiet "$name"
	"$TOOL" open --readonly --no-partitions "$@" "$img" "$name" &&
		dd if="/dev/mapper/$name" of="$out" bs=1M status=none &&
		"$TOOL" close "$name"
}

# vhd_same IMAGE EXPECTED KEY-DIR: vhdcheck finds no damage and decodes EXPECTED.
vhd_same() {
	"$VHDCHECK" check "$1" && "$VHDCHECK" decode "$1" --key-dir "$3" -o "$1.raw" &&
		cmp "$1.raw" "$2"
}

# qcow2_same IMAGE EXPECTED PASS: qemu-img check clean, QEMU shows EXPECTED.
qcow2_same() {
	qemu-img check -q --object "$(sec "$3")" --image-opts "$(iopts "$1")" &&
		qemu-img convert --object "$(sec "$3")" --image-opts "$(iopts "$1")" -O raw "$1.raw" &&
		cmp "$1.raw" "$2"
}

# --- qcow2 + LUKS (QEMU's) -> OpenXT VHD -> qcow2 + LUKS
luks_create src.qcow2 24M pw-one
qemu-io --object "$(sec pw-one)" --image-opts "$(iopts src.qcow2)" \
	-c "write -P 0x5a 0 1M" -c "write -P 0xa5 7M 300k" -c "write -P 0x33 24M-4k 4k" >/dev/null
qemu-img convert --object "$(sec pw-one)" --image-opts "$(iopts src.qcow2)" -O raw src.raw
sha_src=$(sha256sum <src.qcow2)

cli "qcow2+LUKS -> VHD: convert" 0 "" \
	"$TOOL" convert --type vhd --new-key-dir keys --key-file pw1 src.qcow2 mid.vhd
tap_check "qcow2+LUKS -> VHD: one new key file" test -f "keys/mid,aes-xts-plain,512.key"
tap_check "qcow2+LUKS -> VHD: vhdcheck decodes what QEMU showed" vhd_same mid.vhd src.raw keys
tap_check "qcow2+LUKS -> VHD: the source is unchanged" \
	test "$(sha256sum <src.qcow2)" = "$sha_src"
KEEP='' open_cmp "qcow2+LUKS -> VHD" mid.vhd src.raw --key-dir keys

cli "VHD -> qcow2+LUKS: convert" 0 "" \
	"$TOOL" convert --type qcow2 --new-keyfile pw2 --iter-time 10 --key-dir keys mid.vhd back.qcow2
tap_check "VHD -> qcow2+LUKS: qemu-img check, QEMU shows the same data" qcow2_same back.qcow2 src.raw pw-two
KEEP='' open_cmp "VHD -> qcow2+LUKS" back.qcow2 src.raw --key-file pw2
cli "VHD -> qcow2+LUKS: the old passphrase is refused" 2 "" \
	"$TOOL" open --dry-run --key-file pw1 back.qcow2 "$P-x"

# --- an OpenXT chain (the real tools') flattened
for f in parent child-own; do
	# shellcheck disable=SC2216 # cp reads /dev/stdin
	xz -dc "$FX/$f.vhd.xz" | cp --sparse=always /dev/stdin "$f.vhd" ||
		skip_all "cannot decompress $FX/$f.vhd.xz"
done
cp "$FX"/keys/parent,* "$FX"/keys/child-own,* keys/
shown child-own.vhd chain.raw --key-dir keys || tap_fail "chain: the source opens"
mkdir flat-keys
cli "chain flattened: convert" 0 "" \
	"$TOOL" convert --type vhd --new-key-dir flat-keys --key-dir keys child-own.vhd flat.vhd
tap_check "chain flattened: no parent left" sh -c "! '$TOOL' probe flat.vhd | grep -q '^VHDCRYPT_BACKING='"
tap_check "chain flattened: vhdcheck decodes the chain's data" vhd_same flat.vhd chain.raw flat-keys
KEEP='' open_cmp "chain flattened" flat.vhd chain.raw --key-dir flat-keys
cli "chain -> qcow2: convert" 0 "" \
	"$TOOL" convert --type qcow2 --new-keyfile pw1 --iter-time 10 --key-dir keys child-own.vhd flat.qcow2
tap_check "chain -> qcow2: qemu-img check, QEMU shows the chain's data" qcow2_same flat.qcow2 chain.raw pw-one

# --- failures leave nothing behind
cli "wrong passphrase: refused" 2 "" \
	"$TOOL" convert --type vhd --new-key-dir keys --key-file pw-bad src.qcow2 bad.vhd
tap_check "wrong passphrase: no destination, no key file" \
	sh -c '! test -e bad.vhd && ! ls keys/bad,* >/dev/null 2>&1'
cp back.qcow2 keep.qcow2
sha_keep=$(sha256sum <keep.qcow2)
cli "existing destination without --batch-mode: refused" 1 "" \
	"$TOOL" convert --type qcow2 --new-keyfile pw2 --key-dir keys mid.vhd keep.qcow2 </dev/null
tap_check "existing destination: unchanged" test "$(sha256sum <keep.qcow2)" = "$sha_keep"
tap_check "nothing mapped or attached afterwards" nothing_left "$P" "$W/src.qcow2" "$W/mid.vhd" \
	"$W/child-own.vhd" "$W/parent.vhd" "$W/keep.qcow2"
tap_check "no device of convert left" sh -c "! dmsetup ls | grep -q -- '-convert\\|vhdconv'"

tap_done
