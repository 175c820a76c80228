# cluster_random.sh - the paper's random storage strategy: records go to the
# leaf owning their random flow ID's range, so every leaf holds every kind of
# key and each query is broadcast to all leaves of the tank. The answers are
# the same records and numbers as one store holding everything (records that
# share a key may come in another order: they were stored on different leaves).
. tests/e2e/lib.sh.inc
need python3
n=${DIP_RANDOM_RECORDS:-60000}
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32)) refport=$((base + 33))
cluster="$WORK/cluster"
refpid=
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; [ -z "$refpid" ] || kill "$refpid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 3 --strategy random --base-port "$base" --client-port "$client" \
    --netflow-port "$nf" --ipfix-port "$ipfix" --leaf-memory 128 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "up failed"; }
grep -q 'strategy="random"' "$cluster/cluster.xml" || fail "the map is not random"
grep -q 'id-to="5555555555555555"' "$cluster/cluster.xml" || fail "leaves do not own equal thirds of the ID space"
"$DIP_BIN" collect --listen "tcp://127.0.0.1:$refport" --dir "$WORK/ref" --tanks all --flush-ms 50 > "$WORK/ref.log" 2>&1 &
refpid=$!
sleep 0.5
# IPFIX over TCP to both: a datagram lost to one of them would fail the test.
"$DIP_FLOWGEN" -n "$n" --seed 31 --format ipfix --rate 30000 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null &
g=$!
"$DIP_FLOWGEN" -n "$n" --seed 31 --format ipfix --rate 30000 --to "tcp://127.0.0.1:$refport" 2>/dev/null
wait "$g"
deadline=$(( $(date +%s) + 120 ))
until [ "$("$DIP_BIN" status --dir "$cluster" --xml | grep -o 'behind="[0-9]*"' | tr -dc '0-9\n' | sort -n | tail -1)" = 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "tanks did not catch up"
    sleep 1
done
sleep 0.3
kill -TERM "$refpid"; wait "$refpid" 2>/dev/null || true; refpid=
for k in src dst sport dport; do "$DIP_BIN" store seal --dir "$WORK/ref/$k" > /dev/null 2>&1; done
# every leaf of the src tank holds a share of the records, whatever their key
"$DIP_BIN" status --dir "$cluster" --xml | grep -o 'name="src-leaf-[0-9]"[^>]*records="[0-9]*"' |
    sed 's/.*records="\([0-9]*\)"/\1/' > "$WORK/shares"
[ "$(wc -l < "$WORK/shares")" = 3 ] || fail "expected 3 src leaves"
while read -r c; do [ "$c" -gt $((n / 5)) ] || fail "a leaf holds only $c of $n records: not an even split by ID"; done < "$WORK/shares"
note "src leaves hold $(tr '\n' ' ' < "$WORK/shares")of $n records"

"$DIP_FLOWGEN" -n 20000 --seed 31 --format xml -o "$WORK/sample.xml" 2>/dev/null
python3 tests/e2e/gen_queries.py "$WORK/sample.xml" 80 src | grep -Ev '^(count\(/tank/\*\)|\(//flow|count\(//flow\[last|string\()' > "$WORK/queries.txt"
i=0 bad=0
while IFS= read -r q; do
    i=$((i + 1))
    "$DIP_BIN" query -c "127.0.0.1:$client" "$q" > "$WORK/ours.xml" 2>/dev/null || true
    "$DIP_BIN" query --data "$WORK/ref" "$q" > "$WORK/theirs.xml" 2>/dev/null || true
    a=$(grep -v '^<?xml\|^<result \|^</result>' "$WORK/ours.xml" | sort | sha256sum)
    b=$(grep -v '^<?xml\|^<result \|^</result>' "$WORK/theirs.xml" | sort | sha256sum)
    if [ "$a" != "$b" ] || ! grep -q '<result complete="true"' "$WORK/ours.xml"; then
        bad=$((bad + 1))
        echo "  MISMATCH $q: $(head -c 200 "$WORK/ours.xml" | tr '\n' ' ')"
    fi
done < "$WORK/queries.txt"
note "random strategy: $i queries, $bad differ from the single-store reference"
[ "$bad" = 0 ] || fail "$bad of $i answers differ"
[ "$i" -ge 50 ] || fail "only $i queries"
