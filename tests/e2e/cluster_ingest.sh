# cluster_ingest.sh - a storage network of 4 tanks x 4 leaves ingests a
# million generated records (IPFIX over TCP to its collector): every tank's
# leaves hold them all, exactly once (record counts per tank, and per tank
# the count and the sums of bytes, packets and source ports over its logical
# document, equal to one store holding the same records: a lost or doubled
# record changes them), and whole-tank answers are complete.
# DIP_INGEST_RECORDS sets the size (default 1,000,000).
. tests/e2e/lib.sh.inc
need python3
n=${DIP_INGEST_RECORDS:-1000000}
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32))
cluster="$WORK/cluster"
refpid=
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; [ -z "$refpid" ] || kill "$refpid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 4 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 128 --query-timeout 120 > "$WORK/up.txt" 2>&1 ||
    { cat "$WORK/up.txt"; fail "dipstorage up failed"; }
"$DIP_FLOWGEN" -n "$n" --seed 12 --format ipfix -o "$WORK/flows.ipfix" 2>/dev/null
"$DIP_BIN" collect --read "$WORK/flows.ipfix" --exporter 127.0.0.1 --dir "$WORK/ref" --tanks all > "$WORK/ref.log" 2>&1 &
refpid=$!
start=$(date +%s.%N)
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
s.settimeout(60)
s.recv(1)' "$ipfix" "$WORK/flows.ipfix"
counts() {
    "$DIP_BIN" status --dir "$cluster" --xml 2>/dev/null | python3 tools/status_counts.py taken src dst sport dport
}
deadline=$(( $(date +%s) + 900 ))
while :; do
    set -- $(counts)
    [ "$1" = "$n" ] && [ "$2" = "$n" ] && [ "$3" = "$n" ] && [ "$4" = "$n" ] && [ "$5" = "$n" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "tanks did not reach $n records: taken, src, dst, sport, dport = $*"
    sleep 1
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
note "$n records in every tank $(echo "scale=1; $secs / 1" | bc) s after the first byte ($(echo "$n / $secs" | bc) records/s into all four tanks)"
st=0; wait "$refpid" || st=$?
[ "$st" = 0 ] || fail "the reference collector failed (exit $st): $(tail -3 "$WORK/ref.log")"; refpid=
for k in src dst sport dport; do "$DIP_BIN" store seal --dir "$WORK/ref/$k" > /dev/null 2>&1; done
for t in src dst sport dport; do
    for e in "count(/tank[@key='$t']//flow)" "sum(/tank[@key='$t']//flow/@bytes)" \
             "sum(/tank[@key='$t']//flow/@packets)" "sum(/tank[@key='$t']//flow/@sport)"; do
        st=0; "$DIP_BIN" query -c "127.0.0.1:$client" --timeout 150 "$e" > "$WORK/ours.xml" || st=$?
        [ "$st" = 0 ] || fail "$e: exit $st: $(head -c 400 "$WORK/ours.xml")"
        "$DIP_BIN" query --data "$WORK/ref" "$e" > "$WORK/theirs.xml" || fail "reference: $e failed"
        a=$(scalar "$WORK/ours.xml"); b=$(scalar "$WORK/theirs.xml")
        [ -n "$a" ] && [ "$a" = "$b" ] || fail "$e: the network says $a, one store holding the same records says $b"
        grep -q "tank=\"$t\"" "$WORK/ours.xml" || fail "$e was not answered by the $t tank"
    done
    note "tank $t: count, sum(@bytes), sum(@packets), sum(@sport) equal the single store's"
done
