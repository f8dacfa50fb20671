#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nlayerfs-import on hostile or broken layers, built here with python3's
# tarfile and read through libarchive as any image: whiteouts naming no
# file, overlay xattrs an image must not set, over-long paths, a full disk,
# a layer that is no tar, a truncated OCI archive. Each is refused (or
# cleaned) with a message that says what is wrong, and the store is left
# as it was.
. "$(dirname "$0")/lib-import.sh"
import_init layers "hostile layers" python3
TMPFS=""
cleanup() {
	[ -z "$TMPFS" ] || umount "$TMPFS" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT

cat >"$D/mk.py" <<'PYEOF'
import hashlib, io, json, os, sys, tarfile

def entry(t, name, data=b'', kind=tarfile.REGTYPE, mode=0o644, xattrs=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = kind, mode, 1600000000
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    for k, v in (xattrs or {}).items():
        ti.pax_headers['SCHILY.xattr.' + k] = v
    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

def layer(variant):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        entry(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)
        entry(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\n')
        if variant == 'whdot':
            entry(t, 'etc/.wh..')
        elif variant == 'xattrs':
            entry(t, 'd', kind=tarfile.DIRTYPE, mode=0o755, xattrs={
                'trusted.overlay.redirect': '/etc', 'trusted.overlay.metacopy': '',
                'trusted.overlay.origin': 'x', 'user.overlay.redirect': '/etc',
                'trusted.overlay.opaque': 'y', 'user.overlay.opaque': 'y',
                'user.app': 'kept'})
        elif variant == 'longpath':
            entry(t, 'deep/' * 900 + 'f', b'x')
        elif variant == 'big':
            entry(t, 'big', os.urandom(6 << 20))
    raw = buf.getvalue()
    if variant == 'notar':
        raw = b'this is not a tar archive\n' * 40
    return raw

def put(root, b):
    h = hashlib.sha256(b).hexdigest()
    with open(os.path.join(root, 'blobs', 'sha256', h), 'wb') as f:
        f.write(b)
    return 'sha256:' + h

def build(root, variant):
    os.makedirs(os.path.join(root, 'blobs', 'sha256'))
    raw = layer(variant)
    cfg = json.dumps({'architecture': 'amd64', 'os': 'linux',
                      'rootfs': {'type': 'layers',
                                 'diff_ids': ['sha256:' + hashlib.sha256(raw).hexdigest()]},
                      'history': [{'created_by': 'test layer ' + variant}]}).encode()
    man = json.dumps({'schemaVersion': 2,
                      'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                      'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                 'digest': put(root, cfg), 'size': len(cfg)},
                      'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar',
                                  'digest': put(root, raw), 'size': len(raw)}]}).encode()
    json.dump({'schemaVersion': 2, 'manifests': [{
        'mediaType': 'application/vnd.oci.image.manifest.v1+json',
        'digest': put(root, man), 'size': len(man),
        'annotations': {'org.opencontainers.image.ref.name': variant}}]},
        open(os.path.join(root, 'index.json'), 'w'))
    open(os.path.join(root, 'oci-layout'), 'w').write('{"imageLayoutVersion": "1.0.0"}')

build(sys.argv[1], sys.argv[2])
PYEOF

# store_clean DIR...: nothing but empty layers/ dirs and the lock
store_clean() {
	local left
	left=$(find "$@" -mindepth 1 ! -name layers ! -name .import.lock 2>/dev/null)
	[ -z "$left" ] || { echo "# left behind: $left"; return 1; }
}

# refused NAME VARIANT PATTERN [import options]: the import fails, names
# the problem, and leaves an empty store.
refused() {
	local name=$1 v=$2 pat=$3 s=$D/st-$2
	shift 3
	python3 "$D/mk.py" "$D/$v" "$v"
	if "$IMPORT" -q --nvm "$s/nvm" --hdd "${HDD_DIR:-$s/hdd}" --name bad/img "$@" \
		"$D/$v" 2>"$s.err"; then
		notok "$name: import succeeded"
	elif ! grep -q -- "$pat" "$s.err"; then
		echo "# error was: $(cat "$s.err")"
		notok "$name: unclear error"
	elif ! store_clean "$s/nvm" "${HDD_DIR:-$s/hdd}"; then
		notok "$name: something left behind"
	else
		ok "$name"
	fi
}

refused "whiteout '.wh..' (empty name) refused, naming layer and entry" whdot \
	"layer 1: refusing whiteout entry 'etc/.wh..'"
refused "a path over 4 KiB is 'path too long', not traversal" longpath \
	"layer 1: refusing entry 'deep/deep/.*path too long"
refused "a layer that is no tar: clear error" notar "layer 1: .*tar"

# a truncated OCI archive (oci-archive:) fails before anything is stored
python3 "$D/mk.py" "$D/whole" good
tar -C "$D/whole" -cf "$D/whole.tar" .
head -c $(($(stat -c %s "$D/whole.tar") / 2)) "$D/whole.tar" >"$D/half.tar"
s=$D/st-half
if "$IMPORT" -q --nvm "$s/nvm" --hdd "$s/hdd" --name half "oci-archive:$D/half.tar" 2>"$s.err"; then
	notok "truncated OCI archive: import succeeded"
elif ! grep -q "half.tar: .*\(runcated\|missing\|bad archive\)" "$s.err"; then
	echo "# error was: $(cat "$s.err")"
	notok "truncated OCI archive: unclear error"
elif ! store_clean "$s/nvm" "$s/hdd"; then
	notok "truncated OCI archive: something left behind"
else
	ok "truncated OCI archive refused, naming the archive, nothing left"
fi

if [ "$ROOT" = 1 ]; then
	v=xattrs s=$D/st-xattrs
	python3 "$D/mk.py" "$D/$v" "$v"
	"$IMPORT" --nvm "$s/nvm" --hdd "$s/hdd" --name x/attrs "$D/$v" >"$s.out" 2>&1
	dir=$("$IMPORT" --nvm "$s/nvm" --print-lowerdir x/attrs)/d
	got=$(getfattr -m - -d --absolute-names "$dir" 2>/dev/null | grep -v '^#' | grep . | sort | tr '\n' ' ')
	if [ "$got" = 'trusted.overlay.opaque="y" user.app="kept" user.overlay.opaque="y" ' ]; then
		ok "overlay xattrs of the image dropped at import, opaque kept"
	else
		echo "# xattrs: $got"
		notok "overlay xattrs of the image dropped at import, opaque kept"
	fi
	if grep -q "layer 1: 4 overlay xattrs of the image dropped" "$s.out"; then
		ok "the import says how many overlay xattrs it dropped"
	else
		echo "# output: $(cat "$s.out")"
		notok "the import says how many overlay xattrs it dropped"
	fi
	# a full disk says so (libarchive's retries used to surface as EEXIST)
	TMPFS=$D/small
	mkdir -p "$TMPFS"
	if mount -t tmpfs -o size=2M tmpfs "$TMPFS"; then
		HDD_DIR=$TMPFS refused "a full disk says 'no space left on' the store" big \
			"layer 1: no space left on $TMPFS/layers" --placement hdd
	else
		skip "a full disk says 'no space left'" "cannot mount a tmpfs"
	fi
else
	skip "overlay xattrs dropped at import" "needs root (trusted xattrs)"
	skip "a full disk says 'no space left'" "needs root (tmpfs mount)"
fi
echo "1..$n"
