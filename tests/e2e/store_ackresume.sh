# store_ackresume.sh - kill -9 `store ingest --ack-log` at many points
# (before its first batch, between batches, inside seals and merges) and
# resume as its --help says, by running the same command again: the store
# ends with every record of the input exactly once, for an XML file, a file
# of binary batches and an XML stream on standard input. Also: the ack log
# refuses a changed input, and a file already loaded is not stored twice.
. tests/e2e/lib.sh.inc
need python3
total=60000
"$DIP_FLOWGEN" -n $total --seed 21 --format xml -o "$WORK/flows.xml"
"$DIP_FLOWGEN" -n $total --seed 22 --format batch --batch 500 -o "$WORK/flows.bin"

# count DIR: the records the store in DIR holds (0 when there is none yet)
count() {
    n=$("$DIP_BIN" store query --dir "$1" 'count(//flow)' 2>"$WORK/q.err" | scalar /dev/stdin)
    if [ -z "$n" ] && grep -q 'holds no store' "$WORK/q.err"; then n=0; fi
    [ -n "$n" ] || { cat "$WORK/q.err"; fail "the store in $1 does not open"; }
    echo "$n"
}

# same LOG STORE: the input LOG and the store hold the same records, each once
same() {
    "$DIP_BIN" store export --dir "$2" -o "$WORK/out.xml"
    python3 - "$1" "$WORK/out.xml" <<'PY' || fail "records lost or duplicated"
import collections, subprocess, sys
sent = collections.Counter(l for l in open(sys.argv[1]) if l.startswith('<flow '))
got = collections.Counter(l for l in open(sys.argv[2]) if l.startswith('<flow '))
extra, missing = sum((got - sent).values()), sum((sent - got).values())
print("  sent %d, stored %d, extra copies %d, missing %d" % (sum(sent.values()), sum(got.values()), extra, missing))
sys.exit(1 if extra or missing else 0)
PY
}

# load NAME INPUT [stdin]: loads INPUT into $WORK/NAME with the ack log
# $WORK/NAME.ack, killing the ingest after varying delays until a run ends
# by itself; after every kill the store opens and holds at least what the
# log counts. Sets kills and ahead (kills after which the store held more
# than the log counted: the batch a resume must not store again).
load() {
    d="$WORK/$1" ack="$WORK/$1.ack" input=$2 how=${3:-file}
    kills=0 ahead=0 round=0
    while :; do
        round=$((round + 1))
        [ "$round" -le 60 ] || fail "$1: the load did not finish in 60 rounds"
        if [ "$how" = stdin ]; then
            cat "$input" | "$DIP_BIN" store ingest --dir "$d" --key dst --seal-records 20000 --batch 700 \
                --ack-log "$ack" - 2>"$WORK/ingest.err" &
        else
            "$DIP_BIN" store ingest --dir "$d" --key dst --seal-records 20000 --batch 700 \
                --ack-log "$ack" "$input" 2>"$WORK/ingest.err" &
        fi
        pid=$!
        if [ "$kills" -lt 14 ]; then
            # 5-100 ms (binary input, read ~20x faster: 5-30 ms): from before the
            # first batch to the seals and merges at the end
            span=96; [ "$input" = "${input%.xml}" ] && span=26
            sleep "0.$(printf %03d $(( (round * 37) % span + 5 )))"
            kill -9 "$pid" 2>/dev/null || true
        fi
        status=0
        wait "$pid" 2>/dev/null || status=$?
        [ "$status" = 0 ] && break
        [ "$status" = 137 ] || { cat "$WORK/ingest.err"; fail "$1: ingest failed with status $status"; }
        kills=$((kills + 1))
        logged=$(tail -n 1 "$ack" 2>/dev/null || true)
        have=$(count "$d")
        [ "$have" -ge "${logged:-0}" ] || fail "$1, kill $kills: the store holds $have records, the ack log counts $logged"
        [ "$have" -gt "${logged:-0}" ] && ahead=$((ahead + 1))
    done
    grep -q 'stopped at' "$WORK/ingest.err" && { cat "$WORK/ingest.err"; fail "$1: the last run failed"; }
    [ "$(tail -n 1 "$ack")" = "$total" ] || fail "$1: the ack log ends at $(tail -n 1 "$ack"), not $total"
    have=$(count "$d")
    note "$1: $kills kills in $round rounds, $ahead left the store ahead of its ack log; $have records stored"
    [ "$kills" -ge 3 ] || fail "$1: only $kills kills landed before the load finished (ingest too fast?)"
    [ "$have" = "$total" ] || fail "$1: the store holds $have records after resuming, the input $total"
}

load xml "$WORK/flows.xml"
same "$WORK/flows.xml" "$WORK/xml"
load bin "$WORK/flows.bin"
"$DIP_FLOWGEN" -n $total --seed 22 --format xml -o "$WORK/flows22.xml"
same "$WORK/flows22.xml" "$WORK/bin"
load stdin "$WORK/flows.xml" stdin
same "$WORK/flows.xml" "$WORK/stdin"

# the same file again, with a new ack log: its batches are known, none stored
"$DIP_BIN" store ingest --dir "$WORK/xml" --key dst --batch 700 --ack-log "$WORK/again.ack" "$WORK/flows.xml" 2>"$WORK/err" ||
    { cat "$WORK/err"; fail "loading a file again failed"; }
[ "$(count "$WORK/xml")" = "$total" ] || fail "loading the same file again stored records twice"
# an ack log refuses an input changed since, another store and another --batch
touch "$WORK/flows.xml"
if "$DIP_BIN" store ingest --dir "$WORK/xml" --batch 700 --ack-log "$WORK/xml.ack" "$WORK/flows.xml" 2>"$WORK/err"; then
    fail "the ack log accepted a changed input"
fi
grep -q 'not the input the ack log' "$WORK/err" || { cat "$WORK/err"; fail "no clear error for a changed input"; }
grep -q 'batches the store held already' "$WORK/err" && fail "a refused resume went on"
if "$DIP_BIN" store ingest --dir "$WORK/bin" --batch 700 --ack-log "$WORK/xml.ack" "$WORK/flows.xml" 2>"$WORK/err"; then
    fail "the ack log accepted another store"
fi
if "$DIP_BIN" store ingest --dir "$WORK/bin" --batch 500 --ack-log "$WORK/bin.ack" "$WORK/flows.bin" 2>"$WORK/err"; then
    fail "the ack log accepted another --batch"
fi
grep -q -- '--batch 700' "$WORK/err" || { cat "$WORK/err"; fail "no clear error for another --batch"; }
[ "$(count "$WORK/xml")" = "$total" ] && [ "$(count "$WORK/bin")" = "$total" ] || fail "a refused resume stored records"
"$DIP_BIN" store --help | grep -q 'run the same command again' || fail "--help does not say how to resume"
