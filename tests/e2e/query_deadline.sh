# query_deadline.sh - every node stops working on a query at its deadline
# (ARCHITECTURE 6, "Deadlines"): a storage network of 4 tanks x 2 leaves
# with a 2 s query deadline holds 50,000 records; then
#  - an expression that does not decompose and is quadratic in libxml2
#    (count(//flow[count(//flow) > 0]), gathered at the access point: minutes
#    of CPU if let run), a position over a union with a quadratic branch, and
#    a union of 2,000 point lookups (evaluated at the leaves) each answer
#    within the deadline plus a little, never a complete result late;
#  - the front and every leaf are idle (< 0.3 s of CPU in 1 s) by the
#    deadline + 1.5 s: nothing goes on working after the answer;
#  - a point query still answers completely, and no temporary gather-*
#    store is left on disk; one a crash left is removed when the front
#    starts again.
# Ports 18600 (client), 18700.. (node links), 18055 and 18739 (collector):
# ports no other e2e script uses (they pick random free ones below these).
. tests/e2e/lib.sh.inc
need python3
n=${DIP_DEADLINE_RECORDS:-50000}
deadline_s=2
base=18700 client=18600 nf=18055 ipfix=18739
net="$WORK/net"
trap '"$DIP_BIN" down --dir "$net" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$net" --leaves 2 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 256 --query-timeout "$deadline_s" > "$WORK/up.txt" 2>&1 ||
    { cat "$WORK/up.txt"; fail "dipstorage up failed"; }

"$DIP_FLOWGEN" -n "$n" --seed 7 --v6-share 0 --format ipfix --to "tcp://127.0.0.1:$ipfix" 2>/dev/null ||
    fail "flowgen could not send to the collector"
tank_min() { # the fewest records any tank holds
    "$DIP_BIN" status --dir "$net" --xml 2>/dev/null | python3 -c '
import re, sys
s = {"src": 0, "dst": 0, "sport": 0, "dport": 0}
for m in re.finditer(r"<node [^>]*>", sys.stdin.read()):
    e = m.group(0)
    if "role=\"leaf\"" in e:
        s[re.search(r" tank=\"(\w+)\"", e).group(1)] += int(re.search(r" records=\"(\d+)\"", e).group(1))
print(min(s.values()))'
}
wait_until=$(( $(date +%s) + 120 ))
until [ "$(tank_min)" = "$n" ]; do
    [ "$(date +%s)" -lt "$wait_until" ] || fail "tanks hold $(tank_min) of $n records after 120 s"
    sleep 1
done
note "every tank holds $n records; query deadline $deadline_s s"

now_ms() { date +%s%3N; }
# cpu_ticks PID: utime + stime of a process and of its children alive (a
# whole-document evaluation runs in one), in clock ticks
cpu_ticks() {
    for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do cat "/proc/$p/stat" 2>/dev/null || true; done |
        awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}
hz=$(getconf CLK_TCK)
pids() { for f in "$net"/nodes/*/pid; do printf '%s:%s\n' "$(basename "$(dirname "$f")")" "$(cat "$f")"; done; }

# ask NAME QUERY: sends it, checks the answer came within the deadline plus
# 1.5 s and is not a complete result past the deadline, then checks that
# every node is idle at the deadline + 1.5 s.
ask() {
    name=$1 q=$2
    t0=$(now_ms)
    st=0
    "$DIP_BIN" query -c "127.0.0.1:$client" --timeout 60 "$q" > "$WORK/$name.xml" 2> "$WORK/$name.err" || st=$?
    took=$(( $(now_ms) - t0 ))
    head=$(head -c 400 "$WORK/$name.xml" | tr '\n' ' ' | sed 's/<flow .*//')
    note "$name: answered after $took ms (exit $st): $(echo "$head" | cut -c1-220)"
    [ "$took" -le $(( deadline_s * 1000 + 1500 )) ] || fail "$name answered after $took ms, deadline $deadline_s s"
    if grep -q '<result complete="true"' "$WORK/$name.xml"; then
        [ "$took" -le $(( deadline_s * 1000 + 100 )) ] || fail "$name: a complete result after $took ms, past the deadline"
    fi
    # idle: from the deadline + 1.5 s on, no node uses more than 0.3 s of CPU in 1 s
    wait_ms=$(( t0 + deadline_s * 1000 + 1500 - $(now_ms) ))
    [ "$wait_ms" -le 0 ] || sleep "$(awk "BEGIN { print $wait_ms / 1000 }")"
    pids > "$WORK/pids.txt"
    while IFS=: read -r node pid; do echo "$node $pid $(cpu_ticks "$pid")"; done < "$WORK/pids.txt" > "$WORK/cpu0.txt"
    sleep 1
    busy=
    while read -r node pid t; do
        used=$(( $(cpu_ticks "$pid") - t ))
        [ $(( used * 10 )) -lt $(( hz * 3 )) ] || busy="$busy $node:$(awk "BEGIN { print $used / $hz }")s"
    done < "$WORK/cpu0.txt"
    [ -z "$busy" ] || fail "$name: still working 1.5-2.5 s after the deadline:$busy"
    note "$name: every node idle from the deadline + 1.5 s"
}

# an expression that does not decompose: the access point gathers a tank
# and evaluates there; libxml2 needs n^2 steps
ask gather 'count(//flow[count(//flow) > 0])'
grep -q '<error code="ETIMEOUT"\|<result complete="false"' "$WORK/gather.xml" ||
    fail "the gathered query did not answer ETIMEOUT: $(head -c 300 "$WORK/gather.xml")"
# a position over a union, one branch quadratic (preceding::): gathered too
ask union '(//flow[@dport=22] | //flow[count(preceding::flow) > 0])[last()]'
grep -q '<error code="ETIMEOUT"\|<result complete="false"' "$WORK/union.xml" ||
    fail "the union did not answer ETIMEOUT: $(head -c 300 "$WORK/union.xml")"
# a union of 2,100 point lookups (63 KB): each leaf evaluates it chunk by
# chunk (seconds of CPU); a complete answer in time would be right too
"$DIP_FLOWGEN" -n "$n" --seed 7 --v6-share 0 --format xml -o "$WORK/sample.xml" 2>/dev/null
python3 - "$WORK/sample.xml" > "$WORK/lookups.txt" <<'PY'
import re, sys
srcs = list(dict.fromkeys(re.findall(r' src="([0-9.]+)"', open(sys.argv[1]).read())))
print(" | ".join("//flow[@src='%s']" % a for a in srcs[:2100]))
PY
ask lookups "$(cat "$WORK/lookups.txt")"
grep -q '<error code="ETIMEOUT"\|<result ' "$WORK/lookups.xml" || fail "lookups: $(head -c 300 "$WORK/lookups.xml")"

# a point query still answers, completely
p=$(sed -n 's/.* src="\([0-9.]*\)".*/\1/p' "$WORK/sample.xml" | head -1)
"$DIP_BIN" query -c "127.0.0.1:$client" "//flow[@src='$p']" > "$WORK/point.xml" || fail "the point query failed"
grep -q '<result complete="true"' "$WORK/point.xml" || fail "point query: $(head -c 300 "$WORK/point.xml")"
note "a point query answers: $(grep -c '<flow ' "$WORK/point.xml") records of $p"

# no temporary store is left; one a crash left goes when the front starts again
left=$(find "$net/nodes" -maxdepth 2 -name 'gather-*' | wc -l)
[ "$left" = 0 ] || fail "$left gather-* folders left: $(find "$net/nodes" -maxdepth 2 -name 'gather-*')"
front=front # dip_map_build_local names it so
[ -d "$net/nodes/$front" ] || fail "no front node in $(ls "$net/nodes")"
mkdir -p "$net/nodes/$front/gather-1-0-crashed" && : > "$net/nodes/$front/gather-1-0-crashed/MANIFEST.xml"
kill -9 "$(cat "$net/nodes/$front/pid")"
sleep 0.5
"$DIP_BIN" up --dir "$net" > "$WORK/up2.txt" 2>&1 || { cat "$WORK/up2.txt"; fail "restarting the front failed"; }
i=0 # the access point opens once the front has read its map and spool
while [ -e "$net/nodes/$front/gather-1-0-crashed" ] && [ "$i" -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
[ ! -e "$net/nodes/$front/gather-1-0-crashed" ] || fail "a gather-* folder a crash left survived the front's restart"
note "a gather-* folder left by a kill -9 was removed when the front ($front) started again"
echo "query_deadline: ok"
