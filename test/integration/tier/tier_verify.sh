# SPDX-License-Identifier: GPL-2.0-or-later
# NVM copies are checked against the digest they are named by: a copy
# whose bytes were damaged on NVM is found by `nlayerfsctl scrub` and by
# the scrub each daemon runs once its start is over; it is dropped, logged
# in status, and the file reads its original bytes from its layer.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl

daemon_pid() { tier_service_pid "$MNT"; }

# host_idle=0: the service closes the index as soon as the mount is gone.
mount_v() { nl_mount "nvm=$T/nvm,layer_meta=off,host_idle=0${1:+,$1}"; }

umount_v() {
	local pid
	pid=$(daemon_pid) && nl_umount "$MNT" || return 1
	while [ -d "/proc/$pid" ]; do sleep 0.05; done
}

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }
object_of() { echo "$T/nvm/objects/$(sha256sum <"$T/l1/$1" | cut -d' ' -f1)"; }

# Bytes in the middle of a's copy overwritten, as a failing device would.
damage_a() { printf 'XXXX' | dd of="$(object_of a)" bs=1 seek=20000 conv=notrunc 2>/dev/null; }

# With the file held open, the daemon's descriptor shows where it reads.
served_from() {
	local pid rc=1
	pid=$(daemon_pid) || return 1
	exec 7<"$MNT/$1"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $2" && rc=0
	[ $rc = 0 ] || ls -l "/proc/$pid/fd"
	exec 7<&-
	return $rc
}

promote_a_b() {
	mount_v || return 1
	cat "$MNT/a" "$MNT/b" >/dev/null || return 1
	"$CTL" trace stop "$MNT" >/dev/null && "$CTL" promote "$MNT" >/dev/null &&
		"$CTL" wait "$MNT" 30 >/dev/null || return 1
	[ "$(status_of promoted_files)" = 2 ] && [ -e "$(object_of a)" ] || { "$CTL" status --raw "$MNT"; return 1; }
}

scrub_by_hand() {
	local out
	umount_v && damage_a || return 1
	cmp -s "$(object_of a)" "$T/l1/a" && { echo "not damaged"; return 1; }
	# a long window: no scrub of its own during this check
	mount_v trace_window=600 || return 1
	out=$("$CTL" scrub "$MNT") || return 1
	echo "$out"
	grep -qx "checked 2" <<<"$out" && grep -qx "dropped 1" <<<"$out" || return 1
	[ "$(status_of promoted_files)" = 1 ] && [ "$(status_of bad_copies)" = 1 ] || { "$CTL" status --raw "$MNT"; return 1; }
	[ ! -e "$(object_of a)" ] || { echo "damaged copy kept"; return 1; }
}

reads_original_bytes() {
	served_from a "$T/l1/a" && served_from b "$T/nvm/objects/" &&
		cmp "$MNT/a" "$T/l1/a" && cmp "$MNT/b" "$T/l1/b"
}

scrub_after_start() {
	local i
	"$CTL" promote "$MNT" >/dev/null && "$CTL" wait "$MNT" 30 >/dev/null &&
		[ -e "$(object_of a)" ] || { echo "a not promoted again"; return 1; }
	umount_v && damage_a || return 1
	mount_v trace_window=1 || return 1
	for i in $(seq 100); do [ "$(status_of scrubs)" = 1 ] && break; sleep 0.1; done
	[ "$(status_of scrubs)" = 1 ] && [ "$(status_of bad_copies)" = 1 ] &&
		[ "$(status_of promoted_files)" = 1 ] || { "$CTL" status --raw "$MNT"; return 1; }
	reads_original_bytes
}

nl_init
MNT=$T/mnt
mkdir -p "$T/l1" "$T/nvm" "$MNT"
head -c 60000 /dev/urandom >"$T/l1/a"
head -c 30000 /dev/urandom >"$T/l1/b"
LOWERS=$T/l1 NOUPPER=1

check_nl "a traced start promotes a and b" "tiering" promote_a_b
check_nl "nlayerfsctl scrub drops the copy damaged on NVM, keeps the good one" "tiering" scrub_by_hand
check_nl "then a reads its original bytes from its layer, b from NVM" "tiering" reads_original_bytes
check_nl "a daemon scrubs once its start is over: damaged copy dropped" "tiering" scrub_after_start
nl_done
