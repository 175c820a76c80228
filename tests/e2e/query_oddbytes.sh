# query_oddbytes.sh - a query holding a byte-order mark, invalid UTF-8, a NUL
# or a control character gets an <error code="ESYNTAX"> with its column, never
# an empty complete result (issue 22): through `store query` (the text comes
# from argv) and through the client protocol of a small cluster (one line
# over plain TCP on loopback, which can carry a NUL). The same queries
# without the odd bytes answer the stored records.
# Fixed, unusual ports (base 17900, client 17690, NetFlow 17055, IPFIX 17739)
# keep it apart from the tests that pick theirs with free_ports.
. tests/e2e/lib.sh.inc
need python3
n=2000

# ---- store query ----
"$DIP_FLOWGEN" -n "$n" --seed 22 --format xml -o "$WORK/flows.xml" 2>/dev/null
d="$WORK/store"
"$DIP_BIN" store ingest --dir "$d" --key src "$WORK/flows.xml" 2>/dev/null
c=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "store holds $c records, expected $n"

# store_refused WHAT COLUMN QUERY: exit status 1 (what `store query` gives
# any failed query; 2 is for usage) and an ESYNTAX <error> naming COLUMN.
store_refused() {
    st=0
    "$DIP_BIN" store query --dir "$d" "$3" > "$WORK/out" 2>"$WORK/err" || st=$?
    [ "$st" = 1 ] || fail "store query, $1: exit status $st, expected 1: $(cat "$WORK/out")"
    grep -q "<error code=\"ESYNTAX\" column=\"$2\"" "$WORK/out" ||
        fail "store query, $1: no ESYNTAX error at column $2: $(cat "$WORK/out")"
    if grep -q '<result' "$WORK/out"; then fail "store query, $1: a result document: $(cat "$WORK/out")"; fi
    note "store query, $1: $(sed -n 's:.*<error[^>]*>\(.*\)</error>.*:\1:p' "$WORK/out")"
}
# dash's printf knows octal escapes only: \357\273\277 is the BOM EF BB BF
store_refused "leading BOM before count()" 1 "$(printf '\357\273\277count(//flow)')"
store_refused "leading BOM before a path" 1 "$(printf '\357\273\277//flow[@dport=22]')"
store_refused "byte 0xff in a literal" 21 "$(printf "count(//flow[@src!='\377'])")"
store_refused "overlong encoding of '/'" 21 "$(printf "count(//flow[@src!='\300\257'])")"
store_refused "UTF-16 surrogate" 21 "$(printf "count(//flow[@src!='\355\240\200'])")"
store_refused "code point above U+10FFFF" 21 "$(printf "count(//flow[@src!='\364\220\200\200'])")"
store_refused "truncated sequence" 21 "$(printf "count(//flow[@src!='\342\202'])")"
store_refused "U+0001 in a literal" 21 "$(printf "count(//flow[@src!='\001'])")"
store_refused "U+0001 in a predicate" 14 "$(printf 'count(//flow[\001@dport=22])')"
store_refused "ESC in a literal" 21 "$(printf "count(//flow[@src!='\033[0m'])")"
store_refused "DEL in a literal" 21 "$(printf "count(//flow[@src!='\177'])")"
store_refused "C1 control U+0085" 21 "$(printf "count(//flow[@src!='\302\205'])")"
# A NUL cannot reach `store query`: its expression is a C string from argv
# (the client protocol below carries one).
# Well-formed UTF-8 and tab, CR and LF are still a query's text.
c=$("$DIP_BIN" store query --dir "$d" "$(printf "count(//flow[@src!='\302\240\303\251'])")" | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "store query with a UTF-8 literal counted $c, expected $n"
c=$("$DIP_BIN" store query --dir "$d" "$(printf 'count(\t//flow\r\n)')" | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "store query with tab, CR and LF counted $c, expected $n"

# ---- the client protocol ----
base=17900 client=17690 nf=17055 ipfix=17739
python3 - "$base" "$client" "$nf" "$ipfix" <<'PY' || fail "ports taken (another query_oddbytes.sh running?)"
import socket, sys
base, client, nf, ipfix = map(int, sys.argv[1:])
for p in list(range(base, base + 16)) + [client, nf, ipfix]:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM: # as the nodes bind: the last run's TIME_WAITs are no clash
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError as e:
            sys.exit("port %d: %s" % (p, e))
        finally:
            s.close()
PY
cluster="$WORK/cluster"
trap '"$DIP_BIN" down --dir "$cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$DIP_BIN" up --dir "$cluster" --leaves 1 --base-port "$base" --client-port "$client" --netflow-port "$nf" \
    --ipfix-port "$ipfix" --leaf-memory 64 > "$WORK/up.txt" 2>&1 || { cat "$WORK/up.txt"; fail "dipstorage up failed"; }
# the records, as IPFIX over TCP (no datagram to lose)
"$DIP_FLOWGEN" -n "$n" --seed 22 --format ipfix -o "$WORK/flows.ipfix" 2>/dev/null
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
s.recv(1)' "$ipfix" "$WORK/flows.ipfix"

# ask LINE: sends LINE (Python escapes: \x00, \xef, ...) and a newline to the
# client port, prints the document the access point answers.
ask() {
    python3 -c 'import codecs, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(codecs.escape_decode(sys.argv[2])[0] + b"\n")
s.settimeout(30)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("utf-8", "replace"))' "$client" "$1"
}
deadline=$(( $(date +%s) + 120 ))
while :; do
    c=$(ask 'count(//flow)' | scalar /dev/stdin)
    [ "$c" = "$n" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "the cluster holds $c records after 120 s, expected $n"
    sleep 1
done
c=$(ask 'count(//flow)\r' | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "client protocol: a CRLF line counted $c, expected $n"

# client_refused WHAT COLUMN LINE
client_refused() {
    ask "$3" > "$WORK/out" || fail "client protocol, $1: no answer"
    grep -q "<error code=\"ESYNTAX\" column=\"$2\"" "$WORK/out" ||
        fail "client protocol, $1: no ESYNTAX error at column $2: $(cat "$WORK/out")"
    if grep -q '<result' "$WORK/out"; then fail "client protocol, $1: a result document: $(cat "$WORK/out")"; fi
    note "client protocol, $1: $(sed -n 's:.*<error[^>]*>\(.*\)</error>.*:\1:p' "$WORK/out")"
}
client_refused "leading BOM before count()" 1 '\xef\xbb\xbfcount(//flow)'
client_refused "leading BOM before a path" 1 '\xef\xbb\xbf//flow[@dport=22]'
client_refused "byte 0xff in a literal" 21 'count(//flow[@src!="\xff"])'
client_refused "UTF-16 surrogate" 21 'count(//flow[@src!="\xed\xa0\x80"])'
client_refused "truncated sequence" 21 'count(//flow[@src!="\xe2\x82"])'
client_refused "NUL in a literal" 21 'count(//flow[@src!="\x00"])'
client_refused "NUL after the expression" 14 'count(//flow)\x00'
client_refused "U+0001 in a literal" 21 'count(//flow[@src!="\x01"])'
client_refused "C1 control U+009B" 21 'count(//flow[@src!="\xc2\x9b"])'
c=$(ask 'count(//flow[@src!="\xc2\xa0\xc3\xa9"])' | scalar /dev/stdin)
[ "$c" = "$n" ] || fail "client protocol: a UTF-8 literal counted $c, expected $n"
