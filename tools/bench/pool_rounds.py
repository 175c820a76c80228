#!/usr/bin/env python3
"""pool_rounds.py - pools the rounds of bench_cluster.sh's Fig. 7 (idle and
loaded windows taken in turn) into one sample file and one key=value line per
condition, as a single bench_cluster run writes them, and prints each round's
ratio of p50 under load to p50 idle ("1.31/1.57/1.31").

usage: pool_rounds.py OUT_DIR ROUNDS KV_DIR
  reads  OUT_DIR/samples-{idle,load}-R.csv for R in 1..ROUNDS
  writes OUT_DIR/samples-{idle,load}.csv and KV_DIR/{idle,load}.kv
"""
import csv
import statistics
import sys

FIELDS = ["line", "ms", "count", "outcome", "server_ms"]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def all_ms(rows):
    """Every query's time, whatever its outcome, as bench_cluster counts them."""
    return sorted(float(r["ms"]) for r in rows)


def percentile(sorted_ms, q):
    """The nearest-rank percentile, as bench_cluster computes it."""
    if not sorted_ms:
        return 0.0
    rank = min(max(1, int(q * len(sorted_ms) + 0.999999)), len(sorted_ms))
    return sorted_ms[rank - 1]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out, rounds, kv_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    medians = {}
    for cond in ("idle", "load"):
        rows = []
        for r in range(1, rounds + 1):
            got = read("%s/samples-%s-%d.csv" % (out, cond, r))
            medians[(cond, r)] = statistics.median(all_ms(got) or [0.0])
            rows += got
        with open("%s/samples-%s.csv" % (out, cond), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        ms = all_ms(rows)
        ok = sum(1 for r in rows if r["outcome"] == "0")
        counts = [int(r["count"]) for r in rows if int(r["count"]) >= 0]
        with open("%s/%s.kv" % (kv_dir, cond), "w") as f:
            f.write("queries=%d ok=%d p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f qps=- mean_count=%.1f rounds=%d\n" % (
                len(rows), ok, percentile(ms, 0.5), percentile(ms, 0.99),
                sum(ms) / len(ms) if ms else 0.0, sum(counts) / len(counts) if counts else 0.0, rounds))
    print("/".join("%.2f" % (medians[("load", r)] / medians[("idle", r)] if medians[("idle", r)] else 0.0)
                   for r in range(1, rounds + 1)))


if __name__ == "__main__":
    main()
