# SPDX-License-Identifier: GPL-2.0-or-later
# The server of a union mount killed with SIGKILL at random moments, and
# replaced by `nlayerfsctl restart`, while a reader, a writer (copy-ups,
# appends, renames over files and of directories), a directory walker and
# a process holding files open keep working in the mount: no operation
# fails, every file reads back what was written, the kernel's node ids and
# open files reach the same files under every new server, and the node
# table holds no stale entry once all is done.
. "$(dirname "$0")/../lib.sh"
nl_init

KILLS=${NLAYERFS_SURVIVE_KILLS:-10}
RESTARTS=${NLAYERFS_SURVIVE_RESTARTS:-2}
CTL=$NLBUILD/nlayerfsctl
WHY="the other implementations end their mounts with their daemon"

new_layers 2
if [ -z "$SKIP_ALL" ]; then
	for i in $(seq 0 11); do
		head -c $((1024 * 1024 + i * 4096)) /dev/urandom >"$D/l2/big$i"
	done
	mkdir -p "$D/l2/tree" "$D/l1/tree" "$D/l2/small"
	for i in $(seq 0 99); do
		mkdir -p "$D/l2/tree/d$((i % 10))"
		echo "lower $i" >"$D/l2/tree/d$((i % 10))/f$i"
	done
	for i in $(seq 0 19); do echo "upper-layer $i" >"$D/l1/tree/u$i"; done
	for i in $(seq 0 31); do echo "small $i" >"$D/l2/small/s$i"; done
	seq 1 200000 >"$D/l2/lines"
	# big enough that its copy-up is still under way when the server dies
	head -c $((256 * 1024 * 1024)) /dev/zero >"$D/l2/huge"
	chmod 0644 "$D/l2/huge"
	freeze_lowers
	mkdir -p "$T/want"
	cp -a "$D/l2/big"* "$D/l2/tree" "$D/l2/small" "$D/l2/lines" "$T/want/"
	nl_mount || SKIP_ALL="mount failed"
fi
FAIL=$T/fail STOP=$T/stop
: >"$FAIL"

# status value KEY of the mount's keeper
kstat() { "$CTL" status --raw "$MNT" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
fail() { echo "$*" >>"$FAIL"; }

# Writer: copy-ups of big lower files (chmod, append), small files replaced
# by rename, new files, directories made and renamed.
writer() {
	local n=0 i
	while [ ! -e "$STOP" ] || [ $n -lt 12 ]; do
		i=$((n % 12))
		if [ $n -lt 12 ]; then
			chmod 0600 "$MNT/big$i" || fail "chmod big$i"
			printf 'appended %s\n' "$i" >>"$MNT/big$i" || fail "append big$i"
		fi
		printf 'new %s\n' "$n" >"$MNT/small/.t$n" || fail "write .t$n"
		mv "$MNT/small/.t$n" "$MNT/small/s$((n % 32))" || fail "rename .t$n"
		seq "$n" $((n + 500)) >"$MNT/new/f$n" || fail "create new/f$n"
		mkdir "$MNT/new/d$n" || fail "mkdir d$n"
		echo "in $n" >"$MNT/new/d$n/x" || fail "write d$n/x"
		mv "$MNT/new/d$n" "$MNT/new/e$n" || fail "rename d$n"
		n=$((n + 1))
	done
	echo "$n" >"$T/written"
}

# Reader: lower files and what the writer finished read back whole.
reader() {
	local i n
	while [ ! -e "$STOP" ]; do
		i=$((RANDOM % 100))
		[ "$(cat "$MNT/tree/d$((i % 10))/f$i")" = "lower $i" ] || fail "read tree f$i"
		cmp -s "$T/want/big$((i % 12))" "$MNT/big$((i % 12))" \
			-n "$(stat -c %s "$T/want/big$((i % 12))")" || fail "read big$((i % 12))"
		n=$(ls "$MNT/new" | grep -c '^e') || true
		[ "$n" -gt 1 ] && { [ "$(cat "$MNT/new/e$((n - 2))/x")" = "in $((n - 2))" ] ||
			fail "read new/e$((n - 2))/x"; }
	done
}

# Walker: the whole tree, again and again.
walker() {
	while [ ! -e "$STOP" ]; do
		# the writer renames directories as it goes: a name that vanishes
		# between readdir and its use is that race, not a failure
		find "$MNT" -ignore_readdir_race 2>&1 >/dev/null |
			grep -v 'No such file or directory$' | grep -q . && fail "find"
		ls -lR "$MNT/tree" >/dev/null || fail "ls -lR"
		[ "$(ls "$MNT/tree/d3" | wc -l)" = 10 ] || fail "ls tree/d3"
	done
}

# A process that holds files open across every replacement: a lower file
# read line by line, an upper file written line by line, a directory.
holder() {
	local want=1 line
	exec 7<"$MNT/lines" 8>>"$MNT/new/held"
	while [ ! -e "$STOP" ]; do
		read -r line <&7 || { fail "read held lines"; break; }
		[ "$line" = "$want" ] || { fail "held line $line, want $want"; break; }
		echo "$want" >&8 || fail "write held $want"
		want=$((want + 1))
		sleep 0.01
	done
	echo "$want" >"$T/held_n"
	exec 7<&- 8>&-
}

# Kill the serving process KILLS times at random moments, then replace it
# RESTARTS times; each time wait for the next server to take over.
killer() {
	local k pid old rep
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
			rep=$(kstat replaced)
			pid=$(kstat server_pid)
			[ -n "$rep" ] && [ "$rep" -gt "$old" ] && [ -d "/proc/$pid" ] && break
			sleep 0.05
		done
		[ "$rep" -gt "$old" ] || fail "no new server after replacement $k"
	done
}

survive() {
	local w r wk h
	rm -f "$STOP"
	mkdir "$MNT/new" || return 1
	writer 2>>"$T/errs" & w=$!
	reader 2>>"$T/errs" & r=$!
	walker 2>>"$T/errs" & wk=$!
	holder 2>>"$T/errs" & h=$!
	killer
	touch "$STOP"
	wait $w $r $wk $h
	[ -s "$FAIL" ] && { sort "$FAIL" | uniq -c | head -20; head -20 "$T/errs"; return 1; }
	diag "$(cat "$T/written") rounds written, $(cat "$T/held_n") lines read through one open file"
	return 0
}
check_nl "reader, writer, walker and open files keep working through $KILLS SIGKILLs of the server and $RESTARTS restarts" "$WHY" survive

replaced() {
	eq "$(kstat replaced)" $((KILLS + RESTARTS)) "servers started after the first"
}
check_nl "the keeper counts every replacement" "$WHY" replaced

# What was written is there, whole.
written_back() {
	local i n bad=0 sz
	n=$(cat "$T/written")
	for i in $(seq 0 11); do
		sz=$(stat -c %s "$T/want/big$i")
		cmp -s -n "$sz" "$T/want/big$i" "$MNT/big$i" || { echo "big$i: lower bytes"; bad=1; }
		[ "$(tail -c +$((sz + 1)) "$MNT/big$i")" = "appended $i" ] || { echo "big$i: append"; bad=1; }
		[ "$(stat -c %a "$MNT/big$i")" = 600 ] || { echo "big$i: mode"; bad=1; }
	done
	for ((i = 0; i < n; i++)); do
		[ "$(seq "$i" $((i + 500)))" = "$(cat "$MNT/new/f$i")" ] || { echo "new/f$i"; bad=1; }
		[ "$(cat "$MNT/new/e$i/x")" = "in $i" ] || { echo "new/e$i/x"; bad=1; }
		[ ! -e "$MNT/new/d$i" ] || { echo "new/d$i still there"; bad=1; }
	done
	for ((i = 0; i < 32; i++)); do
		case "$(cat "$MNT/small/s$i")" in
		"small $i"|new*) ;;
		*) echo "small/s$i: $(cat "$MNT/small/s$i")"; bad=1 ;;
		esac
	done
	[ -z "$(ls -A "$MNT/small" | grep '^\.t')" ] || { echo "temporaries left"; bad=1; }
	[ "$(cat "$MNT/new/held")" = "$(seq 1 $(($(cat "$T/held_n") - 1)))" ] ||
		{ echo "held file"; bad=1; }
	return $bad
}
check_nl "every file reads back what was written" "$WHY" written_back

# Inode numbers the kernel reports stay those of the lower files.
inodes_kept() {
	local i
	for i in 0 5 11; do
		eq "$(stat -c %i "$MNT/big$i")" "$(stat -c %i "$D/l2/big$i")" "inode of big$i" || return 1
	done
}
check_nl "copied-up files keep their lower inode numbers under a new server" "$WHY" inodes_kept

# A request the server had read and was carrying out when it was killed:
# the kernel sends it again to the next server, which answers it.
resent_copy_up() {
	local pid i rc=0
	chmod 0600 "$MNT/huge" &
	# the copy-up's temporary in the work directory: the chmod is read
	for ((i = 0; i < 400; i++)); do
		[ -n "$(ls -A "$W/work" 2>/dev/null)" ] && break
		sleep 0.01
	done
	[ -n "$(ls -A "$W/work")" ] || { echo "no copy-up seen"; wait; return 1; }
	pid=$(kstat server_pid)
	kill -9 "$pid"
	wait $! || { echo "chmod failed"; rc=1; }
	eq "$(stat -c %a "$MNT/huge")" 600 "mode" || rc=1
	eq "$(stat -c %s "$MNT/huge")" $((256 * 1024 * 1024)) "size" || rc=1
	cmp -s "$MNT/huge" "$D/l2/huge" || { echo "content"; rc=1; }
	rm -f "$MNT/huge"
	return $rc
}
check_nl "a chmod read by the killed server during its copy-up is answered by the next" "$WHY" \
	resent_copy_up

# Once the kernel lets go of everything, the table holds no entry a
# forgotten node, a closed file or a dead server left behind.
no_stale() {
	sync
	echo 2 >/proc/sys/vm/drop_caches
	eq "$(kstat table_stale)" 0 "stale entries" || return 1
	eq "$(kstat table_handles)" 0 "open handles" || return 1
	diag "table after the run: $(kstat table_nodes) nodes the kernel still holds"
}
check_nl "the node table holds no stale entry" "$WHY" no_stale

# After unmount the keeper and its server are gone, and so is the table.
gone_after_unmount() {
	local keeper server i
	keeper=$(kstat keeper_pid) server=$(kstat server_pid)
	nl_umount "$MNT" || return 1
	for ((i = 0; i < 100; i++)); do
		[ -d "/proc/$keeper" ] || [ -d "/proc/$server" ] || break
		sleep 0.05
	done
	[ ! -d "/proc/$keeper" ] || { echo "keeper $keeper still running"; return 1; }
	[ ! -d "/proc/$server" ] || { echo "server $server still running"; return 1; }
}
check_nl "unmount ends the keeper and the server" "$WHY" gone_after_unmount

# A new server takes over a read-only mount too.
readonly_mount() {
	NOUPPER=1 nl_mount || return 1
	local p
	exec 6<"$MNT/lines"
	p=$(kstat server_pid)
	kill -9 "$p"
	[ "$(cat "$MNT/tree/d1/f1")" = "lower 1" ] || return 1
	read -r line <&6
	exec 6<&-
	eq "$line" 1 "first line" || return 1
	nl_umount "$MNT"
}
check_nl "a read-only mount survives its server" "$WHY" readonly_mount

# Kernels before 6.9 cannot send a dead server's requests again: each
# request is then kept in the keeper's table and served by the next server.
# NLAYERFS_KEEP_REQUESTS makes the servers do so on any kernel.
kept_requests() {
	local i k pid old w r rc=0
	NLAYERFS_KEEP_REQUESTS=1 nl_mount || return 1
	mkdir -p "$MNT/kept" || return 1
	(for i in $(seq 0 59); do
		dd if="$T/want/big$((i % 12))" of="$MNT/kept/f$i" bs=1M status=none ||
			echo "write kept/f$i" >>"$T/kept.fail"
	done) & w=$!
	(while [ ! -e "$T/kept.stop" ]; do
		i=$((RANDOM % 100))
		[ "$(cat "$MNT/tree/d$((i % 10))/f$i")" = "lower $i" ] ||
			echo "read tree f$i" >>"$T/kept.fail"
	done) & r=$!
	for ((k = 1; k <= 5; k++)); do
		sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
		old=$(kstat replaced) pid=$(kstat server_pid)
		kill -9 "$pid"
		for ((i = 0; i < 200; i++)); do
			[ "$(kstat replaced)" -gt "$old" ] 2>/dev/null && break
			sleep 0.05
		done
	done
	wait $w
	touch "$T/kept.stop"
	wait $r
	[ ! -s "$T/kept.fail" ] || { sort "$T/kept.fail" | uniq -c; rc=1; }
	for i in $(seq 0 59); do
		cmp -s "$T/want/big$((i % 12))" "$MNT/kept/f$i" || { echo "kept/f$i"; rc=1; }
	done
	nl_umount "$MNT"
	return $rc
}
check_nl "reader and writer keep working through SIGKILLs with each request kept in the table" \
	"$WHY" kept_requests

check_lowers_unchanged
nl_done
