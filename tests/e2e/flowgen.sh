#!/bin/sh
# flowgen end to end: determinism, the XML document and its statistics, the
# binary batch layout, pacing, IPFIX over TCP, and the v5/v9/IPFIX export
# packets as real collectors decode them (nfcapd/nfdump: record counts,
# sequence numbers and fields against the XML of the same seed; tshark:
# dissection of packets captured on loopback). Parts whose tool is missing
# are skipped with a note. Exit 0 pass, 1 fail, 77 skip.
set -u

FG=${DIP_FLOWGEN:-tools/flowgen/flowgen}
[ -x "$FG" ] || { echo "flowgen binary not found at $FG (make tools/flowgen/flowgen)"; exit 77; }
command -v xmllint >/dev/null 2>&1 || { echo "xmllint missing (apt-get install libxml2-utils)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/flowgen-e2e.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export TZ=UTC LC_ALL=C

fail() { echo "FAIL: $*"; exit 1; }
note() { echo "  flowgen.sh: $*"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
xcount() { xmllint --xpath "$2" "$1" 2>/dev/null; }
# in_range VALUE LO HI: true when LO <= VALUE <= HI (decimals allowed)
in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

# ---- usage ----
"$FG" --help > "$T/help" || fail "--help exited non-zero"
for w in SYNOPSIS OPTIONS "--v6-share" "--rate" "2-byte" EXAMPLES; do
    grep -q -- "$w" "$T/help" || fail "--help does not mention $w"
done
"$FG" --no-such-option >/dev/null 2>&1; [ $? -eq 2 ] || fail "a bad option must exit 2"
"$FG" --format v5 --v6-share 0.2 -o /dev/null 2>/dev/null; [ $? -eq 2 ] || fail "v5 with IPv6 must be refused"
note "usage ok"

# ---- determinism: same seed, same bytes; another seed, other bytes ----
for f in xml batch v5 v9 ipfix; do
    "$FG" -n 4000 --seed 42 --format "$f" -o "$T/a.$f" 2>/dev/null || fail "$f run failed"
    "$FG" -n 4000 --seed 42 --format "$f" -o "$T/b.$f" 2>/dev/null || fail "$f run failed"
    "$FG" -n 4000 --seed 43 --format "$f" -o "$T/c.$f" 2>/dev/null || fail "$f run failed"
    [ -s "$T/a.$f" ] || fail "$f output is empty"
    [ "$(sha "$T/a.$f")" = "$(sha "$T/b.$f")" ] || fail "$f: same seed gave different output"
    [ "$(sha "$T/a.$f")" != "$(sha "$T/c.$f")" ] || fail "$f: different seeds gave the same output"
done
"$FG" -n 4000 --seed 42 --format ipfix --ipfix-wide -o "$T/w1" 2>/dev/null
"$FG" -n 4000 --seed 42 --format ipfix --ipfix-wide -o "$T/w2" 2>/dev/null
cmp -s "$T/w1" "$T/w2" || fail "ipfix --ipfix-wide is not deterministic"
"$FG" -n 4000 --seed 42 > "$T/stdout.xml" 2>/dev/null
cmp -s "$T/stdout.xml" "$T/a.xml" || fail "standard output differs from -o"
note "determinism ok"

# ---- the XML document ----
N=20000
"$FG" -n $N --seed 7 -o "$T/flows.xml" 2>/dev/null || fail "xml run failed"
head -c 48 "$T/flows.xml" | grep -q '^<?xml version="1.0" encoding="UTF-8"?>' || fail "xml declaration missing"
xmllint --noout "$T/flows.xml" || fail "xml is not well-formed"
if [ -f dipstorage.xsd ]; then
    xmllint --noout --schema dipstorage.xsd "$T/flows.xml" 2> "$T/xsd.err" ||
        { head -3 "$T/xsd.err"; fail "xml does not validate against dipstorage.xsd"; }
fi
total=$(xcount "$T/flows.xml" 'count(/flows/flow)')
[ "$total" = "$N" ] || fail "xml holds $total flows, want $N"
req='@src and @dst and @sport and @dport and @proto and @packets and @bytes and @first and @last and string-length(@id)=16'
full=$(xcount "$T/flows.xml" "count(/flows/flow[$req])")
[ "$full" = "$N" ] || fail "only $full of $N flows have every required attribute"
v6=$(xcount "$T/flows.xml" "count(//flow[contains(@src, ':')]) div $N")
https=$(xcount "$T/flows.xml" "count(//flow[@dport = 443]) div $N")
ssh=$(xcount "$T/flows.xml" "count(//flow[@dport = 22]) div $N")
# Expected (--help): IPv6 0.1; dport 443 (280 + 60)/1000 * 0.7 = 0.238; dport 22 0.035.
in_range "$v6" 0.085 0.115 || fail "IPv6 share $v6, want about 0.1"
in_range "$https" 0.215 0.261 || fail "dport 443 share $https, want about 0.238"
in_range "$ssh" 0.027 0.043 || fail "dport 22 share $ssh, want about 0.035"
"$FG" -n 4000 --v6-share 0.5 -o "$T/half.xml" 2>/dev/null
v6h=$(xcount "$T/half.xml" "count(//flow[contains(@src, ':')]) div 4000")
in_range "$v6h" 0.45 0.55 || fail "--v6-share 0.5 gave $v6h"
note "xml: $N flows, IPv6 $v6, dport 443 $https, dport 22 $ssh"

# Record coherence, one flow per line in canonical attribute order.
cat > "$T/attrs.awk" <<'EOF'
# Splits a <flow .../> line into a[name] = value.
function attrs(line, a,    s, n, i, parts, k, v) {
    for (k in a) delete a[k]
    s = line; sub(/^<flow /, "", s); sub(/"\/>$/, "", s)
    n = split(s, parts, "\" ")
    for (i = 1; i <= n; i++) {
        k = parts[i]; sub(/=.*/, "", k)
        v = parts[i]; sub(/^[^=]*="/, "", v)
        a[k] = v
    }
}
EOF
cat "$T/attrs.awk" - > "$T/check.awk" <<'EOF'
/^<flow / {
    attrs($0, a); n++
    p = a["proto"] + 0; pk = a["packets"] + 0; by = a["bytes"] + 0
    first = a["first"] + 0; last = a["last"] + 0; sp = a["sport"] + 0; dp = a["dport"] + 0; fl = a["flags"] + 0
    if (by < 40 * pk || by > 1500 * pk) { print "bytes " by " for " pk " packets: " $0; bad++ }
    if (last < first) { print "last before first: " $0; bad++ }
    if (first < prev) { print "first decreases: " $0; bad++ }
    prev = first
    if (first < start || first >= start + dur || last > start + dur) { print "outside the window: " $0; bad++ }
    if ((p == 1 || p == 58) && sp != 0) { print "ICMP with a source port: " $0; bad++ }
    if (p != 6 && fl != 0) { print "TCP flags on proto " p ": " $0; bad++ }
    if (p == 6 && (dp == 53 || dp == 123 || sp == 53)) { print "DNS/NTP over TCP: " $0; bad++ }
    if (p == 17 && (dp == 22 || dp == 3389)) { print "SSH/RDP over UDP: " $0; bad++ }
    if (p == 6 && pk >= 3 && fl % 32 == 0) { print "TCP flags without SYN/FIN/RST/ACK: " $0; bad++ }
    if (p != 1 && p != 6 && p != 17 && p != 58) { print "unexpected proto: " $0; bad++ }
    if (bad > 5) exit 1
}
END { if (bad) exit 1; if (n != want) { print "saw " n " flows, want " want; exit 1 } }
EOF
awk -v start=1700000000000 -v dur=3600000 -v want=$N -f "$T/check.awk" "$T/flows.xml" || fail "incoherent records"
"$FG" -n 2000 --start 1600000000000 --duration 60 -o "$T/win.xml" 2>/dev/null
awk -v start=1600000000000 -v dur=60000 -v want=2000 -f "$T/check.awk" "$T/win.xml" || fail "--start/--duration not honoured"
note "xml records coherent"

# ---- binary batches: walk the layout documented in src/flow/flow.h ----
"$FG" -n 2500 --batch 1000 --format batch -o "$T/flows.dipb" 2>/dev/null || fail "batch run failed"
od -An -v -tu1 "$T/flows.dipb" | awk -v want=2500 -v wantb=3 '
function addr(bit) { return (int(fam / bit) % 2) ? 16 : 4 }
{ for (i = 1; i <= NF; i++) b[n++] = $i }
END {
    pos = 0
    while (pos < n) {
        if (b[pos] != 68 || b[pos+1] != 73 || b[pos+2] != 80 || b[pos+3] != 66 || b[pos+4] != 1) {
            print "no batch header at offset " pos; exit 1
        }
        cnt = ((b[pos+8] * 256 + b[pos+9]) * 256 + b[pos+10]) * 256 + b[pos+11]
        p = pos + 12
        for (r = 0; r < cnt; r++) {
            pr = b[p] * 256 + b[p+1]; fam = b[p+2]; p += 3
            p += addr(1) + addr(2) + 2 + 2 + 1 + 5 * 8
            if (pr % 2) p++                       # flags
            if (int(pr / 2) % 2) p++              # tos
            if (int(pr / 4) % 2) p += 4           # in
            if (int(pr / 8) % 2) p += 4           # out
            if (int(pr / 16) % 2) p += 4          # srcas
            if (int(pr / 32) % 2) p += 4          # dstas
            if (int(pr / 64) % 2) p++             # smask
            if (int(pr / 128) % 2) p++            # dmask
            if (int(pr / 256) % 2) p += addr(4)   # nexthop
            if (int(pr / 512) % 2) p += addr(8)   # exporter
            if (int(pr / 1024) % 2) p += 4        # domain
            if (int(pr / 2048) % 2) p += 4        # sampling
        }
        pos = p + 4; batches++; recs += cnt
    }
    if (pos != n) { print "batches end at " pos " of " n " bytes"; exit 1 }
    if (recs != want || batches != wantb) { print recs " records in " batches " batches"; exit 1 }
}' || fail "binary batches do not follow the documented layout"
note "batch layout ok"

# ---- v5/v9 files: 2-byte length + one UDP payload each ----
for f in v5 v9; do
    "$FG" -n 3000 --format $f -o "$T/file.$f" 2> "$T/file.$f.err" || fail "$f file run failed"
    pk=$(sed -n 's/.* records, \([0-9]*\) packets.*/\1/p' "$T/file.$f.err")
    od -An -v -tu1 "$T/file.$f" | awk -v ver=${f#v} -v want="$pk" '
    { for (i = 1; i <= NF; i++) b[n++] = $i }
    END {
        pos = 0
        while (pos < n) {
            len = b[pos] * 256 + b[pos+1]
            if (b[pos+2] != 0 || b[pos+3] != ver || len < 24 || pos + 2 + len > n) { print "bad packet at " pos; exit 1 }
            pos += 2 + len; k++
        }
        if (pos != n || k != want) { print k " packets, summary said " want; exit 1 }
    }' || fail "$f file is not a stream of length-prefixed export packets"
done
note "v5/v9 file framing ok"

# Templates: v9 resends them in every --refresh-th packet of each source id;
# an IPFIX stream (file, TCP) sends them once, in each domain's first message.
"$FG" -n 3000 --format v9 --refresh 5 -o "$T/refresh.v9" 2>/dev/null || fail "v9 --refresh run failed"
od -An -v -tu1 "$T/refresh.v9" | awk '
{ for (i = 1; i <= NF; i++) b[n++] = $i }
END {
    pos = 0
    while (pos < n) {
        len = b[pos] * 256 + b[pos+1]; h = pos + 2
        src = ((b[h+16] * 256 + b[h+17]) * 256 + b[h+18]) * 256 + b[h+19]
        tmpl = (b[h+20] == 0 && b[h+21] == 0)
        if (tmpl != (seen[src] % 5 == 0)) { print "source " src " packet " seen[src] ": templates " tmpl; exit 1 }
        seen[src]++; pos += 2 + len
    }
    for (s in seen) k++
    if (k != 4) { print k " source ids, want 4"; exit 1 }
}' || fail "v9 templates not refreshed every 5 packets"
od -An -v -tu1 "$T/a.ipfix" | awk '
{ for (i = 1; i <= NF; i++) b[n++] = $i }
END {
    pos = 0
    while (pos < n) {
        if (b[pos] != 0 || b[pos+1] != 10) { print "no IPFIX header at " pos; exit 1 }
        len = b[pos+2] * 256 + b[pos+3]
        dom = ((b[pos+12] * 256 + b[pos+13]) * 256 + b[pos+14]) * 256 + b[pos+15]
        tmpl = (b[pos+16] == 0 && b[pos+17] == 2)
        if (tmpl != !(dom in seen)) { print "domain " dom " message " seen[dom] ": templates " tmpl; exit 1 }
        seen[dom]++; pos += len
    }
    if (pos != n) { print "messages end at " pos " of " n; exit 1 }
}' || fail "IPFIX stream templates not sent exactly once per domain"
note "template refresh ok"

# ---- pacing and progress ----
t0=$(date +%s.%N)
"$FG" -n 3000 --rate 2000 --progress --format v9 -o "$T/paced.v9" 2> "$T/paced.err" || fail "paced run failed"
t1=$(date +%s.%N)
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
in_range "$el" 1.3 3.5 || fail "3000 records at 2000/s took $el s"
grep -q 'of 3000 records' "$T/paced.err" || fail "--progress printed nothing"
cmp -s "$T/paced.v9" "$T/file.v9" || fail "pacing changed the output"
note "pacing ok (3000 records at 2000/s in ${el}s)"
for f in v5 v9 ipfix; do
    "$FG" -n 3000 --format $f --preload -o "$T/pre.$f" 2>/dev/null || fail "--preload $f failed"
    "$FG" -n 3000 --format $f -o "$T/plain.$f" 2>/dev/null
    cmp -s "$T/pre.$f" "$T/plain.$f" || fail "--preload changed the $f output"
done
"$FG" -n 10 --format xml --preload -o /dev/null 2>/dev/null && fail "--preload took XML output"
note "--preload sends the same packets"

port_base=$(( 20000 + $$ % 20000 ))

# ---- IPFIX over TCP: the same byte stream as the file ----
if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-d'; then
    p=$((port_base + 9))
    nc -l -d 127.0.0.1 $p > "$T/tcp.ipfix" 2>/dev/null &
    ncpid=$!; PIDS="$PIDS $ncpid"
    ok=""
    for i in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.2
        if "$FG" -n 3000 --format ipfix --to tcp://127.0.0.1:$p 2>/dev/null; then ok=1; break; fi
    done
    [ -n "$ok" ] || fail "could not send IPFIX over TCP"
    wait $ncpid; PIDS=""
    "$FG" -n 3000 --format ipfix -o "$T/file.ipfix" 2>/dev/null
    cmp -s "$T/tcp.ipfix" "$T/file.ipfix" || fail "IPFIX over TCP differs from the file"
    note "ipfix over tcp ok"
else
    note "SKIPPED IPFIX over TCP: OpenBSD netcat (nc -l -d) not installed"
fi

# ---- collectors: nfcapd/nfdump ----
# Normalised record lines: start|end|src|dst|sport|dport|proto|flags|tos|in|out|srcas|dstas|packets|bytes
# ICMP dport as type.code (nfdump's way); nfdump 1.7 does not read ICMP from
# a v9 destination port, so for v9 it is left out on both sides.
cat "$T/attrs.awk" - > "$T/norm.awk" <<'EOF'
function ms(t) { return strftime("%Y-%m-%d %H:%M:%S", int(t / 1000)) sprintf(".%03d", t % 1000) }
function flagstr(f,    s, i, c) {
    s = ""; split("C E U A P R S F", c, " ")
    for (i = 1; i <= 8; i++) s = s ((int(f / 2 ^ (8 - i)) % 2) ? c[i] : ".")
    return s
}
/^<flow / {
    attrs($0, a)
    dp = a["dport"]
    if (a["proto"] == 1 || a["proto"] == 58) dp = (v9 ? "x" : int(dp / 256) "." dp % 256)
    print ms(a["first"]) "|" ms(a["last"]) "|" a["src"] "|" a["dst"] "|" a["sport"] "|" dp "|" a["proto"] "|" \
        flagstr(a["flags"]) "|" a["tos"] "|" a["in"] "|" a["out"] "|" (a["srcas"] + 0) "|" (a["dstas"] + 0) "|" \
        a["packets"] "|" a["bytes"]
}
EOF
NFFMT='fmt:%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%tos|%in|%out|%sas|%das|%pkt|%byt'

if command -v nfcapd >/dev/null 2>&1 && command -v nfdump >/dev/null 2>&1; then
    n=3000
    for mode in v5 v9 ipfix ipfix-wide; do
        f=${mode%-wide}; extra=""; v6opt=""
        [ "$mode" = ipfix-wide ] && extra=--ipfix-wide
        [ "$f" = v5 ] && v6opt="--v6-share 0"
        d="$T/nf.$mode"; mkdir -p "$d"
        started=""
        for try in 1 2 3 4 5; do
            p=$((port_base + try * 100 + ${#mode}))
            nfcapd -p $p -w "$d" > "$d.log" 2>&1 &
            cap=$!
            sleep 0.5
            if kill -0 $cap 2>/dev/null; then started=1; break; fi
        done
        [ -n "$started" ] || fail "nfcapd would not start: $(tail -3 "$d.log")"
        PIDS="$PIDS $cap"
        "$FG" -n $n --seed 11 --format $f $extra --to udp://127.0.0.1:$p --rate 50000 2>/dev/null || fail "sending $mode failed"
        sleep 0.3
        kill $cap; wait $cap; PIDS=""
        grep -q "Flows: $n," "$d.log" || fail "nfcapd ($mode): $(grep Ident "$d.log"), want $n flows"
        grep -q "Sequence Errors: 0," "$d.log" || fail "nfcapd ($mode) saw sequence errors: $(grep Ident "$d.log")"
        nfdump -6 -N -q -R "$d" -o "$NFFMT" 2>/dev/null | sed 's/ *| */|/g; s/^ *//; s/ *$//' |
            awk -F'|' -v OFS='|' -v v9=$([ $f = v9 ] && echo 1 || echo 0) \
                'v9 && ($7 == 1 || $7 == 58) { $6 = "x" } { print }' | sort > "$d.got"
        got=$(wc -l < "$d.got")
        [ "$got" -eq $n ] || fail "nfdump ($mode) shows $got records, $n were sent"
        "$FG" -n $n --seed 11 $v6opt -o "$d.xml" 2>/dev/null
        awk -v v9=$([ $f = v9 ] && echo 1 || echo 0) -f "$T/norm.awk" "$d.xml" | sort > "$d.want"
        if ! cmp -s "$d.got" "$d.want"; then
            diff "$d.want" "$d.got" | head -6
            fail "nfdump ($mode) decodes other records than the XML of the same seed"
        fi
        note "nfcapd/nfdump $mode: $n records, no sequence errors, fields match the XML"
    done
else
    note "SKIPPED nfcapd/nfdump checks: nfdump not installed"
fi

# ---- tshark: dissect packets captured on loopback ----
if command -v tshark >/dev/null 2>&1 && command -v dumpcap >/dev/null 2>&1; then
    n=3000
    for f in v5 v9 ipfix; do
        p=$((port_base + 700 + ${#f}))
        dumpcap -q -i lo -f "udp port $p" -w "$T/cap.$f.pcapng" > "$T/cap.$f.log" 2>&1 &
        dc=$!; PIDS="$PIDS $dc"
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            grep -q 'Capturing on' "$T/cap.$f.log" && break
            kill -0 $dc 2>/dev/null || break
            sleep 0.2
        done
        if ! grep -q 'Capturing on' "$T/cap.$f.log"; then
            kill $dc 2>/dev/null; wait $dc 2>/dev/null; PIDS=""
            note "SKIPPED tshark checks: cannot capture on lo ($(head -1 "$T/cap.$f.log"))"
            break
        fi
        sleep 0.3
        "$FG" -n $n --seed 5 --format $f --to udp://127.0.0.1:$p --rate 50000 2>/dev/null || fail "sending $f failed"
        sleep 0.5
        kill -INT $dc; wait $dc; PIDS=""
        recs=$(tshark -r "$T/cap.$f.pcapng" -d udp.port==$p,cflow -T fields -e cflow.protocol 2>/dev/null |
            tr ',' '\n' | grep -c .)
        bad=$(tshark -r "$T/cap.$f.pcapng" -d udp.port==$p,cflow -Y '_ws.malformed || _ws.expert.severity >= warning' 2>/dev/null | wc -l)
        [ "$recs" -eq $n ] || fail "tshark found $recs $f records, $n were sent"
        [ "$bad" -eq 0 ] || fail "tshark reports $bad malformed or warned $f packets"
        note "tshark $f: $n records dissected, no warnings"
    done
else
    note "SKIPPED tshark checks: tshark/dumpcap not installed"
fi

echo "flowgen.sh: all checks passed"
exit 0
