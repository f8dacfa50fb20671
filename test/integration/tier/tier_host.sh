# SPDX-License-Identifier: GPL-2.0-or-later
# One tier service per NVM directory, shared by every mount at once:
# concurrent mounts from a config file share one service, one index and
# the same promoted copies; immediate remounts join the running service;
# a start shorter than any window still gets its hot files promoted; a
# kill -9 of the service during promotions loses nothing; write-back never
# changes a byte under a layer directory; a new layer is imaged at once.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl
SERVICES=()	# pids of the services seen, waited for at the end

host_of() { "$CTL" status --raw "$1" 2>/dev/null | awk '$1 == "host_pid" { print $2 }'; }
raw_of() { "$CTL" status --raw "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
digest() { sha256sum <"$1" | cut -d' ' -f1; }

# mount_at DIR: the two HDD layers, tiering from the config file only.
mount_at() {
	mkdir -p "$1"
	"$NLAYERFS" nlayerfs "$1" -o "lowerdir=$T/hdd/l1:$T/hdd/l2,config=$T/nl.conf" || return 1
	MOUNTED+=("$1")
	is_mounted "$1"
}

# every file of the merged tree reads its layer's bytes
reads_all() {
	local m=$1 f
	for f in a b c dir/d; do cmp "$m/$f" "$T/hdd/l1/$f" || return 1; done
	for f in e big1 big2; do cmp "$m/$f" "$T/hdd/l2/$f" || return 1; done
}

# wait until the service @1 has exited (idle after the last unmount)
service_gone() {
	local pid=$1 i
	for i in $(seq 300); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
	echo "service $pid still running"
	return 1
}

# With a file held open, the service's descriptor shows where it reads.
served_from() {
	local m=$1 f=$2 where=$3 pid rc=1
	pid=$(host_of "$m") || return 1
	exec 7<"$m/$f"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $where" && rc=0
	[ $rc = 0 ] || ls -l "/proc/$pid/fd"
	exec 7<&-
	return $rc
}

five_concurrent_mounts() {
	local i pids=() rc=0 host
	for i in 1 2 3 4 5; do mkdir -p "$T/m$i"; done
	for i in 1 2 3 4 5; do
		"$NLAYERFS" nlayerfs "$T/m$i" -o "lowerdir=$T/hdd/l1:$T/hdd/l2,config=$T/nl.conf" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "mount $((i + 1)) failed"; rc=1; }; done
	for i in 1 2 3 4 5; do MOUNTED+=("$T/m$i"); is_mounted "$T/m$i" || rc=1; done
	[ $rc = 0 ] || return 1
	for i in 1 2 3 4 5; do reads_all "$T/m$i" || { echo "m$i reads wrong bytes"; return 1; }; done
	host=$(host_of "$T/m1")
	SERVICES+=("$host")
	for i in 2 3 4 5; do
		[ "$(host_of "$T/m$i")" = "$host" ] || { echo "m$i: service $(host_of "$T/m$i"), m1: $host"; return 1; }
	done
	[ "$(raw_of "$T/m3" host_mounts)" = 5 ] || { "$CTL" status --raw "$T/m3"; return 1; }
	# ten union layers, two tier layers
	[ "$("$CTL" status --raw "$T/m2" | grep -c '^layer ')" = 2 ] || { "$CTL" status --raw "$T/m2"; return 1; }
	# one service; each mount also has its keeper (nlayerfs-keep)
	[ "$(pgrep -f "nlayerfs.*config=$T/nl.conf" | xargs -r -I{} cat /proc/{}/comm |
		grep -vc '^nlayerfs-keep$')" = 1 ] || { pgrep -a -f "config=$T/nl.conf"; return 1; }
}

# The starts above are over once quiet: the service promoted what they read,
# and a file read for m1 is served from NVM to m4.
promoted_shared() {
	"$CTL" wait "$T/m1" 30 >/dev/null || return 1
	[ "$(raw_of "$T/m1" promoted_files)" -ge 5 ] || { "$CTL" status --raw "$T/m1"; return 1; }
	served_from "$T/m4" a "$T/nvm/objects/$(digest "$T/hdd/l1/a")" && reads_all "$T/m4"
}

unmount_all_service_exits() {
	local i host
	host=$(host_of "$T/m1")
	for i in 1 2 3 4 5; do fusermount3 -u "$T/m$i" || return 1; done
	service_gone "$host"
}

# A remount right after the unmount joins the running service: twenty in a
# row all mount, read right, and are served by one process.
immediate_remount() {
	local i host="" h
	for i in $(seq 20); do
		mount_at "$T/r" || { echo "remount $i failed"; return 1; }
		cmp "$T/r/a" "$T/hdd/l1/a" || return 1
		h=$(host_of "$T/r")
		[ -z "$host" ] || [ "$h" = "$host" ] || { echo "remount $i: service $h, before $host"; return 1; }
		host=$h
		fusermount3 -u "$T/r" || return 1
	done
	SERVICES+=("$host")
	service_gone "$host"
}

# mount, read three files never read before, unmount within a second: the
# service promotes them afterwards, with no window to wait for.
short_start_promoted() {
	local f host
	for f in s1 s2 s3; do head -c 12345 /dev/urandom >"$T/hdd/l2/$f"; done
	mount_at "$T/r" || return 1
	host=$(host_of "$T/r")
	for f in s1 s2 s3; do cat "$T/r/$f" >/dev/null || return 1; done
	fusermount3 -u "$T/r" || return 1
	service_gone "$host" || return 1
	for f in s1 s2 s3; do
		[ -e "$T/nvm/objects/$(digest "$T/hdd/l2/$f")" ] || { echo "$f not promoted"; ls "$T/nvm/objects"; return 1; }
	done
}

# kill -9 of the service while it copies: the mounts it served die with it
# (the known limit), a new mount works, every file reads its bytes, no
# object is partial and no layer file changed.
kill_during_promotion() {
	local i host name
	for i in $(seq 6); do head -c $((4 * 1024 * 1024 + i)) /dev/urandom >"$T/hdd/l2/k$i"; done
	freeze_lowers
	mount_at "$T/r" || return 1
	host=$(host_of "$T/r")
	for i in $(seq 6); do head -c 1 "$T/r/k$i" >/dev/null; done
	kill -9 "$host"
	service_gone "$host" || return 1
	umount -l "$T/r" 2>/dev/null || fusermount3 -u -z "$T/r"
	mount_at "$T/r" || return 1
	SERVICES+=("$(host_of "$T/r")")
	for i in $(seq 6); do cmp "$T/r/k$i" "$T/hdd/l2/k$i" || return 1; done
	reads_all "$T/r" || return 1
	"$CTL" wait "$T/r" 60 >/dev/null || return 1
	for name in "$T"/nvm/objects/*; do
		[ -e "$name" ] || continue
		[ "$(digest "$name")" = "$(basename "$name")" ] || { echo "partial object $name"; return 1; }
	done
	fusermount3 -u "$T/r" && lowers_unchanged
}

# An NVM-home layer under write-back and evict by path: copies on HDD, the
# layer directory unchanged to the byte and to the block.
writeback_leaves_layers() {
	local n=$T/nvm/layers/n1 before blocks host
	mkdir -p "$n/sub"
	head -c 200000 /dev/urandom >"$n/cold1"
	head -c 300000 /dev/urandom >"$n/sub/cold2"
	head -c 50000 /dev/urandom >"$n/hot"
	before=$(layer_fingerprint "$n" | sha256sum)
	blocks=$(du -s --block-size=1 "$n" | cut -f1)
	mkdir -p "$T/w"
	"$NLAYERFS" nlayerfs "$T/w" -o "lowerdir=$n:$T/hdd/l1,config=$T/nl.conf" || return 1
	MOUNTED+=("$T/w")
	host=$(host_of "$T/w")
	SERVICES+=("$host")
	cat "$T/w/hot" >/dev/null
	"$CTL" trace stop "$T/w" >/dev/null && "$CTL" writeback "$T/w" --wait || return 1
	"$CTL" evict "$T/w" "$T/w/sub/cold2" || return 1
	cmp "$T/w/cold1" "$n/cold1" && cmp "$T/w/sub/cold2" "$n/sub/cold2" || return 1
	fusermount3 -u "$T/w" && service_gone "$host" || return 1
	[ "$(layer_fingerprint "$n" | sha256sum)" = "$before" ] || { echo "layer n1 changed"; return 1; }
	[ "$(du -s --block-size=1 "$n" | cut -f1)" = "$blocks" ] || { echo "layer n1 lost blocks"; return 1; }
	[ -n "$(find "$T/hdd/writeback" -type f 2>/dev/null)" ] || { echo "no write-back copies"; return 1; }
}

# An HDD layer the service has not seen gets its metadata image at once,
# also while another mount's start is traced (a long window here).
new_layer_imaged_at_once() {
	local i host
	mkdir -p "$T/hdd/l3/etc" "$T/n1" "$T/n2"
	echo x >"$T/hdd/l3/etc/conf"
	"$NLAYERFS" nlayerfs "$T/n1" -o "lowerdir=$T/hdd/l1,config=$T/nl.conf,trace_window=600,trace_quiet=0" ||
		return 1
	MOUNTED+=("$T/n1")
	host=$(host_of "$T/n1")
	SERVICES+=("$host")
	for i in $(seq 100); do [ "$(raw_of "$T/n1" meta_pending)" = 0 ] && break; sleep 0.1; done
	[ "$(raw_of "$T/n1" meta_layers)" = 1 ] && [ "$(raw_of "$T/n1" trace)" = active ] ||
		{ "$CTL" status --raw "$T/n1"; return 1; }
	"$NLAYERFS" nlayerfs "$T/n2" -o "lowerdir=$T/hdd/l3,config=$T/nl.conf,trace_window=600,trace_quiet=0" ||
		return 1
	MOUNTED+=("$T/n2")
	for i in $(seq 100); do [ "$(raw_of "$T/n2" meta_layers)" = 2 ] && break; sleep 0.1; done
	[ "$(raw_of "$T/n2" meta_layers)" = 2 ] && [ "$(raw_of "$T/n2" trace)" = active ] ||
		{ "$CTL" status --raw "$T/n2"; return 1; }
	fusermount3 -u "$T/n1" && fusermount3 -u "$T/n2" && service_gone "$host"
}

nl_init
if [ -z "$SKIP_ALL" ] && [ "$IMPL" != nlayerfs ]; then SKIP_ALL="nlayerfs-only: the tier service"; fi
if [ -z "$SKIP_ALL" ]; then
	mkdir -p "$T/hdd/l1/dir" "$T/hdd/l2" "$T/nvm"
	for f in a b c dir/d; do head -c $((RANDOM + 1000)) /dev/urandom >"$T/hdd/l1/$f"; done
	head -c 7000 /dev/urandom >"$T/hdd/l2/e"
	head -c 3000000 /dev/urandom >"$T/hdd/l2/big1"
	head -c 2000000 /dev/urandom >"$T/hdd/l2/big2"
	printf 'nvm = %s\nhdd = %s\nhost_idle = 1\ntrace_quiet = 1\n' "$T/nvm" "$T/hdd" >"$T/nl.conf"
	LOWERS=$T/hdd/l1:$T/hdd/l2
	freeze_lowers
fi
check "five mounts at once from a config file: all read right, one service, one tier layer per layer" five_concurrent_mounts
check "a file promoted for one mount is served from NVM to another" promoted_shared
check "the service exits once the last mount is gone and its work done" unmount_all_service_exits
check "twenty immediate remounts join the running service" immediate_remount
check "a start of under a second still gets its files promoted" short_start_promoted
check "kill -9 of the service during promotions: a new mount reads every byte" kill_during_promotion
check "write-back never changes a byte under a layer directory" writeback_leaves_layers
check "a layer new to the service gets its metadata image during the start" new_layer_imaged_at_once
check_lowers_unchanged
# the services exit once their mounts are gone: before $T is removed
for m in "${MOUNTED[@]+"${MOUNTED[@]}"}"; do ! is_mounted "$m" || fusermount3 -u "$m"; done
for pid in "${SERVICES[@]+"${SERVICES[@]}"}"; do service_gone "$pid" >/dev/null; done
nl_done
