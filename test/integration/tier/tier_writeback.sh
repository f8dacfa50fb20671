# SPDX-License-Identifier: GPL-2.0-or-later
# Write-back of cold files of an NVM-home layer through a real mount: after
# a traced start the files it did not open get HDD copies, and the layer
# is never modified (no block released, no byte changed); every file reads
# its bytes through the mount, from its layer, before and after a remount;
# kill -9 during a write-back of many files loses nothing; per-file
# promote/evict.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl

NL="" HL="" ORIG="" LID="" BUDGET=$((8 * 1024 * 1024))
HOT="hot1 hot2 dir/hot3"
COLD="cold1 cold2 cold3 dir/cold4 dir/sub/cold5 held"

# mount_wb [EXTRA]: read-only union of the NVM-home layer over the HDD one.
# The tier service exits once idle after the unmount (host_idle=0).
mount_wb() {
	NOUPPER=1 LOWERS=$NL:$HL nl_mount "nvm=$T/nvm,hdd=$T/hdd,nvm_size=$BUDGET,host_idle=0${1:+,$1}"
}

umount_wb() {
	local pid
	pid=$(daemon_pid)
	nl_umount "$MNT" || return 1
	while [ -n "$pid" ] && [ -d "/proc/$pid" ]; do sleep 0.05; done
}

# The tier service serving $MNT.
daemon_pid() { "$CTL" status --raw "$MNT" 2>/dev/null | awk '$1 == "host_pid" { print $2; f = 1 } END { exit !f }'; }

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }
blocks_of() { stat -c %b "$1"; }
wb_copy() { echo "$T/hdd/writeback/$LID/$1"; }

# Every file of both layers reads its original bytes through the mount.
all_identical() {
	local f
	for f in $HOT $COLD $EXTRA; do cmp "$MNT/$f" "$ORIG/$f" || return 1; done
	cmp "$MNT/h1" "$HL/h1" && cmp "$MNT/h2" "$HL/h2"
}

# With the file held open, the daemon's descriptor shows where it reads.
served_from() {
	local f=$1 where=$2 pid rc=1
	pid=$(daemon_pid) || { echo "no daemon"; return 1; }
	exec 7<"$MNT/$f"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $where" && rc=0
	[ $rc = 0 ] || { echo "$f not served from $where:"; ls -l "/proc/$pid/fd"; }
	exec 7<&-
	return $rc
}

within_budget() {
	local used
	used=$(status_of nvm_used)
	[ -n "$used" ] && [ "$used" -le "$BUDGET" ] || { echo "nvm_used $used > $BUDGET"; return 1; }
}

# ---- the cases ----

traced_start_writes_back() {
	local f i p
	mount_wb trace_window=600 || return 1
	LID=$("$CTL" status --raw "$MNT" | awk '$1 == "layer" && $4 == "nvm" { print $3 }')
	[ -n "$LID" ] || { "$CTL" status "$MNT"; return 1; }
	USED0=$(status_of nvm_used)
	for f in $HOT h1; do cat "$MNT/$f" >/dev/null || return 1; done
	"$CTL" trace stop "$MNT" >/dev/null || return 1
	# the window closed: the mount writes back by itself
	for i in $(seq 300); do
		p=$(status_of writeback_passes)
		[ "${p:-0}" -ge 1 ] && break
		sleep 0.1
	done
	[ "${p:-0}" -ge 1 ] || { echo "no write-back pass after the window closed"; "$CTL" status "$MNT"; return 1; }
	[ "$(status_of queue)" = 0 ] || { echo "queue not drained"; return 1; }
	[ "$(status_of writeback_files)" = "$(echo $COLD | wc -w)" ] || { "$CTL" status "$MNT"; return 1; }
}

cold_copies_identical() {
	local f
	for f in $COLD; do cmp "$(wb_copy "$f")" "$ORIG/$f" || return 1; done
	for f in $HOT; do [ ! -e "$(wb_copy "$f")" ] || { echo "hot $f written back"; return 1; }; done
}

# Layers are never modified: every file of the NVM layer keeps its blocks
# and its bytes, hot or cold.
layer_untouched() {
	local f
	for f in $HOT $COLD $EXTRA; do
		[ "$(blocks_of "$NL/$f")" -gt 0 ] || { echo "$f: no blocks left on NVM"; return 1; }
		cmp "$NL/$f" "$ORIG/$f" || return 1
	done
}

# NVM use = objects + metadata images + the NVM layer's allocated blocks
layer_alloc() { find "$NL" -type f -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }'; }
object_bytes() { find "$T/nvm/objects" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

status_numbers_match() {
	local f bytes=0 used want
	for f in $COLD; do bytes=$((bytes + $(stat -c %s "$ORIG/$f"))); done
	[ "$(status_of writeback_bytes)" = $bytes ] || { echo "writeback_bytes $(status_of writeback_bytes), want $bytes"; return 1; }
	used=$(status_of nvm_used)
	want=$(($(layer_alloc) + $(object_bytes) + $(status_of meta_bytes)))
	[ "$used" = "$want" ] || { echo "nvm_used $used, layer blocks + objects + images $want"; return 1; }
	[ "$(status_of writeback_busy)" = 0 ] && [ "$(status_of writeback_last_released_bytes)" = 0 ] &&
		within_budget
}

# Whole layer files are read from the layer, not from their HDD copies.
reads_through_mount() {
	all_identical && served_from cold1 "$NL/cold1" && served_from hot1 "$NL/hot1"
}

remount_still_correct() {
	umount_wb && mount_wb || return 1
	all_identical && served_from dir/sub/cold5 "$NL/dir/sub/cold5" && layer_untouched &&
		[ "$(status_of writeback_files)" = "$(echo $COLD | wc -w)" ]
}

# A later start needs cold2: its layer on NVM serves it, no copy is made.
later_trace_reads_layer() {
	local obj
	"$CTL" trace start "$MNT" >/dev/null && cat "$MNT/cold2" >/dev/null &&
		"$CTL" trace stop "$MNT" >/dev/null || return 1
	"$CTL" wait "$MNT" 30 >/dev/null || return 1
	obj=$T/nvm/objects/$(sha256sum <"$ORIG/cold2" | cut -d' ' -f1)
	[ ! -e "$obj" ] || { echo "an NVM copy of an NVM file"; return 1; }
	served_from cold2 "$NL/cold2" && all_identical && within_budget
}

# Per-file control: an NVM-home file evicted by hand gets an HDD copy and
# stays whole in its layer; an HDD file is promoted and evicted.
per_file_control() {
	local out
	out=$("$CTL" evict "$MNT" "$MNT/hot2") || { echo "$out"; return 1; }
	echo "$out" | grep -q "layers are never modified" || { echo "$out"; return 1; }
	[ "$(blocks_of "$NL/hot2")" -gt 0 ] && cmp "$NL/hot2" "$ORIG/hot2" &&
		cmp "$(wb_copy hot2)" "$ORIG/hot2" && served_from hot2 "$NL/hot2" || return 1
	"$CTL" promote "$MNT" "$MNT/h2" && "$CTL" wait "$MNT" 30 >/dev/null || return 1
	served_from h2 "$T/nvm/objects/$(sha256sum <"$HL/h2" | cut -d' ' -f1)" || return 1
	"$CTL" evict "$MNT" "$MNT/h2" && served_from h2 "$HL/h2" && all_identical
}

per_file_errors() {
	local out
	if out=$("$CTL" evict "$MNT" "$MNT/dir" 2>&1); then echo "evicted a directory: $out"; return 1; fi
	echo "$out" | grep -q "not a regular file" || { echo "$out"; return 1; }
	if out=$("$CTL" promote "$MNT" "$MNT/nope" 2>&1); then echo "promoted a missing file"; return 1; fi
	echo "$out" | grep -q "No such file" || { echo "$out"; return 1; }
	if out=$("$CTL" promote "$MNT" /etc/passwd 2>&1); then echo "promoted a file outside"; return 1; fi
	echo "$out" | grep -q "not a file inside the mount" || { echo "$out"; return 1; }
	all_identical
}

# A write-back pass with a file held open: nothing is released, the held
# descriptor reads every original byte, the file keeps its blocks.
open_descriptor_survives() {
	umount_wb || return 1
	head -c 150000 /dev/urandom >"$NL/late" && cp "$NL/late" "$ORIG/late"
	EXTRA=late
	mount_wb trace=off || return 1
	exec 8<"$MNT/late"
	head -c 1000 <&8 >/dev/null
	"$CTL" writeback "$MNT" --wait >"$T/wb.out" || { exec 8<&-; cat "$T/wb.out"; return 1; }
	grep -q "^released 0$" "$T/wb.out" && [ "$(blocks_of "$NL/late")" -gt 0 ] ||
		{ exec 8<&-; cat "$T/wb.out"; echo "a layer file released"; return 1; }
	cmp <(cat "$ORIG/late") <(head -c 1000 "$ORIG/late"; cat <&8) || { exec 8<&-; return 1; }
	exec 8<&-
	cmp "$(wb_copy late)" "$ORIG/late" && all_identical && layer_untouched && within_budget
}

# Many files on their way to HDD, then kill -9. The leftovers of a crash
# at a worse moment are planted too: a temp copy. Afterwards every file
# reads its original bytes and a new pass finishes the job.
kill_during_writeback() {
	local i pid tmp
	umount_wb || return 1
	mkdir -p "$NL/many"
	for i in $(seq 150); do
		head -c $((20000 + i * 97)) /dev/urandom >"$NL/many/f$i"
		cp "$NL/many/f$i" "$ORIG/many-f$i"
	done
	mount_wb trace=off || return 1
	"$CTL" writeback "$MNT" >/dev/null || return 1
	sleep 0.$((RANDOM % 4 + 1))
	pid=$(daemon_pid) && kill -9 "$pid"
	while [ -d "/proc/$pid" ]; do sleep 0.05; done
	echo "copies at the kill: $(find "$T/hdd/writeback" -path '*/many/*' -type f | wc -l)"
	umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
	# the mount's keeper may have started a service that took it over: no
	# service of this NVM directory left (it holds host.lock), so that the
	# remount starts one that finds the leftovers below
	for ((i = 0; i < 200; i++)); do
		flock -n "$T/nvm/host.lock" true && break
		sleep 0.05
	done
	tmp=$(wb_copy many/.nlwb-tmp-crash1)
	mkdir -p "$(dirname "$tmp")" && head -c 999 /dev/urandom >"$tmp"
	mount_wb trace=off || return 1
	for i in $(seq 150); do cmp "$MNT/many/f$i" "$ORIG/many-f$i" || return 1; done
	for i in $(seq 50); do [ -e "$tmp" ] || break; sleep 0.1; done
	[ ! -e "$tmp" ] || { echo "temp copy left after the remount"; return 1; }
	"$CTL" writeback "$MNT" --wait >/dev/null || return 1
	for i in $(seq 150); do
		[ "$(blocks_of "$NL/many/f$i")" -gt 0 ] || { echo "many/f$i lost its blocks"; return 1; }
		cmp "$NL/many/f$i" "$ORIG/many-f$i" || return 1
		cmp "$(wb_copy "many/f$i")" "$ORIG/many-f$i" || return 1
	done
	umount_wb && mount_wb trace=off || return 1
	for i in $(seq 150); do cmp "$MNT/many/f$i" "$ORIG/many-f$i" || return 1; done
	all_identical && within_budget
}

# With an upper layer: a change to a written-back file copies up its bytes;
# a removed lower file is not found by the control socket.
copy_up_of_written_back() {
	local out
	umount_wb || return 1
	mkdir -p "$T/u" "$T/w"
	LOWERS=$NL:$HL U=$T/u W=$T/w nl_mount "nvm=$T/nvm,hdd=$T/hdd,nvm_size=$BUDGET,host_idle=0,trace=off" || return 1
	echo tail >>"$MNT/cold3" || return 1
	cmp "$MNT/cold3" <(cat "$ORIG/cold3"; echo tail) && cmp "$T/u/cold3" <(cat "$ORIG/cold3"; echo tail) || return 1
	out=$("$CTL" promote "$MNT" "$MNT/cold3" 2>&1) && { echo "promoted an upper file: $out"; return 1; }
	echo "$out" | grep -q "upper layer" || { echo "$out"; return 1; }
	out=$("$CTL" promote "$MNT" "$MNT/hot1") && echo "$out" | grep -q "on NVM already" || { echo "$out"; return 1; }
	# a lower file removed through the mount is hidden from the control socket too
	rm "$MNT/h2" || return 1
	out=$("$CTL" promote "$MNT" "$MNT/h2" 2>&1) && { echo "promoted a removed file: $out"; return 1; }
	echo "$out" | grep -q "No such file" || { echo "$out"; return 1; }
	umount_wb && mount_wb
}

writeback_off_keeps_nvm() {
	umount_wb || return 1
	head -c 70000 /dev/urandom >"$NL/stay" && cp "$NL/stay" "$ORIG/stay"
	mount_wb trace_window=1,writeback=off || return 1
	sleep 3
	[ "$(status_of writeback)" = off ] && [ "$(blocks_of "$NL/stay")" -gt 0 ] &&
		[ ! -e "$(wb_copy stay)" ] || { "$CTL" status "$MNT"; return 1; }
	cmp "$MNT/stay" "$ORIG/stay"
}

bad_option_refused() {
	local out
	umount_wb || return 1
	if out=$(NOUPPER=1 LOWERS=$NL:$HL nl_mount "nvm=$T/nvm,hdd=$T/hdd,host_idle=0,writeback=maybe" 2>&1); then
		echo "mounted with writeback=maybe"
		return 1
	fi
	echo "$out" | grep -q "writeback: bad value 'maybe'" || { echo "$out"; return 1; }
	mount_wb
}

# ---- main ----

nl_init
if [ -z "$SKIP_ALL" ] && [ ! -x "$CTL" ]; then
	echo "not ok 1 - nlayerfsctl exists in $NLBUILD"; echo "1..1"; exit 1
fi
NL=$T/nvm/layers/top HL=$T/hdd/layers/base ORIG=$T/orig
mkdir -p "$NL/dir/sub" "$HL" "$ORIG/dir/sub" "$T/hdd" "$T/nvm"
i=0
for f in $HOT $COLD; do
	i=$((i + 1))
	head -c $((30000 + i * 11111)) /dev/urandom >"$NL/$f"
	cp "$NL/$f" "$ORIG/$f"
done
head -c 50000 /dev/urandom >"$HL/h1"
head -c 60000 /dev/urandom >"$HL/h2"
MNT=$T/mnt
mkdir -p "$MNT"
EXTRA=""

check "a traced start: window closes, queue drains, write-back runs" traced_start_writes_back
check "cold NVM-layer files have HDD copies with identical bytes" cold_copies_identical
check "the NVM layer keeps every block and byte of its files" layer_untouched
check "status: written-back files and bytes, nvm_used counts the whole layer, within budget" status_numbers_match
check "every file reads identical bytes through the mount" reads_through_mount
check "remount: still correct, cold files read from their layer" remount_still_correct
check "a cold file a later start needs is read from its NVM layer, no copy made" later_trace_reads_layer
check "per-file promote and evict by merged-tree path" per_file_control
check "per-file control: clear errors for non-files" per_file_errors
check "a pass with a file held open releases nothing, the descriptor reads every byte" open_descriptor_survives
check "kill -9 during write-back of many files: every file identical" kill_during_writeback
check "copy-up of a written-back file copies its real bytes; a removed file is hidden from nlayerfsctl" copy_up_of_written_back
check "writeback=off leaves NVM files in place" writeback_off_keeps_nvm
check "a bad writeback= value refuses the mount" bad_option_refused
nl_done
