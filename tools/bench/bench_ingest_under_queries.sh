# bench_ingest_under_queries.sh - ingest while heavy queries run (issue 22):
# a 4-tank network (2 leaves a tank) takes BENCH_RECORDS records of IPFIX over
# TCP at BENCH_RATE records/s while BENCH_QUERIERS clients keep asking a
# query that gathers every record and runs to the deadline
# (count(//flow[count(//flow) > 0])). Prints what the collector took, what
# every tank holds, the replicator's refused records, and how the queries
# ended (ETIMEOUT, busy, other). Loss-free means every tank holds every record
# sent and nothing was refused.
#   sh tools/bench/bench_ingest_under_queries.sh
# Env: BENCH_RECORDS (500000), BENCH_RATE (50000), BENCH_QUERIERS (4),
# BENCH_DEADLINE (query timeout, s; 10), BENCH_PROTO (tcp, or udp: an exporter
# that cannot wait, so loss shows as records missing).
set -eu
records=${BENCH_RECORDS:-500000} rate=${BENCH_RATE:-50000} queriers=${BENCH_QUERIERS:-4}
deadline=${BENCH_DEADLINE:-10} proto=${BENCH_PROTO:-tcp}
bin=$PWD/dipstorage gen=$PWD/tools/flowgen/flowgen
W=$(mktemp -d /tmp/dip-bench-iq-XXXXXX)
base=$(python3 -c 'import random; print(random.randrange(15000, 28000, 50))')
client=$((base + 30)) ipfix=$((base + 32))
trap '"$bin" down --dir "$W/net" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$bin" up --dir "$W/net" --leaves 2 --base-port "$base" --client-port "$client" --netflow-port $((base + 31)) \
    --ipfix-port "$ipfix" --query-timeout "$deadline" > /dev/null
"$gen" -n 100000 --seed 1 --v6-share 0 --format ipfix --rate 0 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null
for i in $(seq "$queriers"); do
    ( while [ ! -e "$W/stop" ]; do
          out="$W/q$i.$(date +%s%N).xml"
          "$bin" query -c "127.0.0.1:$client" --timeout $((deadline + 20)) 'count(//flow[count(//flow) > 0])' \
              > "$out" 2>&1 || true
          grep -q EAGAIN "$out" && sleep 0.5 # told busy: back off, as a client should
      done ) &
done
sleep 2
start=$(date +%s.%N)
"$gen" -n "$records" --seed 2 --v6-share 0 --format ipfix --rate "$rate" --to "$proto://127.0.0.1:$ipfix" 2>&1 | tail -1
sent_s=$(echo "$(date +%s.%N) - $start" | bc)
want=$((records + 100000))
counts() {
    "$bin" status --dir "$W/net" --xml | python3 tools/status_counts.py taken refused src dst sport dport
}
for i in $(seq 120); do
    set -- $(counts)
    [ "$3" = "$want" ] && [ "$4" = "$want" ] && [ "$5" = "$want" ] && [ "$6" = "$want" ] && break
    sleep 1
done
touch "$W/stop"
wait 2>/dev/null || true
set -- $(counts)
timeouts=$(grep -l 'ETIMEOUT' "$W"/q*.xml 2>/dev/null | wc -l)
busy=$(grep -l 'EAGAIN' "$W"/q*.xml 2>/dev/null | wc -l)
total=$(ls "$W"/q*.xml | wc -l)
echo "sent $records records over $proto at $rate/s in $sent_s s (plus 100000 before) while $queriers clients asked heavy queries"
echo "collector took $1, refused $2; tanks hold src $3 dst $4 sport $5 dport $6 (want $want each)"
echo "heavy queries: $total asked, $timeouts ended ETIMEOUT at the deadline, $busy told busy (and waited 0.5 s), $((total - timeouts - busy)) other:"
grep -L 'ETIMEOUT\|EAGAIN' "$W"/q*.xml 2>/dev/null | xargs -r cat | grep -o '<error code="[A-Z]*"\|complete="[a-z]*"' | sort | uniq -c
[ "$2" = 0 ] && [ "$3" = "$want" ] && [ "$4" = "$want" ] && [ "$5" = "$want" ] && [ "$6" = "$want" ] &&
    echo "loss-free: yes" || echo "loss-free: NO"
