# SPDX-License-Identifier: GPL-2.0-or-later
# Whole-layer moves from NVM to HDD: a layer of the store moves under a
# running mount (its reads keep working, every file keeps its bytes, modes,
# owners, times, xattrs, links; the NVM copy goes once the mount is gone;
# the traced files stay on NVM as copies; the budget holds); a service over
# its budget moves a layer by itself; a layer named by its path stays; and
# kill -9 of the tier service at each step of a move and of a promotion
# (NLAYERFS_FAULT) loses nothing: no layer file ever differs from what it
# was, the registry leads to a complete layer, and the next service rolls
# the move back or finishes it.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CTL=$NLBUILD/nlayerfsctl

ID_A=$(printf 'a%.0s' $(seq 64))	# NVM layer of image "app"
ID_B=$(printf 'b%.0s' $(seq 64))	# HDD layer of image "app"
ID_C=$(printf 'c%.0s' $(seq 64))	# NVM layer of image "big" (over budget)
HOT="etc/hot1 usr/bin/hot2 hot3"

raw_of() { "$CTL" status --raw "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
host_of() { "$CTL" status --raw "$1" 2>/dev/null | awk '$1 == "host_pid" { print $2 }'; }
# placement of layer @2 (its id) for a new mount of the service of mount @1
place_of() {
	"$CTL" status --raw "$1" | awk -v id="$2" '
		$1 == "layer" && $3 == id { n[$2] = 1 }
		$1 == "placement" && ($2 in n) && $3 != "moved" { p = $3 }
		END { print p }'
}

# make_layer DIR SEED: a layer with every kind of entry an image has.
make_layer() {
	local d=$1 s=$2
	mkdir -p "$d/etc" "$d/usr/bin" "$d/opaque/sub" "$d/var/empty"
	head -c $((40000 + s)) /dev/urandom >"$d/etc/hot1"
	head -c $((90000 + s)) /dev/urandom >"$d/usr/bin/hot2"
	head -c $((7000 + s)) /dev/urandom >"$d/hot3"
	head -c $((1500000 + s)) /dev/urandom >"$d/cold-big"
	head -c 3000 /dev/urandom >"$d/opaque/sub/cold"
	: >"$d/empty"
	truncate -s 2M "$d/sparse" && printf 'tail' >>"$d/sparse"
	ln "$d/usr/bin/hot2" "$d/usr/bin/hot2-link"
	ln -s ../etc/hot1 "$d/usr/hot1-link"
	mknod "$d/whiteout" c 0 0
	chmod 4755 "$d/usr/bin/hot2"
	chown 1000:1000 "$d/opaque/sub/cold"
	setfattr -n trusted.overlay.opaque -v y "$d/opaque"
	setfattr -n user.note -v "layer $s" "$d/etc/hot1"
	touch -d @1600000000 "$d/etc/hot1" "$d/opaque" "$d/var/empty" "$d"
}

# registry NVM: image app (B on HDD under A on NVM), image big (C).
write_registry() {
	local nvm=$1 hdd=$2
	{
		echo "nlayerfs-images 1"
		echo "image app sha256:$ID_A 2"
		echo "layer hdd sha256:$ID_B 100 $hdd/layers/$ID_B"
		echo "layer nvm sha256:$ID_A 100 $nvm/layers/$ID_A"
		[ ! -d "$nvm/layers/$ID_C" ] || {
			echo "image big sha256:$ID_C 1"
			echo "layer nvm sha256:$ID_C 100 $nvm/layers/$ID_C"
		}
	} >"$nvm/images"
}

# store NAME: a fresh NVM and HDD directory pair $S/nvm, $S/hdd.
store() {
	S=$T/$1
	mkdir -p "$S/nvm/layers" "$S/hdd/layers" "$S/m1" "$S/m2"
	make_layer "$S/nvm/layers/$ID_A" 1
	make_layer "$S/hdd/layers/$ID_B" 2
	write_registry "$S/nvm" "$S/hdd"
	FP_A=$(layer_fingerprint "$S/nvm/layers/$ID_A")
	FP_B=$(layer_fingerprint "$S/hdd/layers/$ID_B")
	cp -a "$S/nvm/layers/$ID_A" "$T/orig-$1"
}

# mount_image MNT [OPTS]: image app of store $S, read-only, tiered.
mount_image() {
	impl_mount "image=app,nvm=$S/nvm,hdd=$S/hdd,nvm_size=64M,host_idle=0,trace_quiet=1${2:+,$2}" "$1"
}

# Every file reads its original bytes through the mount @1.
reads_all() {
	local m=$1 f
	for f in $HOT cold-big opaque/sub/cold empty sparse usr/bin/hot2-link usr/hot1-link; do
		cmp "$m/$f" "$T/orig-$(basename "$S")/$f" || { echo "$m/$f differs"; return 1; }
	done
	[ ! -e "$m/whiteout" ] || { echo "a whiteout shows in $m"; return 1; }
}

# The layer the registry names is complete and equal to the original, and
# so is NVM/layers/<id> (a directory or the symlink to its HDD copy).
layer_intact() {
	local path
	path=$(awk -v id="sha256:$ID_A" '$1 == "layer" && $3 == id { print $5; exit }' "$S/nvm/images")
	[ -d "$path" ] || { echo "the registry names $path: not a directory"; return 1; }
	[ "$(layer_fingerprint "$path")" = "$FP_A" ] || { echo "layer $path differs"; return 1; }
	[ "$(layer_fingerprint "$S/nvm/layers/$ID_A")" = "$FP_A" ] || { echo "NVM/layers/<id> differs"; return 1; }
	[ "$(layer_fingerprint "$S/hdd/layers/$ID_B")" = "$FP_B" ] || { echo "HDD layer changed"; return 1; }
}

# A traced start reads the hot files; its window ends (trace_quiet=1).
traced_start() {
	local f
	for f in $HOT; do cat "$1/$f" >/dev/null || return 1; done
	"$CTL" trace stop "$1" >/dev/null && "$CTL" wait "$1" 60 >/dev/null
}

# objects_of_hot [ORIG]: every hot file of the original layer has its NVM copy
objects_of_hot() {
	local f orig=${1:-$T/orig-$(basename "$S")}
	for f in $HOT; do
		[ -f "$S/nvm/objects/$(sha256sum <"$orig/$f" | cut -d' ' -f1)" ] ||
			{ echo "no NVM copy of $f"; return 1; }
	done
}

no_leftovers() { [ -z "$(ls -A "$1" | grep '^\.nlmove')" ]; }
placed() { [ "$(place_of "$1" "$2")" = "$3" ]; }
raw_is() { [ "$(raw_of "$1" "$2")" = "$3" ]; }

wait_for() {
	local i
	for i in $(seq 150); do "$@" && return 0; sleep 0.1; done
	"$@"
}

# ---- a move under a running mount ----

move_under_mount() {
	local out
	store s1
	mount_image "$S/m1" || return 1
	[ "$(place_of "$S/m1" "$ID_A")" = nvm ] && [ "$(place_of "$S/m1" "$ID_B")" = hdd ] ||
		{ "$CTL" status --raw "$S/m1"; return 1; }
	traced_start "$S/m1" || return 1
	exec 7<"$S/m1/cold-big"
	head -c 1000 <&7 >/dev/null
	out=$("$CTL" move "$S/m1" "$ID_A") || { echo "$out"; exec 7<&-; return 1; }
	echo "$out" | grep -q "^moved $ID_A" || { echo "$out"; exec 7<&-; return 1; }
	# the open descriptor keeps reading the rest of its file
	cmp <(tail -c +1001 "$T/orig-s1/cold-big") <(cat <&7) || { exec 7<&-; return 1; }
	exec 7<&-
	reads_all "$S/m1"
}

switched() {
	[ -L "$S/nvm/layers/$ID_A" ] &&
		[ "$(readlink -f "$S/nvm/layers/$ID_A")" = "$(readlink -f "$S/hdd/layers/$ID_A")" ] ||
		{ echo "NVM/layers/<id> is not the symlink to the HDD copy"; return 1; }
	grep -q "^layer hdd sha256:$ID_A [0-9]* $S/hdd/layers/$ID_A\$" "$S/nvm/images" ||
		{ cat "$S/nvm/images"; return 1; }
	layer_intact && objects_of_hot
}

old_copy_held() {
	[ -d "$S/nvm/layers/.nlmove-old-$ID_A" ] || { echo "the NVM copy went while held"; return 1; }
	[ "$(place_of "$S/m1" "$ID_A")" = hdd ] || return 1
	"$CTL" status --raw "$S/m1" | grep -q "^placement [0-9]* leaving store [1-9]" ||
		{ "$CTL" status --raw "$S/m1"; return 1; }
	"$CTL" status "$S/m1" | grep -q "its NVM copy .* waits for 1 holder" ||
		{ "$CTL" status "$S/m1"; return 1; }
}

# A new mount reads the HDD copy, its hot files from their NVM copies
# (untraced: its reads would make every file hot).
new_mount_reads_hdd() {
	local pid hot
	mount_image "$S/m2" trace=off || return 1
	reads_all "$S/m2" || return 1
	pid=$(host_of "$S/m2")
	hot=$(sha256sum <"$T/orig-s1/etc/hot1" | cut -d' ' -f1)
	exec 8<"$S/m2/etc/hot1" 9<"$S/m2/opaque/sub/cold"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $S/nvm/objects/$hot" &&
		ls -l "/proc/$pid/fd" | grep -q -- "-> $S/hdd/layers/$ID_A/opaque/sub/cold" ||
		{ ls -l "/proc/$pid/fd"; exec 8<&- 9<&-; return 1; }
	exec 8<&- 9<&-
}

# Once the first mount is gone, nothing holds the NVM copy: deleted.
old_copy_deleted() {
	local used budget
	nl_umount "$S/m1" || return 1
	wait_for test ! -e "$S/nvm/layers/.nlmove-old-$ID_A" || { echo "NVM copy still there"; return 1; }
	wait_for raw_is "$S/m2" move_reaped 1 || return 1
	reads_all "$S/m2" && layer_intact || return 1
	used=$(raw_of "$S/m2" nvm_used) budget=$(raw_of "$S/m2" nvm_budget)
	[ "$used" -le "$budget" ] || { echo "nvm_used $used > $budget"; return 1; }
	# NVM holds the hot copies now, not the layer
	[ "$used" -lt 1000000 ] || { echo "nvm_used $used: the layer is still counted"; "$CTL" status --raw "$S/m2"; return 1; }
	nl_umount "$S/m2"
}

# ---- moves the service decides ----

# A store over its budget: after the start, its NVM layer moves by itself.
over_budget_moves() {
	local used
	store s2
	make_layer "$S/nvm/layers/$ID_C" 3
	write_registry "$S/nvm" "$S/hdd"
	cp -a "$S/nvm/layers/$ID_C" "$T/orig-c"
	impl_mount "image=big,nvm=$S/nvm,hdd=$S/hdd,nvm_size=1M,host_idle=0,trace_quiet=1" "$S/m1" ||
		return 1
	traced_start "$S/m1" || return 1
	wait_for placed "$S/m1" "$ID_C" hdd || { "$CTL" status "$S/m1"; return 1; }
	for f in $HOT cold-big sparse; do cmp "$S/m1/$f" "$T/orig-c/$f" || return 1; done
	objects_of_hot "$T/orig-c" || { "$CTL" status --raw "$S/m1"; return 1; }
	nl_umount "$S/m1" || return 1
	impl_mount "image=big,nvm=$S/nvm,hdd=$S/hdd,nvm_size=1M,host_idle=0,trace_quiet=1" "$S/m1" ||
		return 1
	wait_for test ! -e "$S/nvm/layers/.nlmove-old-$ID_C" || { echo "NVM copy left"; return 1; }
	used=$(raw_of "$S/m1" nvm_used)
	[ "$used" -le $((1024 * 1024)) ] || { echo "nvm_used $used over the 1 MiB budget"; return 1; }
	[ "$(layer_fingerprint "$S/nvm/layers/$ID_C")" = "$(layer_fingerprint "$T/orig-c")" ] ||
		{ echo "the layer differs"; return 1; }
	# the traced files stayed on NVM, the cold ones did not
	objects_of_hot "$T/orig-c" || { "$CTL" status "$S/m1"; return 1; }
	[ ! -e "$S/nvm/objects/$(sha256sum <"$T/orig-c/cold-big" | cut -d' ' -f1)" ] ||
		{ echo "a cold file was copied to NVM"; return 1; }
	nl_umount "$S/m1"
}

# A layer named in lowerdir= by a path outside the store stays.
named_layer_stays() {
	local out
	store s3
	mkdir -p "$S/nvm/mine"
	make_layer "$S/nvm/mine/l" 4
	impl_mount "lowerdir=$S/nvm/mine/l,nvm=$S/nvm,hdd=$S/hdd,host_idle=0" "$S/m1" || return 1
	"$CTL" status --raw "$S/m1" | grep -q "^placement 0 nvm path" || { "$CTL" status --raw "$S/m1"; return 1; }
	if out=$("$CTL" move "$S/m1" 0 2>&1); then echo "moved a layer named by its path"; return 1; fi
	echo "$out" | grep -q "named by its path" || { echo "$out"; return 1; }
	[ -d "$S/nvm/mine/l" ] && [ ! -L "$S/nvm/mine/l" ] && nl_umount "$S/m1"
}

# An image imported with nlayerfs-import: its layers move, the registry
# the import wrote is switched, and a mount by name reads the HDD copies.
imported_image_moves() {
	local d=$T/imp n l out
	mkdir -p "$d/src/base/etc" "$d/src/app/bin" "$d/m"
	head -c 300000 /dev/urandom >"$d/src/base/etc/data"
	head -c 20000 /dev/urandom >"$d/src/app/bin/tool"
	python3 "$SRC/test/demo/make-oci" "$d/oci" imp:1 "$d/src/base:base" "$d/src/app:app" \
		>/dev/null || return 1
	"$NLBUILD/nlayerfs-import" --nvm "$d/nvm" --hdd "$d/hdd" --name imp --placement nvm \
		--quiet "oci:$d/oci" >/dev/null || return 1
	impl_mount "image=imp,nvm=$d/nvm,hdd=$d/hdd,host_idle=0,trace=off" "$d/m" || return 1
	for n in 0 1; do
		out=$("$CTL" move "$d/m" "$n") || { echo "$out"; return 1; }
	done
	[ "$(grep -c '^layer hdd ' "$d/nvm/images")" = 2 ] || { cat "$d/nvm/images"; return 1; }
	nl_umount "$d/m" || return 1
	impl_mount "image=imp,nvm=$d/nvm,hdd=$d/hdd,host_idle=0,trace=off" "$d/m" || return 1
	cmp "$d/m/etc/data" "$d/src/base/etc/data" && cmp "$d/m/bin/tool" "$d/src/app/bin/tool" ||
		return 1
	for l in "$d"/nvm/layers/*; do
		[ -L "$l" ] || { echo "$l is still on NVM"; return 1; }
	done
	wait_for no_leftovers "$d/nvm/layers" && nl_umount "$d/m"
}

# ---- kill -9 of the tier service ----

# kill_at POINT WHAT: the service started with NLAYERFS_FAULT=POINT dies
# there while doing WHAT (a function given the mount).
kill_at() {
	local point=$1 what=$2 pid
	NLAYERFS_FAULT=$point mount_image "$S/m1" || return 1
	pid=$(host_of "$S/m1")
	"$what" "$S/m1" >/dev/null 2>&1
	wait_for test ! -d "/proc/$pid" || { echo "the service did not die at $point"; return 1; }
	# the mount outlives its service: its keeper hands it to the next
	reads_all "$S/m1" || { echo "the mount failed with its service at $point"; return 1; }
	umount -l "$S/m1" 2>/dev/null
	layer_intact
}

do_move() { traced_start "$1"; "$CTL" move "$1" "$ID_A"; }

# A move is finished (switch made, NVM copy deleted) or rolled back (no
# trace of it), and the next move completes.
settled() {
	if [ -L "$S/nvm/layers/$ID_A" ]; then
		grep -q "^layer hdd sha256:$ID_A " "$S/nvm/images" || { echo "registry not finished"; return 1; }
		wait_for test ! -e "$S/nvm/layers/.nlmove-old-$ID_A" || { echo "NVM copy left"; return 1; }
	else
		wait_for test ! -e "$S/hdd/layers/$ID_A" || { echo "unfinished HDD copy left"; return 1; }
	fi
	[ -z "$(ls -A "$S/hdd/layers" | grep '^\.nlmove')" ] || { ls -la "$S/hdd/layers"; return 1; }
	[ -z "$(ls -A "$S/nvm/layers" | grep '^\.nlmove')" ] || { ls -la "$S/nvm/layers"; return 1; }
}

kill_during_move() {
	local point=$1
	store "k-$point"
	kill_at "$point" do_move || return 1
	mount_image "$S/m1" || return 1
	reads_all "$S/m1" && layer_intact && wait_for settled || return 1
	if [ ! -L "$S/nvm/layers/$ID_A" ]; then
		"$CTL" move "$S/m1" "$ID_A" >/dev/null || return 1
	fi
	reads_all "$S/m1" && nl_umount "$S/m1" || return 1
	wait_for test ! -e "$S/nvm/layers/.nlmove-old-$ID_A" && layer_intact
}

# The deletion of the NVM copy: it starts once its mount is gone, so a
# second mount of another layer keeps the service.
kill_during_reap() {
	local pid
	store k-reap
	mkdir -p "$S/other"
	echo x >"$S/other/x"
	NLAYERFS_FAULT=move-reaping mount_image "$S/m1" || return 1
	impl_mount "lowerdir=$S/other,nvm=$S/nvm,hdd=$S/hdd,host_idle=0" "$S/m2" || return 1
	pid=$(host_of "$S/m1")
	do_move "$S/m1" >/dev/null || return 1
	nl_umount "$S/m1"
	wait_for test ! -d "/proc/$pid" || { echo "the service did not die deleting"; return 1; }
	[ "$(cat "$S/m2/x")" = x ] || { echo "the other mount failed with its service"; return 1; }
	umount -l "$S/m2" 2>/dev/null
	layer_intact || return 1
	mount_image "$S/m1" || return 1
	wait_for settled && reads_all "$S/m1" && layer_intact && nl_umount "$S/m1"
}

# A promotion of an HDD layer's hot files, killed at each of its steps:
# the layer is unchanged, no partial object is named, the next service
# promotes them again.
kill_during_promotion() {
	local point=$1 name pid
	store "p-$point"
	mount_image "$S/m1" || return 1
	"$CTL" move "$S/m1" "$ID_A" >/dev/null || return 1	# every file on HDD now
	pid=$(host_of "$S/m1")
	nl_umount "$S/m1" || return 1
	wait_for test ! -d "/proc/$pid" || return 1
	kill_at "$point" traced_start || return 1
	for name in "$S"/nvm/objects/*; do
		[ -f "$name" ] || continue
		[ "$(sha256sum <"$name" | cut -d' ' -f1)" = "$(basename "$name")" ] || {
			case $(basename "$name") in tmp.*) ;; *) echo "partial object $name"; return 1 ;; esac
		}
	done
	mount_image "$S/m1" || return 1
	reads_all "$S/m1" && traced_start "$S/m1" && "$CTL" wait "$S/m1" 60 >/dev/null || return 1
	objects_of_hot && reads_all "$S/m1" && layer_intact && nl_umount "$S/m1"
}

# ---- main ----

nl_init
if [ -z "$SKIP_ALL" ] && ! command -v setfattr >/dev/null; then
	SKIP_ALL="setfattr (attr) is needed to build the layers"
fi
if [ -n "$SKIP_ALL" ]; then
	skip "layer moves" "$SKIP_ALL"
	nl_done
fi

check "a layer of the store moves to HDD under a running mount; reads go on" move_under_mount
check "NVM/layers/<id> leads to the HDD copy, the registry names it, hot files on NVM" switched
check "the NVM copy stays while the running mount holds it; status says so" old_copy_held
check "a new mount reads the HDD copy, its hot files from NVM" new_mount_reads_hdd
check "the NVM copy is deleted once no mount holds it; the budget holds" old_copy_deleted
check "a service over its NVM budget moves a layer by itself" over_budget_moves
check "a layer named by its path in lowerdir= stays where it is" named_layer_stays
check "the layers of an image imported with nlayerfs-import move" imported_image_moves
for p in move-copying move-copied move-renamed move-hot move-exchanged move-switched; do
	check "kill -9 of the service at $p: nothing lost, the move settles" kill_during_move "$p"
done
check "kill -9 of the service deleting the NVM copy: finished by the next" kill_during_reap
for p in promote-copying promote-written promote-renamed promote-committed; do
	check "kill -9 of the service at $p: the layer intact, promoted again" kill_during_promotion "$p"
done
nl_done
