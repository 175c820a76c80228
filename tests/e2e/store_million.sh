# store_million.sh - one million generated records into one leaf store:
# every record stored once, key and non-key queries agree with the input,
# and every file of the store validates against dipstorage.xsd.
. tests/e2e/lib.sh.inc
need xmllint
n=1000000
"$DIP_FLOWGEN" -n $n --seed 3 --format batch -o "$WORK/flows.bin"
"$DIP_FLOWGEN" -n $n --seed 3 --format xml -o "$WORK/flows.xml"
d="$WORK/store"
start=$(date +%s.%N)
"$DIP_BIN" store ingest --dir "$d" --key src "$WORK/flows.bin" 2>"$WORK/ingest.err" || { cat "$WORK/ingest.err"; fail "ingest failed"; }
note "$(tail -n 1 "$WORK/ingest.err")"
count() { "$DIP_BIN" store query --dir "$d" "$1" | scalar /dev/stdin; }
[ "$(count 'count(//flow)')" = $n ] || fail "count(//flow) is not $n"
ssh=$(grep -c 'dport="22"' "$WORK/flows.xml")
[ "$(count 'count(//flow[@dport=22])')" = "$ssh" ] || fail "ssh flows differ from the input ($ssh)"
host=$(grep -m 1 -o 'src="[0-9.]*"' "$WORK/flows.xml" | cut -d'"' -f2)
want=$(grep -c "src=\"$host\"" "$WORK/flows.xml")
t0=$(date +%s%N)
got=$("$DIP_BIN" store query --dir "$d" "//flow[@src='$host']" | grep -c '^<flow ')
t1=$(date +%s%N)
[ "$got" = "$want" ] || fail "point query for $host found $got records, the input has $want"
note "point query for $host: $got records in $(( (t1 - t0) / 1000000 )) ms (whole command)"
"$DIP_BIN" store stats --dir "$d" | sed 's/^/  /'
# every store file validates
xsd="$PWD/dipstorage.xsd"
for f in "$d"/MANIFEST.xml "$d"/seg-*.xml.gz "$d"/seg-*.chunks.xml; do
    xmllint --noout --schema "$xsd" "$f" 2>"$WORK/v.err" || { head -n 5 "$WORK/v.err"; fail "$f does not validate"; }
done
"$DIP_BIN" validate "$d" >/dev/null || fail "dipstorage validate rejects the store"
