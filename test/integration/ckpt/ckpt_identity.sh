#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A checkpoint device and its metadata pool know each other: a new (say
# mistyped) meta= on a device with checkpoints is refused and resets
# nothing, a pool is refused on another device, force_new_pool and
# 'nlayerfs-zns reset DEV all' are the two ways to start over, and zones
# reset behind a pool's back read as EIO, never as other data.
CKPT_TEST="checkpoint identity"
. "$(dirname "$0")/lib-ckpt.sh"

# mount DEV META [OPTS]: in the background, which returns once usable
mnt() { "$NLAYERFS" -o "zns=$1,meta=$2${3:+,$3}" "$MNT" 2>"$T/err"; local rc=$?; cat "$T/err"; return $rc; }
umnt() {
	local i
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 50; i++)); do pgrep -f -- "meta=$T/" >/dev/null || return 0; sleep 0.1; done
	echo "daemon still running"; return 1
}
refused() { if mnt "$@"; then echo "mounted"; umnt; return 1; fi; ! is_mounted "$MNT"; }
zones() { "$ZNS" report "$DEV" | awk 'NR > 1 { print $1, $3, $4 }'; }

"$ZNS" create "$DEV" --zones 32 --zone-size 1M --channels 2 --ways 2 >/dev/null &&
	"$ZNS" create "$T/dev2" --zones 32 --zone-size 1M --channels 2 --ways 2 >/dev/null ||
	{ echo "not ok 1 - create devices"; echo "1..1"; exit 1; }
head -c 3000000 /dev/urandom >"$T/data"

t_first() {
	mnt "$DEV" "$META" && mkdir "$MNT/t" && cp "$T/data" "$MNT/t/f" && umnt || return 1
	zones >"$T/zones.a"
	"$ZNS" report "$DEV" | awk 'NR > 1 && $1 > 0 && $4 > 0' | grep -q . || { echo "no zone written"; return 1; }
}
check "a pool writes its checkpoints" t_first

t_wrong_meta() {
	refused "$DEV" "$T/mistyped" || return 1
	grep -q "zns=$DEV holds data" "$T/err" && grep -q "force_new_pool" "$T/err" &&
		grep -q "nlayerfs-zns reset" "$T/err" || { echo "unclear message"; return 1; }
	[ ! -e "$T/mistyped/ckpt.pool" ] || { echo "the refused pool was left behind"; return 1; }
	zones | cmp - "$T/zones.a" || { echo "zones changed"; return 1; }
}
check "a new meta= on a device with checkpoints is refused, nothing reset" t_wrong_meta

t_right_meta() { mnt "$DEV" "$META" && cmp "$T/data" "$MNT/t/f" && umnt && ! grep -q dropped "$T/err"; }
check "the right pool then reads its file back" t_right_meta

t_other_dev() {
	refused "$T/dev2" "$META" || return 1
	grep -q "identity" "$T/err" || return 1
	mnt "$T/dev2" "$T/meta2" && mkdir "$MNT/u" && umnt || return 1
	refused "$T/dev2" "$META" && grep -q "another pool's" "$T/err"
}
check "a pool is refused on another device, by name" t_other_dev

t_force() {
	mnt "$DEV" "$T/meta3" force_new_pool && [ -z "$(ls "$MNT")" ] && umnt || return 1
	refused "$DEV" "$META" && grep -q "another pool's" "$T/err"
}
check "force_new_pool takes the device; the old pool is then refused" t_force

t_reset_all() {
	"$ZNS" reset "$DEV" all >/dev/null || return 1
	rm -rf "$T/meta4"
	mnt "$DEV" "$T/meta4" && mkdir "$MNT/v" && cp "$T/data" "$MNT/v/f" && umnt &&
		mnt "$DEV" "$T/meta4" && cmp "$T/data" "$MNT/v/f" && umnt
}
check "after 'nlayerfs-zns reset DEV all' a new pool takes the device" t_reset_all

# a zone of the file reset behind the pool's back: EIO, not other bytes
t_lost_zone() {
	local z
	z=$("$ZNS" report "$DEV" | awk 'NR > 1 && $1 > 0 && $4 > 0 { print $1; exit }')
	[ -n "$z" ] && "$ZNS" reset "$DEV" "$z" >/dev/null || return 1
	mnt "$DEV" "$T/meta4" || return 1
	if cat "$MNT/v/f" >/dev/null 2>"$T/cat.err"; then echo "read a file with a lost zone"; umnt; return 1; fi
	cat "$T/cat.err"
	grep -q "Input/output error" "$T/cat.err" && umnt || return 1
	grep -q "dropped -" "$T/err" && { echo "negative dropped count"; return 1; }
	return 0
}
check "a zone reset by another reads as EIO, no negative 'dropped'" t_lost_zone

echo "1..$N"
[ $NFAIL = 0 ]
