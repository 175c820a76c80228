#!/usr/bin/env python3
"""plot.py - SVG charts of `make bench-cluster`'s CSV files, with the standard
library only: line charts (Fig. 5 and 6, ingest, memory) and grouped bar
charts (Fig. 7, point queries beside nfdump).

    python3 tools/bench/plot.py OUTDIR    reads OUTDIR/*.csv, writes OUTDIR/*.svg
Files that are missing or empty are skipped; prints the SVGs it wrote."""
import csv
import math
import os
import sys
from xml.sax.saxutils import escape

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 40, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def nice_ticks(lo, hi, n=5):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return ("%.1fM" % (v / 1e6)).replace(".0M", "M")
    if abs(v) >= 1e4:
        return ("%.0fk" % (v / 1e3))
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return ("%.2f" % v).rstrip("0").rstrip(".")
    return "%.3g" % v


class Svg:
    def __init__(self, title):
        self.parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                      'font-family="sans-serif" font-size="12">' % (W, H),
                      '<rect width="100%" height="100%" fill="white"/>',
                      '<text x="%d" y="22" font-size="15" text-anchor="middle">%s</text>'
                      % ((W - RIGHT + LEFT) // 2, escape(title))]

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, anchor="middle", extra=""):
        self.add('<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>' % (x, y, anchor, extra, escape(s)))

    def axes(self, xlabel, ylabel, yticks, ymap):
        x0, x1, y0 = LEFT, W - RIGHT, H - BOTTOM
        for t in yticks:
            y = ymap(t)
            self.add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, y, x1, y))
            self.text(x0 - 6, y + 4, fmt(t), "end")
        self.add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (x0, y0, x1, y0))
        self.add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (x0, TOP, x0, y0))
        self.text((x0 + x1) / 2, H - 18, xlabel)
        self.text(18, (TOP + y0) / 2, ylabel, extra='transform="rotate(-90 18 %.1f)"' % ((TOP + y0) / 2))

    def legend(self, names):
        for i, name in enumerate(names):
            y = TOP + 10 + i * 20
            self.add('<rect x="%d" y="%d" width="14" height="10" fill="%s"/>'
                     % (W - RIGHT + 14, y - 9, COLORS[i % len(COLORS)]))
            self.text(W - RIGHT + 34, y, name, "start")

    def write(self, path):
        self.parts.append("</svg>")
        with open(path, "w") as f:
            f.write("\n".join(self.parts) + "\n")
        print("wrote " + path)


def line_chart(path, title, xlabel, ylabel, series):
    """series: [(name, [(x, y), ...])]; points with y None are left out."""
    series = [(n, [(x, y) for x, y in pts if y is not None]) for n, pts in series]
    series = [(n, pts) for n, pts in series if pts]
    if not series:
        return
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    xt = nice_ticks(min(0, min(xs)), max(xs))
    yt = nice_ticks(min(0, min(ys)), max(ys))
    xmap = lambda x: LEFT + (x - xt[0]) / (xt[-1] - xt[0]) * (W - RIGHT - LEFT)
    ymap = lambda y: H - BOTTOM - (y - yt[0]) / (yt[-1] - yt[0]) * (H - BOTTOM - TOP)
    svg = Svg(title)
    svg.axes(xlabel, ylabel, yt, ymap)
    for t in xt:
        svg.text(xmap(t), H - BOTTOM + 16, fmt(t))
    for i, (_, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        svg.add('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                % (color, " ".join("%.1f,%.1f" % (xmap(x), ymap(y)) for x, y in pts)))
        for x, y in pts:
            svg.add('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (xmap(x), ymap(y), color))
            svg.text(xmap(x), ymap(y) - 7, fmt(y), extra='font-size="10" fill="%s"' % color)
    svg.legend([n for n, _ in series])
    svg.write(path)


def bar_chart(path, title, ylabel, categories, series):
    """Grouped bars: series [(name, [value per category])]; None leaves a gap."""
    vals = [v for _, vs in series for v in vs if v is not None]
    if not vals:
        return
    yt = nice_ticks(0, max(vals))
    ymap = lambda y: H - BOTTOM - y / yt[-1] * (H - BOTTOM - TOP)
    svg = Svg(title)
    svg.axes("", ylabel, yt, ymap)
    group = (W - RIGHT - LEFT) / len(categories)
    bw = group * 0.8 / len(series)
    for c, cat in enumerate(categories):
        gx = LEFT + c * group + group * 0.1
        svg.text(LEFT + (c + 0.5) * group, H - BOTTOM + 16, cat)
        for s, (_, vs) in enumerate(series):
            v = vs[c]
            if v is None:
                continue
            x, y = gx + s * bw, ymap(v)
            svg.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                    % (x, y, bw - 2, H - BOTTOM - y, COLORS[s % len(COLORS)]))
            svg.text(x + bw / 2, y - 4, fmt(v), extra='font-size="10"')
    svg.legend([n for n, _ in series])
    svg.write(path)


def rows(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def main(out):
    ingest = rows(out, "ingest.csv")
    if ingest:
        pts = lambda key: [(num(r["offered_rate"]), key(r)) for r in ingest]
        line_chart(os.path.join(out, "ingest.svg"), "Ingest into all four tanks (NetFlow v5)",
                   "offered rate (records/s)", "records/s", [
                       ("offered", pts(lambda r: num(r["offered_rate"]))),
                       ("received", pts(lambda r: num(r["sent_rate"]) * num(r["taken"]) / max(1, num(r["sent"])))),
                       ("stored x4 tanks", pts(lambda r: num(r["stored_rate"]))),
                   ])
    scan = rows(out, "scan.csv")
    if scan:
        by = {}
        for r in scan:
            by.setdefault(r["leaves"], []).append(r)
        names = sorted(by, key=int)
        line_chart(os.path.join(out, "fig6_scan.svg"), "Fig. 6: full scan, 1 vs N leaves per tank",
                   "records stored", "query time (ms)",
                   [("%s leaf/tank" % k, [(num(r["records"]), num(r["query_ms_p50"])) for r in by[k]])
                    for k in names])
        line_chart(os.path.join(out, "memory.svg"), "Whole network memory (sum of VmRSS)",
                   "records stored", "MiB",
                   [("%s leaf/tank" % k, [(num(r["records"]), num(r["rss_mib"])) for r in by[k]])
                    for k in names])
    strat = rows(out, "strategy.csv")
    if strat:
        by = {}
        for r in strat:
            by.setdefault(r["strategy"], []).append(r)
        line_chart(os.path.join(out, "fig5_strategy_qps.svg"), "Fig. 5: structured vs random, throughput",
                   "parallel clients", "queries/s",
                   [(k, [(num(r["clients"]), num(r["qps"])) for r in v]) for k, v in by.items()])
        line_chart(os.path.join(out, "fig5_strategy_latency.svg"), "Fig. 5: structured vs random, latency",
                   "parallel clients", "p50 latency (ms)",
                   [(k, [(num(r["clients"]), num(r["p50_ms"])) for r in v]) for k, v in by.items()])
    point = rows(out, "point.csv")
    dip = [r for r in point if r["system"] == "dipstorage"]
    if len(dip) >= 2:
        bar_chart(os.path.join(out, "fig7_load.svg"), "Fig. 7: point query, idle vs under ingest",
                  "ms", ["p50", "p99", "mean"],
                  [("idle", [num(dip[0]["p50_ms"]), num(dip[0]["p99_ms"]), num(dip[0]["mean_ms"])]),
                   ("under ingest", [num(dip[1]["p50_ms"]), num(dip[1]["p99_ms"]), num(dip[1]["mean_ms"])])])
    nf = [r for r in point if r["system"] == "nfdump"]
    if dip and nf:
        bar_chart(os.path.join(out, "point.svg"), "Point query by source host", "ms", ["p50", "p99 / max"],
                  [("dipstorage (TLS)", [num(dip[0]["p50_ms"]), num(dip[0]["p99_ms"])]),
                   ("nfdump -R", [num(nf[0]["p50_ms"]), num(nf[0]["p99_ms"])])])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: plot.py OUTDIR")
    main(sys.argv[1])
