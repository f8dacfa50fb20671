# SPDX-License-Identifier: GPL-2.0-or-later
# Upper files that lost their last name while open survive the server's
# death: a process unlinks a file it created, unlinks a lower file it
# opened for appending (copied up), and has a third renamed over, then goes
# on writing and reading all three through SIGKILLs of the server and
# `nlayerfsctl restart`. It reads back what it wrote, fstat says nlink 0,
# no name of them shows in the mount, and once it closes them nothing is
# left in the work directory. A crash of keeper and server together leaves
# the files in the work directory: the next (fresh) mount removes them.
. "$(dirname "$0")/../lib.sh"
nl_init

KILLS=${NLAYERFS_SURVIVE_KILLS:-6}
RESTARTS=${NLAYERFS_SURVIVE_RESTARTS:-2}
CTL=$NLBUILD/nlayerfsctl
WHY="the other implementations end their mounts with their daemon"

new_layers 1
if [ -z "$SKIP_ALL" ]; then
	seq 1 100 >"$D/l1/low"
	freeze_lowers
	nl_mount || SKIP_ALL="mount failed"
fi
ORPHANS=$W/work/orphans
FAIL=$T/fail STOP=$T/stop READY=$T/ready CLOSE=$T/close
: >"$FAIL"

kstat() { "$CTL" status --raw "$MNT" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
fail() { echo "$*" >>"$FAIL"; }
n_orphans() { find "$ORPHANS" -mindepth 1 2>/dev/null | wc -l; }
# wait_for CMD...: up to 10 s for CMD to succeed
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do "$@" && return 0; sleep 0.05; done
	return 1
}
# gone_within: up to 30 s for the work directory to keep no file (the
# kernel sends a release after the last close in the background)
gone_within() {
	local i t0=$SECONDS
	for ((i = 0; i < 600; i++)); do
		if [ "$(n_orphans)" = 0 ]; then
			[ $((SECONDS - t0)) -lt 5 ] || diag "kept files went after $((SECONDS - t0)) s"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# The process that holds the three files: fd 3 (write) and 4 (read) a new
# file, 5 (append) and 6 (read) a lower file, 7 (write) a file another is
# renamed over. Each round writes line N to all three and reads one line
# back from 4 and 6; at the end it checks the whole of each through a new
# open of /proc/self/fd/N (a FUSE open of the nameless node), and fstat.
holder() {
	local n=1 want=1 line
	exec 3>"$MNT/tmpnew" 4<"$MNT/tmpnew" 5>>"$MNT/low" 6<"$MNT/low" 7>"$MNT/victim"
	echo victim >&7
	rm "$MNT/tmpnew" "$MNT/low" || fail "unlink"
	echo replacement >"$MNT/repl" && mv "$MNT/repl" "$MNT/victim" || fail "rename over"
	touch "$READY"
	while [ ! -e "$STOP" ]; do
		echo "$n" >&3 || fail "write new $n"
		echo $((100 + n)) >&5 || fail "append low $n"
		echo "$n" >&7 || fail "write victim $n"
		read -r line <&4 || { fail "read new $n"; break; }
		[ "$line" = "$n" ] || { fail "new: line $line, want $n"; break; }
		read -r line <&6 || { fail "read low $want"; break; }
		[ "$line" = "$want" ] || { fail "low: line $line, want $want"; break; }
		n=$((n + 1)) want=$((want + 1))
		sleep 0.01
	done
	n=$((n - 1))
	[ "$(cat /proc/self/fd/3)" = "$(seq 1 $n)" ] || fail "new file read back"
	[ "$(cat /proc/self/fd/5)" = "$(seq 1 $((100 + n)))" ] || fail "low file read back"
	[ "$(cat /proc/self/fd/7)" = "$(echo victim; seq 1 $n)" ] || fail "victim read back"
	[ "$(stat -L -c %h /proc/self/fd/3 /proc/self/fd/5 /proc/self/fd/7 | sort -u)" = 0 ] ||
		fail "nlink: $(stat -L -c %h /proc/self/fd/3 /proc/self/fd/5 /proc/self/fd/7)"
	echo "$n" >"$T/rounds"
	touch "$T/checked"
	while [ ! -e "$CLOSE" ]; do sleep 0.05; done
	exec 3>&- 4<&- 5>&- 6<&- 7>&-
}

# killer [names]: KILLS SIGKILLs, then RESTARTS restarts; "names": the
# mount must show no name but victim under every new server.
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
			rep=$(kstat replaced)
			pid=$(kstat server_pid)
			[ -n "$rep" ] && [ "$rep" -gt "$old" ] && [ -d "/proc/$pid" ] && break
			sleep 0.05
		done
		[ "$rep" -gt "$old" ] || fail "no new server after replacement $k"
		# what the container sees, under every server
		[ "${1:-}" != names ] || [ -z "$(ls -A "$MNT" | grep -v '^victim$')" ] ||
			fail "names shown: $(ls -A "$MNT")"
	done
}

survive() {
	local h rc=0
	rm -f "$STOP" "$READY" "$CLOSE"
	holder 2>>"$T/errs" & h=$!
	wait_for test -e "$READY" || { echo "holder not ready"; cat "$T/errs"; return 1; }
	eq "$(n_orphans)" 3 "files kept in the work directory" || rc=1
	eq "$(stat -c %a "$ORPHANS")" 700 "mode of the directory they are kept in" || rc=1
	eq "$(cat "$MNT/victim")" replacement "the name renamed over" || rc=1
	killer names
	touch "$STOP"
	wait_for test -e "$T/checked" || fail "holder did not finish"
	eq "$(n_orphans)" 3 "files kept in the work directory after the kills" || rc=1
	touch "$CLOSE"
	wait $h
	[ -s "$FAIL" ] && { sort "$FAIL" | uniq -c | head -20; head -20 "$T/errs"; return 1; }
	diag "$(cat "$T/rounds") rounds written and read through the nameless files"
	return $rc
}
check_nl "open files without a name keep working through $KILLS SIGKILLs and $RESTARTS restarts" \
	"$WHY" survive

gone_after_close() {
	gone_within || { echo "left: $(ls -A "$ORPHANS")"; return 1; }
	eq "$(ls -A "$MNT")" victim "names in the mount" || return 1
	eq "$(cat "$MNT/victim")" replacement "victim" || return 1
}
check_nl "the work directory keeps none of them once they are closed" "$WHY" gone_after_close

# Many files made, opened, unlinked or renamed over, used and closed while
# the server is killed again and again: none fails, and when all are
# closed neither the work directory nor the upper layer keeps any.
churner() {
	local i=0 want
	while [ ! -e "$STOP" ]; do
		exec 3>"$MNT/c$i"
		echo "x $i" >&3 || fail "write c$i"
		if ((i % 2)); then
			rm "$MNT/c$i" || fail "unlink c$i"
		else
			echo r >"$MNT/r$i" && mv "$MNT/r$i" "$MNT/c$i" || fail "rename over c$i"
		fi
		echo "y $i" >&3 || fail "write c$i again"
		want=$(printf 'x %s\ny %s' $i $i)
		[ "$(cat /proc/self/fd/3)" = "$want" ] || fail "read back c$i"
		[ "$(stat -L -c %h /proc/self/fd/3)" = 0 ] || fail "nlink of c$i"
		exec 3>&-
		rm -f "$MNT/c$i" || fail "remove c$i"
		i=$((i + 1))
	done
	echo "$i" >"$T/churned"
}

churn() {
	local c
	rm -f "$STOP"
	: >"$FAIL"
	churner 2>>"$T/errs" & c=$!
	killer
	touch "$STOP"
	wait $c
	[ -s "$FAIL" ] && { sort "$FAIL" | uniq -c | head -20; tail -20 "$T/errs"; return 1; }
	diag "$(cat "$T/churned") files made, left without a name while open, and closed"
	gone_within || { echo "left: $(ls -A "$ORPHANS")"; return 1; }
	eq "$(find "$U" -type f ! -name victim)" "" "files left in the upper layer" || return 1
}
check_nl "files left without a name while open, made and closed under SIGKILLs, leave nothing" \
	"$WHY" churn

# A create that finds its name taken (made by the server before, which
# died before it answered, and sent again) opens the file there; so does
# one without O_EXCL whose name came after the kernel last looked. Here
# the name comes from outside the mount, after a negative lookup.
create_finds_name() {
	local rc=0
	[ ! -e "$MNT/late" ] || return 1
	echo outside >"$U/late"
	echo inside >"$MNT/late" || rc=1
	eq "$(cat "$MNT/late")" inside "content" || rc=1
	[ ! -e "$MNT/late2" ] || return 1
	echo outside >"$U/late2"
	eq "$(try open "$MNT/late2" wcx)" EEXIST "O_EXCL" || rc=1
	rm -f "$MNT/late" "$MNT/late2"
	return $rc
}
check_nl "a create that finds its name taken opens what is there, but with O_EXCL" "$WHY" \
	create_finds_name

# A file closed before its unlink is not kept.
closed_not_kept() {
	echo a >"$MNT/closed"
	rm "$MNT/closed"
	eq "$(n_orphans)" 0 "kept after unlinking a closed file"
}
check_nl "a closed file is not kept" "$WHY" closed_not_kept

# An open file unlinked under one of its hard links is kept too (the node
# table does not know its other names); those count no extra link.
linked_kept() {
	local rc=0 old
	echo b >"$MNT/linked"
	ln "$MNT/linked" "$MNT/other"
	exec 3<>"$MNT/linked"
	rm "$MNT/linked"
	eq "$(n_orphans)" 1 "kept while another name is left" || rc=1
	eq "$(stat -c %h "$MNT/other")" 1 "links of the other name" || rc=1
	eq "$(stat -L -c %h /proc/self/fd/3)" 0 "links of the open file" || rc=1
	old=$(kstat replaced)
	kill -9 "$(kstat server_pid)"
	wait_for test "$(kstat replaced)" -gt "$old" || { echo "no new server"; rc=1; }
	eq "$(cat <&3)" b "read through the open file after the kill" || rc=1
	echo c >&3 || { echo "write through the open file after the kill"; rc=1; }
	eq "$(cat "$MNT/other")" "$(printf 'b\nc')" "the other name after the kill" || rc=1
	eq "$(stat -c %h "$MNT/other")" 1 "links of the other name after the kill" || rc=1
	exec 3<&-
	gone_within ||
		{ echo "kept after close: $(ls -A "$ORPHANS"), $(kstat table_handles) handles"; rc=1; }
	eq "$(stat -c %h "$MNT/other")" 1 "links of the other name after close" || rc=1
	rm "$MNT/other"
	return $rc
}
check_nl "an open file unlinked while it has other names survives, counted right" "$WHY" \
	linked_kept

# A server killed between keeping a file and its entry saying so leaves a
# kept file no node serves: the next server removes it, and only it.
unclaimed_swept() {
	local rc=0 old
	rm -f "$READY"
	( exec 3>"$MNT/held"; rm "$MNT/held"; touch "$READY"; exec sleep 600 ) &
	local h=$!
	wait_for test -e "$READY" || { kill $h; echo "holder not ready"; return 1; }
	echo stray >"$ORPHANS/orphan-99999-1"
	echo stray >"$ORPHANS/orphan-$(ls "$ORPHANS" | grep -v 99999 | cut -d- -f2)-77"
	eq "$(n_orphans)" 3 "before the kill" || rc=1
	old=$(kstat replaced)
	kill -9 "$(kstat server_pid)"
	wait_for test "$(kstat replaced)" -gt "$old" || { echo "no new server"; rc=1; }
	stat "$MNT" >/dev/null
	eq "$(n_orphans)" 1 "after the next server took over" || { ls -A "$ORPHANS"; rc=1; }
	kill $h
	wait $h 2>/dev/null
	gone_within || { echo "left after close: $(ls -A "$ORPHANS")"; rc=1; }
	return $rc
}
check_nl "a new server removes kept files no node serves" "$WHY" unclaimed_swept

# Keeper and server killed together end the mount with files kept; the
# next mount of the same directories (a fresh one) removes them.
crash_then_fresh() {
	local keeper server h
	rm -f "$READY"
	( exec 3>"$MNT/crash"; rm "$MNT/crash"; echo data >&3; touch "$READY"; exec sleep 600 ) &
	h=$!
	wait_for test -e "$READY" || { kill $h; echo "holder not ready"; return 1; }
	eq "$(n_orphans)" 1 "kept before the crash" || { kill $h; return 1; }
	keeper=$(kstat keeper_pid) server=$(kstat server_pid)
	kill -9 "$keeper" "$server"
	kill $h
	wait $h 2>/dev/null
	wait_for test ! -d "/proc/$server" || { echo "server $server lives on"; return 1; }
	fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	eq "$(n_orphans)" 1 "left by the crash" || return 1
	nl_mount || return 1
	eq "$(n_orphans)" 0 "left after a fresh mount" || return 1
	eq "$(ls -A "$MNT")" victim "names in the mount" || return 1
	nl_umount
}
check_nl "a crash leaves kept files the next fresh mount removes" "$WHY" crash_then_fresh

# A tiered mount is taken over by the next tier service, in another
# process than its keeper's servers: the kept file is reached all the same.
tiered() {
	local m=$T/tm rc=0 hp old i
	mkdir -p "$T/nvm" "$T/hdd/l1" "$T/tu" "$T/tw" "$m"
	echo lower >"$T/hdd/l1/f"
	printf 'nvm = %s\nhdd = %s\nhost_idle = 1\ntrace_quiet = 1\n' "$T/nvm" "$T/hdd" >"$T/nl.conf"
	local opts=lowerdir=$T/hdd/l1,upperdir=$T/tu,workdir=$T/tw,config=$T/nl.conf
	if [ "$SAN" = 1 ]; then
		"$NLAYERFS" nlayerfs "$m" -f -o "$opts" 2>>"$T/san-tiered.log" &
		SAN_LOGS+=("$T/san-tiered.log")
		wait_for is_mounted "$m"
	else
		"$NLAYERFS" nlayerfs "$m" -o "$opts"
	fi || return 1
	MOUNTED+=("$m")
	exec 3<>"$m/new"
	echo data >&3
	rm "$m/new"
	eq "$(find "$T/tw/work/orphans" -mindepth 1 | wc -l)" 1 "kept" || rc=1
	hp=$("$CTL" status --raw "$m" | awk '$1 == "host_pid" { print $2 }')
	old=$("$CTL" status --raw "$m" | awk '$1 == "replaced" { print $2 }')
	kill -9 "$hp"
	for ((i = 0; i < 200; i++)); do
		[ "$("$CTL" status --raw "$m" 2>/dev/null | awk '$1 == "replaced" { print $2 }')" \
			-gt "$old" ] 2>/dev/null && break
		sleep 0.05
	done
	echo more >&3 || rc=1
	eq "$(cat /proc/self/fd/3)" "$(printf 'data\nmore')" "read back" || rc=1
	eq "$(stat -L -c %h /proc/self/fd/3)" 0 "nlink" || rc=1
	exec 3<&-
	ORPHANS=$T/tw/work/orphans gone_within ||
		{ echo "kept after close: $(ls -A "$T/tw/work/orphans")"; "$CTL" status --raw "$m"; rc=1; }
	nl_umount "$m"
	return $rc
}
check_nl "a tiered mount's kept file survives its tier service" "$WHY" tiered

check_lowers_unchanged
nl_done
