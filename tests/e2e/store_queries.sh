# store_queries.sh - a leaf store answers XPath exactly as libxml2 does on its
# exported logical document: >= 300 generated queries (equality, comparisons,
# and/or/not, starts-with, contains, count, sum, on every attribute) over a
# store of several segments plus an active part, for the src and dport keys.
. tests/e2e/lib.sh.inc
need xmllint
need python3
"$DIP_FLOWGEN" -n 20000 --seed 7 --format xml -o "$WORK/flows.xml"
for key in src dport; do
    d="$WORK/store-$key"
    # small segments and chunks: answers must merge across them
    "$DIP_BIN" store ingest --dir "$d" --key "$key" --seal-records 6000 --batch 1000 "$WORK/flows.xml" 2>/dev/null
    "$DIP_BIN" store export --dir "$d" --tank -o "$WORK/tank-$key.xml"
    n=$(xmllint --xpath 'count(//flow)' "$WORK/tank-$key.xml")
    [ "$n" = 20000 ] || fail "$key: exported $n records, expected 20000"
    python3 tests/e2e/gen_queries.py "$WORK/flows.xml" 160 "$key" > "$WORK/queries-$key.txt"
    i=0 bad=0
    while IFS= read -r q; do
        i=$((i + 1))
        "$DIP_BIN" store query --dir "$d" "$q" > "$WORK/ours.xml" || fail "$key: query failed: $q"
        if grep -q '<number>\|<string>\|<boolean>' "$WORK/ours.xml"; then
            ours=$(scalar "$WORK/ours.xml")
            theirs=$(xmllint --xpath "string($q)" "$WORK/tank-$key.xml" 2>/dev/null || true)
        else
            grep '^<flow ' "$WORK/ours.xml" > "$WORK/ours.txt" || true
            (xmllint --xpath "$q" "$WORK/tank-$key.xml" 2>/dev/null || true) | sed 's/\/><flow /\/>\n<flow /g' | grep '^<flow ' > "$WORK/theirs.txt" || true
            ours=$(sha256sum < "$WORK/ours.txt"); theirs=$(sha256sum < "$WORK/theirs.txt")
        fi
        if [ "$ours" != "$theirs" ]; then
            bad=$((bad + 1))
            echo "  MISMATCH ($key) $q: ours=$(echo "$ours" | head -c 80) xmllint=$(echo "$theirs" | head -c 80)"
        fi
    done < "$WORK/queries-$key.txt"
    note "$key: $i queries compared with xmllint, $bad mismatches"
    [ "$bad" = 0 ] || fail "$bad of $i answers differ from xmllint on the $key tank"
    [ "$i" -ge 150 ] || fail "only $i queries generated"
done
