# store_crash.sh - kill -9 at random moments during ingest (>= 20 times),
# restart each time: every acknowledged record is present exactly once, none
# twice, and the store stays valid. Each round resumes the load after the
# last acknowledged record, as a real sender would.
. tests/e2e/lib.sh.inc
need python3
total=300000
"$DIP_FLOWGEN" -n $total --seed 11 --format batch --batch 500 -o "$WORK/flows.bin"
"$DIP_FLOWGEN" -n $total --seed 11 --format xml -o "$WORK/flows.xml"
d="$WORK/store"
acked=0 kills=0 round=0
while [ "$acked" -lt "$total" ] && [ "$round" -lt 200 ]; do
    round=$((round + 1))
    rm -f "$WORK/ack"
    # resume: the records after the last acknowledged one, as XML
    python3 - "$WORK/flows.xml" "$acked" > "$WORK/rest.xml" <<'PY'
import sys
skip = int(sys.argv[2]); seen = 0
print('<flows>')
for line in open(sys.argv[1]):
    if line.startswith('<flow '):
        seen += 1
        if seen > skip: sys.stdout.write(line)
print('</flows>')
PY
    "$DIP_BIN" store ingest --dir "$d" --key dst --seal-records 20000 --batch 700 --ack-log "$WORK/ack" \
        "$WORK/rest.xml" 2>"$WORK/ingest.err" &
    pid=$!
    if [ "$kills" -lt 24 ]; then
        # 30-140 ms: short enough that a kill lands before the round's
        # ingest finishes however fast the store has become
        sleep "0.$(printf %02d $(( (round * 37) % 12 + 3 )))" 2>/dev/null || sleep 1
        if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    fi
    wait "$pid" 2>/dev/null || true
    last=$(tail -n 1 "$WORK/ack" 2>/dev/null || echo 0)
    acked=$((acked + ${last:-0}))
    # the store must open, and hold at least every acknowledged record
    have=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' 2>"$WORK/q.err" | sed -n 's:.*<number>\(.*\)</number>.*:\1:p')
    # (a kill before the first acknowledgement may land before the store was
    # created: then there is no store yet, and the next round creates it)
    if [ -z "$have" ] && [ "$acked" = 0 ] && grep -q 'holds no store' "$WORK/q.err"; then have=0; fi
    [ -n "$have" ] || { cat "$WORK/q.err"; fail "store does not open after kill $kills"; }
    [ "$have" -ge "$acked" ] || fail "after kill $kills: $have records stored, $acked acknowledged"
    # records beyond the acknowledged ones were written but not acknowledged:
    # count them as sent so the next round does not send them twice
    acked=$have
done
note "$kills kills, $round rounds"
[ "$kills" -ge 20 ] || fail "only $kills kills happened (ingest too fast?)"
"$DIP_BIN" store export --dir "$d" -o "$WORK/out.xml"
python3 - "$WORK/flows.xml" "$WORK/out.xml" <<'PY' || fail "records lost or duplicated"
import collections, re, sys
sent = collections.Counter(l for l in open(sys.argv[1]) if l.startswith('<flow '))
got = collections.Counter(l for l in open(sys.argv[2]) if l.startswith('<flow '))
extra = sum((got - sent).values())
missing = sum((sent - got).values())
print("  sent %d, stored %d, extra copies %d, missing %d" % (sum(sent.values()), sum(got.values()), extra, missing))
sys.exit(1 if extra or missing else 0)
PY
