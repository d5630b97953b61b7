# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the hostile-image selftest (60): the valid base images, their
# tables, and the check of one damaged image (selftests/hostile/genimages.py
# makes them).  Sourced after lib.sh, lib-img.sh and lib-cli.sh.
#
#   hostile_bases DIR      make the bases in DIR and map the read-only
#                          backing devices some of them need; sets
#                          H_FMT/H_CIPHER/H_KEY/H_OPTS/H_TOOL[base]
#   hostile_case ID BASE CATEGORY EXPECT TOOL SECTORS FILE DESC
#                          one manifest line: load, read, write, check
#                          (status 0 ok, 1 failed; output = diagnostics;
#                          H_SET=full: vhdcryptsetup open on every image)
#
# The image device: the damaged image (grown, so the target can allocate)
# on a loop device limited to exactly its size (--sizelimit), over a file
# that holds a 64 KiB canary behind it.  Any access outside the image
# shows as "attempt to access beyond end of device" in the kernel log, and
# a write past it in a changed canary.

H_GEN=$SELFTEST_DIR/hostile/genimages.py
H_IO=$SELFTEST_DIR/hostile/devio.py
H_PREFIX=vh$$
H_PASS=pw-hostile
declare -A H_FMT H_CIPHER H_KEY H_OPTS H_TOOL

# hostile_base NAME FMT [CIPHER KEY [OPTS [TOOL-ARGS]]]
hostile_base() {
	H_FMT[$1]=$2 H_CIPHER[$1]=${3:-none} H_KEY[$1]=${4:--} H_OPTS[$1]=${5:-}
	H_TOOL[$1]=${6:-}
}

# hostile_lower NAME FILE SECTORS FMT CIPHER KEY: a read-only lower layer
# for a base with a backing file or parent, mapped for the whole test.
hostile_lower() {
	local lo
	lo=$(new_loop "$2" --ro) || return 1
	dmsetup create "$H_PREFIX-$1" --readonly --table "0 $3 vhdcrypt $4 $lo $5 $6 0" ||
		return 1
	at_exit dm_remove "$H_PREFIX-$1"
	udev_settle
}

hostile_bases() {
	local d=$1 ox=$FIXTURES/openxt src=$1/.text.raw ck hex k
	mkdir -p "$d" "$d/.keys" || return 1
	H_BASES=$d H_KEYS=$d/.keys
	printf %s "$H_PASS" >"$d/.pass"
	truncate -s 2M "$src" && seq 1 170000 | dd of="$src" conv=notrunc status=none || return 1

	qemu-img create -q -f qcow2 -o cluster_size=64k "$d/q3.qcow2" 4M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 256k" -c "write -P 0x22 1028k 64k" \
			-c "write -P 0x33 3132k 8k" -c "write -z 2M 64k" "$d/q3.qcow2" >/dev/null &&
		hostile_base q3 qcow2 || return 1
	qemu-img create -q -f qcow2 -o cluster_size=4k "$d/q3s.qcow2" 8M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 64k" -c "write -P 0x22 2M 16k" \
			-c "write -P 0x33 4104k 4k" -c "write -P 0x44 6M 64k" \
			-c "write -P 0x55 8188k 4k" "$d/q3s.qcow2" >/dev/null &&
		hostile_base q3s qcow2 || return 1
	qemu-img create -q -f qcow2 -o cluster_size=512 "$d/q512.qcow2" 1M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 4k" -c "write -P 0x22 300k 20k" \
			-c "write -P 0x33 1020k 4k" "$d/q512.qcow2" >/dev/null &&
		hostile_base q512 qcow2 || return 1
	qemu-img create -q -f qcow2 -o compat=0.10 "$d/q2.qcow2" 4M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 128k" -c "write -P 0x22 3M 64k" \
			"$d/q2.qcow2" >/dev/null && hostile_base q2 qcow2 || return 1
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k "$d/qext.qcow2" 4M &&
		qemu-io -f qcow2 -c "write -P 0x44 12k 4k" -c "write -z 20k 2k" \
			-c "write -P 0x45 1M 64k" "$d/qext.qcow2" >/dev/null &&
		hostile_base qext qcow2 || return 1
	qemu-img convert -c -O qcow2 "$src" "$d/qcomp.qcow2" && hostile_base qcomp qcow2 &&
		qemu-img convert -c -O qcow2 -o compression_type=zstd "$src" "$d/qzstd.qcow2" &&
		hostile_base qzstd qcow2 || return 1
	cp "$d/q3.qcow2" "$d/qsnap.qcow2" && qemu-img snapshot -c s1 "$d/qsnap.qcow2" &&
		qemu-io -f qcow2 -c "write -P 0x66 64k 64k" "$d/qsnap.qcow2" >/dev/null &&
		hostile_base qsnap qcow2 || return 1
	qemu-img create -q -f qcow2 "$d/qback-base.qcow2" 4M &&
		qemu-io -f qcow2 -c "write -P 0x77 0 4M" "$d/qback-base.qcow2" >/dev/null &&
		qemu-img create -q -f qcow2 -b qback-base.qcow2 -F qcow2 "$d/qback.qcow2" 4M &&
		qemu-io -f qcow2 -c "write -P 0x78 1M 64k" "$d/qback.qcow2" >/dev/null &&
		hostile_lower qback-base "$d/qback-base.qcow2" 8192 qcow2 none - &&
		hostile_base qback qcow2 none - "backing:/dev/mapper/$H_PREFIX-qback-base" ||
		return 1
	luks_create "$d/qluks.qcow2" 4M "$H_PASS" "" &&
		qemu-io --object "secret,id=sec0,data=$H_PASS" -c "write -P 0x12 0 192k" \
			-c "write -P 0x13 2M 64k" --image-opts \
			"driver=qcow2,file.filename=$d/qluks.qcow2,encrypt.key-secret=sec0" >/dev/null &&
		ck=$(luks_key "$d/qluks.qcow2" "$H_PASS") &&
		hostile_base qluks qcow2 "${ck% *}" "${ck#* }" iv_sector:host "--key-file $d/.pass" ||
		return 1

	qemu-img create -q -f vpc -o force_size=on "$d/vdyn.vhd" 8M &&
		qemu-io -f vpc -c "write -P 0x55 0 64k" -c "write -P 0x66 2052k 4k" \
			-c "write -P 0x77 6M 4k" "$d/vdyn.vhd" >/dev/null &&
		hostile_base vdyn vhd || return 1
	qemu-img create -q -f vpc -o subformat=fixed,force_size=on "$d/vfix.vhd" 2M &&
		qemu-io -f vpc -c "write -P 0x55 512k 64k" "$d/vfix.vhd" >/dev/null &&
		hostile_base vfix vhd || return 1
	python3 "$H_GEN" make-vhd small "$d/vsmall.vhd" &&
		python3 "$H_GEN" make-vhd child "$d/vchild.vhd" && hostile_base vsmall vhd &&
		hostile_lower vsmall "$d/vsmall.vhd" 8192 vhd none - &&
		hostile_base vchild vhd none - "backing:/dev/mapper/$H_PREFIX-vsmall" || return 1

	# OpenXT: a keyed image, and a child with its own key over a keyed parent.
	# The tool finds keys by image name: case-<base>.vhd in H_KEYS.
	xz -dc "$ox/aes128xts.vhd.xz" >"$d/oxt128.vhd" &&
		xz -dc "$ox/child-own.vhd.xz" >"$d/oxtchild.vhd" &&
		xz -dc "$ox/parent.vhd.xz" >"$d/parent.vhd" || return 1
	k=$ox/keys/aes128xts,aes-xts-plain,256.key
	cp "$k" "$H_KEYS/case-oxt128,aes-xts-plain,256.key" &&
		hostile_base oxt128 vhd aes-xts-plain "$(od -An -v -tx1 "$k" | tr -d ' \n')" "" \
			"--key-dir $H_KEYS,$ox/keys" || return 1
	hex=$(od -An -v -tx1 "$ox/keys/parent,aes-xts-plain,512.key" | tr -d ' \n')
	hostile_lower oxtparent "$d/parent.vhd" $(($(vhd_current_size "$d/parent.vhd") / 512)) \
		vhd aes-xts-plain "$hex" || return 1
	k=$ox/keys/child-own,aes-xts-plain,256.key
	cp "$k" "$H_KEYS/case-oxtchild,aes-xts-plain,256.key" &&
		hostile_base oxtchild vhd aes-xts-plain "$(od -An -v -tx1 "$k" | tr -d ' \n')" \
			"backing:/dev/mapper/$H_PREFIX-oxtparent" "--key-dir $H_KEYS,$ox/keys"
}

# ---------------------------------------------------------------------------
# One damaged image

# h_ms: milliseconds since the case started (for the diagnostics).
h_ms() {
	echo $(((${EPOCHREALTIME/[.,]/} - H_T0) / 1000))
}

# h_qcheck BASE FILE: the kinds of corruption qemu-img check finds (numbers
# dropped, one per line), or "cannot-check" if it cannot open the image.
# Leaks are no corruption.
h_qcheck() {
	local base=$1 file=$2 out rc
	if [ "${H_CIPHER[$base]}" != none ]; then
		out=$(qemu-img check --object "secret,id=sec0,data=$H_PASS" --image-opts \
			"driver=qcow2,file.filename=$file,encrypt.key-secret=sec0" 2>&1)
	else
		out=$(qemu-img check -f qcow2 "$file" 2>&1)
	fi
	rc=$?
	case $rc in
	0 | 2 | 3) ;;
	*) echo "cannot-check: $(printf '%s\n' "$out" | head -n 1)"; return ;;
	esac
	printf '%s\n' "$out" | grep -E '^(ERROR|Warning)' |
		sed -E 's/\b(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b/N/g' | sort -u
}

# h_grow BASE FILE SECTORS: room for allocations, as vhdcryptsetup open
# makes it (a VHD gets its footer at the new end); a fixed VHD cannot grow.
h_grow() {
	local file=$2 size room
	[ "$1" = vfix ] && return 0
	size=$(stat -c %s "$file")
	room=$((($3 < 32768 ? $3 : 32768) * 512 + (1 << 20)))
	if [ "${H_FMT[$1]}" = vhd ]; then
		tail -c 512 "$file" >"$file.footer" && truncate -s $((size + room)) "$file" &&
			dd if="$file.footer" of="$file" bs=512 seek=$(((size + room) / 512 - 1)) \
				conv=notrunc status=none && rm -f "$file.footer"
	else
		truncate -s $((size + room)) "$file"
	fi
}

# h_tool WANT IMAGE BASE: vhdcryptsetup open --readonly must not crash or
# hang and must leave nothing behind; WANT refuse: it must fail, saying why.
h_tool() {
	local want=$1 img=$2 base=$3 name=$H_PREFIX-tool out rc n ok=0
	[ -n "$TOOL" ] || { echo "tool: vhdcryptsetup not built, not checked"; return 0; }
	# shellcheck disable=SC2086 # H_TOOL holds options
	out=$(timeout -k 5 60 "$TOOL" open --readonly ${H_TOOL[$base]} "$img" "$name" 2>&1 </dev/null)
	rc=$?
	echo "tool: vhdcryptsetup open: exit $rc: $out"
	case $rc in
	0)
		"$TOOL" close "$name" || ok=1
		[ "$want" = refuse ] && { echo "tool: vhdcryptsetup open should have refused it"; ok=1; }
		;;
	124 | 137) echo "tool: vhdcryptsetup open hangs"; ok=1 ;;
	*)
		[ "$rc" -lt 128 ] || { echo "tool: vhdcryptsetup open crashed"; ok=1; }
		[ -n "$out" ] || { echo "tool: refused without a message"; ok=1; }
		;;
	esac
	for n in "$name" "$name-L1" "$name-L2" "$name-L3"; do
		if dmsetup info "$n" >/dev/null 2>&1; then
			echo "tool: left $n behind"
			dm_remove "$n"
			ok=1
		fi
	done
	if [ -n "$(losetup -j "$img")" ]; then
		echo "tool: left a loop device on $img: $(losetup -j "$img")"
		ok=1
	fi
	return $ok
}

# hostile_case ID BASE CATEGORY EXPECT TOOL SECTORS FILE DESC
hostile_case() {
	local id=$1 base=$2 cat=$3 expect=$4 tool=$5 sectors=$6 file=$7
	local ext=${7##*.} name=$H_PREFIX-case img disk=$SELFTEST_TMP/disk
	local before=$SELFTEST_TMP/before size lo table opts mode io rc st log ok=0
	local nread kb ka wr H_T0 worse=0

	H_T0=${EPOCHREALTIME/[.,]/}
	if [ "$cat" = chain ]; then
		h_tool refuse "$H_OUT/$file" "$base"
		return
	fi
	img=$H_BASES/case-$base.$ext
	cp --sparse=always "$H_OUT/$file" "$img" && cp --sparse=always "$img" "$disk" || return 1
	size=$((($(stat -c %s "$disk") + 511) / 512 * 512))
	truncate -s "$size" "$disk" || return 1
	# Truncated images stay truncated: growing them would hide the cut;
	# nor do images whose damage is about where the file ends.
	case $cat in
	truncate | *:at-end) ;;
	*) h_grow "$base" "$disk" "$sectors" || return 1 ;;
	esac
	size=$(stat -c %s "$disk")
	cp --sparse=always "$disk" "$before" && cat "$H_CANARY" >>"$disk" || return 1
	lo=$(losetup -f --show --sizelimit "$size" "$disk") || return 1

	# DM's own limit on a table (LLONG_MAX bytes), so vhdcrypt sees the size.
	[ "$sectors" -le $(((1 << 54) - 1)) ] || sectors=$(((1 << 54) - 1))
	read -r -a opts <<<"${H_OPTS[$base]}"
	table="0 $sectors vhdcrypt ${H_FMT[$base]} $lo ${H_CIPHER[$base]} ${H_KEY[$base]} 0"
	table+="${opts[*]:+ ${#opts[@]} ${opts[*]}}"
	kmsg_mark
	if dmsetup create "$name" --table "$table" 2>/dev/null; then
		mode=rw
	else
		# What the refused writable table changed (the corrupt bit) must
		# not decide the read-only load.
		if ! cmp -s -n "$size" "$disk" "$before"; then
			echo "note: the refused writable load changed the image: $(cmp -n "$size" "$disk" "$before")"
			dd if="$before" of="$disk" bs=1M conv=notrunc status=none
		fi
		if dmsetup create "$name" --readonly --table "$table" 2>/dev/null; then
			mode=ro
		else
			mode=refused
		fi
	fi
	echo "table: $mode ($(h_ms) ms)"
	if [ "$mode" = refused ]; then
		failure_explained || ok=1
	else
		[ "$expect" = refuse ] && { echo "the table loaded, but should be refused"; ok=1; }
		udev_settle
		wr=()
		[ "$mode" = rw ] && wr=(--write)
		io=$(timeout -k 10 180 python3 "$H_IO" "/dev/mapper/$name" "${wr[@]}" --seed "$id" 2>&1)
		rc=$?
		echo "io ($(h_ms) ms): $io"
		case $rc in
		0) ;;
		124 | 137) echo "the I/O hangs (still running after 180 s)"; ok=1 ;;
		3) echo "an error other than EIO or ENOSPC"; ok=1 ;;
		*) echo "devio.py failed: exit $rc"; ok=1 ;;
		esac
		nread=$(printf '%s\n' "$io" | sed -n 's/^read:\([0-9]*\)\/.*/\1/p')
		st=$(dmsetup status "$name")
		echo "status: $st"
		if [ "$expect" = eio ] && [ "${nread:-0}" -eq 0 ]; then
			echo "a clean read, expected EIO"
			ok=1
		fi
		if [ "${nread:-0}" -gt 0 ] && ! printf '%s\n' "$st" | grep -Eq ' io_errors:[1-9]'; then
			echo "reads failed, but dmsetup status counts no io_errors"
			ok=1
		fi
		if ! timeout -k 10 120 dmsetup remove --retry "$name"; then
			echo "dmsetup remove failed or hangs"
			dmsetup remove --force "$name"
			ok=1
		fi
		udev_settle
	fi
	losetup -d "$lo"
	if ! cmp -s -i "$size:0" "$disk" "$H_CANARY"; then
		echo "the canary behind the image changed: something wrote past the image"
		ok=1
	fi
	truncate -s "$size" "$disk"
	log=$(kmsg_since)
	printf '%s\n' "$log" | grep -v 'selftest-mark' | sed 's/^/dmesg: /' | tail -n 12
	no_kernel_problems "$log" || ok=1
	if printf '%s\n' "$log" | grep -q 'beyond end of device'; then
		echo "the target accessed the device past its end"
		ok=1
	fi

	if [ "$mode" = rw ]; then
		# A write never makes the damage worse: no new kind of corruption,
		# and the metadata no write may touch is unchanged.
		python3 "$H_GEN" compare "$before" "$disk" || worse=1
		echo "compared ($(h_ms) ms)"
		if [ "${H_FMT[$base]}" = qcow2 ]; then
			kb=$(h_qcheck "$base" "$before")
			ka=$(h_qcheck "$base" "$disk")
			if [ "${kb%%:*}" = cannot-check ]; then
				echo "qemu-img check: cannot check the image before the writes; not compared"
			elif [ -n "$(comm -13 <(printf '%s\n' "$kb") <(printf '%s\n' "$ka"))" ]; then
				printf 'qemu-img check: new kind of damage after the writes:\n%s\nbefore:\n%s\n' \
					"$(comm -13 <(printf '%s\n' "$kb") <(printf '%s\n' "$ka"))" "$kb"
				worse=1
			fi
			echo "qemu-img check before and after ($(h_ms) ms)"
		fi
	fi
	if [ "$mode" = refused ] || [ "$tool" = refuse ]; then
		h_tool refuse "$img" "$base" || ok=1
	elif [ "${H_SET:-}" = full ]; then
		h_tool any "$img" "$base" || ok=1
	fi
	rm -f "$img" "$disk" "$before"
	return $((ok | worse))
}
