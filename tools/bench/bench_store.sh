#!/bin/sh
# bench_store.sh - `make bench-store`: a leaf store beside nfdump on the same
# generated records, in one run. The records go to nfcapd as NetFlow v5 over
# UDP loopback (flowgen --format v5) and to our store as binary batches from
# the same seed; IPv4 only, because NetFlow v5 carries nothing else.
# Figures go to stdout and tools/bench/out/store-TIMESTAMP.csv.
# BENCH_RECORDS (default 10000000), BENCH_POINTS (default 200),
# BENCH_LARGE_RECORDS (default 0: skipped; 50000000 for the issue's second
# memory figure): a second store that large, ingested and queried per host
# within the store's default limits, for its peak RSS (~7 minutes and 5.8 GB
# of scratch at 50M).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/dipstorage"; gen="$top/tools/flowgen/flowgen"; bench="$top/tools/bench/bench_store"
n=${BENCH_RECORDS:-10000000}
points=${BENCH_POINTS:-200}
work=$(mktemp -d /tmp/dip-bench-XXXXXX)
trap 'kill $nfpid 2>/dev/null || true; rm -rf "$work"' EXIT
nfpid=
mkdir -p "$top/tools/bench/out"
csv="$top/tools/bench/out/store-$(date -u +%Y%m%dT%H%M%SZ).csv"
echo "figure,dipstorage,nfdump" > "$csv"
row() { echo "$1,$2,$3" | tee -a "$csv"; }

echo "== $n records (seed 1, IPv4)" >&2
"$gen" -n "$n" --seed 1 --v6-share 0 --format batch -o "$work/flows.bin" 2>/dev/null

# ---- dipstorage: ingest through the store's insert path (WAL + seal + gzip),
# by default (igzip level 2 when sealing, level 3 when merging), with
# --fast-deflate (merges at level 2 too, as leaves do) and with zlib level 4
# (--gzip-level 4, the densest of the three)
# The command reports the insert (until its last seal) and the merges after
# it (compaction, src/store/merge.c) apart: rate and CPU a record of each.
# ingest NAME [OPTIONS...]: ingests into $work/NAME; sets rate and cpu (of the
# insert), disk (bytes a record) and secs rss usr sys (of the whole command)
ingest() {
    i_name=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$work/$i_name.time" "$bin" store ingest "$@" --dir "$work/$i_name" --key src \
        "$work/flows.bin" 2> "$work/$i_name.log"
    read secs rss usr sys < "$work/$i_name.time"
    i_line=$(grep 'store: stored' "$work/$i_name.log")
    rate=$(echo "$i_line" | sed -n 's/.*(\([0-9]*\) rec\/s.*/\1/p')
    cpu=$(echo "$i_line" | sed -n 's/.*rec\/s, \([0-9.]*\) us of CPU.*/\1/p')
    disk=$(echo "scale=1; $(du -sb "$work/$i_name" | cut -f1) / $n" | bc)
}
ingest fast --fast-deflate
fast_rate=$rate fast_cpu=$cpu fast_disk=$disk
rm -rf "$work/fast"
ingest zlib --gzip-level 4
zlib_rate=$rate zlib_cpu=$cpu zlib_disk=$disk
rm -rf "$work/zlib"
ingest store
dip_rate=$rate dip_cpu=$cpu
merge_line=$(grep 'store: merged' "$work/store.log" || echo "store: merged 0 segments in 0 s (0 s of CPU)")
merge_secs=$(echo "$merge_line" | sed -n 's/.* in \([0-9.]*\) s .*/\1/p')
merge_cpu=$(echo "$merge_line" | sed -n 's/.*(\([0-9.]*\) s of CPU).*/\1/p')
merge_segs=$(echo "$merge_line" | sed -n 's/.*merged \([0-9]*\) segments.*/\1/p')
all_rate=$(echo "$n / $secs" | bc)
all_cpu=$(echo "scale=2; ($usr + $sys) * 1000000 / $n" | bc)
dip_rss_ingest=$((rss / 1024))
/usr/bin/time -f "%e %M" -o "$work/time2" "$bench" "$work/store" "$points" 1000000 > "$work/dip.csv"
read qsecs qrss < "$work/time2"
get() { sed -n "s/^$1,//p" "$work/dip.csv"; }

# ---- nfdump: nfcapd receives the same records as NetFlow v5
port=$((20000 + $$ % 10000))
mkdir -p "$work/nf"
nfcapd -B 4194304 -p "$port" -w "$work/nf" -t 3600 >/dev/null 2>&1 &
nfpid=$!
sleep 1
start=$(date +%s.%N)
"$gen" -n "$n" --seed 1 --v6-share 0 --format v5 --rate 1000000 --to "udp://127.0.0.1:$port" 2>/dev/null
sleep 2
kill -TERM "$nfpid"; wait "$nfpid" 2>/dev/null || true; nfpid=
end=$(date +%s.%N)
nf_records=$(nfdump -R "$work/nf" -q -o 'fmt:%pkt' -n 0 2>/dev/null | wc -l || echo 0)
nf_disk=$(du -sb "$work/nf" | cut -f1)
host=$(nfdump -R "$work/nf" -q -o 'fmt:%sa' -c 1 2>/dev/null | tr -d ' ')
/usr/bin/time -f "%e %M" -o "$work/t3" nfdump -R "$work/nf" -q "src ip $host" > /dev/null 2>&1
read nf_point nf_rss < "$work/t3"
/usr/bin/time -f "%e %M" -o "$work/t4" nfdump -R "$work/nf" -q "bytes > 1000000" > /dev/null 2>&1
read nf_scan nf_rss2 < "$work/t4"

row records "$(get records)" "$nf_records"
row insert_rec_per_s "$dip_rate" "$(echo "$n / ($end - $start)" | bc) (UDP receive at the offered 1M rec/s)"
row insert_cpu_us_per_record "$dip_cpu (igzip level 2; merges at 3)" "-"
row insert_rec_per_s_per_core "$(echo "1000000 / $dip_cpu" | bc)" "-"
row compaction_after_ingest "merged $merge_segs segments in $merge_secs s, $merge_cpu s CPU" "-"
row insert_with_compaction_rec_per_s "$all_rate ($all_cpu us CPU a record)" "-"
row insert_rec_per_s_fast_deflate "$fast_rate ($fast_cpu us CPU a record; $fast_disk B a record; merges at level 2)" "-"
row insert_rec_per_s_zlib4 "$zlib_rate ($zlib_cpu us CPU a record; $zlib_disk B a record)" "-"
row point_query_p50_ms "$(get point_p50_ms) (keys drawn per record)" "$(echo "$nf_point * 1000" | bc) (one query; a full scan)"
row point_query_p99_ms "$(get point_p99_ms) ($(get point_p99_records) records returned)" "-"
row point_query_per_host_p50_ms "$(get point_host_p50_ms) (keys drawn per host; $(get hosts) hosts)" "-"
row point_query_per_host_p99_ms "$(get point_host_p99_ms) ($(get point_host_p99_records) records returned)" "-"
row point_query_us_per_record_returned "$(get point_us_per_record_found)" "-"
row scan_rec_per_s "$(get scan_rec_per_s)" "$(echo "$nf_records / $nf_scan" | bc)"
row disk_bytes_per_record "$(get disk_bytes_per_record)" "$(echo "scale=1; $nf_disk / $nf_records" | bc)"
row peak_rss_mb "ingest $dip_rss_ingest / queries $((qrss / 1024))" "$((nf_rss / 1024))"
large=${BENCH_LARGE_RECORDS:-0}
if [ "$large" -gt 0 ]; then
    echo "== a second store of $large records, for its memory" >&2
    rm -rf "$work/store" "$work/nf" "$work/flows.bin"
    "$gen" -n "$large" --seed 1 --v6-share 0 --format batch -o "$work/large.bin" 2>/dev/null
    /usr/bin/time -f "%M" -o "$work/large.time" "$bin" store ingest --dir "$work/large" --key src "$work/large.bin" \
        2> "$work/large.log"
    rm -f "$work/large.bin"
    l_line=$(grep 'store: stored' "$work/large.log")
    l_rate=$(echo "$l_line" | sed -n 's/.*(\([0-9]*\) rec\/s.*/\1/p')
    /usr/bin/time -f "%M" -o "$work/large.qtime" "$bench" "$work/large" "$points" 1000000 --per-host > "$work/large.csv"
    lget() { sed -n "s/^$1,//p" "$work/large.csv"; }
    row "large_store_records" "$(lget records) (ingested at $l_rate rec/s)" "-"
    row "large_store_peak_rss_mb" "ingest $(($(cat "$work/large.time") / 1024)) / queries $(($(cat "$work/large.qtime") / 1024))" "-"
    row "large_store_point_query_per_host_p50_p99_ms" "$(lget point_host_p50_ms) / $(lget point_host_p99_ms) ($(lget point_host_p99_records) records returned)" "-"
    row "large_store_scan_rec_per_s" "$(lget scan_rec_per_s)" "-"
    row "large_store_disk_bytes_per_record" "$(lget disk_bytes_per_record)" "-"
fi
echo "== written to $csv" >&2
