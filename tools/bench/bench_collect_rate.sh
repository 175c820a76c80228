#!/bin/sh
# bench_collect_rate.sh - the highest loss-free collector rates, side by side:
# flowgen sends NetFlow v5 (or 20-field IPFIX) over UDP loopback, made in
# memory first (--preload) so that only the sending paces it, at a stepped
# --rate to, one after the other, `nfcapd -B 4194304`, a decode-only listener
# (the library's UDP listener and decoders with a sink that drops the records,
# built here from the C below against build/libdip.a) and `dipstorage collect`
# storing into one leaf store. A step is loss-free when the collector got all
# but < 0.01% of the records; each collector's ladder stops at its second
# lossy step. The figure is the rate flowgen reached in the fastest loss-free
# step (on a busy machine it falls short of the target). CPU per record is
# the collector's user+system time over the records it received. Prints one
# CSV row per step and a summary; also written to
# tools/bench/out/collect-rate-TIMESTAMP.csv.
# BENCH_RECORDS most records per step (default 2000000), BENCH_SECONDS
# (default 4: a step sends at most RATE * SECONDS records), BENCH_RATES
# (target records/s, default "100000 250000 500000 1000000 1500000 2000000
# 2500000 3000000 3500000 4000000"), BENCH_COLLECT_OPTS (options of the
# storing collector, default "--fast-deflate": how cluster leaves compress),
# BENCH_LADDERS (default "nfcapd:v5 decode:v5 stored:v5 decode:ipfix20
# stored:ipfix20").
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
gen="$top/tools/flowgen/flowgen"; bin="$top/dipstorage"; lib="$top/build/libdip.a"
nmax=${BENCH_RECORDS:-2000000}
secs=${BENCH_SECONDS:-4}
copts=${BENCH_COLLECT_OPTS---fast-deflate}
ladders=${BENCH_LADDERS:-"nfcapd:v5 decode:v5 stored:v5 decode:ipfix20 stored:ipfix20"}
rates=${BENCH_RATES:-"100000 250000 500000 1000000 1500000 2000000 2500000 3000000 3500000 4000000"}
for f in "$gen" "$bin" "$lib"; do [ -e "$f" ] || { echo "missing $f: run make first" >&2; exit 1; }; done
command -v nfcapd >/dev/null 2>&1 || { echo "nfcapd missing (apt-get install nfdump)" >&2; exit 1; }
work=$(mktemp -d /tmp/dip-bench-rate-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$top/tools/bench/out"
csv="$top/tools/bench/out/collect-rate-$(date -u +%Y%m%dT%H%M%SZ).csv"

# ---- the decode-only listener ----
cat > "$work/decode_only.c" <<'EOF'
/* decode_only - dip_collect_listen on udp://127.0.0.1:0 with a sink that only
 * counts. Prints the bound port, then on SIGTERM one line: records, packets,
 * malformed, the granted receive buffer and CPU seconds (user + system). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <uv.h>
#include "collect/collect.h"

static struct dip_collect_listener *lis;
static int count(void *ctx, const struct dip_flow *f, size_t n)
{
    (void)f;
    *(unsigned long long *)ctx += n;
    return 0;
}
static void on_signal(uv_signal_t *s, int sig)
{
    (void)sig;
    dip_collect_listener_close(lis);
    uv_close((uv_handle_t *)s, NULL);
}
int main(int argc, char **argv)
{
    unsigned long long n = 0;
    struct dip_collect *c;
    struct dip_errbuf eb = { "" };
    struct dip_collect_listen_options o;
    struct dip_collect_sink sink = { count, &n };
    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sig;
    if (argc != 2 || dip_collect_new(NULL, &c) != DIP_OK) return 2;
    dip_collect_listen_options_default(&o);
    o.udp_rcvbuf = strtoul(argv[1], NULL, 10);
    if (dip_collect_listen(loop, c, "udp://127.0.0.1:0", &o, &sink, &lis, &eb) != DIP_OK) {
        fprintf(stderr, "listen: %s\n", eb.msg);
        return 1;
    }
    printf("%d\n", dip_collect_listener_port(lis));
    fflush(stdout);
    struct dip_collect_listener_stats ls;
    dip_collect_listener_stats(lis, &ls);
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    struct dip_collect_totals t;
    dip_collect_totals_get(c, &t);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("records=%llu packets=%llu malformed=%llu rcvbuf=%u cpu=%.3f\n", n, (unsigned long long)t.packets,
           (unsigned long long)t.malformed, ls.udp_rcvbuf,
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    dip_collect_free(c);
    return 0;
}
EOF
cc -O2 -std=c11 -D_GNU_SOURCE -I"$top/src" -I"$top" -o "$work/decode_only" "$work/decode_only.c" "$lib" \
    $(pkg-config --cflags --libs libuv libxml-2.0 openssl zlib 2>/dev/null) -lm -pthread ||
    { echo "cannot build the decode-only listener" >&2; exit 1; }

# cpu_of PID: user+system seconds of a running process.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

# step COLLECTOR FORMAT RATE: one run; prints "received cpu_seconds".
step() {
    who=$1; fmt=$2; rate=$3
    genopt="--format v5 --preload"; [ "$fmt" = ipfix20 ] && genopt="--format ipfix --ipfix-wide --v6-share 0 --preload"
    rm -rf "$work/run"; mkdir -p "$work/run"
    case $who in
    nfcapd)
        port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
        nfcapd -B 4194304 -b 127.0.0.1 -p "$port" -w "$work/run" -t 3600 > "$work/run/log" 2>&1 &
        pid=$!; sleep 0.5 ;;
    decode)
        "$work/decode_only" 4194304 > "$work/run/log" 2>&1 &
        pid=$!
        for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/run/log" ] && break; sleep 0.1; done
        port=$(head -1 "$work/run/log") ;;
    stored)
        "$bin" collect --listen udp://127.0.0.1:0 --dir "$work/run/store" --stats 0 $copts > "$work/run/log" 2>&1 &
        pid=$!
        for i in 1 2 3 4 5 6 7 8 9 10; do grep -q 'listening' "$work/run/log" && break; sleep 0.1; done
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/run/log") ;;
    esac
    cpu0=$(cpu_of $pid)
    "$gen" -n "$n" --seed 1 $genopt --rate "$rate" --to "udp://127.0.0.1:$port" 2> "$work/run/gen" >/dev/null
    # let the collector drain its socket buffer and write: until it is idle (30 s at most)
    prev=$(cpu_of $pid)
    for i in $(seq 60); do
        sleep 0.5; cpu1=$(cpu_of $pid)
        awk -v a="$prev" -v b="$cpu1" 'BEGIN { exit !(b - a < 0.02) }' && break
        prev=$cpu1
    done
    kill $pid; wait $pid || true; pid=""
    case $who in
    nfcapd) got=$(sed -n "s/.*Flows: \([0-9]*\),.*/\1/p" "$work/run/log" | tail -1) ;;
    decode) got=$(sed -n 's/^records=\([0-9]*\).*/\1/p' "$work/run/log") ;;
    stored) got=$(sed -n 's/^stored=\([0-9]*\).*/\1/p' "$work/run/log") ;;
    esac
    sent_rate=$(sed -n 's/.*s, \([0-9]*\) records\/s.*/\1/p' "$work/run/gen")
    echo "${got:-0} $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }') ${sent_rate:-0}"
}

echo "collector,format,rate,sent_rate,records,received,loss_pct,cpu_us_per_record" | tee "$csv"
summary=""
ladder() {
    who=$1; fmt=$2; best=0; lossy=0; best_us=""
    for r in $rates; do
        n=$((r * secs)); [ $n -gt $nmax ] || [ "$r" -eq 0 ] && n=$nmax
        set -- $(step "$who" "$fmt" "$r")
        got=$1; cpu=$2; sent=$3
        loss=$(awk -v g="$got" -v n="$n" 'BEGIN { printf "%.4f", (n - g) * 100 / n }')
        us=$(awk -v c="$cpu" -v g="$got" 'BEGIN { printf "%.3f", g ? c * 1e6 / g : 0 }')
        echo "$who,$fmt,$r,$sent,$n,$got,$loss,$us" | tee -a "$csv"
        if awk -v l="$loss" 'BEGIN { exit !(l < 0.01) }'; then
            if [ "$sent" -gt "$best" ]; then best=$sent; best_us=$us; fi
        else
            lossy=$((lossy + 1)); [ $lossy -ge 2 ] && break
        fi
    done
    summary="$summary
$who $fmt: highest loss-free rate reached $best records/s (CPU ${best_us:-?} us/record there)"
}
for l in $ladders; do ladder "${l%%:*}" "${l#*:}"; done
echo "== up to $nmax records per step; stored: dipstorage collect $copts; rate: flowgen's target, sent_rate: what it reached$summary" | tee -a "$csv"
