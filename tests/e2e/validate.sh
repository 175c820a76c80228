# validate.sh - `dipstorage validate` and the export stylesheets: exit codes
# and messages on the schema samples, agreement with xmllint --schema, store
# folders checked against their manifests (samples and a store the program
# writes itself), and the CSV and HTML that tools/xslt makes of flows.
. tests/e2e/lib.sh.inc
need xmllint
need xsltproc
S=tests/data/schema

# ---- the samples: exit codes, one line per file, a summary ----
"$DIP_BIN" validate $S/valid > "$WORK/valid.out" || { cat "$WORK/valid.out"; fail "valid samples rejected"; }
nvalid=$(ls $S/valid | wc -l)
[ "$(grep -c ': ok$' "$WORK/valid.out")" = "$nvalid" ] || fail "expected $nvalid ok lines"
tail -n 1 "$WORK/valid.out" | grep -q "^$nvalid files: $nvalid valid, 0 invalid" || fail "bad summary: $(tail -n 1 "$WORK/valid.out")"
note "$nvalid valid samples: ok"

ninvalid=0
for f in $S/invalid/*; do
    ninvalid=$((ninvalid + 1))
    rc=0
    "$DIP_BIN" validate -q "$f" > "$WORK/one.out" || rc=$?
    [ "$rc" = 1 ] || fail "$f: exit $rc, expected 1"
    line=$(zcat -f "$f" | grep -n 'invalid -->' | cut -d: -f1)
    grep -q "^$f:$line: error: " "$WORK/one.out" || fail "$f: expected an error at line $line, got: $(cat "$WORK/one.out")"
done
note "$ninvalid invalid samples rejected at their marked lines"

rc=0; "$DIP_BIN" validate $S/valid/flows-export.xml $S/invalid/flow-missing-id.xml > "$WORK/mixed.out" || rc=$?
[ "$rc" = 1 ] || fail "a mix of valid and invalid files: exit $rc"
grep -q '^2 files: 1 valid, 1 invalid' "$WORK/mixed.out" || fail "mixed summary: $(tail -n 1 "$WORK/mixed.out")"
rc=0; "$DIP_BIN" validate $S/no-such-file.xml > /dev/null || rc=$?
[ "$rc" = 1 ] || fail "a missing file: exit $rc"
rc=0; "$DIP_BIN" validate 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "no PATH: exit $rc, expected 2"
rc=0; "$DIP_BIN" validate --no-such-option x 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "unknown option: exit $rc, expected 2"
"$DIP_BIN" validate --help | grep -q '^usage: dipstorage validate' || fail "--help"
[ -z "$("$DIP_BIN" validate -q $S/valid)" ] || fail "-q printed something for valid files"
rc=0; "$DIP_BIN" validate --schema "$WORK/none.xsd" $S/valid/flow-ipv6.xml 2> "$WORK/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'cannot load the schema' "$WORK/err" || fail "a missing --schema: exit $rc"
"$DIP_BIN" validate --schema "$PWD/dipstorage.xsd" $S/valid/flow-ipv6.xml > /dev/null || fail "--schema dipstorage.xsd"
note "exit codes and options: ok"

# ---- xmllint agrees ----
for f in $S/valid/* $S/store-ok/*/*; do
    xmllint --noout --nonet --schema dipstorage.xsd "$f" 2> "$WORK/lint" || { cat "$WORK/lint"; fail "xmllint rejects $f"; }
done
for f in $S/invalid/*; do
    case "$f" in *entity*) continue ;; esac # xmllint expands internal entities; we do not
    if xmllint --noout --nonet --schema dipstorage.xsd "$f" 2> /dev/null; then fail "xmllint accepts $f"; fi
done
note "xmllint --schema agrees on every sample"

# ---- store folders ----
"$DIP_BIN" validate $S/store-ok > "$WORK/store.out" || { cat "$WORK/store.out"; fail "store-ok rejected"; }
grep -q '3 segments listed in manifests, 0 missing' "$WORK/store.out" || fail "store-ok summary: $(tail -n 1 "$WORK/store.out")"
rc=0; "$DIP_BIN" validate $S/store-broken > "$WORK/broken.out" || rc=$?
[ "$rc" = 1 ] || fail "store-broken: exit $rc"
for want in 'segment-000001.xml.gz: error: holds 5 flow records, MANIFEST.xml says 6' \
            'segment-000002.xml.gz: error: a dport tank in a store of key src' \
            'segment-000002.xml.gz: error: MANIFEST.xml lists chunks of 3 records in all for a segment of 4' \
            'segment-000003.xml.gz: error: listed in .*MANIFEST.xml but missing'; do
    grep -q "$want" "$WORK/broken.out" || { cat "$WORK/broken.out"; fail "store-broken: no line '$want'"; }
done
note "sample stores: ok"

# a store the program writes: several segments of both shapes, then one removed
for key in src dport; do
    d="$WORK/data/$key"
    for f in flows-export tank-src tank-dport tank-ipv6-only; do
        "$DIP_BIN" store ingest --dir "$d" --key $key --seal-records 2 $S/valid/$f.xml 2> "$WORK/ingest.err" ||
            { cat "$WORK/ingest.err"; fail "store ingest $f into $key"; }
    done
    "$DIP_BIN" store seal --dir "$d" 2> /dev/null || fail "store seal ($key)"
    "$DIP_BIN" store export --dir "$d" --tank -o "$WORK/tank-$key.xml" || fail "store export --tank ($key)"
    "$DIP_BIN" store export --dir "$d" -o "$WORK/flows-$key.xml" || fail "store export ($key)"
done
"$DIP_BIN" validate "$WORK/data" "$WORK"/tank-*.xml "$WORK"/flows-*.xml > "$WORK/data.out" ||
    { cat "$WORK/data.out"; fail "a written store does not validate"; }
nseg=$(ls "$WORK"/data/*/ | grep -c '\.xml\.gz$' || true)
[ "$nseg" -ge 4 ] || fail "expected several segments, found $nseg"
grep -q "$nseg segments listed in manifests, 0 missing" "$WORK/data.out" || fail "written store: $(tail -n 1 "$WORK/data.out")"
victim=$(ls "$WORK"/data/src/*.xml.gz | head -n 1)
rm "$victim"
rc=0; "$DIP_BIN" validate -q "$WORK/data" > "$WORK/data.out" || rc=$?
[ "$rc" = 1 ] && grep -q "$(basename "$victim"): error: listed in .* but missing" "$WORK/data.out" ||
    fail "a removed segment went unnoticed (exit $rc)"
# each segment's chunk index: a removed one, and one whose counts disagree
nidx=$(ls "$WORK"/data/*/ | grep -c '\.chunks\.xml$' || true)
[ "$nidx" = "$nseg" ] || fail "$nseg segments but $nidx chunk indexes"
grep -q '<chunk ' "$WORK"/data/*/MANIFEST.xml && fail "a manifest lists chunks inline"
index=$(ls "$WORK"/data/dport/*.chunks.xml | head -n 1)
rm "$index"
index2=$(ls "$WORK"/data/dport/*.chunks.xml | tail -n 1)
sed -i 's/\(<chunk [^>]* count="\)[0-9]*/\1999/' "$index2"
rc=0; "$DIP_BIN" validate -q "$WORK/data/dport" > "$WORK/data.out" || rc=$?
[ "$rc" = 1 ] && grep -q "$(basename "$index"): error: listed in .* but missing" "$WORK/data.out" ||
    { cat "$WORK/data.out"; fail "a removed chunk index went unnoticed (exit $rc)"; }
grep -q "$(basename "$index2"): error: chunks of [0-9]* records in all for a segment of" "$WORK/data.out" ||
    { cat "$WORK/data.out"; fail "a chunk index that disagrees with its segment went unnoticed"; }
"$DIP_BIN" store query --dir "$WORK/data/dport" 'count(//flow)' > /dev/null 2> "$WORK/open.err" &&
    fail "a store whose chunk index is gone opened"
grep -q "$(basename "$index")" "$WORK/open.err" || fail "opening without a chunk index: $(cat "$WORK/open.err")"
note "a written store of $nseg segments validates; a removed segment or chunk index, and a wrong chunk count, are reported"

# ---- CSV ----
xsltproc tools/xslt/csv.xsl $S/valid/flows-export.xml > "$WORK/flows.csv" || fail "csv.xsl"
cat > "$WORK/expected.csv" <<'EOF'
src,dst,sport,dport,proto,packets,bytes,first,last,flags,tos,in,out,srcas,dstas,smask,dmask,nexthop,exporter,domain,sampling,id
10.1.2.3,192.168.0.7,51234,443,6,12,4120,1700000000000,1700000004250,27,0,3,7,64500,15169,24,16,10.1.2.254,10.255.0.1,0,1000,3f2a9c0d11e4b875
10.1.2.4,192.168.0.7,40000,443,6,3,1500,1700000001000,1700000001900,,,,,,,,,,,,,a000000000000001
2001:db8::1,2001:db8::2,40001,443,17,18446744073709551615,18446744073709551615,0,18446744073709551615,,,,,,,,,,::1.2.3.4,,,ffffffffffffffff
EOF
cmp -s "$WORK/flows.csv" "$WORK/expected.csv" || { diff "$WORK/expected.csv" "$WORK/flows.csv"; fail "CSV of flows-export.xml"; }
# a gzip segment (all flows at any depth) and a written tank: one line per flow, 22 fields each
zcat $S/valid/segment-src.xml.gz | xsltproc tools/xslt/csv.xsl - > "$WORK/seg.csv"
[ "$(wc -l < "$WORK/seg.csv")" = 6 ] || fail "segment CSV: $(wc -l < "$WORK/seg.csv") lines, expected 1 + 5"
for key in src dport; do
    xsltproc tools/xslt/csv.xsl "$WORK/tank-$key.xml" > "$WORK/tank.csv"
    n=$(xmllint --xpath 'count(//flow)' "$WORK/tank-$key.xml")
    [ "$(wc -l < "$WORK/tank.csv")" = $((n + 1)) ] || fail "tank-$key CSV line count"
done
awk -F, 'NF != 22 { exit 1 }' "$WORK/seg.csv" "$WORK/tank.csv" || fail "a CSV line without 22 fields"
[ "$(xsltproc tools/xslt/csv.xsl $S/valid/result-count.xml)" = 42 ] || fail "CSV of a number result"
[ "$(xsltproc tools/xslt/csv.xsl $S/valid/result-boolean-partial.xml)" = false ] || fail "CSV of a boolean result"
printf '<result complete="true"><string>a "b", c</string></result>' > "$WORK/s.xml"
[ "$(xsltproc tools/xslt/csv.xsl "$WORK/s.xml")" = '"a ""b"", c"' ] || fail "CSV quoting of a string result"
printf '<result complete="true"><attribute name="src" value="10.0.0.1"/><attribute name="src" value="::1"/></result>' > "$WORK/a.xml"
[ "$(xsltproc tools/xslt/csv.xsl "$WORK/a.xml" | tr '\n' ' ')" = 'name,value src,10.0.0.1 src,::1 ' ] || fail "CSV of attributes"
note "csv.xsl: ok"

# ---- HTML ----
xsltproc tools/xslt/html.xsl $S/valid/result-partial-flows.xml > "$WORK/r.html" || fail "html.xsl"
xmllint --html --noout "$WORK/r.html" 2> "$WORK/lint" && [ ! -s "$WORK/lint" ] || { cat "$WORK/lint"; fail "html.xsl output is not clean HTML"; }
head -n 1 "$WORK/r.html" | grep -qi '^<!DOCTYPE html' || fail "no HTML doctype"
grep -q '<td class="t" title="1700000000300 ms">2023-11-14 22:13:20.300</td>' "$WORK/r.html" || fail "HTML time column"
grep -q 'connection refused' "$WORK/r.html" || fail "HTML lacks the missing ranges"
grep -q '<code>//flow\[@dport &lt; 1024\]</code>' "$WORK/r.html" || fail "HTML lacks the query"
xsltproc tools/xslt/html.xsl "$WORK/tank-src.xml" > "$WORK/t.html"
n=$(xmllint --xpath 'count(//flow)' "$WORK/tank-src.xml")
[ "$(grep -c '^<td class="t"' "$WORK/t.html")" = $((2 * n)) ] || fail "HTML of a tank: expected $n rows"
note "html.xsl: ok"
