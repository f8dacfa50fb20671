#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Range promotion through a real mount: a 40 MiB file of an HDD layer of
# which a traced start reads two 1 MiB ranges gets a sparse NVM copy of
# about those 2 MiB; every read through the mount returns the original
# bytes, inside, outside and across the promoted ranges; after a remount
# the promoted ranges are read from NVM; kill -9 during a range copy loses
# nothing.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl
MiB=1048576

nl_init
if [ -z "$SKIP_ALL" ] && [ ! -x "$CTL" ]; then
	not_ok "nlayerfsctl exists in $NLBUILD"
	nl_done
fi

daemon_pid() { tier_service_pid "$MNT"; }

# host_idle=0: the service closes the index as soon as the mount is gone.
mount_range() { NOUPPER=1 nl_mount "nvm=$NVM,hdd=$HDD,host_idle=0${1:+,$1}"; }

# Unmount and wait for the daemon to close the index.
umount_range() {
	local pid
	pid=$(daemon_pid)
	nl_umount "$MNT" || return 1
	while [ -n "$pid" ] && [ -d "/proc/$pid" ]; do sleep 0.05; done
}

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }

# The range copy of big: the one object on NVM bigger than the small file.
range_copy() { find "$NVM/objects" -type f -size +1M | head -1; }

# Bytes [off, off + len) of the original file.
orig_bytes() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }

# A read through the mount (page cache dropped first) equals the original.
same_read() {
	local mode=$1 off=$2 len=$3
	cmp <(H nl_ranges "$mode" "$MNT/big" "$off" "$len") <(orig_bytes "$L/big" "$off" "$len") ||
		{ echo "$mode at $off, $len bytes: differs"; return 1; }
}

traced_start() {
	mount_range || return 1
	dd if="$MNT/big" of=/dev/null bs=1M count=1 skip=5 2>/dev/null &&
		dd if="$MNT/big" of=/dev/null bs=1M count=1 skip=23 2>/dev/null &&
		cat "$MNT/small" >/dev/null || return 1
	"$CTL" trace stop "$MNT" >/dev/null && "$CTL" wait "$MNT" 60 >/dev/null
}

copy_about_two_mib() {
	local copy bytes size
	copy=$(range_copy)
	[ -n "$copy" ] || { ls -l "$NVM/objects"; return 1; }
	bytes=$(($(stat -c %b "$copy") * $(stat -c %B "$copy")))
	size=$(stat -c %s "$copy")
	echo "allocated $bytes of $size"
	[ "$size" = $((40 * MiB)) ] && [ "$bytes" -ge $((2 * MiB)) ] && [ "$bytes" -le $((3 * MiB)) ] ||
		return 1
	[ "$(status_of range_files)" = 1 ] && [ "$(status_of range_nvm_bytes)" = "$bytes" ] &&
		[ "$(status_of range_file_bytes)" = $((40 * MiB)) ] || { "$CTL" status "$MNT"; return 1; }
	# the small file is promoted whole, as before
	[ "$(status_of promoted_files)" = 1 ] && [ -e "$NVM/objects/$(sha256sum <"$L/small" | cut -d' ' -f1)" ]
}

# The copy holds the traced ranges, 5 MiB and 23 MiB onwards, with the
# default slack (64 KiB before, 128 KiB after), and nothing far from them.
copy_holds_the_ranges() {
	local regions slack=$((128 * 1024))
	regions=$(H nl_ranges data "$(range_copy)")
	echo "$regions"
	[ "$(echo "$regions" | wc -l)" = 2 ] &&
		echo "$regions" | awk -v a=$((5 * MiB - slack / 2)) -v b=$((23 * MiB - slack / 2)) \
			-v m=$((MiB + slack)) '
			NR == 1 && $1 == a && $2 >= m && $2 <= 2 * m { ok++ }
			NR == 2 && $1 == b && $2 >= m && $2 <= 2 * m { ok++ }
			END { exit ok != 2 }'
}

full_read_equal() {
	[ "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" = "$(sha256sum <"$L/big" | cut -d' ' -f1)" ]
}

remount_reads_from_nvm() {
	local before after layer_before layer_after pid
	umount_range && mount_range "trace=off" || return 1
	pid=$(daemon_pid) || { echo "no daemon"; return 1; }
	before=$(status_of range_read_nvm)
	layer_before=$(status_of range_read_layer)
	exec 7<"$MNT/big"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $(range_copy)" ||
		{ exec 7<&-; ls -l "/proc/$pid/fd"; echo "the NVM copy is not open"; return 1; }
	# 512 KiB inside the first promoted range, one read
	same_read read $((5 * MiB + 4096)) $((512 * 1024)) || { exec 7<&-; return 1; }
	# served by the copy alone: the layer file (HDD) was never opened
	if ls -l "/proc/$pid/fd" | grep -q -- "-> $L/big\$"; then
		exec 7<&-; ls -l "/proc/$pid/fd"; echo "the layer file was opened"; return 1
	fi
	exec 7<&-
	after=$(status_of range_read_nvm)
	layer_after=$(status_of range_read_layer)
	echo "read from NVM: $before -> $after; from the layer: $layer_before -> $layer_after"
	[ $((after - before)) -ge $((512 * 1024)) ] && [ "$layer_after" = "$layer_before" ]
}

# Reads across each boundary of the promoted ranges, and reads spanning
# a whole range, through read(2) and through a mapping.
boundary_reads_correct() {
	local off len end mode
	while read -r off len; do
		end=$((off + len))
		for mode in read mmap; do
			same_read $mode $((off - 1)) 2 && same_read $mode $((end - 1)) 2 &&
				same_read $mode $((off - 4096)) 8192 && same_read $mode $((end - 4096)) 8192 &&
				same_read $mode $((off - 100)) $((len + 200)) || return 1
		done
	done < <(H nl_ranges data "$(range_copy)")
	same_read read $((40 * MiB - 10)) 100 && full_read_equal &&
		[ "$(status_of range_read_layer)" -gt 0 ] && [ "$(status_of range_read_nvm)" -gt 0 ]
}

# The layer file is opened when the copy cannot answer: lseek for data
# and holes (the copy is sparse, the file is not), a read outside the
# ranges; each gives the file's own layout and bytes.
layer_opened_when_needed() {
	local regions
	# the copy has two data regions, the file one
	regions=$(H nl_ranges data "$MNT/big")
	echo "data regions through the mount: $regions"
	[ "$regions" = "0 $((40 * MiB))" ] || return 1
	same_read read $((30 * MiB)) 4096
}

# Bytes past the traced ranges are not promoted by reads outside a window.
no_trace_no_growth() {
	local before
	before=$(status_of range_traced_bytes)
	cat "$MNT/big" >/dev/null
	"$CTL" wait "$MNT" 30 >/dev/null && [ "$(status_of range_traced_bytes)" = "$before" ]
}

# The file read whole in a traced start, then kill -9 while its range
# copy is written. Leftovers of a worse moment are planted as well: a
# temp file and an object the index never named.
kill_during_range_copy() {
	local pid fake i
	umount_range || return 1
	head -c $((96 * MiB)) /dev/urandom >"$L/huge"
	mount_range || return 1
	cat "$MNT/huge" >/dev/null
	"$CTL" trace stop "$MNT" >/dev/null
	sleep 0.2
	pid=$(daemon_pid) && kill -9 "$pid"
	while [ -d "/proc/$pid" ]; do sleep 0.05; done
	echo "objects at the kill: $(ls "$NVM/objects" | tr '\n' ' ')"
	umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
	unset "SAN_PID[$MNT]"
	# no tier service of this NVM directory left (it holds host.lock), so
	# that the remount starts one that finds the leftovers below
	for ((i = 0; i < 200; i++)); do
		flock -n "$NVM/host.lock" true && break
		sleep 0.05
	done
	head -c 5000 "$L/huge" >"$NVM/objects/tmp.crash1"
	fake=$NVM/objects/$(head -c 4000 /dev/urandom | sha256sum | cut -d' ' -f1)
	truncate -s $((96 * MiB)) "$fake"
	mount_range "trace=off" || return 1
	# a mount in the foreground (sanitizers) is there before its service
	# has opened the index and cleaned up: wait for its control socket
	for ((i = 0; i < 200; i++)); do
		"$CTL" status --raw "$MNT" >/dev/null 2>&1 && break
		sleep 0.05
	done
	[ ! -e "$NVM/objects/tmp.crash1" ] || { echo "temp file left"; return 1; }
	[ ! -e "$fake" ] || { echo "uncommitted object kept"; return 1; }
	# the remounted daemon may copy the traced ranges again: let it finish
	"$CTL" wait "$MNT" 60 >/dev/null || return 1
	[ "$(ls "$NVM/objects" | wc -l)" = "$(status_of objects)" ] || { ls -l "$NVM/objects"; return 1; }
	cmp "$MNT/huge" "$L/huge" && cmp "$MNT/big" "$L/big" && cmp "$MNT/small" "$L/small"
}

bad_unit_refused() {
	local out
	umount_range || return 1
	if out=$(NOUPPER=1 nl_mount "nvm=$NVM,range_unit=3000" 2>&1); then
		echo "mounted with range_unit=3000"
		return 1
	fi
	echo "$out"
	! is_mounted "$MNT" && echo "$out" | grep -q "range_unit"
}

new_layers 1
L=$D/l1 NVM=$D/nvm HDD=$D/hdd
mkdir -p "$NVM" "$HDD"
head -c $((40 * MiB)) /dev/urandom >"$L/big"
head -c 3000 /dev/urandom >"$L/small"

check "a traced start reads two ranges of a 40 MiB file, the queue drains" traced_start
check "the NVM copy allocates about 2 MiB, not 40; status says so" copy_about_two_mib
[ -z "$(range_copy)" ] || diag "NVM copy: $(($(stat -c '%b * %B' "$(range_copy)"))) bytes allocated," \
	"file $(stat -c %s "$L/big") bytes"
check "the copy holds the ranges read and the slack around them" copy_holds_the_ranges
check "a full read through the mount equals the original" full_read_equal
check "remount: promoted ranges are read from the NVM copy" remount_reads_from_nvm
check "reads across range boundaries are stitched correctly" boundary_reads_correct
check "lseek for data and holes, reads outside the copy: the real file" layer_opened_when_needed
check "reads outside a trace window add no ranges" no_trace_no_growth
check "kill -9 during a range copy: remount reads original bytes" kill_during_range_copy
check "a bad range_unit refuses the mount with a clear error" bad_unit_refused
nl_done
