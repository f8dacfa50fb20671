#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Union mount: data integrity of big files, mmap, and parallel access
# (the daemon runs a multi-threaded loop).
. "$(dirname "$0")/../lib.sh"
nl_init

new_layers 2
if [ -z "$SKIP_ALL" ]; then
	head -c $((48 * 1024 * 1024)) /dev/urandom >"$D/l2/big"
	head -c 65536 /dev/urandom >"$D/l2/mapme"
	cp "$D/l2/big" "$D/l2/atomic"
	seq 1 100000 >"$D/l2/race"
	for i in $(seq 1 8); do mkdir -p "$D/l2/tree$i/a/b/c"; echo "$i" >"$D/l2/tree$i/a/b/c/f"; done
	mkdir -p "$D/l2/pd" "$D/l1/pd"
	for i in $(seq 1 200); do echo "$i" >"$D/l$((i % 2 + 1))/pd/f$i"; done
	freeze_lowers
	nl_mount || SKIP_ALL="mount failed"
fi

check "48 MiB lower file reads back byte for byte" \
	eval 'eq "$(sha256sum <"$MNT/big")" "$(sha256sum <"$D/l2/big")"'
check "reads at odd offsets match" \
	eval 'cmp <(dd if="$MNT/big" bs=4093 skip=1234 count=77 status=none) <(dd if="$D/l2/big" bs=4093 skip=1234 count=77 status=none)'
write_big() {
	head -c $((32 * 1024 * 1024)) /dev/urandom >"$T/src" || return 1
	dd if="$T/src" of="$MNT/written" bs=1M status=none conv=fsync || return 1
	echo 1 >/proc/sys/vm/drop_caches
	cmp "$T/src" "$MNT/written" && cmp "$T/src" "$U/written"
}
check "32 MiB written through the mount reads back, same in upper" write_big
check "overwrite in the middle of a big lower file (copy-up) keeps the rest" \
	eval 'printf XXXX | dd of="$MNT/big" bs=1 seek=1000000 conv=notrunc status=none && echo 1 >/proc/sys/vm/drop_caches && eq "$(dd if="$MNT/big" bs=1 skip=1000000 count=4 status=none)" XXXX && cmp <(head -c 1000000 "$MNT/big") <(head -c 1000000 "$D/l2/big") && cmp <(tail -c +1000005 "$MNT/big") <(tail -c +1000005 "$D/l2/big")'
# Copy-up goes through a temporary file in workdir and a rename: the upper
# layer never holds a partial copy, even while the copy is running.
atomic_copyup() {
	local full partial=0
	full=$(stat -c %s "$D/l2/atomic")
	( while [ ! -e "$T/stop" ]; do
		s=$(stat -c %s "$U/atomic" 2>/dev/null) || continue
		[ "$s" -ge "$full" ] || { echo "partial copy in upper: $s of $full bytes"; exit 1; }
	  done ) >"$T/watch" &
	local w=$!
	echo tail >>"$MNT/atomic"
	touch "$T/stop"
	wait $w || { cat "$T/watch"; return 1; }
	eq "$(stat -c %s "$U/atomic")" $((full + 5)) "size after append"
}
check "copy-up of a 48 MiB file never shows a partial file in upper" atomic_copyup
check "mmap MAP_SHARED of a lower file: read, write, msync" H nl_mmap "$MNT/mapme"

parallel_rw() {
	local p pids=() rc=0
	for p in 1 2 3 4; do
		( for i in $(seq 1 100); do echo "$p-$i" >"$MNT/pd/w$p-$i" || exit 1; done
		  for i in $(seq 1 100); do [ "$(cat "$MNT/pd/w$p-$i")" = "$p-$i" ] || exit 1; done
		  for i in $(seq 1 200); do [ "$(cat "$MNT/pd/f$i")" = "$i" ] || exit 1; done ) &
		pids+=($!)
	done
	( for i in $(seq 1 20); do ls -f "$MNT/pd" >/dev/null || exit 1; done ) &
	pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || { echo "a worker failed"; return 1; }
	eq "$(ls "$MNT/pd" | wc -l)" 600 "entries in pd"
}
check "parallel writers, readers and readdir in one directory" parallel_rw
parallel_delete() {
	local p pids=() rc=0
	for p in 0 1 2 3; do
		( for i in $(seq $((p * 50 + 1)) $((p * 50 + 50))); do rm "$MNT/pd/f$i" || exit 1; done ) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || { echo "a worker failed"; return 1; }
	eq "$(ls "$MNT/pd" | grep -c '^f')" 0 "lower entries left"
}
check "parallel deletes of lower files" parallel_delete

# Several processes trigger the copy-up of one lower file at once: every
# append must land in the single upper copy.
race_same() {
	local p pids=() rc=0
	for p in $(seq 1 8); do
		( echo "writer$p" >>"$MNT/race" ) & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || { echo "an append failed"; return 1; }
	eq "$(grep -c '^writer' "$MNT/race")" 8 "appended lines" &&
		eq "$(head -n 100000 "$MNT/race" | cmp - "$D/l2/race" && echo same)" same "lower part"
}
check "8 concurrent appends to one lower file: one copy-up, all appends kept" race_same
# ... and copy-ups that share lower parent directories
race_parents() {
	local p pids=() rc=0
	for p in $(seq 1 8); do
		( echo more >>"$MNT/tree$p/a/b/c/f" && mkdir "$MNT/tree1/a/b/new$p" ) & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || { echo "a writer failed"; return 1; }
	for p in $(seq 1 8); do
		eq "$(cat "$MNT/tree$p/a/b/c/f" | tr "\n" .)" "$p.more." "tree$p" || return 1
	done
	eq "$(ls "$MNT/tree1/a/b" | wc -l)" 9 "entries of tree1/a/b"
}
check "concurrent copy-ups and mkdirs under shared lower parents" race_parents

[ -n "$SKIP_ALL" ] || nl_umount
check_lowers_unchanged
nl_done
