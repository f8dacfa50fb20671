# SPDX-License-Identifier: GPL-2.0-or-later
# The server of a checkpoint mount killed with SIGKILL at random moments,
# and replaced by `nlayerfsctl restart`, while criu-like writers (files
# created, written in pieces, closed, renamed over, removed; one image kept
# open and appended to across every kill), a reader and a directory walker
# work in it: no operation fails, every file reads back what was written
# (through the new servers and after a clean remount), and the table holds
# no open handle once all is closed.
CKPT_TEST="checkpoint mount survives its server"
. "$(dirname "$0")/lib-ckpt.sh"

KILLS=${NLAYERFS_SURVIVE_KILLS:-10}
RESTARTS=${NLAYERFS_SURVIVE_RESTARTS:-2}
CTL=$NLBUILD/nlayerfsctl
FAIL=$T/fail STOP=$T/stop
: >"$FAIL"
fail() { echo "$*" >>"$FAIL"; }
kstat() { "$CTL" status --raw "$MNT" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }

mount_fg() {
	"$NLAYERFS" -f -o "zns=$DEV,meta=$META,zone_bw=100M,stripe_unit=64K" "$MNT" \
		2>>"$T/daemon.log" &
	PID=$!
	for ((i = 0; i < 100; i++)); do
		is_mounted "$MNT" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/daemon.log"
	return 1
}

"$ZNS" create "$DEV" --zones 512 --zone-size 1M --channels 4 --ways 4 >/dev/null ||
	{ echo "not ok 1 - create device"; echo "1..1"; exit 1; }
mkdir -p "$T/src"
for i in 0 1 2 3 4 5 6 7; do head -c $((200000 + i * 70001)) /dev/urandom >"$T/src/s$i"; done
head -c $((64 * 100000)) /dev/urandom >"$T/src/long"

# Writer: a dump's files, each written in pieces by one open, closed, then
# renamed into place; older dumps removed.
writer() {
	local n=0 d s
	while [ ! -e "$STOP" ] || [ $n -lt 4 ]; do
		d=$MNT/c1/dump$n
		mkdir "$d" || fail "mkdir dump$n"
		for s in 0 1 2 3; do
			dd if="$T/src/s$(((n + s) % 8))" of="$d/.tmp$s" bs=32k status=none ||
				fail "write dump$n/.tmp$s"
			mv "$d/.tmp$s" "$d/img$s" || fail "rename dump$n/img$s"
		done
		ln -s img0 "$d/link" || fail "symlink dump$n"
		[ $n -ge 3 ] && { rm -rf "$MNT/c1/dump$((n - 3))" || fail "rm dump$((n - 3))"; }
		echo $n >"$T/written.new" && mv "$T/written.new" "$T/written"
		n=$((n + 1))
	done
}

# Holder: one image open for writing across every kill, appended to in
# 100000-byte pieces.
holder() {
	local i=0
	exec 7>"$MNT/c2/pages.img"
	while [ ! -e "$STOP" ] && [ $i -lt 64 ]; do
		dd if="$T/src/long" bs=100000 skip=$i count=1 status=none >&7 ||
			fail "append piece $i"
		i=$((i + 1))
		sleep 0.03
	done
	exec 7>&-
	echo $i >"$T/held"
}

# Reader: finished dumps read back.
reader() {
	local n s
	while [ ! -e "$STOP" ]; do
		n=$(cat "$T/written" 2>/dev/null)
		[ -n "$n" ] || continue
		for s in 0 1 2 3; do
			cmp -s "$T/src/s$(((n + s) % 8))" "$MNT/c1/dump$n/img$s" ||
				fail "read dump$n/img$s"
		done
	done
}

walker() {
	while [ ! -e "$STOP" ]; do
		find "$MNT" -ignore_readdir_race 2>&1 >/dev/null |
			grep -v 'No such file or directory$' | grep -q . && fail "find"
		ls -la "$MNT/c2" >/dev/null || fail "ls c2"
	done
}

killer() {
	local k pid old rep i
	for ((k = 1; k <= KILLS + RESTARTS; k++)); do
		sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
		old=$(kstat replaced)
		if [ "$k" -le "$KILLS" ]; then
			pid=$(kstat server_pid)
			[ -n "$pid" ] || { fail "no server pid before kill $k"; return; }
			kill -9 "$pid"
		else
			"$CTL" restart "$MNT" >/dev/null || fail "nlayerfsctl restart $k"
		fi
		for ((i = 0; i < 200; i++)); do
			rep=$(kstat replaced) pid=$(kstat server_pid)
			[ -n "$rep" ] && [ "$rep" -gt "$old" ] && [ -d "/proc/$pid" ] && break
			sleep 0.05
		done
		[ "$rep" -gt "$old" ] || fail "no new server after replacement $k"
		echo "$(kstat last_stall_us)" >>"$T/stalls"
	done
}

t_survive() {
	local w h r wk
	is_mounted "$MNT" || mount_fg || return 1
	mkdir -p "$MNT/c1" "$MNT/c2" || return 1
	writer 2>>"$T/errs" & w=$!
	holder 2>>"$T/errs" & h=$!
	reader 2>>"$T/errs" & r=$!
	walker 2>>"$T/errs" & wk=$!
	killer
	touch "$STOP"
	wait $w $h $r $wk
	[ -s "$FAIL" ] && { sort "$FAIL" | uniq -c | head -20; head -20 "$T/errs"; return 1; }
	echo "$(($(cat "$T/written") + 1)) dumps written, $(cat "$T/held") pieces appended through one open file"
	echo "stall per replacement (us): $(tr '\n' ' ' <"$T/stalls")"
}
check "writers, a reader and a walker keep working through $KILLS SIGKILLs of the server and $RESTARTS restarts" t_survive

t_replaced() {
	[ "$(kstat replaced)" = $((KILLS + RESTARTS)) ] ||
		{ echo "replaced $(kstat replaced), want $((KILLS + RESTARTS))"; return 1; }
}
check "the keeper counts every replacement" t_replaced
[ -s "$T/stalls" ] && echo "# stall per replacement (us): $(tr '\n' ' ' <"$T/stalls")"

# What the writers made is there, whole.
written_back() {
	local n i s bad=0
	n=$(cat "$T/written")
	for ((i = n - 2; i <= n; i++)); do
		for s in 0 1 2 3; do
			cmp "$T/src/s$(((i + s) % 8))" "$MNT/c1/dump$i/img$s" || bad=1
		done
		[ "$(readlink "$MNT/c1/dump$i/link")" = img0 ] || { echo "dump$i/link"; bad=1; }
		[ -z "$(ls -A "$MNT/c1/dump$i" | grep '^\.tmp')" ] || { echo "dump$i: temporaries"; bad=1; }
	done
	[ ! -e "$MNT/c1/dump$((n - 3))" ] || { echo "dump$((n - 3)) not removed"; bad=1; }
	cmp -n $(($(cat "$T/held") * 100000)) "$T/src/long" "$MNT/c2/pages.img" || bad=1
	[ "$(stat -c %s "$MNT/c2/pages.img")" = $(($(cat "$T/held") * 100000)) ] ||
		{ echo "pages.img size $(stat -c %s "$MNT/c2/pages.img")"; bad=1; }
	return $bad
}
check "every file reads back what was written" written_back

t_no_handles() {
	[ "$(kstat table_handles)" = 0 ] || { echo "open handles: $(kstat table_handles)"; return 1; }
	[ "$(kstat table_stale)" = 0 ] || { echo "stale: $(kstat table_stale)"; return 1; }
}
check "the table holds no open handle once every file is closed" t_no_handles

# A request the killed server had read: sent again, answered by the next.
t_resent() {
	local pid i rc=0
	exec 6>"$MNT/c2/slow.img"
	pid=$(kstat server_pid)
	# many writes in flight when the server dies
	(dd if=/dev/zero bs=1M count=16 status=none >&6 || echo "dd failed" >"$T/resent") &
	sleep 0.05
	kill -9 "$pid"
	wait $! || rc=1
	exec 6>&-
	[ ! -s "$T/resent" ] || { cat "$T/resent"; rc=1; }
	[ "$(stat -c %s "$MNT/c2/slow.img")" = $((16 << 20)) ] ||
		{ echo "size $(stat -c %s "$MNT/c2/slow.img")"; rc=1; }
	cmp -s -n $((16 << 20)) /dev/zero "$MNT/c2/slow.img" || { echo "content"; rc=1; }
	rm -f "$MNT/c2/slow.img"
	return $rc
}
check "a 16 MiB write while the server is killed completes, whole" t_resent

# The unmount takes the keeper and its server away; a fresh mount reads
# everything from the pool and the zones.
t_remount() {
	local keeper server i
	keeper=$(kstat keeper_pid) server=$(kstat server_pid)
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 100; i++)); do
		[ -d "/proc/$keeper" ] || [ -d "/proc/$server" ] || break
		sleep 0.05
	done
	[ ! -d "/proc/$keeper" ] && [ ! -d "/proc/$server" ] ||
		{ echo "keeper or server still running"; return 1; }
	wait "$PID"
	PID=""
	mount_fg && written_back
}
check "unmount ends the keeper and its server; a remount reads back everything" t_remount

# Kernels before 6.9 cannot send a dead server's requests again: the
# servers then keep each request in the keeper's table and the next one
# serves it. NLAYERFS_KEEP_REQUESTS makes them do so on any kernel.
t_kept() {
	fusermount3 -u "$MNT" || return 1
	wait "$PID"
	PID=""
	NLAYERFS_KEEP_REQUESTS=1 mount_fg || return 1
	rm -rf "$MNT/c1"/* "$MNT/c2"/* || return 1
	: >"$FAIL"
	rm -f "$STOP" "$T/stalls" "$T/written"
	KILLS=5 RESTARTS=1 t_survive || return 1
	t_resent && written_back
}
check "the same with each request kept in the table (kernels without FUSE_NOTIFY_RESEND)" t_kept

t_final() {
	fusermount3 -u "$MNT" || return 1
	wait "$PID"
	PID=""
	if [ "$SAN" = 1 ] && grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/daemon.log"; then
		return 1
	fi
}
check "clean unmount (no sanitizer report)" t_final
echo "1..$N"
[ $NFAIL = 0 ]
