# cluster_faults.sh - faults in a running storage network (4 tanks x 2
# leaves on loopback):
#  - a leaf killed with SIGKILL during ingest and restarted by `dipstorage up`:
#    every record sent is in every tank exactly once;
#  - a leaf stopped (SIGSTOP) during queries: a query that needs it returns
#    within the deadline, complete="false", listing that leaf's key range;
#    a query another tank can answer completely falls back to that tank;
#  - a client that sends garbage, a 1 MB expression, or connects and stalls,
#    and garbage on a node link: clear errors, and the network keeps serving.
. tests/e2e/lib.sh.inc
need python3
n=${DIP_FAULT_RECORDS:-200000}
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32))
cluster="$WORK/cluster"
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; kill -CONT $(cat "$cluster"/nodes/*/pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 2 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 128 --query-timeout 3 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "up failed"; }
pid_of() { cat "$cluster/nodes/$1/pid"; }
q() { "$DIP_BIN" query -c "127.0.0.1:$client" "$@"; }

# ---- kill -9 a leaf during ingest, restart it: nothing lost, nothing twice
# IPFIX over TCP: the count below must be exact, and UDP may drop datagrams
# before the collector sees them when two CPUs are busy restarting leaves.
"$DIP_FLOWGEN" -n "$n" --seed 21 --v6-share 0 --format ipfix --rate 40000 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null &
gen=$!
sleep 1.5
victim=$(pid_of src-leaf-1)
kill -9 "$victim"
note "killed src-leaf-1 (pid $victim) during ingest"
sleep 1
"$DIP_BIN" up --dir "$cluster" > "$WORK/up2.txt" 2>&1 || { cat "$WORK/up2.txt"; fail "restart failed"; }
grep -q '1 started' "$WORK/up2.txt" || fail "up did not restart exactly the dead leaf: $(cat "$WORK/up2.txt")"
sleep 0.5
kill -9 "$(pid_of dport-leaf-0)"
note "killed dport-leaf-0 during ingest"
"$DIP_BIN" up --dir "$cluster" > /dev/null 2>&1 || fail "second restart failed"
wait "$gen"
status_counts() {
    "$DIP_BIN" status --dir "$cluster" --xml 2>/dev/null | python3 tools/status_counts.py taken src dst sport dport
}
deadline=$(( $(date +%s) + 120 ))
while :; do
    set -- $(status_counts)
    [ "$2" = "$1" ] && [ "$3" = "$1" ] && [ "$4" = "$1" ] && [ "$5" = "$1" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "tanks did not converge after the kills: taken, src, dst, sport, dport = $*"
    sleep 1
done
note "after two kill -9: collector took $1, every tank holds $2 $3 $4 $5"
[ "$1" = "$n" ] || fail "the collector received $1 of $n records sent over TCP"
dups=$("$DIP_BIN" status --dir "$cluster" --xml | grep -o 'duplicates="[0-9]*"' | tr -dc '0-9\n' | paste -sd+ | bc)
note "batches a leaf already held and dropped when they were sent again: $dups"
c=$(q "count(//flow)" | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "count(//flow) = $c after the kills, expected $n"

# ---- a stopped leaf: partial within the deadline, or another tank
kill -STOP "$(pid_of dst-leaf-1)"
start=$(date +%s.%N)
st=0; q "count(/tank[@key='dst']//flow)" > "$WORK/partial.xml" || st=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
kill -CONT "$(pid_of dst-leaf-1)"
[ "$st" = 3 ] || fail "a query needing a stopped leaf exited $st, expected 3 (partial): $(cat "$WORK/partial.xml")"
grep -q 'complete="false"' "$WORK/partial.xml" || fail "no complete=\"false\""
grep -q '<missing tank="dst" from="128.0.0.0" to="ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" node="dst-leaf-1"' \
    "$WORK/partial.xml" || fail "the missing range is not dst-leaf-1's: $(cat "$WORK/partial.xml")"
[ "$(echo "$secs < 5" | bc)" = 1 ] || fail "the partial answer took $secs s (deadline 3 s)"
note "stopped dst-leaf-1: partial answer in $secs s listing 128.0.0.0-ffff:... (dst-leaf-1)"
have=$(sed -n 's:.*<number>\(.*\)</number>.*:\1:p' "$WORK/partial.xml")
[ "$have" -lt "$n" ] || fail "a partial count ($have) should lack dst-leaf-1's records"
xmllint --noout --schema dipstorage.xsd "$WORK/partial.xml" 2>/dev/null || fail "the partial result does not validate"

kill -STOP "$(pid_of dst-leaf-1)"
st=0; q "count(//flow[@dst='192.168.1.1' or @dst='10.0.0.1'])" > "$WORK/fallback.xml" || st=$?
kill -CONT "$(pid_of dst-leaf-1)"
[ "$st" = 0 ] || fail "a query another tank can answer exited $st: $(cat "$WORK/fallback.xml")"
grep -q 'complete="true"' "$WORK/fallback.xml" || fail "fallback answer is not complete"
grep -q 'tank="dst"' "$WORK/fallback.xml" && fail "the stopped tank answered"
want=$(q "count(//flow[@dst='192.168.1.1' or @dst='10.0.0.1'])" | scalar /dev/stdin)
[ "$(scalar "$WORK/fallback.xml")" = "$want" ] || fail "fallback count $(scalar "$WORK/fallback.xml") != $want"
note "with dst-leaf-1 stopped, $(sed -n 's/.*tank="\([a-z]*\)".*/\1/p' "$WORK/fallback.xml" | head -1) tank answered completely ($want)"

# ---- bad clients
printf 'this is ][ not xpath\n' | nc -q 5 127.0.0.1 "$client" > "$WORK/garbage.xml" || true
grep -q '<error code="ESYNTAX" column=' "$WORK/garbage.xml" || fail "garbage: $(cat "$WORK/garbage.xml")"
python3 -c 'print("//flow[@src=\x27" + "1" * (1 << 20) + "\x27]")' | nc -q 5 127.0.0.1 "$client" > "$WORK/big.xml" || true
grep -q '<error code="ERANGE"' "$WORK/big.xml" || fail "1 MB expression: $(head -c 300 "$WORK/big.xml")"
head -c 100000 /dev/urandom > "$WORK/noise"
nc -q 2 127.0.0.1 "$base" < "$WORK/noise" > /dev/null 2>&1 || true  # the front's TLS link port
nc -q 2 127.0.0.1 $((base + 2)) < "$WORK/noise" > /dev/null 2>&1 || true  # a leaf
# a client that connects and says nothing does not hold up others
nc 127.0.0.1 "$client" < /dev/null > /dev/null 2>&1 &
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"//flow[@src=")
time.sleep(4)' "$client" &
staller=$!
sleep 0.5
c=$(q "count(//flow)" | scalar /dev/stdin)
wait "$staller" || true
[ "$c" = "$n" ] || fail "after bad clients count(//flow) = $c"
"$DIP_BIN" status --dir "$cluster" > /dev/null || fail "a node died of bad input"
note "garbage, a 1 MB expression, noise on link ports and a stalled client: errors given, every node serving"
