# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# (SC2034: W_* are used by the test files)
#
# Helpers for the write selftests (46, 50-63): writable images of every kind,
# their vhdcrypt tables, and the independent checks (qemu-img for qcow2,
# selftests/tools/vhdcheck for VHD).  Sourced after lib.sh and lib-img.sh.
#
#   wimg_make KIND FILE SIZE   make an image; sets W_FMT, W_CIPHER, W_KEY,
#                              W_OPTS (optional table parameters, without
#                              their count), W_SECTORS (virtual disk), W_KIND
#   wimg_grow FILE             extend the file sparsely so the target can
#                              allocate in it (what vhdcryptsetup open does)
#   wtable DEV [OPT...]        the table line for DEV and the current image,
#                              with W_OPTS and OPT
#   wimg_check FILE            structure: qemu-img check (leaks allowed) or
#                              vhdcheck check
#   wimg_plain FILE OUT        the virtual disk's plaintext, decoded by QEMU
#                              (qcow2) or vhdcheck (VHD)
#   verified FILE [--initial RAW]  after a wlog run: clean, and the journal
#                              holds in the plaintext and a new mapping
#
# KIND: qcow2 (64 KiB clusters), qcow2-512 (512-byte clusters), qcow2-2m,
# qcow2-extl2, qcow2-v2, qcow2-luks (aes-xts-plain64, host-sector IVs),
# qcow2-luks-aes128 (aes-xts-plain64, 256-bit key), qcow2-luks-cbc
# (aes-cbc-essiv:sha256),
# vhd (dynamic, plain), vhd-openxt (dynamic, AES-256-XTS by virtual sector,
# as OpenXT encrypts).

. "$VHDCRYPT_SRC/selftests/tools/lib-logwrites.sh"

W_PASS=pw-write
W_KEYFILE=

wimg_make() {
	local kind=$1 file=$2 size=$3 ck
	W_KIND=$kind W_CIPHER=none W_KEY=- W_OPTS='' W_FMT=qcow2 W_KEYFILE=''
	case $kind in
	qcow2) qemu-img create -q -f qcow2 "$file" "$size" ;;
	qcow2-512) qemu-img create -q -f qcow2 -o cluster_size=512 "$file" "$size" ;;
	qcow2-2m) qemu-img create -q -f qcow2 -o cluster_size=2M "$file" "$size" ;;
	qcow2-extl2)
		qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k "$file" "$size" ;;
	qcow2-v2) qemu-img create -q -f qcow2 -o compat=0.10 "$file" "$size" ;;
	qcow2-luks | qcow2-luks-aes128 | qcow2-luks-cbc)
		local opts=
		case $kind in
		*-aes128) opts=encrypt.cipher-alg=aes-128 ;;
		*-cbc) opts=encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256 ;;
		esac
		luks_create "$file" "$size" "$W_PASS" "$opts" || return 1
		ck=$(luks_key "$file" "$W_PASS") || return 1
		W_CIPHER=${ck% *} W_KEY=${ck#* } W_OPTS=iv_sector:host
		;;
	vhd | vhd-openxt)
		W_FMT=vhd
		qemu-img create -q -f vpc -o force_size=on "$file" "$size" || return 1
		if [ "$kind" = vhd-openxt ]; then
			W_KEYFILE=$file.key
			head -c 64 /dev/urandom >"$W_KEYFILE"
			W_CIPHER=aes-xts-plain
			W_KEY=$(od -An -v -tx1 "$W_KEYFILE" | tr -d ' \n')
		fi
		;;
	*) echo "wimg_make: unknown kind $kind" >&2; return 1 ;;
	esac
	W_SECTORS=$(($(qemu_size -f "$(wimg_qfmt)" "$file") / 512))
}

wimg_qfmt() {
	[ "$W_FMT" = vhd ] && echo vpc || echo qcow2
}

# Room for the target to allocate: the virtual size again, plus metadata.
wimg_grow() {
	local size
	size=$(stat -c %s "$1")
	truncate -s $(((size + W_SECTORS * 512 * 2 + (8 << 20) + 511) / 512 * 512)) "$1"
}

wtable() {
	local dev=$1 opts
	shift
	read -r -a opts <<<"$W_OPTS $*"
	echo "0 $W_SECTORS vhdcrypt $W_FMT $dev $W_CIPHER $W_KEY 0${opts[*]:+ ${#opts[@]} ${opts[*]}}"
}

# qemu-img's arguments for FILE: LUKS images need the passphrase.
wimg_qemu_args() {
	if [ "$W_KIND" != "${W_KIND#qcow2-luks}" ]; then
		printf '%s\n' --object "secret,id=sec0,data=$W_PASS" \
			--image-opts "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"
	else
		printf '%s\n' -f "$(wimg_qfmt)" "$1"
	fi
}

wimg_check() {
	local args out rc
	if [ "$W_FMT" = vhd ]; then
		"$VHDCHECK" check "$1"
		return
	fi
	mapfile -t args < <(wimg_qemu_args "$1")
	out=$(qemu-img check "${args[@]}" 2>&1)
	rc=$?
	# 0: clean, 3: leaked clusters only (what an interrupted allocation leaves)
	case $rc in
	0 | 3) return 0 ;;
	*) printf 'qemu-img check: exit %s\n%s\n' "$rc" "$out"; return 1 ;;
	esac
}

wimg_plain() {
	local args
	if [ "$W_FMT" = vhd ]; then
		"$VHDCHECK" decode "$1" ${W_KEYFILE:+--key-file "$W_KEYFILE"} -o "$2"
		return
	fi
	mapfile -t args < <(wimg_qemu_args "$1")
	qemu-img convert "${args[@]}" -O raw "$2"
}

# verified FILE [--initial RAW]: structure clean (no leaks either), QEMU's
# (or vhdcheck's) plaintext and a new read-only mapping hold the journal.
verified() {
	local file=$1 args out
	shift
	if [ "$W_FMT" = vhd ]; then
		"$VHDCHECK" check "$file" || return 1
	else
		mapfile -t args < <(wimg_qemu_args "$file")
		out=$(qemu-img check "${args[@]}" 2>&1) || { echo "$out"; return 1; }
	fi
	wimg_plain "$file" "$WORK/plain.raw" || return 1
	"$WLOG" check "$WORK/journal" "$WORK/plain.raw" "$@" || return 1
	loop "$file" && map ro "$(wtable "$LOOP")" &&
		"$WLOG" check "$WORK/journal" "$(dev ro)" "$@"
}
