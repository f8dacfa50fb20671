#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The benchmarks' charts (test/bench/nlbench_plot.py): drawn from the figures
# of test/bench/RESULTS.md and from a run's own figures, linked in each
# benchmark's section. Needs no mount; the drawing needs matplotlib.
. "$(dirname "$0")/../lib.sh"

BENCH=$SRC/test/bench
PLOT=$BENCH/nlbench_plot.py
CHARTS="union-bench coldstart-bench import-bench jre-bench host-bench"
T=$(mktemp -d /tmp/nl-T-XXXXXX)
trap 'rm -rf "$T"' EXIT

PY=""
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import matplotlib' 2>/dev/null; then PY=$p; break; fi
done

# png_size FILE: "WIDTHxHEIGHT" from the PNG header.
png_size() {
	python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read(24)
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"
}

sections_link_charts() {
	local n sec
	for n in $CHARTS; do
		sec=$(sed -n "/<!-- $n begin -->/,/<!-- $n end -->/p" "$BENCH/RESULTS.md")
		[ -n "$sec" ] || { echo "RESULTS.md has no $n section"; return 1; }
		grep -qF "]($n.png)" <<<"$sec" || { echo "the $n section does not link $n.png"; return 1; }
		[ -s "$BENCH/$n.png" ] || { echo "$BENCH/$n.png is missing"; return 1; }
	done
}

scripts_compile() {
	local f
	for f in $CHARTS nlbench_plot.py; do
		python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' \
			"$BENCH/$f" || return 1
	done
}

draws_from_results() {
	local n size
	"$PY" "$PLOT" --from-results "$BENCH/RESULTS.md" --out-dir "$T/out" || return 1
	for n in $CHARTS; do
		size=$(png_size "$T/out/$n.png") || return 1
		[ "$size" = 1200x700 ] || { echo "$n.png is $size, not 1200x700"; return 1; }
	done
}

missing_section_named() {
	sed -n '/<!-- union-bench begin -->/,/<!-- union-bench end -->/p' \
		"$BENCH/RESULTS.md" >"$T/only-union.md"
	if "$PY" "$PLOT" --from-results "$T/only-union.md" --out-dir "$T/o2" \
		--only union-bench,jre-bench 2>"$T/err"; then
		echo "exit status 0 with a section missing"; return 1
	fi
	cat "$T/err"
	grep -q "only-union.md has no jre-bench section" "$T/err" &&
		[ -s "$T/o2/union-bench.png" ] && [ ! -e "$T/o2/jre-bench.png" ]
}

# Each benchmark's chart_figures() with made-up results of its own types,
# drawn by write_chart() as at the end of a run.
runs_draw_their_charts() {
	python3 - "$BENCH" "$T/run" <<'EOF'
import importlib.machinery, importlib.util, os, sys, types
sys.dont_write_bytecode = True
bench, out = sys.argv[1], sys.argv[2]
MiB = 1 << 20
args = types.SimpleNamespace(quick=True, reps=2, bandwidth="20M")
machine = "Linux 6.1, a CPU, 2 cores (shared with other work), 1.0 GiB RAM; HDD on ext4"


def load(name):
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"),
                                                  os.path.join(bench, name))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod


def draw(mod, name, figures):
    png = mod.P.png_beside(os.path.join(out, "RESULTS-quick.md"), name)
    assert png == os.path.join(out, f"{name}.png"), png
    assert mod.P.write_chart(name, figures, png), f"{name}: not drawn"
    assert os.path.getsize(png) > 10000, f"{name}: {png} is nearly empty"


u = load("union-bench")
configs = [{"name": n} for n in ("nlayerfs", "fuse-overlayfs", "kernel")]
res = {m[0]: {"nlayerfs": [2.0, 3.0], "fuse-overlayfs": [4.0], "kernel": [1.0]}
       for m in u.MEASURES}
info = dict(kernel="6.1", cpu="a CPU", cores=2, ram="1.0 GiB")
draw(u, "union-bench", u.chart_figures(args, res, configs, info))

c = load("coldstart-bench")
cfgs = []
for n, t, data in (("all-hdd", 5.0, 0), ("all-nvm", 0.2, 280 * MiB), ("traced", 0.3, 20 * MiB)):
    cfg = c.Config(n, "", "nl", [])
    cfg.nvm_data, cfg.nvm_meta = data, MiB if data else 0
    cfg.samples = [dict(start=t * k) for k in (1, 1.1)]
    cfgs.append(cfg)
draw(c, "coldstart-bench", c.chart_figures(args, cfgs + [c.Config("x", "", "nl", [])], machine))

j = load("jre-bench")
cfgs = []
for n, t, data in (("all-hdd", 6.0, None), ("traced-ranges", 0.4, 55 * MiB)):
    cfg = j.Config(n, "", [])
    cfg.nvm_data = data
    cfg.samples = [dict(start=t)]
    cfgs.append(cfg)
fp = types.SimpleNamespace(footprint=[dict(size=160 * MiB, read=40 * MiB)])
draw(j, "jre-bench", j.chart_figures(args, cfgs, fp, machine))

i = load("import-bench")
layers = [dict(size=20 * MiB) for _ in range(3)]
runs = {n: [dict(import_s=a, fsync_s=b, total_s=a + b, nvm_bytes=nv, hdd_bytes=hd,
                 import_wbytes=0, fsync_wbytes=0, tiers=tiers)]
        for n, a, b, nv, hd, tiers in (
            ("all-hdd", 3.0, 1.0, 0, 90 * MiB, ["hdd"] * 3),
            ("all-nvm", 1.0, 0.1, 90 * MiB, 0, ["nvm"] * 3),
            ("lass", 1.5, 0.3, 60 * MiB, 30 * MiB, ["hdd", "nvm", "nvm"]))}
per_layer = {(k, t): [1.0 if t == "hdd" else 0.4] for k in range(3) for t in ("hdd", "nvm")}
b = types.SimpleNamespace(res=runs, layers=layers, layer_s=per_layer)
figures = i.chart_figures(args, b, machine)
assert all(x["download"] for x in figures["configs"]), figures
draw(i, "import-bench", figures)
EOF
}

check "every benchmark's section of RESULTS.md links its chart, which is in test/bench" \
	sections_link_charts
check "the benchmark scripts and nlbench_plot.py compile" scripts_compile
if [ -z "$PY" ]; then
	why="matplotlib is missing (apt-get install -y python3-matplotlib)"
	skip "nlbench_plot.py --from-results draws the four charts, 1200x700" "$why"
	skip "a results file without a section: the message names file and section" "$why"
	skip "each benchmark draws its chart from a run's figures, beside its results" "$why"
else
	check "nlbench_plot.py --from-results draws the four charts, 1200x700" draws_from_results
	check "a results file without a section: the message names file and section" \
		missing_section_named
	check "each benchmark draws its chart from a run's figures, beside its results" \
		runs_draw_their_charts
fi
echo "1..$TESTNUM"
[ "$NFAIL" = 0 ]
