# collect_store.sh - dipstorage collect storing what it receives: NetFlow v5
# sent by flowgen (packets made first, --preload) into two collectors, one
# with zlib segments (--gzip-level 4) and one with the default igzip. Both
# seal a segment on the way (more records than the store's seal size); both
# stores hold every record once, answer as flowgen's XML of the same seed
# says, validate against dipstorage.xsd, and the igzip segment is the larger.
. tests/e2e/lib.sh.inc
need xmllint
n=300000
"$DIP_FLOWGEN" -n $n --seed 5 --format xml --v6-share 0 -o "$WORK/flows.xml" 2>/dev/null
ssh=$(grep -c 'dport="22"' "$WORK/flows.xml")
for kind in zlib fast; do
    opt=""; [ $kind = zlib ] && opt="--gzip-level 4"
    "$DIP_BIN" collect --listen udp://127.0.0.1:0 --dir "$WORK/$kind" --stats 0 --seal-records 262144 $opt > "$WORK/$kind.log" 2>&1 &
    pid=$!
    port=""
    for i in $(seq 50); do
        port=$(sed -n 's/.*listening on udp:.*(port \([0-9]*\)).*/\1/p' "$WORK/$kind.log" 2>/dev/null || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "collect $opt did not start: $(tail -3 "$WORK/$kind.log")"
    "$DIP_FLOWGEN" -n $n --seed 5 --format v5 --preload --rate 150000 --to "udp://127.0.0.1:$port" 2> "$WORK/$kind.gen"
    sleep 0.5
    kill $pid; wait $pid || fail "collect $opt failed: $(tail -3 "$WORK/$kind.log")"
    grep -q "^stored=$n " "$WORK/$kind.log" || fail "collect $opt: $(grep '^stored=' "$WORK/$kind.log") of $n records"
    q() { "$DIP_BIN" store query --dir "$WORK/$kind" "$1" | scalar /dev/stdin; }
    [ "$(q 'count(//flow)')" = $n ] || fail "$kind: count(//flow) is not $n"
    [ "$(q 'count(//flow[@dport=22])')" = "$ssh" ] || fail "$kind: ssh flows differ from flowgen's XML ($ssh)"
    set -- "$WORK/$kind"/seg-*.xml.gz
    [ -e "$1" ] || fail "$kind: the collector sealed no segment"
    for f in "$WORK/$kind/MANIFEST.xml" "$@"; do
        xmllint --noout --schema dipstorage.xsd "$f" 2> "$WORK/v.err" || { head -n 5 "$WORK/v.err"; fail "$f does not validate"; }
    done
    eval "size_$kind=$(cat "$@" | wc -c)"
    note "collect ${opt:-(igzip)}: $n of $n records stored; $(tail -1 "$WORK/$kind.gen" | sed 's/^flowgen: //')"
done
bytes_xml=$(grep -o ' bytes="[0-9]*"' "$WORK/flows.xml" | tr -dc '0-9\n' | awk '{ s += $1 } END { printf "%.0f", s }')
for kind in zlib fast; do
    b=$("$DIP_BIN" store query --dir "$WORK/$kind" 'sum(//flow/@bytes)' | scalar /dev/stdin)
    [ "$b" = "$bytes_xml" ] || fail "$kind: sum of bytes $b, flowgen's XML $bytes_xml"
done
[ "$size_fast" -gt "$size_zlib" ] || fail "igzip segments ($size_fast bytes) are not larger than zlib's ($size_zlib)"
note "segments: zlib $size_zlib bytes, igzip $size_fast bytes"
