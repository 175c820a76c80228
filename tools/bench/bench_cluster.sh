#!/bin/sh
# bench_cluster.sh - `make bench-cluster`: the paper's evaluation (section V,
# Fig. 5-7) and the issue's targets, measured on local storage networks
# (`dipstorage up`: separate processes, TLS over loopback) fed NetFlow v5 by
# flowgen through the collector and queried over TLS by bench_cluster:
#   ingest    loss-free ingest into all four tanks at stepped offered rates
#             (a fresh network per step): collector loss, stored rate
#   scale     Fig. 6: full-scan query time vs stored records, 1 leaf vs N leaves
#             per tank (the same records, loaded in chunks; checkpoints)
#   strategy  Fig. 5: structured vs random storage, point queries by 1..8
#             parallel clients, at BENCH_F5_RECORDS
#   point     point query by key at BENCH_RECORDS (p50/p99 over TLS) beside
#             nfdump on the same records; Fig. 7: the same queries under a
#             constant ingest load; the whole network's memory
# CSV and SVG go to tools/bench/out/cluster-TIMESTAMP/; a summary table at
# the end (summary.csv). Sizes (env): BENCH_RECORDS (20000000),
# BENCH_CHECKPOINTS ("1000000 2000000 5000000 10000000 20000000", cut at
# BENCH_RECORDS), BENCH_F5_RECORDS (2000000), BENCH_STEP_RECORDS (2000000),
# BENCH_RATES ("25000 50000 75000 100000 125000 150000"), BENCH_LOAD_RATE
# (50000: how fast networks are filled), BENCH_LEAVES (4), BENCH_QUERIES
# (1000), BENCH_F5_QUERIES (500), BENCH_CLIENTS ("1 2 4 8"), BENCH_SCAN_REPEAT
# (3), BENCH_SCAN_XPATH, BENCH_UNDER_RATE (50000), BENCH_UNDER_SECONDS (30),
# BENCH_UNDER_ROUNDS (3: idle and loaded windows taken in turn, pooled),
# BENCH_NF_RATE (500000), BENCH_NF_QUERIES (5), BENCH_PORT (30000: first of
# the ports used, up to +499), BENCH_PARTS ("ingest scale strategy point"),
# BENCH_QUERY_TIMEOUT (300 s), BENCH_SEAL_RECORDS and BENCH_LEAF_MEMORY (MiB)
# (`dipstorage up --leaf-seal-records` and `--leaf-memory` for the networks
# started; unset: its defaults), BENCH_KEEP=1 keeps the work folder and the
# networks' folders in it (stopped; `dipstorage up --dir` starts one again).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/dipstorage"; gen="$top/tools/flowgen/flowgen"; bench="$top/tools/bench/bench_cluster"
for f in "$bin" "$gen" "$bench"; do [ -x "$f" ] || { echo "missing $f: make all tools/bench/bench_cluster" >&2; exit 1; }; done
command -v python3 >/dev/null 2>&1 || { echo "python3 missing (plots and query lists)" >&2; exit 1; }
export DIP_HOME="$top"

records=${BENCH_RECORDS:-20000000}
checkpoints=${BENCH_CHECKPOINTS:-"1000000 2000000 5000000 10000000 20000000"}
f5_records=${BENCH_F5_RECORDS:-2000000}
step_records=${BENCH_STEP_RECORDS:-2000000}
rates=${BENCH_RATES:-"25000 50000 75000 100000 125000 150000"}
load_rate=${BENCH_LOAD_RATE:-50000}
leaves=${BENCH_LEAVES:-4}
queries=${BENCH_QUERIES:-1000}
f5_queries=${BENCH_F5_QUERIES:-500}
clients=${BENCH_CLIENTS:-"1 2 4 8"}
scan_repeat=${BENCH_SCAN_REPEAT:-3}
scan_xpath=${BENCH_SCAN_XPATH:-"count(//flow[@bytes > 1000])"}
under_rate=${BENCH_UNDER_RATE:-50000}
under_seconds=${BENCH_UNDER_SECONDS:-30}
under_rounds=${BENCH_UNDER_ROUNDS:-3}
nf_rate=${BENCH_NF_RATE:-500000}
nf_queries=${BENCH_NF_QUERIES:-5}
port0=${BENCH_PORT:-30000}
parts=${BENCH_PARTS:-"ingest scale strategy point"}
qtimeout=${BENCH_QUERY_TIMEOUT:-300}
[ "$f5_records" -le "$records" ] || f5_records=$records

work=$(mktemp -d /tmp/dip-bench-cluster-XXXXXX)
out="$top/tools/bench/out/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
clusters="" bgpids=""
cleanup() {
    for p in $bgpids; do kill "$p" 2>/dev/null || true; done
    for d in $clusters; do [ -f "$d/cluster.xml" ] && "$bin" down --dir "$d" >/dev/null 2>&1 || true; done
    [ "${BENCH_KEEP:-0}" = 1 ] && echo "== work folder kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "== $*" >&2; }
has_part() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

# ---- storage networks ------------------------------------------------------
# up NAME INDEX LEAVES STRATEGY: starts a network in $work/NAME on ports
# port0 + INDEX*100 + 0..99; sets dir, client, netflow.
up() {
    dir="$work/$1"; base=$((port0 + $2 * 100))
    client="127.0.0.1:$((base + 90))"; netflow="127.0.0.1:$((base + 91))"
    clusters="$clusters $dir"
    "$bin" up --dir "$dir" --leaves "$3" --strategy "$4" --base-port "$base" --client-port "$((base + 90))" \
        --netflow-port "$((base + 91))" --ipfix-port "$((base + 92))" --query-timeout "$qtimeout" \
        ${BENCH_SEAL_RECORDS:+--leaf-seal-records "$BENCH_SEAL_RECORDS"} \
        ${BENCH_LEAF_MEMORY:+--leaf-memory "$BENCH_LEAF_MEMORY"} \
        > "$work/$1.up" 2>&1 || { cat "$work/$1.up" >&2; exit 1; }
}
down() { "$bin" down --dir "$1" >/dev/null 2>&1 || true; [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$1"; }

# The awk function the status readers below share: attr(s, name) is the
# value of name="..." in s ("" when absent).
attr_awk='function attr(s, name,   v) {
    if (!match(s, " " name "=\"[^\"]*\"")) return ""
    v = substr(s, RSTART + length(name) + 3, RLENGTH - length(name) - 4); return v }'

# counts DIR: "taken src dst sport dport" (records the collector took, records
# each tank's leaves hold)
counts() {
    "$bin" status --dir "$1" --xml 2>/dev/null | awk "$attr_awk"'
    /<replicator / { s = substr($0, index($0, "<replicator ")); taken = attr(s, "records") }
    /role="leaf"/ { t[attr($0, "tank")] += attr($0, "records") }
    END { printf "%d %d %d %d %d\n", taken, t["src"], t["dst"], t["sport"], t["dport"] }'
}

# background DIR: "seals merges" the leaves of DIR have finished since they
# started, summed: the work beside ingest that a loaded window shares the
# CPUs with
background() {
    "$bin" status --dir "$1" --xml 2>/dev/null | awk "$attr_awk"'
    /role="leaf"/ { seals += attr($0, "seals"); merges += attr($0, "merges") }
    END { printf "%d %d\n", seals, merges }'
}

# settle DIR TIMEOUT_S: waits until every tank holds every record the collector
# took (and the count is steady); prints the time it was reached (now()).
settle() {
    deadline=$(($(date +%s) + $2))
    while :; do
        set -- "$1" "$2" $(counts "$1")
        if [ "$3" -gt 0 ] && [ "$3" = "$4" ] && [ "$3" = "$5" ] && [ "$3" = "$6" ] && [ "$3" = "$7" ]; then
            now; return 0
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "tanks did not catch up in $2 s: collector took $3, tanks hold $4 $5 $6 $7"; now; return 1
        fi
        sleep 0.25
    done
}

# quiet DIR TIMEOUT: waits until no leaf of DIR is merging segments (the
# compaction after a load), so that measurements after it see the network idle
quiet() {
    q_deadline=$(($(date +%s) + $2))
    while "$bin" status --dir "$1" --xml 2>/dev/null | grep -q ' merging="1"'; do
        [ "$(date +%s)" -lt "$q_deadline" ] || { say "leaves still merging after $2 s"; return 1; }
        sleep 1
    done
}

# calm DIR TIMEOUT: waits until DIR's node processes together used less
# than a tenth of a core over the last second (seals and flushes that
# follow a load done), so that "idle" measurements see the network idle
calm() {
    c_deadline=$(($(date +%s) + $2))
    c_prev=-1
    while :; do
        c_ticks=0
        for pf in "$1"/nodes/*/pid; do
            pid=$(cat "$pf" 2>/dev/null) || continue
            [ -r "/proc/$pid/stat" ] || continue
            c_ticks=$((c_ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
        done
        hz=$(getconf CLK_TCK)
        [ "$c_prev" -ge 0 ] && [ $((c_ticks - c_prev)) -lt $((hz / 10)) ] && return 0
        [ "$(date +%s)" -lt "$c_deadline" ] || { say "nodes still busy after $2 s"; return 1; }
        c_prev=$c_ticks
        sleep 1
    done
}

# mem DIR: "hwm_kib rss_kib processes" summed over every node process
mem() {
    hwm=0 rss=0 np=0
    for pf in "$1"/nodes/*/pid; do
        pid=$(cat "$pf" 2>/dev/null) || continue
        [ -r "/proc/$pid/status" ] || continue
        set -- $(awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h + 0, r + 0 }' "/proc/$pid/status")
        hwm=$((hwm + $1)); rss=$((rss + $2)); np=$((np + 1))
    done
    echo "$hwm $rss $np"
}

# chunks: the records are loaded as chunks between checkpoints, chunk i from
# seed 1000+i over its own hour, so every network gets the same records.
cps=$(for c in $checkpoints $f5_records $records; do [ "$c" -le "$records" ] && echo "$c"; done | sort -n | uniq | tr '\n' ' ')
# send_chunks DIR_OR_- TARGET FROM TO RATE: sends the chunks covering
# (FROM, TO] to udp://TARGET at RATE; with a DIR, waits for it to settle.
send_chunk() { # TARGET INDEX COUNT RATE
    "$gen" -n "$3" --seed "$((1000 + $2))" --start "$((1700000000000 + $2 * 3600000))" --v6-share 0 \
        --format v5 --rate "$4" --to "udp://$1" 2>> "$work/flowgen.log" >/dev/null
}
# load DIR TARGET CHECKPOINT_INDEX_FROM CHECKPOINT_TO RATE CALLBACK
# Fills a network checkpoint by checkpoint up to CHECKPOINT_TO, calling
# CALLBACK RECORDS after each.
load() {
    l_dir=$1 l_target=$2 l_to=$3 l_rate=$4 l_cb=$5 l_prev=0 l_i=0
    for c in $cps; do
        [ "$c" -le "$l_to" ] || break
        l_i=$((l_i + 1))
        say "  loading records $l_prev..$c at $l_rate rec/s"
        send_chunk "$l_target" "$l_i" "$((c - l_prev))" "$l_rate"
        [ "$l_dir" = - ] || settle "$l_dir" $((600 + (c - l_prev) / 5000)) > /dev/null || true
        [ "$l_dir" = - ] || quiet "$l_dir" 900 || true
        l_prev=$c
        $l_cb "$c"
    done
}
noop() { :; }

# the point queries: source hosts drawn uniformly from the distinct sources of
# the first chunk's records
first_cp=${cps%% *}
"$gen" -n "$first_cp" --seed 1001 --start 1700003600000 --v6-share 0 --format xml 2>/dev/null |
    head -n 200000 > "$work/sample.xml" || true
python3 - "$work/sample.xml" "$queries" > "$work/point.txt" <<'EOF'
import random, re, sys
hosts = sorted(set(re.findall(r' src="([^"]+)"', open(sys.argv[1]).read())))
random.Random(7).shuffle(hosts)
for h in hosts[:int(sys.argv[2])]:
    print("//flow[@src='%s']" % h)
EOF
echo "$scan_xpath" > "$work/scan.txt"

# ask NAME DIR ARGS...: bench_cluster against DIR's access point over TLS;
# the key=value line goes to $work/NAME.kv
ask() {
    a_name=$1 a_dir=$2; shift 2
    "$bench" -c "$client" --tls "$a_dir/tls" --timeout "$((qtimeout * 1000 + 5000))" \
        --samples "$out/samples-$a_name.csv" "$@" > "$work/$a_name.kv" 2> "$work/$a_name.err" || { say "$a_name: $(cat "$work/$a_name.err")"; true; }
    cat "$work/$a_name.kv" >&2
}

summary="$out/summary.csv"
echo "figure,dipstorage,anchor,target" > "$summary"
srow() { echo "\"$1\",\"$2\",\"$3\",\"$4\"" >> "$summary"; }

# ---- 1. loss-free ingest ---------------------------------------------------
if has_part ingest; then
    say "ingest: $step_records records per step at offered rates $rates (a fresh $leaves-leaf network each)"
    csv="$out/ingest.csv"
    echo "offered_rate,sent_rate,sent,taken,loss_pct,stored_each_tank,seconds_to_stored,stored_rate" > "$csv"
    best=0 best_stored=0 max_stored=0 lossy=0 i=0
    for r in $rates; do
        i=$((i + 1))
        up "ingest$i" 0 "$leaves" structured
        t0=$(now)
        "$gen" -n "$step_records" --seed "$((5000 + i))" --v6-share 0 --format v5 --rate "$r" \
            --to "udp://$netflow" 2> "$work/ingest$i.gen" >/dev/null
        t1=$(settle "$dir" $((120 + step_records / 5000))) || true
        set -- $(counts "$dir")
        taken=$1 stored=$2
        for t in $3 $4 $5; do [ "$t" -lt "$stored" ] && stored=$t; done
        sent_rate=$(sed -n 's/.*s, \([0-9]*\) records\/s.*/\1/p' "$work/ingest$i.gen")
        loss=$(calc "($step_records - $taken) * 100 / $step_records" 4)
        secs=$(calc "$t1 - $t0" 2)
        srate=$(calc "$stored / ($t1 - $t0)" 0)
        echo "$r,${sent_rate:-0},$step_records,$taken,$loss,$stored,$secs,$srate" | tee -a "$csv" >&2
        [ "$srate" -gt "$max_stored" ] && max_stored=$srate
        if awk -v l="$loss" 'BEGIN { exit !(l < 0.01) }'; then
            [ "$r" -gt "$best" ] && { best=$r; best_stored=$srate; }
            lossy=0
        else
            lossy=$((lossy + 1))
        fi
        down "$dir"
        [ "$lossy" -ge 2 ] && break
    done
    srow "loss-free ingest into all four tanks (rec/s; 2 cores)" \
        "stored $best_stored rec/s at the highest loss-free offered rate $best (max stored $max_stored)" \
        "paper ~10000; Akvorado 100k on 24 vCPU" ">= 100000"
fi

# ---- 5./6. Fig. 6 (scale) and Fig. 5 (strategy) ---------------------------
scan_csv="$out/scan.csv"
echo "leaves,records,stored,tank,answer,query_ms_p50,query_ms_min,query_ms_max,rss_mib,hwm_mib,largest_leaf_share" > "$scan_csv"
# leaf_share DIR TANK: the largest share of TANK's records one leaf holds
leaf_share() {
    "$bin" status --dir "$1" --xml 2>/dev/null | awk -v t="$2" "$attr_awk"'
    /role="leaf"/ && attr($0, "tank") == t {
        n = attr($0, "records") + 0; sum += n; if (n > max) max = n }
    END { printf "%.2f", sum ? max / sum : 0 }'
}
# scan_at RECORDS: the full-scan query on the current network ($dir, $leaves_now)
scan_at() {
    "$bin" query -c "$client" --tls "$dir/tls" --timeout "$((qtimeout + 5))" "$scan_xpath" > "$work/scan.xml" 2>&1 || true
    answer=$(sed -n 's:.*<number>\(.*\)</number>.*:\1:p' "$work/scan.xml")
    tank=$(sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p' "$work/scan.xml")
    ask "scan-$leaves_now-$1" "$dir" -q "$work/scan.txt" -n "$scan_repeat"
    set -- "$1" $(counts "$dir") $(mem "$dir")
    echo "$leaves_now,$1,$3,${tank:--},${answer:-error},$(kv p50_ms "$work/scan-$leaves_now-$1.kv"),$(kv min_ms "$work/scan-$leaves_now-$1.kv"),$(kv max_ms "$work/scan-$leaves_now-$1.kv"),$(($8 / 1024)),$(($7 / 1024)),$(leaf_share "$dir" "${tank:-src}")" |
        tee -a "$scan_csv" >&2
}
strat_csv="$out/strategy.csv"
echo "strategy,records,clients,queries,ok,qps,p50_ms,p99_ms,mean_ms,mean_count" > "$strat_csv"
# strategy_sweep NAME RECORDS: point queries by 1..8 parallel clients on $dir
strategy_sweep() {
    for nc in $clients; do
        ask "f5-$1-$nc" "$dir" -q "$work/point.txt" -t "$nc" -n "$f5_queries" -w 10
        k="$work/f5-$1-$nc.kv"
        echo "$1,$2,$nc,$(kv queries "$k"),$(kv ok "$k"),$(kv qps "$k"),$(kv p50_ms "$k"),$(kv p99_ms "$k"),$(kv mean_ms "$k"),$(kv mean_count "$k")" |
            tee -a "$strat_csv" >&2
    done
}
cb_scale() { scan_at "$1"; }
cb_main() {
    scan_at "$1"
    if has_part strategy && [ "$1" = "$f5_records" ]; then
        say "Fig. 5: structured storage, $1 records, point queries by $clients clients"
        strategy_sweep structured "$1"
    fi
}

if has_part strategy; then
    say "Fig. 5: random storage ($leaves leaves per tank), $f5_records records"
    up random 1 "$leaves" random
    load "$dir" "$netflow" "$f5_records" "$load_rate" noop
    strategy_sweep random "$f5_records"
    down "$dir"
fi
if has_part scale; then
    say "Fig. 6: 1 leaf per tank, checkpoints $cps"
    up one 2 1 structured; leaves_now=1
    load "$dir" "$netflow" "$records" "$load_rate" cb_scale
    down "$dir"
fi

if has_part scale || has_part strategy || has_part point; then
    say "the main network: $leaves leaves per tank, structured, up to $records records"
    up main 3 "$leaves" structured; leaves_now=$leaves
    main_dir=$dir
    load "$dir" "$netflow" "$records" "$load_rate" cb_main
fi

# ---- 2./3./4. point queries, Fig. 7, memory, nfdump ------------------------
if has_part point; then
    pcsv="$out/point.csv"
    echo "system,condition,records,queries,ok,p50_ms,p99_ms,mean_ms,qps,mean_count" > "$pcsv"
    # Fig. 7 takes idle and loaded windows in turn (rounds) and pools each
    # condition's samples: whether leaves sealed or merged inside a single
    # 30 s window moved its ratio between 1.0x and 1.8x from run to run.
    say "point queries by source host at $records records, 1 client over TLS: $under_rounds rounds of idle, then under $under_rate rec/s ingest for $under_seconds s"
    under_sent=0 under_taken=0 r=0 round_work=
    while [ "$r" -lt "$under_rounds" ]; do
        r=$((r + 1))
        calm "$dir" 300 || true
        ask "idle-$r" "$dir" -q "$work/point.txt" -n "$queries" -w 20
        if [ "$r" = 1 ]; then # memory at the configured size, before Fig. 7 adds records
            set -- $(mem "$dir"); m_hwm=$1 m_rss=$2 m_np=$3
            set -- $(counts "$dir"); m_records=$2
        fi
        set -- $(counts "$dir"); taken0=$1
        set -- $(background "$dir"); seals0=$1 merges0=$2
        "$gen" -n "$((under_rate * under_seconds))" --seed "$((9000 + r))" --start 1690000000000 --v6-share 0 \
            --format v5 --rate "$under_rate" --to "udp://$netflow" 2> "$work/under.gen" >/dev/null &
        genpid=$!; bgpids="$bgpids $genpid"
        sleep 3
        ask "load-$r" "$dir" -q "$work/point.txt" -n "$queries" -s "$((under_seconds > 7 ? under_seconds - 5 : 2))"
        set -- $(background "$dir")
        round_work="$round_work${round_work:+/}$(($1 - seals0))+$(($2 - merges0))"
        wait "$genpid" || true
        bgpids=""
        settle "$dir" 600 > /dev/null || true
        quiet "$dir" 900 || true
        set -- $(counts "$dir")
        under_taken=$((under_taken + $1 - taken0)); under_sent=$((under_sent + under_rate * under_seconds))
    done
    under_loss=$(calc "($under_sent - $under_taken) * 100 / $under_sent" 3)
    round_ratios=$(python3 "$top/tools/bench/pool_rounds.py" "$out" "$under_rounds" "$work") || round_ratios="?"
    echo "dipstorage,idle,$records,$(kv queries "$work/idle.kv"),$(kv ok "$work/idle.kv"),$(kv p50_ms "$work/idle.kv"),$(kv p99_ms "$work/idle.kv"),$(kv mean_ms "$work/idle.kv"),$(kv qps "$work/idle.kv"),$(kv mean_count "$work/idle.kv")" >> "$pcsv"

    echo "dipstorage,under $under_rate rec/s ingest (collector loss $under_loss%),$records,$(kv queries "$work/load.kv"),$(kv ok "$work/load.kv"),$(kv p50_ms "$work/load.kv"),$(kv p99_ms "$work/load.kv"),$(kv mean_ms "$work/load.kv"),$(kv qps "$work/load.kv"),$(kv mean_count "$work/load.kv")" >> "$pcsv"

    say "memory of every node process"
    mcsv="$out/memory.csv"
    echo "node,vmhwm_kib,vmrss_kib" > "$mcsv"
    for pf in "$dir"/nodes/*/pid; do
        node=$(basename "$(dirname "$pf")"); pid=$(cat "$pf")
        awk -v n="$node" '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print n "," h + 0 "," r + 0 }' \
            "/proc/$pid/status" >> "$mcsv" 2>/dev/null || true
    done
    echo "total at $m_records records per tank (before Fig. 7),$m_hwm,$m_rss" >> "$mcsv"
    set -- $(mem "$dir"); e_hwm=$1 e_rss=$2
    set -- $(counts "$dir")
    echo "total at the end ($2 records per tank),$e_hwm,$e_rss" >> "$mcsv"

    say "nfdump anchor: nfcapd receives the same chunks at $nf_rate rec/s"
    nfdir="$work/nfcapd"; mkdir -p "$nfdir"
    nfport=$((port0 + 495))
    nfcapd -B 4194304 -b 127.0.0.1 -p "$nfport" -w "$nfdir" -t 3600 > "$work/nfcapd.log" 2>&1 &
    nfpid=$!; bgpids="$bgpids $nfpid"
    sleep 1
    load - "127.0.0.1:$nfport" "$records" "$nf_rate" noop
    sleep 2
    kill -TERM "$nfpid" 2>/dev/null || true; wait "$nfpid" 2>/dev/null || true
    bgpids=""
    nf_records=$(sed -n "s/.*Flows: \([0-9]*\),.*/\1/p" "$work/nfcapd.log" | tail -1)
    : > "$work/nf.times"
    head -n "$nf_queries" "$work/point.txt" | sed -n "s/.*@src='\([^']*\)'.*/\1/p" | while read -r h; do
        t0=$(now); nfdump -R "$nfdir" -q "src ip $h" > /dev/null 2>&1 || true; t1=$(now)
        calc "($t1 - $t0) * 1000" 3 >> "$work/nf.times"; echo >> "$work/nf.times"
    done
    nf_p50=$(sort -n "$work/nf.times" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    nf_max=$(sort -n "$work/nf.times" | tail -1)
    echo "nfdump,nfdump -R (src ip H) on ${nf_records:-?} records,$records,$(wc -l < "$work/nf.times"),-,$nf_p50,$nf_max,-,-,-" >> "$pcsv"
    cat "$pcsv" >&2

    p50=$(kv p50_ms "$work/idle.kv"); p99=$(kv p99_ms "$work/idle.kv")
    lp50=$(kv p50_ms "$work/load.kv"); lp99=$(kv p99_ms "$work/load.kv")
    srow "point query by key at $records records (p50 / p99; TLS; end to end)" "$p50 ms / $p99 ms" \
        "nfdump src ip: $nf_p50 ms (median of $nf_queries; full scan)" "<= 5 ms / <= 20 ms"
    srow "query time under $under_rate rec/s ingest vs idle (p50 / p99)" \
        "$(calc "${lp50:-0} / ${p50:-1}" 2)x / $(calc "${lp99:-0} / ${p99:-1}" 2)x ($lp50 / $lp99 ms; p50 ratio by round $round_ratios, seals+merges the leaves finished while it was asked $round_work; loss $under_loss%)" \
        "paper: not significantly influenced at 10k rec/s" "<= 1.25x"
    srow "whole local cluster memory at $m_records records ($m_np processes)" \
        "VmRSS $(calc "$m_rss / 1048576" 2) GiB; sum of VmHWM $(calc "$m_hwm / 1048576" 2) GiB (end: $(calc "$e_rss / 1048576" 2) / $(calc "$e_hwm / 1048576" 2) GiB)" "-" "<= 4 GiB RSS at 20M"
fi
if [ -n "${main_dir:-}" ]; then down "$main_dir"; fi

if has_part scale; then
    last=$(tail -n 1 "$scan_csv" | cut -d, -f2)
    one=$(awk -F, -v r="$last" '$1 == 1 && $2 == r { print $6 }' "$scan_csv")
    many=$(awk -F, -v r="$last" -v l="$leaves" '$1 == l && $2 == r { print $6 }' "$scan_csv")
    srow "$leaves leaves vs 1 per tank, full scan at $last records (Fig. 6)" \
        "$(calc "${one:-0} / ${many:-1}" 2)x faster ($one ms vs $many ms)" "paper: ~4x" "report (2 cores cap it)"
fi
if has_part strategy; then
    s1=$(awk -F, '$1 == "structured" { v = $6 } END { print v }' "$strat_csv")
    r1=$(awk -F, '$1 == "random" { v = $6 } END { print v }' "$strat_csv")
    srow "structured vs random, point queries by $(echo "$clients" | awk '{ print $NF }') clients (Fig. 5; q/s)" \
        "structured $s1 q/s; random $r1 q/s" "paper: structured outperforms random" "report"
fi

python3 "$top/tools/bench/plot.py" "$out" >&2 || say "plots failed"
say "results in $out"
python3 - "$summary" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
w = [max(len(r[i]) for r in rows) for i in range(4)]
for r in rows:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
EOF
