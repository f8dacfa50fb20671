#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Union mount: copy-up of symlinks, fifos and device nodes, lookups through
# symlinks into lower directories, and readdir of a big directory spread
# over layers with many whiteouts (several FUSE readdir calls with offsets).
. "$(dirname "$0")/../lib.sh"
nl_init

new_layers 3
L1=$D/l1 L2=$D/l2 L3=$D/l3
if [ -z "$SKIP_ALL" ]; then
	mkdir -p "$L3/target/in"; echo deep >"$L3/target/in/f"
	ln -s target "$L2/tlink"; ln -s /etc/hostname-not-here "$L2/abs"
	ln -s target/in "$L1/rel"
	mkfifo "$L2/fifo"; mknod "$L2/zero" c 1 5
	mkdir -p "$L1/big" "$L2/big" "$L3/big"
	(cd "$L3/big" && seq -f 'e%g' 1 3000 | xargs touch)
	(cd "$L2/big" && seq -f 'e%g' 1 3 3000 | xargs touch && seq -f 'm%g' 1 500 | xargs touch)
	# whiteouts for every 4th entry of the bottom layer
	(cd "$L1/big" && for i in $(seq 4 4 3000); do mknod "e$i" c 0 0; done)
	freeze_lowers
	# FUSE mounts are nodev unless "dev" is passed (mount.fuse3 adds it)
	if [ "$IMPL" = kernel ]; then nl_mount; else nl_mount dev; fi || SKIP_ALL="mount failed"
fi

check "lookup through a lower symlink into a lower directory" eval 'eq "$(cat "$MNT/tlink/in/f")" deep'
check "relative symlink of the top layer into a lower dir" eval 'eq "$(cat "$MNT/rel/f")" deep'
check "readlink of a dangling absolute lower symlink" eval 'eq "$(readlink "$MNT/abs")" /etc/hostname-not-here'
check "lchown of a lower symlink copies it up and keeps the target" \
	eval 'chown -h 7:8 "$MNT/tlink" && eq "$(stat -c %u:%g "$MNT/tlink")" 7:8 && eq "$(readlink "$U/tlink")" target && eq "$(stat -c %u:%g "$MNT/target")" 0:0'
check "touch -h on a lower symlink sets its own mtime" \
	eval 'touch -h -d "2003-01-01 00:00:00" "$MNT/abs" && eq "$(stat -c %Y "$MNT/abs")" "$(date -d "2003-01-01 00:00:00" +%s)"'
check "chmod of a lower fifo copies up a fifo" \
	eval 'chmod 0600 "$MNT/fifo" && eq "$(stat -c "%F %a" "$MNT/fifo")" "fifo 600" && eq "$(stat -c %F "$U/fifo")" fifo'
check "chown of a lower char device copies up the device (1:5), usable with -o dev" \
	eval 'chown 3:3 "$MNT/zero" && eq "$(stat -c "%F %t:%T %u" "$U/zero")" "character special file 1:5 3" && eq "$(head -c 4 "$MNT/zero" | od -An -tx1 | tr -d " ")" 00000000'
check "a fifo created through the mount passes data" \
	eval 'mkfifo "$MNT/pipe" && { echo through >"$MNT/pipe" & } && eq "$(timeout 5 cat "$MNT/pipe")" through'

big_list() {
	local want got dups
	want=$( (seq -f 'e%g' 1 3000 | grep -vxE "e[0-9]*" ; seq 1 3000 | awk '$1 % 4 { print "e" $1 }'; seq -f 'm%g' 1 500) | sort)
	got=$(ls -A "$MNT/big" | sort)
	dups=$(uniq -d <<<"$got")
	[ -z "$dups" ] || { echo "duplicates: $(head -5 <<<"$dups")"; return 1; }
	[ "$got" = "$want" ] || { echo "listing differs:"; diff <(echo "$want") <(echo "$got") | head -10; return 1; }
}
check "readdir of a 3000-entry dir over 3 layers with 750 whiteouts: exact list" big_list
check "d_ino equals st_ino in the big directory" H nl_dino "$MNT/big"
check "the big directory lists the same after deletes through the mount" \
	eval 'rm "$MNT/big/e1" "$MNT/big/m500" && eq "$(ls -A "$MNT/big" | wc -l)" 2748'
check "rm -rf of the big merged directory" \
	eval 'rm -rf "$MNT/big" && expect_errno ENOENT stat "$MNT/big" && [ "$(stat -c "%t:%T" "$U/big")" = 0:0 ]'
[ -n "$SKIP_ALL" ] || nl_umount
check_lowers_unchanged
nl_done
