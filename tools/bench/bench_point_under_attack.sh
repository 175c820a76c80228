# bench_point_under_attack.sh - point queries while clients attack with
# heavy queries (issue 22): on a 4-tank network (2 leaves a tank) holding
# BENCH_RECORDS records, the p50 of BENCH_HOSTS point queries by source
# address (`dipstorage query` end to end, process start included) idle, then
# while 2 clients loop a union of 2,000 lookups (evaluated at the leaves),
# then while 2 clients loop a query that gathers every record to the front.
# Each heavy query runs to the deadline (BENCH_DEADLINE s). Prints each p50
# and its ratio to idle.
#   sh tools/bench/bench_point_under_attack.sh
# Env: BENCH_RECORDS (200000), BENCH_HOSTS (40), BENCH_DEADLINE (5).
set -eu
records=${BENCH_RECORDS:-200000} hosts=${BENCH_HOSTS:-40} deadline=${BENCH_DEADLINE:-5}
bin=$PWD/dipstorage gen=$PWD/tools/flowgen/flowgen
W=$(mktemp -d /tmp/dip-bench-pa-XXXXXX)
base=$(python3 -c 'import random; print(random.randrange(15000, 28000, 50))')
client=$((base + 30)) ipfix=$((base + 32))
trap 'touch "$W/stop"; "$bin" down --dir "$W/net" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$bin" up --dir "$W/net" --leaves 2 --base-port "$base" --client-port "$client" --netflow-port $((base + 31)) \
    --ipfix-port "$ipfix" --query-timeout "$deadline" > /dev/null
"$gen" -n "$records" --seed 3 --v6-share 0 --format ipfix --rate 0 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null
sleep 3
q() { "$bin" query -c "127.0.0.1:$client" "$@"; }
q "(//flow)[position() <= 4000]" | grep -o 'src="[0-9.]*"' | cut -d'"' -f2 | sort -u | head -n "$hosts" > "$W/hosts"
# Prints the p50 in microseconds of one point query per host.
p50() {
    for h in $(cat "$W/hosts"); do
        s=$(date +%s%N)
        q "//flow[@src='$h']" > /dev/null 2>&1 || true
        echo $(( ($(date +%s%N) - s) / 1000 ))
    done | sort -n | awk '{ a[NR] = $1 } END { print a[int(NR / 2) + 1] }'
}
# attack NAME QUERY: two clients loop QUERY while the point queries run.
attack() {
    rm -f "$W/stop"
    for i in 1 2; do
        ( while [ ! -e "$W/stop" ]; do q "$2" > /dev/null 2>&1 || sleep 0.2; done ) &
    done
    sleep 2
    p=$(p50)
    touch "$W/stop"
    wait
    echo "$1: p50 $p us, $(echo "scale=2; $p / $idle" | bc)x idle"
    sleep $((deadline + 1))
}
idle=$(p50)
echo "idle: p50 $idle us ($(wc -l < "$W/hosts") hosts, $records records)"
attack "2 clients looping a union of 2,000 lookups" \
    "$(python3 -c 'print(" | ".join("//flow[@src=\x2710.%d.%d.%d\x27]" % (i % 250, i * 7 % 250, i * 13 % 250) for i in range(2000)))')"
attack "2 clients looping a gathered query" 'count(//flow[count(//flow) > 0])'
