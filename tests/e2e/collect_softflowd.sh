#!/bin/sh
# collect_softflowd.sh - a real exporter against a real collector: softflowd
# reads a pcap made here with scapy (TCP/UDP/ICMP, IPv4 and IPv6, ~300
# conversations, fixed seed and times) and exports NetFlow v5, v9 and IPFIX
# (milli-, micro-, nanosecond and second timestamps) once to a UDP relay that
# copies every datagram to nfcapd and to `dipstorage collect`. The stored
# records must equal nfdump's field by field (collect_lib.sh.inc: compare),
# and for IPFIX tshark's decoding of the relayed datagrams too (when tshark
# is installed).
# Exit 0 pass, 1 fail, 77 skip (softflowd, nfdump or python3-scapy missing).
. tests/e2e/lib.sh.inc
. tests/e2e/collect_lib.sh.inc
need softflowd
need nfcapd
need nfdump
find_python_scapy

# ---- the pcap: deterministic (seeded, fixed timestamps) ----
cat > "$WORK/mkpcap.py" <<'EOF'
import random, sys
from scapy.all import Ether, IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, Raw, wrpcap
out, nflows, base = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(20240611)
pkts = []
def add(t, p):
    p.time = round(t, 6); pkts.append(p)
for i in range(nflows):
    v6 = (i % 5 == 4)
    kind = rnd.choice(["tcp", "tcp", "udp", "icmp"])
    tos = rnd.choice([0, 0, 0x10, 0x28, 0xb8])
    if v6:
        c = "2001:db8:1::%x" % (i + 1); s = "2001:db8:ff::%x" % rnd.randint(1, 40)
        L3 = lambda a, b: IPv6(src=a, dst=b, tc=tos)
    else:
        c = "10.1.%d.%d" % (i // 200, i % 200 + 1); s = "192.0.2.%d" % rnd.randint(1, 40)
        L3 = lambda a, b: IP(src=a, dst=b, tos=tos)
    t = base + i * 0.1 + rnd.random() * 0.05
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if kind == "tcp":
        sp, dp = 32768 + i, rnd.choice([22, 80, 443, 8080])
        add(t, e / L3(c, s) / TCP(sport=sp, dport=dp, flags="S", seq=1000))
        t += 0.003; add(t, e / L3(s, c) / TCP(sport=dp, dport=sp, flags="SA", seq=5000, ack=1001))
        for k in range(rnd.randint(1, 6)):
            t += 0.011 + rnd.random() * 0.02
            add(t, e / L3(c, s) / TCP(sport=sp, dport=dp, flags="PA") / Raw(b"q" * rnd.randint(1, 400)))
            t += 0.007
            add(t, e / L3(s, c) / TCP(sport=dp, dport=sp, flags="A" if k % 2 else "PA") / Raw(b"r" * rnd.randint(0, 1200)))
        end = rnd.choice(["FA", "FA", "R", None])
        if end:
            t += 0.01; add(t, e / L3(c, s) / TCP(sport=sp, dport=dp, flags=end))
            if end == "FA":
                t += 0.002; add(t, e / L3(s, c) / TCP(sport=dp, dport=sp, flags="FA"))
                t += 0.002; add(t, e / L3(c, s) / TCP(sport=sp, dport=dp, flags="A"))
    elif kind == "udp":
        sp, dp = 40000 + i, rnd.choice([53, 123, 161, 514])
        for k in range(rnd.randint(1, 4)):
            add(t, e / L3(c, s) / UDP(sport=sp, dport=dp) / Raw(b"u" * rnd.randint(8, 300)))
            t += 0.004
            if dp != 514:
                add(t, e / L3(s, c) / UDP(sport=dp, dport=sp) / Raw(b"v" * rnd.randint(8, 900)))
            t += 0.02
    else:
        for k in range(rnd.randint(1, 3)):
            if v6:
                add(t, e / L3(c, s) / ICMPv6EchoRequest(id=i, seq=k) / Raw(b"p" * 56)); t += 0.001
                add(t, e / L3(s, c) / ICMPv6EchoReply(id=i, seq=k) / Raw(b"p" * 56))
            else:
                add(t, e / L3(c, s) / ICMP(type=8, id=i, seq=k) / Raw(b"p" * 56)); t += 0.001
                add(t, e / L3(s, c) / ICMP(type=0, id=i, seq=k) / Raw(b"p" * 56))
                if k == 0 and i % 3 == 0:
                    t += 0.001; add(t, e / L3(s, c) / ICMP(type=11, code=0) / Raw(b"x" * 28))
            t += 0.5
pkts.sort(key=lambda p: p.time)
wrpcap(out, pkts)
EOF
"$PY" "$WORK/mkpcap.py" "$WORK/flows.pcap" 300 1700000000 || fail "scapy could not write the pcap"
note "pcap: $(wc -c < "$WORK/flows.pcap") bytes"

# run_softflowd NAME VERSION IGNORED [OPTIONS...]: one softflowd run through
# the relay to both collectors, then the comparison with the fields IGNORED
# (norm.py) left out. -a: times from the pcap, not the clock.
run_softflowd() {
    name=$1; ver=$2; ign=$3; shift 3
    both_start "$name"
    # softflowd 1.1.0 -r hangs in accept() on its control socket when -c is
    # an absolute path, hence the cd and the relative name (and the timeout).
    (cd "$WORK" && exec timeout 30 softflowd -r flows.pcap -a -n "127.0.0.1:$RELAY_PORT" -v "$ver" "$@" \
        -c "$name.ctl" -p "$name.pid") > "$WORK/$name.sf" 2>&1 ||
        fail "softflowd -v $ver $*: $(tail -3 "$WORK/$name.sf")"
    sent=$(sed -n 's/^Flows exported: [0-9]* (\([0-9]*\) records).*/\1/p' "$WORK/$name.sf")
    [ -n "$sent" ] && [ "$sent" -gt 0 ] || fail "softflowd -v $ver exported nothing: $(cat "$WORK/$name.sf")"
    both_stop "$name"
    SEQ_ERRORS=0 SEQ_LOST=0 SEQ_OOO=0
    if [ "$ver" = 10 ]; then
        # softflowd 1.1.0 numbers an IPFIX message by the records sent up to and
        # including it (RFC 7011 3.1: before it), so a collector sees gaps
        # wherever two messages' record counts differ. Prove that from the
        # datagrams, then want from both collectors exactly the counts it implies.
        r=$(python3 "$WORK/seqcheck.py" "$WORK/$name.pcap") || fail "softflowd -v 10: cannot read the relayed datagrams"
        read rfc own SEQ_LOST SEQ_OOO <<EOF
$r
EOF
        [ "$own" -eq 0 ] || fail "softflowd -v 10 $*: sequence numbers follow neither RFC 7011 nor softflowd's habit ($r)"
        SEQ_ERRORS=$rfc
    fi
    both_compare "$name" "$sent" "softflowd -v $ver${*:+ $*}" "$ign"
    # tshark's dissector as a second opinion on IPFIX: every field, including
    # the times nfdump cannot decode and the ICMPv6 type/code.
    if [ "$ver" = 10 ] && command -v tshark >/dev/null 2>&1; then tshark_compare "$name" "$sent"; fi
    # ICMPv6 (not compared with nfdump): the pcap has echo requests and
    # replies only, so dport must be 128*256 or 129*256, and both occur.
    if [ "$ver" != 5 ]; then
        awk -F'|' '$7 == 58 { n++; if ($6 == 32768) q++; else if ($6 == 33024) r++; else bad++ }
            END { if (!n || !q || !r || bad) { print n+0 " ICMPv6 records, " bad+0 " with another type"; exit 1 } }' \
            "$WORK/$name.ours.full" || fail "softflowd -v $ver $*: ICMPv6 type/code wrong in our records"
    fi
}

run_softflowd v5 5 ""
run_softflowd v9 9 icmp6-dport
run_softflowd ipfix-ms 10 icmp6-dport -A milli
# nfdump 1.7.1 shows 1970-01-01 for flowStart/EndSeconds, -Microseconds and
# -Nanoseconds (IE 150/151, 154-157): there our times must equal those of the
# millisecond run (the pcap's times are whole microseconds), or for seconds
# those truncated to the second.
run_softflowd ipfix-us 10 icmp6-dport,first,last -A micro
cmp -s "$WORK/ipfix-ms.ours.full" "$WORK/ipfix-us.ours.full" || fail "IPFIX microsecond times differ from the millisecond ones"
run_softflowd ipfix-ns 10 icmp6-dport,first,last -A nano
cmp -s "$WORK/ipfix-ms.ours.full" "$WORK/ipfix-ns.ours.full" || fail "IPFIX nanosecond times differ from the millisecond ones"
note "IPFIX micro- and nanosecond times equal the millisecond ones"
run_softflowd ipfix-s 10 icmp6-dport,first,last -A sec
awk -F'|' -v OFS='|' '{ $1 = substr($1, 1, length($1) - 3) "000"; $2 = substr($2, 1, length($2) - 3) "000"; print }' \
    "$WORK/ipfix-ms.ours.full" | sort > "$WORK/ms-as-s"
sort "$WORK/ipfix-s.ours.full" | cmp -s - "$WORK/ms-as-s" || fail "IPFIX second times are not the millisecond ones truncated"
note "IPFIX second times are the millisecond ones truncated"

# The v9 and IPFIX runs must have carried IPv6 (v5 cannot).
grep -q ':' "$WORK/v9.ours.norm" || fail "no IPv6 records in the v9 run"
grep -q ':' "$WORK/ipfix-ms.ours.norm" || fail "no IPv6 records in the IPFIX run"
echo "collect_softflowd.sh: all checks passed"
exit 0
