# store_diskfull.sh - a full disk: ingest refuses with a clear error, the
# store stays consistent and readable, and ingest resumes once space is back.
# Needs root to mount a small tmpfs.
. tests/e2e/lib.sh.inc
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
mnt="$WORK/mnt"
mkdir -p "$mnt"
mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null || skip "cannot mount tmpfs here"
trap 'umount "$mnt" 2>/dev/null; rm -rf "$WORK"' EXIT
"$DIP_FLOWGEN" -n 60000 --seed 5 --format xml -o "$WORK/flows.xml"
d="$mnt/store"
if "$DIP_BIN" store ingest --dir "$d" --key src --seal-records 10000 --batch 1000 --ack-log "$WORK/ack" \
    "$WORK/flows.xml" 2>"$WORK/err"; then
    fail "ingest of 60000 records into 1 MB succeeded?"
fi
grep -qi 'no space' "$WORK/err" || { cat "$WORK/err"; fail "the error does not say the disk is full"; }
acked=$(tail -n 1 "$WORK/ack")
note "disk full after $acked acknowledged records: $(grep -i 'no space' "$WORK/err" | head -n 1)"
n=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' 2>/dev/null | scalar /dev/stdin)
[ "$n" -ge "$acked" ] || fail "store holds $n records, $acked acknowledged"
# space comes back: grow the tmpfs, ingest the rest
mount -o remount,size=64m "$mnt"
python3 - "$WORK/flows.xml" "$n" > "$WORK/rest.xml" <<'PY'
import sys
skip = int(sys.argv[2]); seen = 0
print('<flows>')
for line in open(sys.argv[1]):
    if line.startswith('<flow '):
        seen += 1
        if seen > skip: sys.stdout.write(line)
print('</flows>')
PY
"$DIP_BIN" store ingest --dir "$d" "$WORK/rest.xml" 2>/dev/null || fail "ingest does not resume after space is back"
n=$("$DIP_BIN" store query --dir "$d" 'count(//flow)' | scalar /dev/stdin)
[ "$n" = 60000 ] || fail "after resuming the store holds $n records, expected 60000"
"$DIP_BIN" store export --dir "$d" -o "$WORK/out.xml"
a=$(grep '^<flow ' "$WORK/flows.xml" | sort | sha256sum); b=$(grep '^<flow ' "$WORK/out.xml" | sort | sha256sum)
[ "$a" = "$b" ] || fail "the stored records differ from those sent"
