# cluster_limits.sh - one client cannot take the access point: queries that
# gather every record run at most two from one address (a third is told
# EAGAIN "busy" at once, point queries go on answering, and once the two
# end at their deadline a gather is taken again); 600 idle connections
# from one address get 256 places, the rest an EAGAIN error document, the
# front stays small, and queries work again once they are gone.
. tests/e2e/lib.sh.inc
need python3
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32))
cluster="$WORK/cluster"
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 1 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 64 --query-timeout 3 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "up failed"; }
q() { "$DIP_BIN" query -c "127.0.0.1:$client" "$@"; }
"$DIP_FLOWGEN" -n 30000 --seed 5 --format ipfix --rate 50000 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null
sleep 1
heavy="count(//flow[count(//flow) > 0])"
q "$heavy" > "$WORK/g1.xml" 2>&1 &
g1=$!
q "$heavy" > "$WORK/g2.xml" 2>&1 &
g2=$!
sleep 0.7
st=0; q "$heavy" > "$WORK/g3.xml" 2>&1 || st=$?
grep -q '<error code="EAGAIN">busy' "$WORK/g3.xml" || fail "a third gather from one address was not refused busy: $(cat "$WORK/g3.xml")"
[ "$st" = 1 ] || fail "a busy refusal exited $st"
c=$(q "count(//flow[@src='10.0.0.1'])" | scalar /dev/stdin)
[ -n "$c" ] || fail "a point query did not answer beside two gathers"
wait "$g1" || true
wait "$g2" || true
grep -q 'complete="true"' "$WORK/g1.xml" && fail "a gather past its deadline answered complete: $(cat "$WORK/g1.xml")"
q "$heavy" > "$WORK/g4.xml" 2>&1 || true
grep -q 'busy' "$WORK/g4.xml" && fail "the gather places were not given back: $(cat "$WORK/g4.xml")"
note "two gathers from one address at once; a third told busy; a point query answered beside them; places given back"

rss() { awk '/VmRSS/ { print $2 }' "/proc/$(cat "$cluster/nodes/front/pid")/status"; }
rss0=$(rss)
python3 -c 'import socket, sys, time
socks = []
for i in range(600):
    s = socket.socket()
    s.connect(("127.0.0.1", int(sys.argv[1])))
    try:
        s.send(b"count(") # a line begun: held for the client timeout (30 s), not the handshake timeout (10 s)
    except OSError:
        pass # refused and closed already
    socks.append(s)
print("open", flush=True)
time.sleep(120)' "$client" > "$WORK/idle.out" 2>&1 &
idle=$!
for i in $(seq 300); do grep -q open "$WORK/idle.out" && break; sleep 0.2; done
grep -q open "$WORK/idle.out" || fail "could not open 600 connections in 60 s: $(cat "$WORK/idle.out")"
sleep 0.5
st=0; q "count(//flow)" > "$WORK/busy.xml" 2>&1 || st=$?
grep -q '<error code="EAGAIN">too many client connections' "$WORK/busy.xml" ||
    fail "a client beyond the cap was not told so: $(cat "$WORK/busy.xml")"
access=$("$DIP_BIN" status --dir "$cluster" --xml | grep -o '<access [^>]*>')
grown=$(( $(rss) - rss0 ))
note "600 idle connections: $(echo "$access" | grep -o 'refused-clients="[0-9]*"'), the front grew by $grown kB"
[ "$grown" -lt 65536 ] || fail "600 idle connections grew the front by $grown kB"
kill "$idle"
for i in $(seq 50); do c=$(q "count(//flow)" 2>/dev/null | scalar /dev/stdin || true); [ "$c" = 30000 ] && break; sleep 0.2; done
[ "$c" = 30000 ] || fail "queries did not work again once the idle connections were gone: $c"
note "once they were gone, count(//flow) = $c"
