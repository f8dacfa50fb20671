#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Faults around the checkpoint commit: the daemon is gone promptly after an
# unmount with its data durable; kill -9 while criu-like writers run loses
# no file that was closed before the kill, however many kills
# (CKPT_FAULT_KILLS, 4 by default): each round's files are checked and
# removed, so the tenant's zones are reset and reused, and after the last
# round it holds as much as before the first; full zones give the writer
# ENOSPC (not EIO) and lose nothing already written.
CKPT_TEST="checkpoint faults"
. "$(dirname "$0")/lib-ckpt.sh"
KILLS=${CKPT_FAULT_KILLS:-4}

mount_fg() {
	local i
	"$NLAYERFS" -f -o "zns=$DEV,meta=$META${1:+,$1}" "$MNT" 2>>"$T/daemon.log" &
	PID=$!
	for ((i = 0; i < 100; i++)); do
		is_mounted "$MNT" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/daemon.log"
	return 1
}
# after a kill -9 the kernel still has the mount: it must go first
crash() { kill_daemons; umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; }

"$ZNS" create "$DEV" --zones 64 --zone-size 1M --channels 2 --ways 2 >/dev/null ||
	{ echo "not ok 1 - create device"; echo "1..1"; exit 1; }
for i in 0 1 2 3 4 5 6 7; do head -c $((100000 + i * 37000)) /dev/urandom >"$T/src$i"; done

t_prompt_exit() {
	local i
	mount_fg && mkdir "$MNT/p" && cp "$T/src3" "$MNT/p/f" || return 1
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 50; i++)); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$PID" 2>/dev/null && { echo "daemon still running 5 s after unmount"; return 1; }
	wait "$PID" || { echo "daemon exit status $?"; return 1; }
	PID=""
	mount_fg && cmp "$T/src3" "$MNT/p/f"
}
check "the daemon is gone within 5 s of the unmount, its data durable" t_prompt_exit

# Bytes a file in tenant k takes until the tenant's zones are full (ENOSPC).
fill_tenant() {
	local f=$MNT/k/fill
	dd if=/dev/urandom of="$f" bs=1M count=1000 status=none 2>"$T/fill.err"
	grep -q "No space left on device" "$T/fill.err" ||
		{ cat "$T/fill.err"; echo "filling $f: not ENOSPC"; return 1; }
	FILLED=$(stat -c %s "$f") && rm "$f"
}

# A writer stops at its first failed copy: the device full or the daemon
# gone are expected, anything else (EIO) is not.
writer_errors_ok() {
	local bad
	bad=$(grep -hv -e "No space left on device" -e "Transport endpoint is not connected" \
		-e "Software caused connection abort" -e "No such file or directory" \
		"$T"/err."$1".* 2>/dev/null)
	rm -f "$T"/err."$1".*
	[ -z "$bad" ] || { echo "round $1: a writer failed otherwise: $bad"; return 1; }
}

# How many of the given processes are still running.
count_live() {
	local p n=0
	for p; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
	echo $n
}

# writers copy files in a loop; each name is recorded once its copy closed
t_kill_during_writes() {
	local round w before writers live want
	SURVIVED=0 MIDWRITE=0
	mkdir -p "$MNT/k" && fill_tenant || return 1
	before=$FILLED
	for ((round = 0; round < KILLS; round++)); do
		: >"$T/closed.$round"
		writers=()
		for w in 0 1; do
			(for i in $(seq 0 200); do
				f="$MNT/k/r${round}w${w}_$i"
				cp "$T/src$(( (i + w) % 8 ))" "$f" 2>>"$T/err.$round.$w" || exit 0
				echo "$f $(( (i + w) % 8 ))" >>"$T/closed.$round.$w"
			done) &
			writers+=($!)
		done
		# the kill comes once a few files are closed (a different number
		# each round; the other writer is somewhere inside its copy),
		# while the writers are still at work, not stopped by full zones
		want=$((1 + round % 4))
		while live=$(count_live "${writers[@]}") && [ "$live" != 0 ] &&
			[ "$(cat "$T"/closed."$round".* 2>/dev/null | wc -l)" -lt $want ]; do
			sleep 0.02
		done
		[ $live = 0 ] || MIDWRITE=$((MIDWRITE + 1))
		crash
		wait
		mount_fg || return 1
		cat "$T"/closed."$round".* >"$T/closed.$round" 2>/dev/null
		rm -f "$T"/closed."$round".*
		echo "round $round: $(wc -l <"$T/closed.$round") files closed before the kill, $live writer(s) still writing"
		writer_errors_ok "$round" || return 1
		[ -s "$T/closed.$round" ] || { echo "round $round: no file was closed, nothing tested"; return 1; }
		while read -r f s; do
			cmp "$T/src$s" "$f" || { echo "round $round: $f lost"; return 1; }
		done <"$T/closed.$round"
		SURVIVED=$((SURVIVED + 1))
		rm -f "$MNT"/k/*	# give the zones back for the next round
	done
	echo "survived $SURVIVED kills, $MIDWRITE of them during writes"
	[ $MIDWRITE -gt 0 ] || { echo "every kill came after the writers had stopped"; return 1; }
	fill_tenant || return 1
	echo "tenant k holds $FILLED bytes after the kills, $before before"
	# the zones of removed files come back; the dead start of the row the
	# stream ends in comes back only once that row is full (under 1 MiB here)
	[ "$FILLED" -ge $((before - (1 << 20))) ] ||
		{ echo "zones of removed files were not given back"; return 1; }
	rm -rf "$MNT/k"
}
check "kill -9 during criu-like writes: every closed file reads back, zones come back after rm ($KILLS kills)" t_kill_during_writes
grep -e '^round' -e '^tenant k' "$T/check.out" | sed 's/^/# /'
echo "# fault cases survived: ${SURVIVED:-0} kills (${MIDWRITE:-0} during writes)"

t_enospc() {
	local rc
	mkdir -p "$MNT/full" && cp "$T/src5" "$MNT/full/before" || return 1
	dd if=/dev/urandom of="$MNT/full/big" bs=1M count=200 status=none 2>"$T/dd.err"
	rc=$?
	cat "$T/dd.err"
	[ $rc != 0 ] || { echo "200 MiB fit on a 64 MiB device"; return 1; }
	grep -q "No space left on device" "$T/dd.err" || { echo "not ENOSPC"; return 1; }
	cmp "$T/src5" "$MNT/full/before" && cmp "$T/src3" "$MNT/p/f" || return 1
	rm "$MNT/full/big" && cp "$T/src6" "$MNT/full/after" && cmp "$T/src6" "$MNT/full/after" || return 1
	fusermount3 -u "$MNT" && wait "$PID"; PID=""
	mount_fg && cmp "$T/src5" "$MNT/full/before" && cmp "$T/src6" "$MNT/full/after"
}
check "full zones: ENOSPC to the writer, nothing written before lost, space back after rm" t_enospc

is_mounted "$MNT" && fusermount3 -u "$MNT" && wait "$PID"; PID=""
echo "1..$N"
[ $NFAIL = 0 ]
