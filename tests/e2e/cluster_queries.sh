# cluster_queries.sh - a storage network of 4 tanks x 4 leaves on loopback
# (`dipstorage up`, separate processes, TLS links) ingests generated IPFIX
# (IPv4 and IPv6) through its collector (over TCP); every record sent is in
# every tank exactly once; and for >= 500 generated queries (equality,
# comparisons, and/or/not, starts-with, contains, count, sum, index paths, a
# few that need the whole document) the network's answer equals the answer
# of one process holding all the records in local stores (`dipstorage
# collect --tanks all --read` of the same stream as an IPFIX file, then
# `dipstorage query --data`), which store_queries.sh holds to xmllint.
# Leaves seal every 4096 records, so they merge segments (compaction)
# while the queries run; equal keys keep their order through the merges.
# DIP_CLUSTER_RECORDS sets the size (default 200,000: the 545 comparisons
# take ~15 min here; at 1,000,000 they take ~2 h, mostly the reference
# evaluating contains() and starts-with() over a million records, so the
# million-record run of `make test` is cluster_ingest.sh).
. tests/e2e/lib.sh.inc
need python3
n=${DIP_CLUSTER_RECORDS:-200000}
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32))
cluster="$WORK/cluster"
refpid=
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; [ -z "$refpid" ] || kill "$refpid" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$DIP_BIN" up --dir "$cluster" --leaves 4 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 128 --leaf-seal-records 4096 --query-timeout 60 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "dipstorage up failed"; }
"$DIP_BIN" status --dir "$cluster" > "$WORK/status0.txt" 2>&1 || { cat "$WORK/status0.txt"; fail "a node is down after up"; }
grep -q 'src-leaf-3' "$WORK/status0.txt" || fail "status does not list the leaves"

# the reference: one process, four local stores, the same records read
# from an IPFIX file (RFC 5655) of the same generated stream, so that the
# reference is not at the mercy of UDP
"$DIP_FLOWGEN" -n "$n" --seed 11 --format ipfix -o "$WORK/flows.ipfix" 2>/dev/null
"$DIP_BIN" collect --read "$WORK/flows.ipfix" --exporter 127.0.0.1 --dir "$WORK/ref" --tanks all \
    > "$WORK/ref.log" 2>&1 &
refpid=$!
# the cluster's collector gets the same byte stream over IPFIX/TCP (RFC 7011
# 10.4): the same messages in the same order, so records that share a key
# are stored in the same order as in the reference
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
s.recv(1)' "$ipfix" "$WORK/flows.ipfix"

# every tank holds every record once: wait for the replicator to catch up
tank_records() { # prints "src dst sport dport" record sums over the leaves
    "$DIP_BIN" status --dir "$cluster" --xml 2>/dev/null | python3 -c '
import re, sys
s = {"src": 0, "dst": 0, "sport": 0, "dport": 0}
for m in re.finditer(r"<node [^>]*>", sys.stdin.read()):
    e = m.group(0)
    if "role=\"leaf\"" in e:
        t = re.search(r" tank=\"(\w+)\"", e).group(1)
        s[t] += int(re.search(r" records=\"(\d+)\"", e).group(1))
print(s["src"], s["dst"], s["sport"], s["dport"])'
}
taken() { "$DIP_BIN" status --dir "$cluster" --xml 2>/dev/null | sed -n 's/.*<replicator records="\([0-9]*\)".*/\1/p'; }
deadline=$(( $(date +%s) + 300 ))
while :; do
    t=$(taken); counts=$(tank_records)
    set -- $counts
    [ "$1" = "$t" ] && [ "$2" = "$t" ] && [ "$3" = "$t" ] && [ "$4" = "$t" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "tanks did not catch up: collector took $t, tanks hold $counts"
    sleep 1
done
st=0; wait "$refpid" || st=$?
[ "$st" = 0 ] || fail "the reference collector failed (exit $st): $(tail -3 "$WORK/ref.log")"; refpid=
# seal the reference stores, so a query does not replay their logs each time
for k in src dst sport dport; do "$DIP_BIN" store seal --dir "$WORK/ref/$k" > /dev/null 2>&1; done
ref=$("$DIP_BIN" store stats --dir "$WORK/ref/src" | sed -n 's/^records: *\([0-9]*\).*/\1/p')
note "collector took $t of $n records sent; each tank holds $counts; the reference store $ref"
[ "$t" = "$n" ] || fail "the cluster's collector received $t of $n records"
[ "$ref" = "$n" ] || fail "the reference collector stored $ref of $n records"

# queries: values drawn from the same generated records
"$DIP_FLOWGEN" -n 20000 --seed 11 --format xml -o "$WORK/sample.xml" 2>/dev/null
python3 tests/e2e/gen_queries.py "$WORK/sample.xml" 300 src > "$WORK/q-all.txt"
python3 tests/e2e/gen_queries.py "$WORK/sample.xml" 300 dport >> "$WORK/q-all.txt"
# expressions that need the whole document move every record to the access
# point: keep a handful of them
whole='^(count\(/tank/\*\)|\(//flow|count\(//flow\[last|string\(|count\(//flow\) >)'
grep -Ev "$whole" "$WORK/q-all.txt" > "$WORK/queries.txt"
grep -E "$whole" "$WORK/q-all.txt" | head -6 >> "$WORK/queries.txt"
body() { grep -v '^<?xml\|^<result \|^</result>' "$1" || true; }
i=0 bad=0 partial=0
while IFS= read -r q; do
    i=$((i + 1))
    [ $((i % 100)) = 0 ] && note "$i queries compared, $bad differ"
    st=0; "$DIP_BIN" query -c "127.0.0.1:$client" --timeout 90 "$q" > "$WORK/ours.xml" 2>"$WORK/ours.err" || st=$?
    "$DIP_BIN" query --data "$WORK/ref" "$q" > "$WORK/theirs.xml" 2>/dev/null || true
    [ "$st" = 3 ] && partial=$((partial + 1))
    if grep -q '^<error' "$WORK/theirs.xml"; then
        # both must refuse, with the same code
        a=$(sed -n 's/.*<error code="\([A-Z]*\)".*/\1/p' "$WORK/ours.xml")
        b=$(sed -n 's/.*<error code="\([A-Z]*\)".*/\1/p' "$WORK/theirs.xml")
        [ -n "$a" ] && [ "$a" = "$b" ] && continue
    else
        ta=$(sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p' "$WORK/ours.xml")
        tb=$(sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p' "$WORK/theirs.xml")
        if [ "$ta" = "$tb" ] && [ "$(body "$WORK/ours.xml" | sha256sum)" = "$(body "$WORK/theirs.xml" | sha256sum)" ]; then
            continue
        fi
    fi
    bad=$((bad + 1))
    echo "  MISMATCH $q (query $i)"
    echo "    cluster:   $(head -c 300 "$WORK/ours.xml" | tr '\n' ' ') $(head -c 200 "$WORK/ours.err")"
    echo "    reference: $(head -c 300 "$WORK/theirs.xml" | tr '\n' ' ')"
done < "$WORK/queries.txt"
note "$i queries: $bad answers differ from the single-store reference, $partial partial"
[ "$i" -ge 500 ] || fail "only $i queries compared"
[ "$partial" = 0 ] || fail "$partial answers were partial on a healthy cluster"
[ "$bad" = 0 ] || fail "$bad of $i answers differ"
merges=$("$DIP_BIN" status --dir "$cluster" --xml | grep -o ' merges="[0-9]*"' | tr -dc '0-9\n' | paste -sd+ | bc)
[ "${merges:-0}" -gt 0 ] || fail "no leaf merged segments (sealing every 4096 records)"
note "the leaves merged segments $merges times meanwhile"
# point queries go straight to their leaf (the access point's descent), and answered equally above
direct=$("$DIP_BIN" status --dir "$cluster" --xml | sed -n 's/.*<access [^>]*direct="\([0-9]*\)".*/\1/p')
[ "${direct:-0}" -gt 0 ] || fail "no query went straight to a leaf or indexer"
note "$direct of the queries went straight to a leaf or indexer"

# the client protocol by hand: nc, and TLS with openssl s_client
if command -v nc >/dev/null; then
    printf '%s\n' "count(//flow[@dport=22])" | nc -q 10 127.0.0.1 "$client" > "$WORK/nc.xml" || true
    grep -q '<number>' "$WORK/nc.xml" || fail "nc got no answer: $(cat "$WORK/nc.xml")"
fi
if command -v openssl >/dev/null; then
    tls="$cluster/tls"
    printf '%s\n' "count(//flow[@dport=22])" | timeout 20 openssl s_client -quiet -connect "127.0.0.1:$client" \
        -CAfile "$tls/ca.pem" -cert "$tls/client.pem" -key "$tls/client.key" > "$WORK/tls.xml" 2>/dev/null || true
    [ "$(grep '<number>' "$WORK/nc.xml")" = "$(grep '<number>' "$WORK/tls.xml")" ] ||
        fail "openssl s_client answer differs: $(cat "$WORK/tls.xml")"
    "$DIP_BIN" query -c "127.0.0.1:$client" --tls "$tls" "count(//flow[@dport=22])" | grep -q '<number>' ||
        fail "dipstorage query --tls failed"
fi
note "nc, openssl s_client and dipstorage query --tls agree"
