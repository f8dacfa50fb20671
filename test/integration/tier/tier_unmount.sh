# SPDX-License-Identifier: GPL-2.0-or-later
# The end of a tiered mount is prompt and safe: unmounted while a large
# promotion copies, the unmount returns within 2 s while the tier service
# finishes the copy (the work of a start never depends on its mount
# living) and then exits, leaving no temp file and nothing committed
# half; the next mount serves every file's original bytes. The same for a
# write-back of a big cold file of an NVM-home layer.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl
BIG_MIB=1024

# The tier service serving $MNT.
daemon_pid() { "$CTL" status --raw "$MNT" 2>/dev/null | awk '$1 == "host_pid" { print $2; f = 1 } END { exit !f }'; }

# Running: a zombie has ended, whenever init gets to reap it (here that
# can take a second).
alive() { [ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Whole copies only (no range copies), nothing promoted behind our back.
# The service exits once idle (host_idle=0): each mount here starts its own.
mount_t() { nl_mount "nvm=$T/nvm,range_threshold=0,layer_meta=off,host_idle=0${1:+,$1}"; }

# unmount_prompt PID: the unmount returns within 2 s; the service @PID
# finishes its work and exits (within a minute).
unmount_prompt() {
	local pid=$1 t0 t1 i
	t0=$(date +%s%N)
	nl_umount "$MNT" || return 1
	t1=$(date +%s%N)
	echo "unmounted in $(((t1 - t0) / 1000000)) ms"
	echo "$(((t1 - t0) / 1000000))" >>"$T/times"
	[ $(((t1 - t0) / 1000000)) -le 2000 ] || return 1
	for i in $(seq 600); do alive "$pid" || break; sleep 0.1; done
	! alive "$pid" || { echo "the service is still running a minute later"; return 1; }
}

temps() { find "$T/nvm/objects" -name 'tmp.*' | wc -l; }

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }

# Start the copy of big, wait until its temp file grows, then unmount.
unmount_during_copy() {
	local pid t0 t1 i
	mount_t || return 1
	head -c 1 "$MNT/big" >/dev/null && cat "$MNT/small" >/dev/null || return 1
	"$CTL" trace stop "$MNT" >/dev/null && "$CTL" promote "$MNT" >/dev/null || return 1
	for i in $(seq 200); do [ "$(temps)" != 0 ] && break; sleep 0.02; done
	[ "$(temps)" != 0 ] || { echo "no copy started"; return 1; }
	sleep 0.2
	[ "$(status_of queue)" != 0 ] || { echo "the copy ended before the unmount"; return 1; }
	pid=$(daemon_pid) || return 1
	unmount_prompt "$pid" || return 1
	[ "$(temps)" = 0 ] || { ls -l "$T/nvm/objects"; return 1; }
}

nothing_half_committed() {
	local o
	for o in "$T"/nvm/objects/*; do
		[ -e "$o" ] || continue
		[ "$(sha256sum <"$o" | cut -d' ' -f1)" = "$(basename "$o")" ] || { echo "bad object $o"; return 1; }
	done
}

remount_serves_originals() {
	mount_t || return 1
	cmp "$MNT/small" "$T/l1/small" && cmp "$MNT/big" "$T/l1/big"
}

promotion_resumes() {
	local pid
	"$CTL" promote "$MNT" >/dev/null && "$CTL" wait "$MNT" 60 >/dev/null || return 1
	[ "$(status_of promoted_files)" = 2 ] || { "$CTL" status --raw "$MNT"; return 1; }
	[ -e "$T/nvm/objects/$(sha256sum <"$T/l1/small" | cut -d' ' -f1)" ] &&
		cmp "$MNT/big" "$T/l1/big" || return 1
	pid=$(daemon_pid) || return 1
	unmount_prompt "$pid"
}

# An NVM-home layer whose big cold file is being written back to HDD.
unmount_during_writeback() {
	local pid t0 t1 i
	LOWERS=$T/nvm/layers/n1:$T/l1 mount_t "hdd=$T/hdd" || return 1
	"$CTL" writeback "$MNT" >/dev/null || return 1
	for i in $(seq 200); do [ "$(wb_temps)" != 0 ] && break; sleep 0.02; done
	[ "$(wb_temps)" != 0 ] || { echo "no write-back copy started"; return 1; }
	sleep 0.2
	[ "$(wb_temps)" != 0 ] || { echo "the copy ended before the unmount"; return 1; }
	pid=$(daemon_pid) || return 1
	unmount_prompt "$pid" || return 1
	[ "$(wb_temps)" = 0 ] || { find "$T/hdd" -ls; return 1; }
	LOWERS=$T/nvm/layers/n1:$T/l1 mount_t "hdd=$T/hdd,writeback=off" || return 1
	cmp "$MNT/cold" "$T/cold.orig" && cmp "$MNT/small" "$T/l1/small" && nl_umount "$MNT"
}

wb_temps() { find "$T/hdd" -name '.nlwb-tmp-*' 2>/dev/null | wc -l; }

nl_init
MNT=$T/mnt
mkdir -p "$T/l1" "$T/nvm" "$MNT"
# sparse: quick to make and to read, a real copy to write and hash
truncate -s ${BIG_MIB}M "$T/l1/big"
head -c 300000 /dev/urandom | dd of="$T/l1/big" bs=1M seek=700 conv=notrunc 2>/dev/null
head -c 30000 /dev/urandom >"$T/l1/small"
mkdir -p "$T/nvm/layers/n1" "$T/hdd"
truncate -s ${BIG_MIB}M "$T/nvm/layers/n1/cold"
head -c 300000 /dev/urandom | dd of="$T/nvm/layers/n1/cold" bs=1M seek=500 conv=notrunc 2>/dev/null
cp --sparse=always "$T/nvm/layers/n1/cold" "$T/cold.orig"
LOWERS=$T/l1 NOUPPER=1

check_nl "unmounted during a large promotion: unmount within 2 s, the service finishes and exits, no temp left" "tiering" unmount_during_copy
check_nl "no object committed half" "tiering" nothing_half_committed
check_nl "the next mount serves every file's original bytes" "tiering" remount_serves_originals
check_nl "every hot file is promoted by the next mount at the latest" "tiering" promotion_resumes
check_nl "unmounted during a write-back: unmount within 2 s, no temp left, bytes kept" "tiering" unmount_during_writeback
[ ! -s "$T/times" ] || diag "the unmounts took $(tr '\n' ' ' <"$T/times")ms"
nl_done
