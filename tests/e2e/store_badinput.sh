# store_badinput.sh - bad input gets a clear error and loses nothing:
# malformed XML (line and column named, the batch holding it not stored),
# an invalid attribute, billion laughs and entities (refused at once), a flow
# ending before it starts, an XPath syntax error (column named, <error> document).
. tests/e2e/lib.sh.inc
d="$WORK/store"
cat > "$WORK/good.xml" <<'XML'
<flows>
<flow src="10.0.0.1" dst="10.0.0.2" sport="1234" dport="22" proto="6" packets="3" bytes="180" first="1700000000000" last="1700000001000" id="00000000000000a1"/>
<flow src="10.0.0.3" dst="10.0.0.4" sport="1235" dport="80" proto="6" packets="4" bytes="240" first="1700000000000" last="1700000001000" id="00000000000000a2"/>
</flows>
XML
"$DIP_BIN" store ingest --dir "$d" --key src "$WORK/good.xml" 2>/dev/null
# line 3 has an unquoted attribute value (column 43): a malformed document
printf '<flows>\n<flow src="10.0.0.5" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1" last="2" id="00000000000000b1"/>\n<flow src="10.0.0.7" dst="10.0.0.8" sport=1/>\n</flows>\n' > "$WORK/broken.xml"
if "$DIP_BIN" store ingest --dir "$d" "$WORK/broken.xml" 2>"$WORK/err"; then fail "malformed XML was accepted"; fi
grep -q 'broken.xml:3:43:' "$WORK/err" || { cat "$WORK/err"; fail "the error does not name line 3"; }
n=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' | scalar /dev/stdin)
[ "$n" = 2 ] || fail "after malformed input the store holds $n records, expected 2 (the broken batch must not be stored)"
# a bad attribute value
printf '<flows><flow src="10.0.0.999" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1" last="2" id="00000000000000b1"/></flows>\n' > "$WORK/badattr.xml"
if "$DIP_BIN" store ingest --dir "$d" "$WORK/badattr.xml" 2>"$WORK/err"; then fail "bad address accepted"; fi
grep -q 'src' "$WORK/err" || fail "the error does not name the attribute: $(cat "$WORK/err")"
# billion laughs: refused at its DOCTYPE at once (timeout: it must not run
# long), nothing stored
{
    printf '<?xml version="1.0"?>\n<!DOCTYPE flows [\n <!ENTITY l0 "lol">\n'
    for i in 1 2 3 4 5 6 7 8 9; do
        printf ' <!ENTITY l%d "' $i
        for j in 0 1 2 3 4 5 6 7 8 9; do printf '&l%d;' $((i - 1)); done
        printf '">\n'
    done
    printf ']>\n<flows>\n<flow src="&l9;" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1" last="2" id="00000000000000c1"/>\n<x>&l9;</x>\n</flows>\n'
} > "$WORK/laughs.xml"
set +e
timeout 20 "$DIP_BIN" store ingest --dir "$d" "$WORK/laughs.xml" 2>"$WORK/err"
rc=$?
set -e
[ "$rc" = 1 ] || { cat "$WORK/err"; fail "billion laughs: exit $rc, expected 1 (124: it ran until the timeout)"; }
grep -q 'laughs.xml:2:.*DOCTYPE' "$WORK/err" || { cat "$WORK/err"; fail "billion laughs: the error does not name the DOCTYPE on line 2"; }
# an entity reference without any declaration is a malformed document
printf '<flows><flow src="&x;" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1" last="2" id="00000000000000c2"/></flows>\n' > "$WORK/entity.xml"
if "$DIP_BIN" store ingest --dir "$d" "$WORK/entity.xml" 2>"$WORK/err"; then fail "an undeclared entity was accepted"; fi
grep -q "entity.xml:1:.*'x'" "$WORK/err" || { cat "$WORK/err"; fail "the error does not name the entity"; }
# a flow that ends before it starts is refused (not repaired: first is part
# of its identity), naming the file, line and both values; the whole batch
# before it is stored, the batch holding it is not
{
    printf '<flows>\n'
    printf '<flow src="10.0.1.%d" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1000" last="1000" id="00000000000001%02x"/>\n' 1 1 2 2 3 3
    printf '<flow src="10.0.1.4" dst="10.0.0.6" sport="1" dport="2" proto="6" packets="1" bytes="1" first="1700000005000" last="1700000004000" id="00000000000001ff"/>\n'
    printf '</flows>\n'
} > "$WORK/backwards.xml"
if "$DIP_BIN" store ingest --dir "$d" --batch 2 "$WORK/backwards.xml" 2>"$WORK/err"; then fail "last < first was accepted"; fi
grep -q 'backwards.xml:5:.*last="1700000004000".*first="1700000005000"' "$WORK/err" ||
    { cat "$WORK/err"; fail "the error does not name line 5 and both values"; }
n=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' | scalar /dev/stdin)
[ "$n" = 4 ] || fail "after a refused record the store holds $n records, expected 4 (2 before, one whole batch of 2)"
# XPath syntax error: an <error> document with the column, exit 1
if "$DIP_BIN" store query --dir "$d" '//flow[@src=]' > "$WORK/out" 2>/dev/null; then fail "bad XPath accepted"; fi
grep -q '<error code="ESYNTAX" column="[1-9]' "$WORK/out" || fail "no error document with a column: $(cat "$WORK/out")"
# usage errors exit 2, --help exits 0
set +e
"$DIP_BIN" store query >/dev/null 2>&1; [ $? = 2 ] || fail "usage error does not exit 2"
"$DIP_BIN" store --help | grep -q 'usage: dipstorage store' || fail "no --help text"
set -e
n=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' | scalar /dev/stdin)
[ "$n" = 4 ] || fail "store changed by bad input: $n records"
