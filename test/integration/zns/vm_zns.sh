#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real zoned device and a real criu: in a qemu guest (test/vm/vm-run) the
# zoned store's unit tests run on an emulated NVMe ZNS namespace, and criu
# dumps a process into a checkpoint mount on it and restores it from there.
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
NLBUILD=${NLAYERFS_BUILD:-$SRC/build}
NLBUILD=$(cd "$NLBUILD" && pwd)
VM=$SRC/test/vm/vm-run

if [ "$(id -u)" != 0 ]; then echo "ok 1 - vm zns # SKIP needs root"; echo "1..1"; exit 0; fi
T=$(mktemp -d /tmp/nl-C-vm-XXXXXX)
trap 'rm -rf "$T"' EXIT
# Setup installs qemu, the guest kernel and the initrd (apt-get); only a
# machine where qemu cannot be had at all skips.
if ! "$VM" setup >"$T/setup.log" 2>&1; then
	if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
		echo "ok 1 - vm zns # SKIP qemu cannot be installed here: $(tail -1 "$T/setup.log")"
		echo "1..1"
		exit 0
	fi
	echo "not ok 1 - test/vm/vm-run setup"
	sed 's/^/# /' "$T/setup.log" | tail -20
	echo "1..1"; exit 1
fi
if ! "$VM" can-run >/dev/null 2>&1; then
	echo "ok 1 - vm zns # SKIP qemu cannot run here: $("$VM" can-run 2>&1 | tail -1)"
	echo "1..1"
	exit 0
fi
# 64 zones, more than the namespace's 16 open and 32 active ones, so the
# open/active limit tests run on the device too; 16 MiB zones of 12 MiB
# capacity (below the size, as on ZNS SSDs), small enough for the tests
# that fill whole rows
export NLVM_OUT=$T/out NLVM_TIMEOUT=420 NLVM_ZONES=64 NLVM_ZONE_MB=16 NLVM_ZONE_CAP_MB=12
"$VM" run "$SRC/test/vm/guest-ckpt.sh" "$NLBUILD" "${NLAYERFS_SAN:-0}" >"$T/log" 2>&1
rc=$?
N=0
while IFS= read -r l; do
	case $l in
	"ok - "*) N=$((N + 1)); echo "ok $N - ${l#ok - }" ;;
	"not ok - "*) N=$((N + 1)); echo "not ok $N - ${l#not ok - }" ;;
	"#"*) echo "$l" ;;
	esac
done <"$T/log"
if [ $rc != 0 ] || [ $N = 0 ]; then
	N=$((N + 1)); echo "not ok $N - the guest job finished (exit $rc)"
	tail -20 "$T/log" | sed 's/^/# /'
	rc=1
fi
echo "1..$N"
exit $rc
