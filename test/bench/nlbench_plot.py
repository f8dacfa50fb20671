#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Charts of the benchmarks: union-bench, coldstart-bench, import-bench, jre-bench, host-bench.

Each benchmark hands its own figures (a dict, see the draw_* functions) to
write_chart() at the end of a run; the PNG goes beside its results file
(test/bench/NAME.png, or BUILD/bench/NAME.png for a --quick run) and the
section it writes links it.  The same charts can be drawn again from the
figures already written in a results file, without running anything:

  test/bench/nlbench_plot.py --from-results test/bench/RESULTS.md [--out-dir DIR]
                             [--only NAME[,NAME...]]

Needs matplotlib (Debian: python3-matplotlib); when the running python3 has
none, the system one (/usr/bin/python3) draws instead.
"""

import argparse
import json
import os
import re
import subprocess
import sys

CHARTS = ("union-bench", "coldstart-bench", "import-bench", "jre-bench", "host-bench")
SYSTEM_PYTHON = "/usr/bin/python3"
MiB = 1 << 20
SIZE = (12, 7)           # inches at DPI: 1200 x 700 pixels
DPI = 100

# One colour per implementation, so nlayerfs reads the same in every chart.
COLOURS = {"nlayerfs": "#1f77b4", "fuse-overlayfs": "#ff7f0e", "kernel": "#2ca02c",
           "nlayerfs-base": "#9467bd"}
NVM_DATA, NVM_META, HDD = "#1f77b4", "#aec7e8", "#8c564b"
# What a configuration of the tables is, in a few words under its name.
NOTES = {"all-hdd": "all layers\non HDD", "all-nvm": "all layers\non NVM",
         "traced": "traced,\nlayer_meta=off", "layer-meta": "traced\n(the default)",
         "hot-files-nvm": "hot files in an\nNVM lowerdir", "fuse-overlayfs": "layers\non HDD",
         "kernel-overlay": "layers\non HDD", "traced-whole": "hot files\ncopied whole",
         "traced-ranges": "big files by\nranges (default)",
         "ranges-warm-inodes": "diagnostic:\ninodes cached", "lass": "layer-aware\n(default)"}


# ---------------------------------------------------------------- for the benchmarks


def png_beside(results_file, name):
    """Where a run's chart goes: beside the results file it writes."""
    return os.path.join(os.path.dirname(os.path.abspath(results_file)), f"{name}.png")


def chart_line(name, drawn):
    """The markdown line of a section that shows (or excuses) its chart."""
    if drawn:
        return f"![{name} chart]({name}.png)"
    return (f"(no chart {name}.png: matplotlib is missing; apt-get install -y "
            f"python3-matplotlib, then test/bench/nlbench_plot.py --from-results FILE)")


def short_machine(text):
    """The machine in a few words: 'Linux K, CPU, N cores, RAM' without the notes."""
    text = text.split(";")[0].replace(" (shared with other work)", "")
    return text.strip()


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def write_chart(name, figures, png):
    """Draws chart @name from @figures into @png; False (and says why) when it
    cannot.  A chart never costs a run its results: every failure is caught."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
        if has_matplotlib():
            DRAW[name](figures, png)
            return True
        if not os.path.exists(SYSTEM_PYTHON) or \
                os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON):
            print(f"{name}: no chart: matplotlib is missing "
                  "(apt-get install -y python3-matplotlib)", file=sys.stderr)
            return False
        r = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__), "--chart", name,
                            "--png", png], input=json.dumps(figures), text=True)
        return r.returncode == 0
    except Exception as e:      # noqa: BLE001  the run's figures matter more
        print(f"{name}: no chart {png}: {e}", file=sys.stderr)
        return False


# ---------------------------------------------------------------- drawing


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def new_figure(plt, figures, title, panels=1, **kw):
    fig, axes = plt.subplots(1, panels, figsize=SIZE, dpi=DPI, squeeze=False, **kw)
    quick = " (QUICK run, not representative)" if figures.get("quick") else ""
    fig.suptitle(f"{title}{quick}\n{figures.get('date', '?')}, "
                 f"{short_machine(figures.get('machine', '?'))}", fontsize=13)
    return fig, list(axes[0])


def save(fig, png):
    for ax in fig.axes:
        ax.set_axisbelow(True)      # grid lines behind the bars
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(png, dpi=DPI)


def label_bars(ax, bars, texts):
    """Writes each text just beyond the end of its bar (below a bar that goes down)."""
    for bar, text in zip(bars, texts):
        down = bar.get_height() < 0
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height()),
                    xytext=(0, -3 if down else 3), textcoords="offset points",
                    ha="center", va="top" if down else "bottom", fontsize=9)


def cost_vs_kernel(m, value, kernel):
    """How many times slower than the kernel: time ratio, or inverse throughput ratio."""
    if value is None or not kernel:
        return None
    if m["better"] == "higher":
        return kernel / value if value else None
    return value / kernel


def draw_union(figures, png):
    """figures: date, machine, quick, configs (names), measures: [label, unit,
    better ('lower'/'higher'), values {config: median}]."""
    plt = pyplot()
    fig, (ax,) = new_figure(plt, figures, "Union mount: nlayerfs vs fuse-overlayfs, "
                            "relative to the kernel overlayfs")
    others = [c for c in figures["configs"] if c != "kernel"]
    measures = [m for m in figures["measures"] if m["values"].get("kernel")]
    ratios = {c: [cost_vs_kernel(m, m["values"].get(c), m["values"]["kernel"])
                  for m in measures] for c in others}
    known = [r for rs in ratios.values() for r in rs if r]
    log = bool(known) and max(known + [1]) / min(known + [1]) > 10
    width = 0.8 / max(len(others), 1)
    for i, c in enumerate(others):
        xs = [k + (i - (len(others) - 1) / 2) * width for k in range(len(measures))]
        pts = [(x, r) for x, r in zip(xs, ratios[c]) if r]
        # Bars grow from 1 (as fast as the kernel): up is slower, down is faster.
        bars = ax.bar([x for x, _ in pts], [r - 1 for _, r in pts], width * 0.95, bottom=1,
                      color=COLOURS.get(c, None), label=c)
        label_bars(ax, bars, [f"{r:.2f}x" for _, r in pts])
    ax.axhline(1, color="black", lw=1.2, ls="--", label="kernel overlayfs (= 1)")
    if log:
        ax.set_yscale("log")
        lo, hi = min(known + [1]), max(known + [1])
        ax.set_ylim(lo / 1.8, hi * 1.8)
        # 1-2-5 steps: a log axis labels only its powers of ten otherwise.
        ax.set_yticks([t * 10 ** e for e in range(-3, 4) for t in (1, 2, 5)
                       if lo / 1.8 <= t * 10 ** e <= hi * 1.8])
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
    else:
        ax.set_ylim(0, max(known + [1]) * 1.15)
    ticks = []
    for m in measures:
        k = m["values"]["kernel"]
        kv = f"{k:.3g} {m['unit']}" if k < 100 else f"{k:.0f} {m['unit']}"
        ticks.append(f"{wrap(m['label'], 18)}\n(kernel {kv})")
    ax.set_xticks(range(len(measures)))
    ax.set_xticklabels(ticks, fontsize=8.5)
    ax.set_ylabel("slowdown vs kernel overlayfs, x" + (" (log scale)" if log else "") +
                  "\n(time / kernel's time; for MiB/s: kernel's MiB/s / its MiB/s)")
    ax.set_xlabel("measure (median of the repetitions; below the line = faster than the kernel)")
    ax.grid(axis="y", alpha=0.3, which="both")
    # Above the plot: bars may reach any height.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(others) + 1,
              fontsize=9, frameon=False)
    save(fig, png)
    plt.close(fig)


def wrap(text, width):
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "\n".join(lines + [cur])


def tick(name):
    return f"{name}\n{NOTES[name]}" if name in NOTES else name


def mib_text(b):
    v = b / MiB
    if not v:
        return "none"
    return f"{v:.1f} MiB" if v < 100 else f"{v:.0f} MiB"


def seconds(v):
    return f"{v:.0f} s" if v >= 100 else f"{v:.2f} s" if v >= 1 else f"{v:.3f} s"


def kind_colour(name):
    if name.startswith("fuse-overlayfs"):
        return COLOURS["fuse-overlayfs"]
    if name.startswith("kernel"):
        return COLOURS["kernel"]
    return COLOURS["nlayerfs"]


def row_label(name):
    return f"{name}\n{NOTES[name].replace(chr(10), ' ')}" if name in NOTES else name


def start_panel(ax, plt, configs, what):
    """Median start time per configuration (one row each, top to bottom as in
    the table), min-max whiskers, the value beside each bar."""
    ys = range(len(configs))
    t = [c["start"] for c in configs]
    err = [[c["start"] - c.get("min", c["start"]) for c in configs],
           [c.get("max", c["start"]) - c["start"] for c in configs]]
    ax.barh(ys, t, 0.7, color=[kind_colour(c["name"]) for c in configs],
            xerr=err, capsize=3, ecolor="#444444")
    for y, c in zip(ys, configs):
        ax.annotate(seconds(c["start"]), (c.get("max", c["start"]), y), xytext=(4, 0),
                    textcoords="offset points", ha="left", va="center", fontsize=9)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([row_label(c["name"]) for c in configs], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"{what}, s (median; whiskers: min-max)")
    ax.set_xlim(0, max([c.get("max", c["start"]) for c in configs] + [0.1]) * 1.2)
    ax.grid(axis="x", alpha=0.3)
    kinds = [k for k in ("nlayerfs", "fuse-overlayfs", "kernel")
             if any(kind_colour(c["name"]) == COLOURS[k] for c in configs)]
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in kinds],
              [k + (" overlayfs" if k == "kernel" else "") for k in kinds],
              loc="best", fontsize=9)


def nvm_panel(ax, configs, refs=(), share_of=None):
    """NVM MiB per configuration, rows as in start_panel: file data and
    index/metadata stacked, reference lines for @refs (label, bytes, style)."""
    ys = range(len(configs))
    data = [(c.get("nvm_data") or 0) / MiB for c in configs]
    meta = [(c.get("nvm_meta") or 0) / MiB for c in configs]
    ax.barh(ys, data, 0.7, color=NVM_DATA, label="file data")
    ax.barh(ys, meta, 0.7, left=data, color=NVM_META, label="index + metadata images")
    full = (share_of or 0) / MiB
    for y, d, m in zip(ys, data, meta):
        text = mib_text((d + m) * MiB)
        if full and d + m:
            text += f" ({100 * (d + m) / full:.3g}%)"
        ax.annotate(text, (d + m, y), xytext=(4, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=9,
                    bbox=dict(fc="white", ec="none", pad=1, alpha=0.8))
    top = max(data[i] + meta[i] for i in ys) if configs else 1
    for label, value, style in refs:
        ax.axvline(value / MiB, color="gray", ls=style, lw=1.2,
                   label=f"{label} ({value / MiB:.1f} MiB)")
        top = max(top, value / MiB)
    ax.set_yticks(list(ys))
    ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel("NVM bytes, MiB" + (" (% of all-nvm's)" if full else ""))
    ax.set_xlim(0, max(top, 1) * 1.3)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=9)


def by_name(configs, name):
    return next((c for c in configs if c["name"] == name), None)


def draw_coldstart(figures, png):
    """figures: date, machine, quick, configs: [name, start, min, max (s),
    nvm_data, nvm_meta (bytes)]."""
    plt = pyplot()
    fig, (a1, a2) = new_figure(plt, figures, "Cold start with tiering: container start "
                               "from HDD, NVM, after a traced start", 2, sharey=True)
    configs = [c for c in figures["configs"] if c.get("start") is not None]
    start_panel(a1, plt, configs, "cold start")
    a1.set_title("cold start (lower is better)", fontsize=11)
    nvm = by_name(configs, "all-nvm")
    nvm_panel(a2, configs, share_of=(nvm["nvm_data"] + (nvm.get("nvm_meta") or 0))
              if nvm else None)
    a2.set_title("NVM bytes used", fontsize=11)
    save(fig, png)
    plt.close(fig)


def draw_jre(figures, png):
    """figures: date, machine, quick, opened, read (bytes), configs: [name,
    start, min, max (s), nvm_data, nvm_meta (bytes)]."""
    plt = pyplot()
    fig, (a1, a2) = new_figure(plt, figures, "JRE cold start: hot files promoted whole "
                               "or by the ranges read", 2, sharey=True)
    configs = [c for c in figures["configs"] if c.get("start") is not None]
    start_panel(a1, plt, configs, "JRE start")
    a1.set_title("cold start of java (lower is better)", fontsize=11)
    refs = []
    if figures.get("opened"):
        refs.append(("opened by the start", figures["opened"], "--"))
    if figures.get("read"):
        refs.append(("read by the start", figures["read"], ":"))
    nvm = by_name(configs, "all-nvm")
    nvm_panel(a2, configs, refs, share_of=nvm["nvm_data"] if nvm else None)
    a2.set_title("NVM bytes used", fontsize=11)
    save(fig, png)
    plt.close(fig)


def draw_import(figures, png):
    """figures: date, machine, quick, bandwidth (text), configs: [name, import,
    fsync, total (storing), download (s; download may be None), nvm_bytes,
    hdd_bytes]."""
    plt = pyplot()
    fig, (a1, a2) = new_figure(plt, figures, "Image storing: nlayerfs-import onto HDD, "
                               "NVM, or placed by LASS", 2)
    configs = figures["configs"]
    xs = list(range(len(configs)))
    w = 0.38
    imp = [c["import"] for c in configs]
    # The bar ends at the median storing time, as the table says; its upper
    # part is the fsync pass (median total less median import).
    fs = [max(c.get("total") or c["import"] + c["fsync"], c["import"]) - c["import"]
          for c in configs]
    a1.bar([x - w / 2 for x in xs], imp, w, color="#1f77b4", label="import, blobs local")
    a1.bar([x - w / 2 for x in xs], fs, w, bottom=imp, color="#aec7e8",
           label="+ fsync of every stored file")
    for x, i, f in zip(xs, imp, fs):
        a1.annotate(seconds(i + f), (x - w / 2, i + f), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9)
    dl = [(x, c["download"]) for x, c in zip(xs, configs) if c.get("download")]
    if dl:
        bars = a1.bar([x + w / 2 for x, _ in dl], [d for _, d in dl], w, color="#ff7f0e",
                      label=f"with a simulated {figures.get('bandwidth', '?')}/s download")
        label_bars(a1, bars, [seconds(d) for _, d in dl])
    a1.set_xticks(xs)
    a1.set_xticklabels([tick(c["name"]) for c in configs], fontsize=9)
    a1.set_xlabel("placement")
    a1.set_ylabel("storing time, s (median)")
    top = max([i + f for i, f in zip(imp, fs)] + [d for _, d in dl] + [0.1])
    a1.set_ylim(0, top * 1.3)
    a1.set_title("storing time (lower is better)", fontsize=11)
    a1.grid(axis="y", alpha=0.3)
    a1.legend(loc="upper right", fontsize=9)
    nv = [c["nvm_bytes"] / MiB for c in configs]
    hd = [c["hdd_bytes"] / MiB for c in configs]
    b1 = a2.bar([x - w / 2 for x in xs], nv, w, color=NVM_DATA, label="NVM")
    b2 = a2.bar([x + w / 2 for x in xs], hd, w, color=HDD, label="HDD")
    full = next((c["nvm_bytes"] for c in configs if c["name"] == "all-nvm"), 0) / MiB
    label_bars(a2, b1, [mib_text(v * MiB) + (f"\n{100 * v / full:.0f}%" if full and v else "")
                        for v in nv])
    label_bars(a2, b2, [mib_text(v * MiB) for v in hd])
    a2.set_xticks(xs)
    a2.set_xticklabels([tick(c["name"]) for c in configs], fontsize=9)
    a2.set_xlabel("placement")
    a2.set_ylabel("bytes stored, MiB" + (" (NVM: % of all-nvm)" if full else ""))
    a2.set_ylim(0, max(nv + hd + [1]) * 1.3)
    a2.set_title("where the bytes go", fontsize=11)
    a2.grid(axis="y", alpha=0.3)
    a2.legend(loc="upper right", fontsize=9)
    save(fig, png)
    plt.close(fig)


def draw_host(figures, png):
    """figures: date, machine, quick, loads: [name, tiered (s per start i),
    all_nvm, all_hdd (s), nvm_data, all_nvm_bytes], mounts {config: s};
    optional targets: from_start, vs_nvm, nvm_share."""
    from_start = figures.get("from_start", 3)
    vs_nvm = figures.get("vs_nvm", 1.5)
    share_max = figures.get("nvm_share", 0.15)
    plt = pyplot()
    fig, (a1, a2, a3) = new_figure(plt, figures, "Host tier: short-lived starts "
                                     "(mount + start), NVM bytes, mount time", 3,
                                     gridspec_kw={"width_ratios": [2.2, 1, 1]})
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    for w, col in zip(figures["loads"], colours):
        xs = list(range(1, len(w["tiered"]) + 1))
        a1.plot(xs, w["tiered"], "o-", color=col, label=f"{w['name']}: tiered")
        a1.axhline(w["all_nvm"], color=col, ls="--", lw=1, label=f"{w['name']}: all-nvm")
        a1.axhline(w["all_hdd"], color=col, ls=":", lw=1.2, label=f"{w['name']}: all-hdd")
        a1.fill_between([from_start - 0.2, max(xs + [from_start]) + 0.2],
                        w["all_nvm"], w["all_nvm"] * vs_nvm, color=col, alpha=0.08)
    a1.set_yscale("log")
    a1.set_xticks(range(1, max(len(w["tiered"]) for w in figures["loads"]) + 1))
    a1.set_xlabel(f"start i of an empty NVM directory (shade: within {vs_nvm}x of all-nvm)")
    a1.set_ylabel("mount + start, s (median, log scale)")
    a1.set_title("short-lived starts (lower is better)", fontsize=11)
    a1.grid(alpha=0.3, which="both")
    a1.legend(fontsize=8, loc="best")
    names = [w["name"] for w in figures["loads"]]
    ys = range(len(names))
    shares = [100 * (w["nvm_data"] or 0) / w["all_nvm_bytes"] for w in figures["loads"]]
    bars = a2.bar(ys, shares, 0.6, color=NVM_DATA)
    label_bars(a2, bars, [f"{s:.1f}%\n{mib_text(w['nvm_data'] or 0)}"
                            for s, w in zip(shares, figures["loads"])])
    a2.axhline(100 * share_max, color="gray", ls="--", lw=1.2, label=f"target {100 * share_max:.0f}%")
    a2.set_xticks(list(ys))
    a2.set_xticklabels(names)
    a2.set_ylabel("NVM data, % of all-nvm's bytes")
    a2.set_ylim(0, max(shares + [100 * share_max]) * 1.4)
    a2.set_title("NVM data after the last start", fontsize=11)
    a2.legend(fontsize=8)
    a2.grid(axis="y", alpha=0.3)
    mounts = figures["mounts"]
    if mounts:
        labels = list(mounts)
        bars = a3.bar(range(len(labels)), [mounts[c] for c in labels], 0.6,
                      color=[HDD, COLOURS["nlayerfs"], NVM_META][:len(labels)])
        label_bars(a3, bars, [seconds(mounts[c]) for c in labels])
        a3.set_xticks(range(len(labels)))
        a3.set_xticklabels([wrap(c, 12) for c in labels], fontsize=9)
        a3.set_ylabel("mount, s (median)")
        a3.set_ylim(0, max(mounts.values()) * 1.3)
        a3.grid(axis="y", alpha=0.3)
    a3.set_title("mount time, tiering off / on", fontsize=11)
    save(fig, png)
    plt.close(fig)


DRAW = {"union-bench": draw_union, "coldstart-bench": draw_coldstart,
        "import-bench": draw_import, "jre-bench": draw_jre, "host-bench": draw_host}


# ---------------------------------------------------------------- reading RESULTS.md


class ResultsError(Exception):
    pass


def section(text, name):
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0]


def tables(text):
    """Every markdown table of @text as a list of {header: cell} rows."""
    out, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(rows) >= 2:
            head = rows[0]
            out.append([dict(zip(head, r)) for r in rows[2:]])
        rows = []
    return out


def table_with(text, column, name):
    for t in tables(text):
        if t and column in t[0]:
            return t
    raise ResultsError(f"{name}: no table with a '{column}' column")


def number(cell):
    """The first number of a cell ('5.63', '285.2 MiB', '1.00x'); None for '-'."""
    m = re.search(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell or "")
    return float(m.group(0)) if m else None


def size(cell):
    """Bytes of '285.2 MiB', '970 KiB', '0' or '-'."""
    v = number(cell)
    if v is None:
        return None
    units = {"KiB": 1 << 10, "MiB": MiB, "GiB": 1 << 30}
    unit = next((u for u in units if u in cell), None)
    return v * units[unit] if unit else v


def header(text):
    date = re.search(r"^- Date: (\S+ \S+?);", text, re.M)
    machine = re.search(r"^- Machine: (.*)$", text, re.M)
    return {"date": date.group(1) if date else "?",
            "machine": short_machine(machine.group(1)) if machine else "?",
            "quick": "QUICK run" in text.split("\n", 2)[1] if "\n" in text else False}


def union_from(text):
    rows = table_with(text, "measure", "union-bench")
    cols = list(rows[0])
    configs = cols[cols.index("better") + 1:cols.index("nl / fuse-ovl")]
    measures = [{"label": r["measure"], "unit": r["unit"], "better": r["better"],
                 "values": {c: number(r[c]) for c in configs}} for r in rows]
    return dict(header(text), configs=configs, measures=measures)


def starts_from(rows):
    configs = []
    for r in rows:
        lo_hi = re.findall(r"\d+(?:\.\d+)?", r.get("min-max", ""))
        c = {"name": r["configuration"], "start": number(r["cold start, s"])}
        if len(lo_hi) == 2:
            c["min"], c["max"] = float(lo_hi[0]), float(lo_hi[1])
        configs.append(c)
    return configs


def coldstart_from(text):
    rows = table_with(text, "cold start, s", "coldstart-bench")
    configs = starts_from(rows)
    for c, r in zip(configs, rows):
        c["nvm_data"] = size(r.get("NVM data")) or 0
        c["nvm_meta"] = size(r.get("NVM index/meta")) or 0
    return dict(header(text), configs=configs)


def jre_from(text):
    rows = table_with(text, "cold start, s", "jre-bench")
    configs = starts_from(rows)
    for c, r in zip(configs, rows):
        c["nvm_data"] = size(r.get("NVM data (du)")) or 0
        c["nvm_meta"] = size(r.get("NVM index/meta")) or 0
    m = re.search(r"Bytes opened by the start: ([\d.]+ \w+); read: ([\d.]+ \w+)", text)
    return dict(header(text), configs=configs, opened=size(m.group(1)) if m else None,
                read=size(m.group(2)) if m else None)


def import_from(text):
    local = table_with(text, "storing, s", "import-bench")
    try:
        download = {r["configuration"]: number(r["storing latency, s"])
                    for r in table_with(text, "storing latency, s", "import-bench")}
    except ResultsError:
        download = {}
    bw = re.search(r"download model: (\S+?)/s", text)
    configs = [{"name": r["configuration"], "import": number(r["import, s"]),
                "fsync": number(r["fsync, s"]), "total": number(r["storing, s"]),
                "download": download.get(r["configuration"]),
                "nvm_bytes": size(r["NVM bytes"]) or 0, "hdd_bytes": size(r["HDD bytes"]) or 0}
               for r in local]
    return dict(header(text), bandwidth=bw.group(1) if bw else "?", configs=configs)


def host_from(text):
    """Per workload: its table of short-lived starts and its NVM line; the
    mount time table."""
    parts = re.split(r"^\*\*([\w-]+)\*\* \(`", text, flags=re.M)
    loads = []
    for name, body in zip(parts[1::2], parts[2::2]):
        rows = {r["configuration"]: r for r in table_with(body, "mount + start", "host-bench")}
        tiered = [number(r["mount + start"]) for k, r in rows.items() if k.startswith("tiered")]
        m = re.search(r"promoted copies ([\d.]+ \w+), metadata images ([\d.]+ \w+).*?"
                      r"all-nvm holds ([\d.]+ \w+)", body, re.S)
        if not m:
            raise ResultsError(f"host-bench: {name}: no line of NVM bytes")
        loads.append(dict(name=name, tiered=tiered,
                          all_nvm=number(rows["all-nvm"]["mount + start"]),
                          all_hdd=number(rows["all-hdd"]["mount + start"]),
                          nvm_data=size(m.group(1)) + size(m.group(2)),
                          all_nvm_bytes=size(m.group(3))))
    if not loads:
        raise ResultsError("host-bench: no workload table")
    mounts = {}
    for t in tables(text):
        if t and "vs off" in t[0]:
            mounts = {r["mount"]: number(r["median, s"]) for r in t}
    return dict(header(text), loads=loads, mounts=mounts)


PARSE = {"union-bench": union_from, "coldstart-bench": coldstart_from,
         "import-bench": import_from, "jre-bench": jre_from, "host-bench": host_from}


def from_results(path, out_dir, names):
    """Draws the charts of @names from the sections of @path; the number drawn."""
    with open(path) as f:
        text = f.read()
    drawn = 0
    for name in names:
        sec = section(text, name)
        if sec is None:
            print(f"{name}: {path} has no {name} section (run test/bench/{name} first); "
                  "no chart", file=sys.stderr)
            continue
        try:
            figures = PARSE[name](sec)
        except (ResultsError, KeyError, ValueError, IndexError) as e:
            print(f"{name}: cannot read its figures in {path}: {e}", file=sys.stderr)
            continue
        png = os.path.join(out_dir, f"{name}.png")
        if write_chart(name, figures, png):
            print(f"{name}: {png}")
            drawn += 1
    return drawn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-results", metavar="FILE",
                    help="draw the charts from the sections of this results file")
    ap.add_argument("--out-dir", help="where the PNGs go (default: beside FILE)")
    ap.add_argument("--only", help="comma-separated charts to draw (default: "
                    + ",".join(CHARTS) + ")")
    ap.add_argument("--chart", choices=CHARTS, help=argparse.SUPPRESS)
    ap.add_argument("--png", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.chart:          # figures as JSON on stdin, from write_chart()
        DRAW[args.chart](json.load(sys.stdin), args.png)
        return 0
    if not args.from_results:
        ap.error("--from-results FILE is needed")
    if not os.path.isfile(args.from_results):
        ap.error(f"--from-results {args.from_results}: no such file")
    names = args.only.split(",") if args.only else list(CHARTS)
    unknown = [n for n in names if n not in CHARTS]
    if unknown:
        ap.error(f"--only: unknown chart {', '.join(unknown)} (known: {', '.join(CHARTS)})")
    if not has_matplotlib() and os.path.exists(SYSTEM_PYTHON) and \
            os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.from_results))
    os.makedirs(out_dir, exist_ok=True)
    drawn = from_results(args.from_results, out_dir, names)
    return 0 if drawn == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
