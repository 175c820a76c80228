# cluster_authz.sh - the attack of issue "roles in certificates" replayed on
# a running network (4 tanks x 2 leaves): with the query client's certificate
# an INGEST or QUERY frame to a leaf's node port; a forged origin and a wild
# sequence number with the front's own certificate; records outside a leaf's
# range sent by its parent's certificate. Every one is refused (EPERM),
# counted in status, nothing is stored, and the records sent afterwards
# (also after a kill -9 and restart of the attacked leaf) all arrive.
. tests/e2e/lib.sh.inc
need python3
base=$(free_ports 40)
client=$((base + 30)) nf=$((base + 31)) ipfix=$((base + 32))
cluster="$WORK/cluster"
tls="$cluster/tls"
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 2 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 64 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "up failed"; }
port_of() { sed -n "s/.*<node id=\"$1\" address=\"[^\"]*:\([0-9]*\)\".*/\1/p" "$cluster/cluster.xml"; }
forge() { python3 tests/e2e/forge_frame.py "$tls" "$@"; }
grep -q 'OU *= *client\|OU=client' <<EOF2 || fail "the client certificate names no role: $(openssl x509 -in "$tls/client.pem" -noout -subject)"
$(openssl x509 -in "$tls/client.pem" -noout -subject)
EOF2

counts() {
    "$DIP_BIN" status --dir "$cluster" --xml 2>/dev/null |
        python3 tools/status_counts.py src dst sport dport refusals refused-batches
}
# Waits until every tank holds $1 records; prints $1, the four tanks' counts,
# the refusals of all nodes and the batches refused to the replicator.
converge() {
    deadline=$(( $(date +%s) + 90 ))
    while :; do
        set -- "$1" $(counts)
        [ "$2" = "$1" ] && [ "$3" = "$1" ] && [ "$4" = "$1" ] && [ "$5" = "$1" ] && { echo "$@"; return 0; }
        [ "$(date +%s)" -lt "$deadline" ] || fail "tanks did not reach $1: src dst sport dport refused = $*"
        sleep 0.5
    done
}
feed() { "$DIP_FLOWGEN" -n "$1" --seed "$2" --v6-share 0 --format ipfix --rate 50000 --to "tcp://127.0.0.1:$ipfix" 2>/dev/null; }

feed 20000 1
converge 20000 > /dev/null
note "20,000 records in every tank"

# records of the src tank's whole space, as an attacker would send them
"$DIP_FLOWGEN" -n 500 --seed 99 --format batch -o "$WORK/attack.dipb" 2>/dev/null
leaf=$(port_of src-leaf-0) root=$(port_of src-root)
expect_refused() { # WHAT REPLY
    case "$2" in
    -13\ *) note "refused: $1" ;;
    *) fail "$1 was not refused: $2" ;;
    esac
}
expect_refused "INGEST with the client certificate to src-leaf-0" \
    "$(forge client "$leaf" ingest front 100000000 "$WORK/attack.dipb")"
expect_refused "QUERY with the client certificate to src-leaf-0" "$(forge client "$leaf" query 'count(//flow)')"
expect_refused "INGEST with the client certificate to the src root" \
    "$(forge client "$root" ingest front 1 "$WORK/attack.dipb")"
expect_refused "INGEST of the front skipping the root to src-leaf-0" \
    "$(forge front "$leaf" ingest front 100000000 "$WORK/attack.dipb")"
expect_refused "INGEST of the front carrying a forged origin" \
    "$(forge front "$root" ingest dst-root 5 "$WORK/attack.dipb")"
expect_refused "INGEST of the front with a wild sequence number" \
    "$(forge front "$root" ingest front 100000000 "$WORK/attack.dipb")"
expect_refused "INGEST of src-root holding records outside src-leaf-0's range" \
    "$(forge src-root "$leaf" ingest front 3 "$WORK/attack.dipb")"
expect_refused "INGEST of a leaf's certificate to another leaf" \
    "$(forge src-leaf-1 "$leaf" ingest front 100000000 "$WORK/attack.dipb")"

set -- $(converge 20000)
[ "$6" -ge 8 ] || fail "status counts $6 refusals, expected at least 8"
[ "$7" = 0 ] || fail "the replicator had $7 batches refused: the front's own ingest must pass"
note "nothing stored by the attack; status counts $6 refusals"

feed 20000 2
converge 40000 > /dev/null
note "the next 20,000 records all arrived"
kill -9 "$(cat "$cluster/nodes/src-leaf-0/pid")"
"$DIP_BIN" up --dir "$cluster" > /dev/null 2>&1 || fail "restart failed"
feed 10000 3
set -- $(converge 50000)
[ "$7" = 0 ] || fail "the replicator had $7 batches refused"
c=$("$DIP_BIN" query -c "127.0.0.1:$client" "count(//flow[@src])" | scalar /dev/stdin)
[ "$c" = 50000 ] || fail "count after the attack and a kill -9 of the attacked leaf: $c, expected 50000"
note "after a kill -9 and restart of src-leaf-0, 10,000 more: every tank holds 50,000, none refused"
