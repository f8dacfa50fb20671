#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The checkpoint mount refuses what it cannot serve, before it detaches:
# a missing or wrong zns= device, bad geometry options, damaged metadata
# pools and emulator files each give a message that names the culprit, a
# non-zero exit and no mount (criu would otherwise write onto the bare
# directory); never a signal.
CKPT_TEST="checkpoint mount errors"
. "$(dirname "$0")/lib-ckpt.sh"

"$ZNS" create "$DEV" --zones 32 --zone-size 1M --channels 2 --ways 2 >/dev/null ||
	{ echo "not ok 1 - create device"; echo "1..1"; exit 1; }

# refused OPTS WORD...: a background mount exits non-zero, prints every WORD
# on stderr, mounts nothing, dies of no signal and leaves no daemon behind.
refused() {
	local opts=$1 rc w
	shift
	timeout 20 "$NLAYERFS" -o "$opts" "$MNT" 2>"$T/err"
	rc=$?
	cat "$T/err"
	echo "exit $rc"
	[ $rc != 0 ] || { echo "exit status 0"; return 1; }
	[ $rc -lt 124 ] || { echo "killed by a signal or timed out"; return 1; }
	! is_mounted "$MNT" || { echo "mounted"; fusermount3 -u "$MNT"; return 1; }
	for w in "$@"; do grep -qF -- "$w" "$T/err" || { echo "no '$w' in the message"; return 1; }; done
	sleep 0.2
	[ -z "$(daemons)" ] || { echo "a daemon is left: $(daemons)"; return 1; }
}

check "zns= of a missing file: refused in the background, named" \
	refused "zns=$T/nodev,meta=$META" "zns=$T/nodev" "nlayerfs-zns create"
check "zns= of a directory: refused" refused "zns=$T,meta=$META" "zns=$T:" "a directory"
check "zns=/dev/null: refused" refused "zns=/dev/null,meta=$META" "zns=/dev/null" "character device"
check "stripe_unit=3: refused" refused "zns=$DEV,meta=$META,stripe_unit=3" "stripe_unit=3" "block size"
check "more channels than zones: refused" refused "zns=$DEV,meta=$META,channels=64" "channels=64" "zone count"

t_good_mount() {
	"$NLAYERFS" -o "zns=$DEV,meta=$META" "$MNT" || return 1
	is_mounted "$MNT" || { echo "the background mount returned before it was usable"; return 1; }
	mkdir "$MNT/t" && head -c 300000 /dev/urandom >"$T/data" && cp "$T/data" "$MNT/t/f" &&
		fusermount3 -u "$MNT" || return 1
	sleep 0.5
}
check "a good background mount still mounts and unmounts" t_good_mount

# damaged pools: libpmemobj would die of SIGBUS or SIGSEGV on these
save_pool() { cp "$META/ckpt.pool" "$T/pool.good"; }
restore_pool() { cp "$T/pool.good" "$META/ckpt.pool"; }
save_pool
t_pool_empty() { : >"$META/ckpt.pool"; refused "zns=$DEV,meta=$META" "$META/ckpt.pool" "empty"; }
t_pool_short() { restore_pool; truncate -s 12M "$META/ckpt.pool"; refused "zns=$DEV,meta=$META" "$META/ckpt.pool" "damaged"; }
t_pool_random() { head -c 64M /dev/urandom >"$META/ckpt.pool"; refused "zns=$DEV,meta=$META" "$META/ckpt.pool" "damaged"; }
t_pool_zero_hdr() { restore_pool; dd if=/dev/zero of="$META/ckpt.pool" bs=4096 count=1 conv=notrunc 2>/dev/null; refused "zns=$DEV,meta=$META" "$META/ckpt.pool" "damaged"; }
check "an empty pool: clear error, no SIGBUS" t_pool_empty
check "a truncated pool: clear error" t_pool_short
check "a pool of random bytes: clear error, no SIGSEGV" t_pool_random
check "a pool whose header was never written: clear error" t_pool_zero_hdr
t_pool_back() {
	restore_pool
	"$NLAYERFS" -o "zns=$DEV,meta=$META" "$MNT" && cmp "$T/data" "$MNT/t/f" && fusermount3 -u "$MNT"
	sleep 0.5
}
check "the saved pool mounts again with its data" t_pool_back

# a corrupt emulator file: the header field is named
t_emu_corrupt() {
	cp "$DEV" "$T/dev.good"
	printf '\x07' | dd of="$DEV" bs=1 seek=8 conv=notrunc 2>/dev/null
	refused "zns=$DEV,meta=$META" "zns=$DEV" "version" || return 1
	cp "$T/dev.good" "$DEV"
	truncate -s 2M "$DEV"
	refused "zns=$DEV,meta=$META" "zns=$DEV" "truncated" || return 1
	cp "$T/dev.good" "$DEV"
}
check "a corrupt emulated device: the wrong header field is named" t_emu_corrupt

echo "1..$N"
[ $NFAIL = 0 ]
