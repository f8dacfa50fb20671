#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nlayerfs-import: OCI layouts (directory and tar) and docker-save tarballs
# built here with tar/gzip/zstd/sha256 (python3's tarfile writes the entries,
# so that whiteouts, opaque dirs, hard links, xattrs, capabilities, owners and
# device nodes are exactly what the test says), imported, compared layer by
# layer with the model, mounted with the in-kernel overlayfs and compared
# again; then hostile and broken images, each refused with a clear error and
# nothing left behind.
set -u
B=${NLAYERFS_BUILD:-build}
IMPORT=$B/nlayerfs-import
D=$(mktemp -d /tmp/nl-I-import.XXXXXX)
MOUNTS=()
cleanup() {
	local m
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }

if [ ! -x "$IMPORT" ]; then
	echo "not ok 1 - nlayerfs-import built ($IMPORT missing)"
	exit 1
fi
for tool in python3 gzip zstd tar; do
	if ! command -v "$tool" >/dev/null; then
		echo "ok 1 - image import # SKIP $tool is needed to build the test images"
		echo "1..1"
		exit 0
	fi
done
ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1

cat >"$D/gen.py" <<'PYEOF'
import hashlib, io, json, os, shutil, stat, subprocess, sys, tarfile

T0 = 1600000000
# security.capability v2: cap_net_bind_service permitted, effective
CAP = b'\x01\x00\x00\x02' + b'\x00\x04\x00\x00' + b'\x00' * 12

def F(p, data, mode=0o644, uid=0, gid=0, x=None): return dict(k='f', p=p, data=data, mode=mode, uid=uid, gid=gid, x=x or {})
def Dr(p, mode=0o755, uid=0, gid=0, x=None): return dict(k='d', p=p, mode=mode, uid=uid, gid=gid, x=x or {})
def S(p, t): return dict(k='l', p=p, t=t, mode=0o777, uid=0, gid=0, x={})
def H(p, t): return dict(k='h', p=p, t=t)
def C(p, ma, mi): return dict(k='c', p=p, ma=ma, mi=mi, mode=0o666, uid=0, gid=0, x={})
def W(p): return dict(k='w', p=p)
def O(p): return dict(k='o', p=p)

def layers(variant, outside):
    big = bytes(range(256)) * 256
    l1 = [Dr('etc'), F('etc/os-release', b'ID=test\n', x={'user.test': b'hello'}),
          Dr('usr'), Dr('usr/bin'), F('usr/bin/tool', b'#!/bin/sh\necho tool\n', 0o755,
          x={'security.capability': CAP}), F('usr/bin/suid', b'x', 0o4755),
          Dr('home'), Dr('home/u', 0o700, 1000, 1000), F('home/u/notes', b'n', 0o600, 1000, 1000),
          Dr('a'), F('a/keep', b'keep'), F('a/gone', b'gone'),
          Dr('d'), F('d/old1', b'1'), F('d/old2', b'2'), Dr('d/sub'), F('d/sub/s', b's'),
          Dr('hl'), F('hl/orig', b'linked'), H('hl/link', 'hl/orig'),
          S('sl', 'etc/os-release'), S('abs', '/etc/os-release'),
          Dr('dev'), C('dev/null0', 1, 3)]
    l2 = [Dr('a'), W('a/gone'), Dr('d'), O('d'), F('d/new', b'new'),
          Dr('app'), F('app/main.py', b'print(1)\n', 0o755),
          F('etc/os-release', b'ID=test2\n', x={'user.test': b'two'})]
    l3 = [W('sl'), F('a/keep', b'keep3', 0o640), Dr('x'), F('x/big', big),
          Dr('hl'), F('hl/other', b'o'), H('hl/other2', 'hl/other')]
    if variant == 'alt':
        l1.append(F('etc/alt', b'another image'))
    if variant == 'traversal':
        l3.append(F('../evil', b'evil'))
    if variant == 'absolute':
        l3.append(F('/abs-evil', b'evil'))
    if variant == 'symlink':
        l3 += [S('esc', outside), F('esc/pwned', b'pwned')]
    if variant == 'hardlink':
        l3.append(H('hlout', '../../../../../../etc/hostname'))
    return [l1, l2, l3]

def parents(entries):
    have, out = set(), []
    for e in entries:
        parts = e['p'].split('/')[:-1]
        for i in range(1, len(parts) + 1):
            d = '/'.join(parts[:i])
            if d and d not in have and d not in ('..', '') and not d.startswith('/'):
                if not any(x['p'] == d for x in entries):
                    out.append(Dr(d))
                have.add(d)
        out.append(e)
    return out

def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for i, e in enumerate(parents(entries)):
            k, p = e['k'], e['p']
            name = p
            if k == 'w':
                d, b = os.path.split(p)
                name = os.path.join(d, '.wh.' + b)
            elif k == 'o':
                name = p + '/.wh..wh..opq'
            ti = tarfile.TarInfo(name)
            ti.mtime = T0 + i
            ti.uname = ti.gname = ''
            data = None
            if k in ('f', 'w', 'o'):
                data = e.get('data', b'')
                ti.size = len(data)
                ti.mode = e.get('mode', 0o644)
            elif k == 'd':
                ti.type, ti.mode = tarfile.DIRTYPE, e['mode']
            elif k == 'l':
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e['t'], 0o777
            elif k == 'h':
                ti.type, ti.linkname = tarfile.LNKTYPE, e['t']
            elif k == 'c':
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, e['ma'], e['mi'], e['mode']
            ti.uid, ti.gid = e.get('uid', 0), e.get('gid', 0)
            for xk, xv in e.get('x', {}).items():
                ti.pax_headers['SCHILY.xattr.' + xk] = xv.decode('latin-1')
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()

def sha(b): return 'sha256:' + hashlib.sha256(b).hexdigest()

def compress(raw, how):
    if how == 'plain':
        return raw
    cmd = {'gzip': ['gzip', '-n', '-c'], 'zstd': ['zstd', '-q', '-c']}[how]
    return subprocess.run(cmd, input=raw, stdout=subprocess.PIPE, check=True).stdout

# ---- the model: what a layer and the merged tree must look like ----
def meta(e):
    return dict(mode=e.get('mode', 0o644), uid=e.get('uid', 0), gid=e.get('gid', 0),
                x={k: v.hex() for k, v in e.get('x', {}).items()})

def layer_model(entries):
    m = {}
    for i, e in enumerate(parents(entries)):
        k, p = e['k'], e['p']
        if k == 'f':
            m[p] = dict(meta(e), t='f', sha=hashlib.sha256(e['data']).hexdigest(), mtime=T0 + i)
        elif k == 'd':
            m[p] = dict(meta(e), t='d', **({'x': m[p]['x']} if p in m else {}))
        elif k == 'l':
            m[p] = dict(meta(e), t='l', target=e['t'])
        elif k == 'c':
            m[p] = dict(meta(e), t='c', rdev=[e['ma'], e['mi']])
        elif k == 'w':
            m[p] = dict(t='c', rdev=[0, 0], mode=0, uid=0, gid=0, x={})
        elif k == 'o':
            m.setdefault(p, dict(meta(Dr(p)), t='d'))['x']['trusted.overlay.opaque'] = b'y'.hex()
        elif k == 'h' and e['t'] in m:
            m[p] = dict(m[e['t']])
            m[p]['links'] = m[e['t']]['links'] = sorted([p, e['t']] + m[e['t']].get('links', []))
            m[p]['links'] = m[e['t']]['links'] = sorted(set(m[p]['links']))
    return m

def merge(models):
    out = {}
    for m in models:
        for p, v in m.items():
            if v['t'] == 'c' and v['rdev'] == [0, 0]:
                for q in [q for q in out if q == p or q.startswith(p + '/')]:
                    del out[q]
            if v['t'] == 'd' and 'trusted.overlay.opaque' in v['x']:
                for q in [q for q in out if q.startswith(p + '/')]:
                    del out[q]
            if p in out and out[p]['t'] != 'd' or v['t'] != 'd':
                for q in [q for q in out if q.startswith(p + '/')]:
                    del out[q]
        for p, v in m.items():
            if v['t'] == 'c' and v['rdev'] == [0, 0]:
                continue
            v = dict(v, x={k: x for k, x in v['x'].items() if not k.startswith('trusted.overlay.')})
            out[p] = v
    return out

def walk(root, merged):
    res, inodes = {}, {}
    for dp, dns, fns in os.walk(root):
        for name in dns + fns:
            full = os.path.join(dp, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            v = dict(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, x={})
            for xk in os.listxattr(full, follow_symlinks=False):
                if xk.startswith('user.') or xk in ('security.capability', 'trusted.overlay.opaque'):
                    v['x'][xk] = os.getxattr(full, xk, follow_symlinks=False).hex()
            if stat.S_ISREG(st.st_mode):
                v.update(t='f', sha=hashlib.sha256(open(full, 'rb').read()).hexdigest(),
                         mtime=int(st.st_mtime))
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISDIR(st.st_mode):
                v['t'] = 'd'
            elif stat.S_ISLNK(st.st_mode):
                v.update(t='l', target=os.readlink(full))
                v['mode'] = 0o777
            elif stat.S_ISCHR(st.st_mode):
                v.update(t='c', rdev=[os.major(st.st_rdev), os.minor(st.st_rdev)])
            else:
                v['t'] = '?'
            res[rel] = v
    for paths in inodes.values():
        for p in paths:
            res[p]['links'] = sorted(paths)
    return res

def compare(got, want):
    bad = 0
    for p in sorted(set(got) | set(want)):
        if got.get(p) != want.get(p):
            print('# %s: got %s, want %s' % (p, got.get(p), want.get(p)))
            bad += 1
    return bad == 0

# ---- image writers ----
def build(kind, out, variant, outside):
    specs = layers(variant, outside)
    comp = ['gzip', 'zstd', 'plain'] if kind != 'docker' else ['plain', 'plain', 'plain']
    raws = [tar_bytes(s) for s in specs]
    if variant == 'truncated':
        raws[2] = raws[2][:len(raws[2]) // 2 + 700]
    blobs = [compress(r, c) for r, c in zip(raws, comp)]
    diff_ids = [sha(r) for r in raws]
    if variant == 'diffid':
        diff_ids[1] = sha(b'something else')
    config = json.dumps({
        'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/app/main.py']},
        'rootfs': {'type': 'layers', 'diff_ids': diff_ids},
        'history': [{'created_by': '/bin/sh -c #(nop) ADD file:0b1c2d in / '},
                    {'created_by': '/bin/sh -c #(nop) COPY dir:9e8d in /app '},
                    {'created_by': '/bin/sh -c #(nop)  CMD ["/app/main.py"]', 'empty_layer': True},
                    {'created_by': '/bin/sh -c apt-get install -y libfoo'}]}).encode()
    root = out if kind == 'oci' else out + '.d'
    os.makedirs(root + '/blobs/sha256')
    def put(b):
        h = hashlib.sha256(b).hexdigest()
        with open(root + '/blobs/sha256/' + h, 'wb') as f:
            f.write(b)
        return 'sha256:' + h
    types = {'gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
             'zstd': 'application/vnd.oci.image.layer.v1.tar+zstd',
             'plain': 'application/vnd.oci.image.layer.v1.tar'}
    if kind == 'docker':
        shutil.rmtree(root + '/blobs')
        cfg = hashlib.sha256(config).hexdigest() + '.json'
        open(root + '/' + cfg, 'wb').write(config)
        paths = []
        for i, b in enumerate(blobs):
            d = hashlib.sha256(b'%d' % i + b).hexdigest()
            os.makedirs(root + '/' + d)
            open(root + '/' + d + '/layer.tar', 'wb').write(b)
            paths.append(d + '/layer.tar')
        json.dump([{'Config': cfg, 'RepoTags': ['demo/app:1'], 'Layers': paths}],
                  open(root + '/manifest.json', 'w'))
    else:
        descs = [{'mediaType': types[c], 'digest': put(b), 'size': len(b)} for b, c in zip(blobs, comp)]
        if variant == 'mediatype':
            descs[1]['mediaType'] = 'application/vnd.oci.image.layer.v1.tar+bzip2'
        if variant == 'digest':
            p = root + '/blobs/sha256/' + descs[1]['digest'][7:]
            b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0xff
            open(p, 'wb').write(b)
        if variant == 'missing':
            os.unlink(root + '/blobs/sha256/' + descs[1]['digest'][7:])
        man = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                          'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                     'digest': put(config), 'size': len(config)},
                          'layers': descs}).encode()
        md = put(man)
        json.dump({'schemaVersion': 2, 'manifests': [{
            'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': md, 'size': len(man),
            'annotations': {'org.opencontainers.image.ref.name': '1.0'}}]}, open(root + '/index.json', 'w'))
        open(root + '/oci-layout', 'w').write('{"imageLayoutVersion": "1.0.0"}')
    if root != out:
        subprocess.run(['tar', '-C', root, '-cf', out, '.'], check=True)
        shutil.rmtree(root)
    models = [layer_model(s) for s in specs]
    json.dump({'layers': models, 'merged': merge(models)}, open(out + '.expect.json', 'w'))

cmd = sys.argv[1]
if cmd == 'build':
    build(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else '/')
elif cmd in ('layer', 'merged'):
    exp = json.load(open(sys.argv[3]))
    want = exp['layers'][int(sys.argv[4])] if cmd == 'layer' else exp['merged']
    sys.exit(0 if compare(walk(sys.argv[2], cmd == 'merged'), want) else 1)
PYEOF

gen() { python3 "$D/gen.py" "$@"; }

# store_empty DIR...: nothing but empty layers/ dirs, the lock and the registry
store_clean() {
	local left
	left=$(find "$@" -mindepth 1 ! -name layers ! -name .import.lock ! -name images 2>/dev/null)
	[ -z "$left" ] || { echo "# left behind: $left"; return 1; }
}

layers_match() {	# NVM IMAGE EXPECT: every layer dir equals its model
	local lower i=0 n dir rc=0
	lower=$("$IMPORT" --nvm "$1" --print-lowerdir "$2") || return 1
	IFS=: read -ra dirs <<<"$lower"
	n=${#dirs[@]}
	[ "$n" = 3 ] || { echo "# $n layers"; return 1; }
	for dir in "${dirs[@]}"; do	# topmost first
		gen layer "$dir" "$3" $((n - 1 - i)) || rc=1
		i=$((i + 1))
	done
	return $rc
}

overlay_matches() {	# NVM IMAGE EXPECT
	local mnt=$D/mnt-$RANDOM lower
	lower=$("$IMPORT" --nvm "$1" --print-lowerdir "$2") || return 1
	mkdir -p "$mnt"
	mount -t overlay overlay -o "lowerdir=$lower" "$mnt" || return 1
	MOUNTS+=("$mnt")
	gen merged "$mnt" "$3"
}

nlayerfs_matches() {	# NVM IMAGE EXPECT: the image mounted by name
	local mnt=$D/nlmnt-$RANDOM rc=0
	mkdir -p "$mnt"
	"$NLAYERFS" -o "image=$2,nvm=$1" "$mnt" || return 1
	MOUNTS+=("$mnt")
	gen merged "$mnt" "$3" || rc=1
	fusermount3 -u "$mnt" || rc=1
	return $rc
}

layer_roots() {	# NVM IMAGE: the mode of every layer root, topmost first
	local lower d
	lower=$("$IMPORT" --nvm "$1" --print-lowerdir "$2") || return 1
	IFS=: read -ra dirs <<<"$lower"
	for d in "${dirs[@]}"; do stat -c %a "$d"; done | tr '\n' ' '
}

roots_0700() {	# NVM IMAGE: what an import that kept mkdtemp's mode left
	local lower
	lower=$("$IMPORT" --nvm "$1" --print-lowerdir "$2") || return 1
	IFS=: read -ra dirs <<<"$lower"
	chmod 0700 "${dirs[@]}"
}

nobody_reads_mount() {	# NVM IMAGE: a non-root user lists and reads the mounted image
	local mnt=$D/nbmnt-$RANDOM rc=0
	mkdir -p "$mnt"
	chmod 0755 "$D"	# mktemp's 0700 would stop nobody before the mount
	# the daemon of the previous mount may still hold the tier index
	for _ in $(seq 50); do
		"$NLAYERFS" -o "image=$2,nvm=$1" "$mnt" 2>"$D/nb.err" && break
		sleep 0.1
	done
	mountpoint -q "$mnt" || { cat "$D/nb.err"; return 1; }
	MOUNTS+=("$mnt")
	setpriv --reuid=65534 --regid=65534 --clear-groups cat "$mnt/etc/os-release" || rc=1
	fusermount3 -u "$mnt" || rc=1
	echo "# layer roots after the mount: $(layer_roots "$1" "$2")"
	[ "$(layer_roots "$1" "$2")" = "755 755 755 " ] || rc=1
	return $rc
}

tier_of() {	# NVM IMAGE INDEX(0 = bottom): prints nvm or hdd from the registry
	awk -v img="$2" -v k="$3" '$1 == "image" { on = ($2 == img); i = 0; next }
		on && $1 == "layer" { if (i == k) print $2; i++ }' "$1/images"
}

dirs_on_tiers() {	# NVM HDD IMAGE: each layer sits in the dir of its recorded tier
	local i t lower dir
	lower=$("$IMPORT" --nvm "$1" --print-lowerdir "$3") || return 1
	IFS=: read -ra dirs <<<"$lower"
	for i in 0 1 2; do
		t=$(tier_of "$1" "$3" "$i")
		dir=${dirs[$((2 - i))]}
		case "$t" in
		nvm) [[ "$dir" == "$(realpath "$1")"/layers/* ]] || return 1 ;;
		hdd) [[ "$dir" == "$(realpath "$2")"/layers/* ]] || return 1 ;;
		*) return 1 ;;
		esac
	done
}

# ---- good images ----
NVM=$D/nvm HDD=$D/hdd
gen build oci "$D/oci" good
gen build ocitar "$D/oci.tar" good
gen build docker "$D/docker.tar" good
if [ "$ROOT" = 1 ]; then
	check "import an OCI layout directory (gzip, zstd, plain layers)" \
		"$IMPORT" -q --nvm "$NVM" --hdd "$HDD" --name img/oci "oci:$D/oci:1.0"
	check "OCI layers extracted exactly: whiteouts, opaque, links, xattrs, caps, owners" \
		layers_match "$NVM" img/oci "$D/oci.expect.json"
	check "registry tiers match where the layers are" dirs_on_tiers "$NVM" "$HDD" img/oci
	check "layer tars without a ./ entry get a 0755 root, not mkdtemp's 0700" \
		test "$(layer_roots "$NVM" img/oci)" = "755 755 755 "
	check "LASS put the top layers on NVM, the base on HDD" \
		test "$(tier_of "$NVM" img/oci 0)/$(tier_of "$NVM" img/oci 2)" = hdd/nvm
	if grep -qw overlay /proc/filesystems; then
		check "in-kernel overlayfs over the imported layers shows the image" \
			overlay_matches "$NVM" img/oci "$D/oci.expect.json"
	else
		skip "in-kernel overlayfs over the imported layers" "no overlay filesystem"
	fi
	if [ -x "${NLAYERFS:-}" ] && [ -c /dev/fuse ]; then
		check "nlayerfs -o image=NAME mounts the imported image by name" \
			nlayerfs_matches "$NVM" img/oci "$D/oci.expect.json"
	else
		skip "nlayerfs -o image=NAME" "no nlayerfs daemon or /dev/fuse"
	fi
	if [ -x "${NLAYERFS:-}" ] && [ -c /dev/fuse ] && command -v setpriv >/dev/null; then
		roots_0700 "$NVM" img/oci
		check "layer roots 0700 from an earlier import: the mount by name fixes them, nobody reads" \
			nobody_reads_mount "$NVM" img/oci
	else
		skip "0700 layer roots fixed at mount" "no nlayerfs daemon, /dev/fuse or setpriv"
	fi
	roots_0700 "$NVM" img/oci
	out=$("$IMPORT" --nvm "$NVM" --hdd "$HDD" --name img/again "oci-archive:$D/oci.tar" 2>&1)
	check "an OCI archive of the same image reuses every stored layer" \
		test "$(grep -c 'already present' <<<"$out")" = 3
	check "layer roots 0700 from an earlier import are 0755 after the next import" \
		test "$(layer_roots "$NVM" img/again)" = "755 755 755 "
	# a store of its own: the same layers in the first one would be reused
	N2=$D/nvm2 H2=$D/hdd2
	out=$("$IMPORT" --nvm "$N2" --hdd "$H2" --nvm-budget 1 "$D/docker.tar" 2>&1)
	check "docker save tarball: name from RepoTags" test $? = 0
	check "docker save layers extracted exactly" layers_match "$N2" demo/app:1 "$D/docker.tar.expect.json"
	check "an NVM budget of one byte keeps every layer on HDD, and says so" \
		test "$(tier_of "$N2" demo/app:1 0)$(tier_of "$N2" demo/app:1 1)$(tier_of "$N2" demo/app:1 2)/$(grep -c 'does not fit the NVM budget' <<<"$out")" = hddhddhdd/2
	check "nothing stored on NVM under a budget of one byte" test -z "$(ls -A "$N2/layers")"
	if grep -qw overlay /proc/filesystems; then
		check "in-kernel overlayfs over the docker-save layers" \
			overlay_matches "$N2" demo/app:1 "$D/docker.tar.expect.json"
	fi
	"$IMPORT" -q --nvm "$NVM" --hdd "$HDD" --name demo/app:1 "docker-archive:$D/docker.tar"
	check "--list shows the images" \
		bash -c "\"$IMPORT\" --nvm \"$NVM\" --list | grep -c '^img/oci \|^img/again \|^demo/app:1 ' | grep -qx 3"
	# the budget covers the whole NVM store: a second image finds it used up
	gen build oci "$D/alt" alt
	N4=$D/nvm4 H4=$D/hdd4
	"$IMPORT" -q --nvm "$N4" --hdd "$H4" --placement nvm --nvm-budget 100K --name b/one "$D/oci"
	out=$("$IMPORT" --nvm "$N4" --hdd "$H4" --placement nvm --nvm-budget 100K --name b/two "$D/alt" 2>&1)
	check "NVM budget holds across images: the second goes to HDD, and says so" \
		test "$(tier_of "$N4" b/one 0)$(tier_of "$N4" b/two 0)/$(grep -c 'does not fit the NVM budget' <<<"$out")" = nvmhdd/3
	check "NVM use stays within the budget" \
		test "$(awk '$1 == "layer" && $2 == "nvm" { s += $4 } END { print s }' "$N4/images")" -le 102400
	# two imports into one store at once: serialised, both registered
	N3=$D/nvm3 H3=$D/hdd3
	"$IMPORT" -q --nvm "$N3" --hdd "$H3" --name c/one "$D/oci" & p1=$!
	"$IMPORT" -q --nvm "$N3" --hdd "$H3" --name c/two "$D/docker.tar" & p2=$!
	wait $p1; r1=$?; wait $p2; r2=$?
	check "concurrent imports into one store both succeed" \
		test "$r1/$r2/$(grep -c '^image c/' "$N3/images")" = 0/0/2
	check "concurrent imports share the layers, none stored twice" \
		test "$(ls "$N3/layers" "$H3/layers" | grep -c '^[0-9a-f]\{64\}$')" = 3
	# leftovers of an interrupted import are cleaned by the next one
	mkdir -p "$HDD/layers/.tmp-deadbeef-XXXXXX/half" "$NVM/.import-src-abc"
	"$IMPORT" -q --nvm "$NVM" --hdd "$HDD" --placement hdd --name img/hdd "$D/oci" >/dev/null 2>&1
	check "leftovers of an interrupted import removed" \
		test ! -e "$HDD/layers/.tmp-deadbeef-XXXXXX" -a ! -e "$NVM/.import-src-abc"
else
	for t in "OCI layout import and exact layers" "docker-save import" "in-kernel overlay compare"; do
		skip "$t" "needs root (owners, whiteout devices, trusted xattrs, mount)"
	done
fi
check "--print-lowerdir of an unknown image fails" \
	bash -c "! \"$IMPORT\" --nvm \"$D/none\" --print-lowerdir nope 2>/dev/null"

# ---- bad input: a clear error and nothing left behind ----
bad() {	# KIND VARIANT PATTERN DESCRIPTION
	local kind=$1 v=$2 pat=$3 desc=$4 src=$D/bad-$1-$2 s=$D/st-$1-$2 err
	[ "$kind" = oci ] || src=$src.tar
	mkdir -p "$D/outside-$v"
	gen build "$kind" "$src" "$v" "$D/outside-$v"
	if "$IMPORT" -q --nvm "$s/nvm" --hdd "$s/hdd" --name bad/img "$src" 2>"$s.err"; then
		notok "$desc: import succeeded"
		return
	fi
	err=$(cat "$s.err")
	if ! grep -q -- "$pat" <<<"$err"; then
		echo "# error was: $err"
		notok "$desc: unclear error"
	elif ! store_clean "$s/nvm" "$s/hdd" || [ -e "$s/nvm/images" ]; then
		notok "$desc: something left behind"
	elif [ -n "$(ls -A "$D/outside-$v")" ] || [ -e "$D/evil" ]; then
		notok "$desc: wrote outside the layer"
	else
		ok "$desc"
	fi
}
bad oci truncated "reading .*truncated\|bad tar\|Truncated" "truncated layer tar refused"
bad oci digest "blob digest mismatch" "wrong blob digest refused"
bad oci diffid "diffID mismatch" "wrong diffID refused"
bad docker diffid "diffID mismatch" "wrong diffID in a docker save refused"
bad oci missing "missing blob" "missing blob refused"
bad oci traversal "path traversal" "'..' entry refused"
bad oci absolute "path traversal" "absolute entry refused"
bad oci symlink "symlink escape" "write through a symlink refused"
bad oci hardlink "outside the layer" "hard link to outside refused"
bad oci mediatype "unsupported media type" "unsupported media type refused"
echo "1..$n"
