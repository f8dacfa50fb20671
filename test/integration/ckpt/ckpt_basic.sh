#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The checkpoint mount on an emulated zoned device: tenants' data striped
# over their own zone groups, criu's access patterns, deletion resetting
# zones, crash recovery and clean remounts.
CKPT_TEST="checkpoint mount"
. "$(dirname "$0")/lib-ckpt.sh"
LOGS=()
[ -x "$HELPERS/ckpt_criu_io" ] || { echo "not ok 1 - helper ckpt_criu_io built"; echo "1..1"; exit 1; }
mkdir -p "$T/src"

# mount_ckpt OPTS: the daemon in the foreground with its log kept, so the
# test knows its pid (kill -9) and can read recovery and sanitizer reports.
mount_ckpt() {
	local log=$T/daemon.${#LOGS[@]}.log i
	LOGS+=("$log")
	"$NLAYERFS" -f -o "zns=$DEV,meta=$META${1:+,$1}" "$MNT" 2>"$log" &
	PID=$!
	for ((i = 0; i < 100; i++)); do
		is_mounted "$MNT" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log"
	return 1
}

# unmount and wait for the daemon: the pool is locked while it runs
umount_ckpt() {
	local i
	fusermount3 -u "$MNT" || umount "$MNT" || return 1
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PID" 2>/dev/null || { wait "$PID"; PID=""; return 0; }
		sleep 0.1
	done
	echo "daemon $PID still running after unmount"
	return 1
}

# zone report rows with data: "zone group wp" (zone 0 holds the device's label)
used_zones() { "$ZNS" report "$DEV" | awk 'NR > 1 && $1 > 0 && $4 > 0 { print $1, $2, $4 }'; }
groups_used() { used_zones | awk '{ print $2 }' | sort -un; }

UNIT=65536
"$ZNS" create "$DEV" --zones 256 --zone-size 1M --channels 4 --ways 4 >/dev/null || { echo "not ok 1 - create device"; echo "1..1"; exit 1; }
for i in 1 2 3 4 5 6; do head -c $((1500000 + i * 300000)) /dev/urandom >"$T/src/f$i"; done
head -c 1048576 /dev/urandom >"$T/src/one"

t_mount() {
	mount_ckpt "zone_bw=100M,bandwidth=300M,stripe_unit=64K" && mkdir "$MNT/ten1" "$MNT/ten2" &&
		setfattr -n user.nlayerfs.bandwidth -v 200M "$MNT/ten2" &&
		[ "$(getfattr --only-values -n user.nlayerfs.bandwidth "$MNT/ten2")" = 209715200 ]
}
check "mount, two tenants, bandwidth xattr" t_mount

# Each tenant alone first, to learn which groups are its own.
t_groups() {
	cp "$T/src/one" "$MNT/ten1/one" && groups_used >"$T/g1" &&
		cp "$T/src/one" "$MNT/ten2/one" && groups_used >"$T/g12" &&
		comm -13 "$T/g1" "$T/g12" >"$T/g2" || return 1
	echo "ten1 groups: $(echo $(cat "$T/g1")), ten2 groups: $(echo $(cat "$T/g2"))"
	[ "$(wc -l <"$T/g1")" = 3 ] && [ "$(wc -l <"$T/g2")" = 2 ] &&
		[ -z "$(comm -12 "$T/g1" "$T/g2")" ]
}
check "k groups per tenant (300M -> 3, 200M -> 2), disjoint" t_groups

t_concurrent() {
	local t i pids=()
	for t in ten1 ten2; do
		(for i in 1 2 3 4 5 6; do cp "$T/src/f$i" "$MNT/$t/f$i" || exit 1; done) &
		pids+=($!)
	done
	wait "${pids[0]}" && wait "${pids[1]}" || return 1
	for t in ten1 ten2; do
		for i in 1 2 3 4 5 6; do cmp "$T/src/f$i" "$MNT/$t/f$i" || return 1; done
		cmp "$T/src/one" "$MNT/$t/one" || return 1
	done
}
check "two tenants writing concurrently read back their bytes" t_concurrent

# Appends run outside the mount lock: commits (each close) of one tenant
# while the other appends must neither fail nor lose bytes of either.
t_commit_during_appends() {
	local i big small
	mkdir -p "$MNT/ten1/par" "$MNT/ten2/par" || return 1
	head -c $((12 << 20)) /dev/urandom >"$T/par.big"
	(dd if="$T/par.big" of="$MNT/ten1/par/big" bs=1M status=none) & big=$!
	(for i in $(seq 40); do head -c $((i * 5000)) "$T/src/f1" >"$MNT/ten2/par/s$i" || exit 1; done) & small=$!
	wait $big && wait $small || return 1
	cmp "$T/par.big" "$MNT/ten1/par/big" || return 1
	for i in $(seq 40); do cmp <(head -c $((i * 5000)) "$T/src/f1") "$MNT/ten2/par/s$i" || return 1; done
	rm -rf "$MNT/ten1/par" "$MNT/ten2/par"
}
check "one tenant's commits while another appends" t_commit_during_appends

# Round-robin striping: the bytes written to each of a tenant's groups
# differ by at most one stripe unit (plus a block of end padding).
t_even() {
	local g t
	used_zones >"$T/zones"
	cat "$T/zones"
	for t in 1 2; do
		awk -v u=$UNIT 'NR == FNR { mine[$1] = 1; next }
			mine[$2] { sum[$2] += $3 }
			END { for (g in sum) { if (min == "" || sum[g] < min) min = sum[g]; if (sum[g] > max) max = sum[g]; n++ }
			      printf "groups %d min %d max %d\n", n, min, max; exit !(max - min <= u + 4096) }' \
			"$T/g$t" "$T/zones" || return 1
	done
	# nothing outside the tenants' groups
	for g in $(awk '{ print $2 }' "$T/zones" | sort -u); do
		grep -qx "$g" "$T/g1" "$T/g2" || { echo "group $g used by nobody's stream"; return 1; }
	done
}
check "write pointers advance evenly over each tenant's zones" t_even

t_criu_io() { mkdir -p "$MNT/ten1/dump/1" && "$HELPERS/ckpt_criu_io" "$MNT/ten1/dump/1"; }
check "criu access patterns: splice, preadv, mmap, parent symlink, punch hole" t_criu_io

t_delete() {
	local before after
	head -c $((6 << 20)) /dev/urandom >"$T/big"
	cp "$T/big" "$MNT/ten2/big" && cmp "$T/big" "$MNT/ten2/big" || return 1
	before=$(used_zones | grep -cwf "$T/g2")
	rm -f "$MNT"/ten2/* || return 1
	sync
	after=$(used_zones | grep -cwf "$T/g2")
	echo "ten2 zones with data: $before before, $after after deleting its files"
	# only the row still being written may keep data
	[ "$before" -gt 4 ] && [ "$after" -le 2 ] || return 1
	rmdir "$MNT/ten2" || return 1
	after=$(used_zones | grep -cwf "$T/g2")
	echo "after rmdir: $after"
	[ "$after" = 0 ]
}
check "deleting files resets their zones, rmdir releases the tenant" t_delete

# The groups ten2 held are free again: free groups go first, in order, so a
# new tenant of 3 groups takes ten2's 2 (and no group of ten1).
t_groups_back() {
	groups_used >"$T/g1only"
	mkdir "$MNT/ten3" && cp "$T/src/one" "$MNT/ten3/one" || return 1
	groups_used | comm -13 "$T/g1only" - >"$T/g3"
	echo "ten2 had: $(echo $(cat "$T/g2")), ten3 got: $(echo $(cat "$T/g3"))"
	[ "$(wc -l <"$T/g3")" = 3 ] && [ -z "$(comm -23 "$T/g2" "$T/g3")" ] || return 1
	cmp "$T/src/one" "$MNT/ten3/one" && rm "$MNT/ten3/one" && rmdir "$MNT/ten3" &&
		[ -z "$(used_zones | grep -wf "$T/g3")" ]
}
check "rmdir gives the tenant's groups back for the next tenant" t_groups_back

t_others_intact() {
	local i
	for i in 1 2 3 4 5 6; do cmp "$T/src/f$i" "$MNT/ten1/f$i" || return 1; done
}
check "the other tenant's files are intact" t_others_intact

# Crash: a closed file, a file still open with data written after the last
# commit, then kill -9.
t_crash() {
	local rc=0
	exec 7>"$MNT/ten1/open.bin" || return 1
	head -c 300000 "$T/src/f1" >&7
	cp "$T/src/f2" "$MNT/ten1/closed.bin" || rc=1
	head -c 2000000 "$T/src/f3" >&7
	kill_daemons
	exec 7>&-
	umount -l "$MNT" 2>/dev/null || fusermount3 -u "$MNT"
	[ $rc = 0 ] && mount_ckpt "zone_bw=100M,stripe_unit=64K" || return 1
	cat "${LOGS[-1]}"
	cmp "$T/src/f2" "$MNT/ten1/closed.bin" || return 1
	for i in 1 2 3 4 5 6; do cmp "$T/src/f$i" "$MNT/ten1/f$i" || return 1; done
	grep -q "open.bin.*open for writing at the crash" "${LOGS[-1]}" || return 1
	cp "$T/src/f4" "$MNT/ten1/after.bin" && cmp "$T/src/f4" "$MNT/ten1/after.bin"
}
check "kill -9, remount: closed files intact, the open one reported, writable" t_crash

t_remount() {
	umount_ckpt && mount_ckpt "zone_bw=100M,stripe_unit=64K" || return 1
	for i in 1 2 3 4 5 6; do cmp "$T/src/f$i" "$MNT/ten1/f$i" || return 1; done
	cmp "$T/src/f4" "$MNT/ten1/after.bin" && cmp "$T/src/f2" "$MNT/ten1/closed.bin" &&
		[ "$(readlink "$MNT/ten1/dump/1/parent")" = ../1 ] &&
		[ "$(stat -c %s "$MNT/ten1/dump/1/pages-renamed.img")" = $((1048576 + 1000)) ] &&
		[ ! -e "$MNT/ten2" ]
}
check "clean unmount and remount keep everything" t_remount

t_damaged_pool() {
	umount_ckpt || return 1
	# a pool that is not ours is refused with a clear error
	cp -a "$META" "$T/meta.good"
	dd if=/dev/urandom of="$META/ckpt.pool" bs=4096 seek=1 count=16 conv=notrunc 2>/dev/null
	if "$NLAYERFS" -f -o "zns=$DEV,meta=$META" "$MNT" 2>"$T/bad.log"; then
		echo "mounted a damaged pool"; return 1
	fi
	cat "$T/bad.log"
	grep -q "ckpt.pool" "$T/bad.log" || return 1
	rm -rf "$META" && mv "$T/meta.good" "$META" && mount_ckpt "" &&
		cmp "$T/src/f4" "$MNT/ten1/after.bin"
}
check "a damaged metadata pool is refused with a clear error" t_damaged_pool

t_strict() {
	local i
	umount_ckpt || return 1
	mount_ckpt "admission=strict,zone_bw=100M,bandwidth=500M" || return 1
	# 16 groups, ten1 holds 3: two more tenants of 5 fit, the next does not
	mkdir "$MNT/s1" "$MNT/s2" || return 1
	if mkdir "$MNT/s3" 2>"$T/strict.err"; then echo "strict admission let s3 in"; return 1; fi
	cat "$T/strict.err"
	grep -q "no zone groups for a new tenant" "${LOGS[-1]}" || return 1
	rmdir "$MNT/s1" && mkdir "$MNT/s3"
}
check "strict admission refuses a tenant when groups run out" t_strict

# ten1's closed files before it fills up: name and checksum
ten1_sums() { (cd "$MNT/ten1" && find . -type f ! -name 'fill*' | sort | xargs md5sum); }

t_enospc() {
	local i=0 j
	ten1_sums >"$T/sums" || return 1
	# fill ten1's groups: ENOSPC comes, and what was closed stays readable
	while cp "$T/src/f6" "$MNT/ten1/fill$i" 2>"$T/fill.err"; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "never ran out of space"; return 1; }
	done
	echo "$i files before ENOSPC: $(cat "$T/fill.err")"
	grep -q "No space left on device" "$T/fill.err" || return 1
	rm -f "$MNT/ten1/fill$i"
	for ((j = 0; j < i; j++)); do cmp "$T/src/f6" "$MNT/ten1/fill$j" || return 1; done
	ten1_sums | cmp "$T/sums" - || return 1
	# another tenant (s2, made by t_strict) is not affected
	cp "$T/src/f1" "$MNT/s2/f1" && cmp "$T/src/f1" "$MNT/s2/f1"
}
check "out of space: ENOSPC, closed files intact" t_enospc

t_enospc_remount() {
	local j
	umount_ckpt && mount_ckpt "" || return 1
	cat "${LOGS[-1]}"
	ten1_sums | cmp "$T/sums" - || return 1
	for j in "$MNT"/ten1/fill*; do cmp "$T/src/f6" "$j" || return 1; done
	# deleting makes room again: dead zones are reset and reused
	rm -f "$MNT"/ten1/fill* && cp "$T/src/f6" "$MNT/ten1/again" && cmp "$T/src/f6" "$MNT/ten1/again"
}
check "after ENOSPC a remount keeps every closed file; deleting makes room" t_enospc_remount

# The allocation was last written under admission=strict; this mount is
# fair: a tenant asking more groups than are free shares instead of being refused.
t_fair_after_strict() {
	umount_ckpt && mount_ckpt "zone_bw=100M,bandwidth=500M" || return 1
	mkdir "$MNT/s4" && cp "$T/src/f2" "$MNT/s4/f2" && cmp "$T/src/f2" "$MNT/s4/f2"
}
check "admission=fair after a strict mount applies to new tenants" t_fair_after_strict

# The pool's tenants were laid out over 16 groups (4 x 4): a mount that
# says otherwise is refused, naming what to pass.
t_other_groups() {
	ten1_sums >"$T/sums" && umount_ckpt || return 1
	if mount_ckpt "channels=2,ways=2"; then echo "mounted with 4 groups"; return 1; fi
	cat "${LOGS[-1]}"
	grep -q "another number of groups than this mount's 4 (channels=2 x ways=2)" "${LOGS[-1]}" &&
		mount_ckpt "channels=4,ways=4" && ten1_sums | cmp "$T/sums" -
}
check "channels=/ways= that do not match the pool are refused; matching ones mount" t_other_groups

t_final() { umount_ckpt; }
check "clean unmount" t_final

# A real device does not tell its channels and ways: the options give them.
# A device file made as one group, mounted as 4 x 2: tenants get disjoint groups.
t_channels_ways() {
	local dev2=$T/zdev2 meta2=$T/meta2 g1 g2
	"$ZNS" create "$dev2" --zones 64 --zone-size 1M >/dev/null && mkdir "$meta2" || return 1
	if DEV=$dev2 META=$meta2 mount_ckpt "channels=0"; then echo "channels=0 mounted"; return 1; fi
	grep -q "channels=0: not a count" "${LOGS[-1]}" || return 1
	if DEV=$dev2 META=$meta2 mount_ckpt "channels=65,ways=1"; then echo "65 groups of 64 zones mounted"; return 1; fi
	grep -q "refused with channels=65,ways=1" "${LOGS[-1]}" || return 1
	DEV=$dev2 META=$meta2 mount_ckpt "channels=4,ways=2,zone_bw=100M,bandwidth=300M" &&
		mkdir "$MNT/a" "$MNT/b" && cp "$T/src/f3" "$MNT/a/f" && cp "$T/src/f3" "$MNT/b/f" &&
		umount_ckpt || return 1
	g1=$("$ZNS" report "$dev2" --channels 4 --ways 2 | awk 'NR > 1 && $1 > 0 && $4 > 0 { print $2 }' | sort -u | wc -l)
	echo "groups written: $g1 of 8"
	# 3 groups for each tenant, 6 in all; as one group there would be 1
	[ "$g1" = 6 ] && DEV=$dev2 META=$meta2 mount_ckpt "channels=4,ways=2" &&
		cmp "$T/src/f3" "$MNT/a/f" && cmp "$T/src/f3" "$MNT/b/f" && umount_ckpt
}
check "channels= and ways= set the groups of a device that does not tell them" t_channels_ways

t_san() {
	local l
	for l in "${LOGS[@]}"; do
		if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$l"; then echo "in $l"; return 1; fi
	done
}
if [ "$SAN" = 1 ]; then check "no sanitizer reports in the daemon logs" t_san; fi

echo "1..$N"
[ $NFAIL = 0 ]
