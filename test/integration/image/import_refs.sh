#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nlayerfs-import on sources named as skopeo and podman name them: an OCI
# archive made with tar from a layout of test/demo/make-oci, references
# holding colons (oci-archive:PATH:localhost/app:latest), a docker-archive
# holding two images picked by tag or by @INDEX, and transports that are
# not read here, which must say so and print the skopeo command to use.
. "$(dirname "$0")/lib-import.sh"
import_init refs "image references" python3 tar
trap 'rm -rf "$D"' EXIT

# two small images, each an OCI layout tagged with a full reference
for app in one two; do
	mkdir -p "$D/src-$app/app"
	echo "$app" >"$D/src-$app/app/name"
	python3 "$SRC/test/demo/make-oci" "$D/oci-$app" "localhost/$app:latest" \
		"$D/src-$app:/bin/sh -c #(nop) COPY dir:$app in /app"
done
# what `skopeo copy ... oci-archive:` writes: a tar of the layout
tar -C "$D/oci-one" -cf "$D/one.oci.tar" .

# a docker-archive holding both images, as `podman save -m` writes one
python3 - "$D" <<'PYEOF'
import json, os, shutil, sys
d = sys.argv[1]
root = os.path.join(d, 'dock')
os.makedirs(os.path.join(root, 'blobs', 'sha256'))
entries = []
for app in ('one', 'two'):
    layout = os.path.join(d, 'oci-' + app)
    idx = json.load(open(os.path.join(layout, 'index.json')))
    blob = lambda dg: os.path.join(layout, 'blobs', 'sha256', dg[7:])
    man = json.load(open(blob(idx['manifests'][0]['digest'])))
    names = [man['config']['digest']] + [l['digest'] for l in man['layers']]
    for dg in names:
        shutil.copy(blob(dg), os.path.join(root, 'blobs', 'sha256', dg[7:]))
    entries.append({'Config': 'blobs/sha256/' + names[0][7:],
                    'RepoTags': ['localhost/%s:latest' % app],
                    'Layers': ['blobs/sha256/' + dg[7:] for dg in names[1:]]})
json.dump(entries, open(os.path.join(root, 'manifest.json'), 'w'))
PYEOF
tar -C "$D/dock" -cf "$D/both.docker.tar" .

NVM=$D/nvm HDD=$D/hdd
imported() {	# NAME EXPECTED-CONTENT: the image's top layer holds /app/name
	local lower
	lower=$("$IMPORT" --nvm "$NVM" --print-lowerdir "$1") || return 1
	[ "$(cat "${lower%%:*}/app/name")" = "$2" ]
}
import_as() {	# SOURCE NAME CONTENT: import without --name, check name and content
	"$IMPORT" -q --nvm "$NVM" --hdd "$HDD" "$1" || return 1
	imported "$2" "$3"
}

check "oci-archive:PATH:localhost/one:latest (reference with colons) imports, named by it" \
	import_as "oci-archive:$D/one.oci.tar:localhost/one:latest" localhost/one:latest one
check "oci:DIR:localhost/two:latest imports" \
	import_as "oci:$D/oci-two:localhost/two:latest" localhost/two:latest two
check "an OCI archive without transport or reference imports" \
	"$IMPORT" -q --nvm "$NVM" --hdd "$HDD" --name plain/one "$D/one.oci.tar"
check "docker-archive:PATH:localhost/two:latest picks the second image by its tag" \
	import_as "docker-archive:$D/both.docker.tar:localhost/two:latest" localhost/two:latest two
rm -rf "$NVM" "$HDD"
check "docker-archive:PATH:@1 picks the second image, named by its tag" \
	import_as "docker-archive:$D/both.docker.tar:@1" localhost/two:latest two
check "docker-archive:PATH:@0 picks the first" \
	import_as "docker-archive:$D/both.docker.tar:@0" localhost/one:latest one

unread() {	# SOURCE COMMAND: refused, saying which skopeo command helps
	local s=$D/st-unread
	if "$IMPORT" --nvm "$s/nvm" --hdd "$s/hdd" "$1" 2>"$D/unread.err"; then
		echo "import of $1 succeeded"
		return 1
	fi
	cat "$D/unread.err"
	grep -qF -- "$2" "$D/unread.err" && grep -q "not the .*: transport" "$D/unread.err"
}
check "docker:// is refused with the skopeo command that makes an OCI layout" \
	unread "docker://debian:12" "skopeo copy docker://debian:12 oci:/tmp/debian:12"
check "containers-storage: is refused with its skopeo command" \
	unread "containers-storage:localhost/app:latest" \
	"skopeo copy containers-storage:localhost/app:latest oci:/tmp/app:latest"
out_of_range() {
	if "$IMPORT" --nvm "$D/n5" --hdd "$D/h5" "docker-archive:$D/both.docker.tar:@2" \
		2>"$D/range.err"; then
		return 1
	fi
	cat "$D/range.err"
	grep -q 'no image @2 in the archive: it holds 2 (@0 to @1)' "$D/range.err"
}
check "a docker-archive index out of range says how many images there are" out_of_range
echo "1..$n"
