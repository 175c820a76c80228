# store_export.sh - exports and the access point over a local data folder:
# export as <flows> (all, or an XPath subset), as the logical <tank>
# document, and through the CSV and HTML stylesheets; `dipstorage query`
# picks the tank the query constrains, falls back to another tank when that
# one is missing, and runs the named catalogue queries.
. tests/e2e/lib.sh.inc
need xmllint
"$DIP_FLOWGEN" -n 5000 --seed 21 --format batch -o "$WORK/flows.bin"
for key in src dst sport dport; do
    "$DIP_BIN" store ingest --dir "$WORK/data/$key" --key "$key" --seal-records 2000 "$WORK/flows.bin" 2>/dev/null
done
d="$WORK/data/src"
"$DIP_BIN" store export --dir "$d" -o "$WORK/all.xml"
[ "$(xmllint --xpath 'count(/flows/flow)' "$WORK/all.xml")" = 5000 ] || fail "export of all records"
xmllint --noout --schema dipstorage.xsd "$WORK/all.xml" 2>/dev/null || fail "the <flows> export does not validate"
"$DIP_BIN" store export --dir "$d" --tank -o "$WORK/tank.xml"
xmllint --noout --schema dipstorage.xsd "$WORK/tank.xml" 2>/dev/null || fail "the <tank> export does not validate"
ssh=$(xmllint --xpath 'count(//flow[@dport=22])' "$WORK/all.xml")
"$DIP_BIN" store export --dir "$d" '//flow[@dport=22]' -o "$WORK/ssh.xml"
[ "$(xmllint --xpath 'count(//flow)' "$WORK/ssh.xml")" = "$ssh" ] || fail "subset export differs"
"$DIP_BIN" store export --dir "$d" -t csv '//flow[@dport=22]' -o "$WORK/ssh.csv"
head -n 1 "$WORK/ssh.csv" | grep -q '^src,dst,sport,dport,proto' || fail "CSV header: $(head -n 1 "$WORK/ssh.csv")"
[ "$(($(wc -l < "$WORK/ssh.csv") - 1))" = "$ssh" ] || fail "CSV rows differ from $ssh"
"$DIP_BIN" store export --dir "$d" -t html '//flow[@dport=22]' | grep -q '<table' || fail "HTML export has no table"
if "$DIP_BIN" store export --dir "$d" 'count(//flow)' >/dev/null 2>&1; then fail "export of a number accepted"; fi

# the access point: tank choice, equal answers from every tank, fallback
q() { "$DIP_BIN" query --data "$WORK/data" "$@"; }
tank() { sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p'; }
[ "$(q 'count(//flow[@dport=22])' | tank)" = dport ] || fail "a dport query is not answered by the dport tank"
host=$(sed -n '3s/.*src="\([^"]*\)".*/\1/p' "$WORK/all.xml")
[ "$(q "//flow[@src='$host']" | tank)" = src ] || fail "a src query is not answered by the src tank"
for t in src dst sport dport; do
    n=$(q --tank $t 'count(//flow[@proto=17])' | scalar /dev/stdin)
    [ "$n" = "$(xmllint --xpath 'count(//flow[@proto=17])' "$WORK/all.xml")" ] || fail "tank $t counts $n UDP flows"
done
mv "$WORK/data/dport" "$WORK/dport.away"
n=$(q 'count(//flow[@dport=22])' 2>/dev/null | scalar /dev/stdin)
[ "$n" = "$ssh" ] || fail "without the dport tank another tank must answer ($n, expected $ssh)"
mv "$WORK/dport.away" "$WORK/data/dport"
q --named ssh | grep -q '<result complete="true" tank="dport"' || fail "named query ssh"
q --list | grep -q '^from-host' || fail "query --list"
if q --named no-such-query >/dev/null 2>&1; then fail "an unknown named query was accepted"; fi
# every kind of document the commands write validates: results of each kind, errors
for expr in '//flow[@dport=22]' 'count(//flow)' "string((//flow)[1]/@src)" 'boolean(//flow[@dport=23])' \
            '(//flow)[1]/@src' '/tank/o[@v=10]/o[@v=1][1]'; do
    "$DIP_BIN" store query --dir "$d" "$expr" > "$WORK/r.xml" || fail "query $expr"
    xmllint --noout --schema dipstorage.xsd "$WORK/r.xml" 2>"$WORK/v.err" || { cat "$WORK/v.err"; fail "result of $expr does not validate"; }
done
"$DIP_BIN" store query --dir "$d" '//flow[' > "$WORK/e.xml" 2>/dev/null || true
xmllint --noout --schema dipstorage.xsd "$WORK/e.xml" 2>/dev/null || fail "the error document does not validate"
