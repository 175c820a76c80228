#!/bin/sh
# collect_tshark.sh - a second opinion for the IPFIX template cases: flowgen
# sends IPFIX over UDP (an IPv4 and an IPv6 template per exporter, resent
# every 3 messages, small messages; and the 20-field --ipfix-wide template)
# through the UDP relay to nfcapd and `dipstorage collect`; the relay writes a
# pcap of the datagrams, which tshark's cflow dissector decodes on its own.
# Our stored records must equal tshark's, nfdump's, and flowgen's XML of the
# same seed, field by field. Exit 0 pass, 1 fail, 77 skip.
. tests/e2e/lib.sh.inc
. tests/e2e/collect_lib.sh.inc
need tshark
need nfcapd
need nfdump
[ -x "$DIP_FLOWGEN" ] || skip "flowgen not built ($DIP_FLOWGEN)"
N=3000

# case NAME IGNORED_BY_NFDUMP FLOWGEN_OPTIONS...
case_() {
    name=$1; ign=$2; shift 2
    both_start "$name"
    "$DIP_FLOWGEN" -n $N --seed 31 --format ipfix "$@" --to "udp://127.0.0.1:$RELAY_PORT" --rate 20000 \
        2> "$WORK/$name.flowgen" || fail "flowgen: $(cat "$WORK/$name.flowgen")"
    both_stop "$name"
    both_compare "$name" $N "flowgen ipfix $*" "$ign"
    "$DIP_FLOWGEN" -n $N --seed 31 "$@" -o "$WORK/$name.want.xml" 2>/dev/null || fail "flowgen xml $*"
    python3 "$WORK/norm.py" ours "$WORK/$name.want.xml" "$WORK/$name.want" || fail "normalising flowgen's XML"
    cmp -s "$WORK/$name.want" "$WORK/$name.ours.full" || fail "$name: our records differ from flowgen's XML"
    tshark_compare "$name" $N
}

# Two templates per exporter (IPv4 256, IPv6 257), 4 exporters, resent every 3
# messages; ICMP type/code in the destination port (nfdump does not read it
# there: flowgen's XML and tshark are the reference for it).
case_ pair icmp-dport --v6-share 0.3 --refresh 3 --max-packet 600
# One 20-field template, ICMP in icmpTypeCodeIPv4/IPv6, 1400-byte messages.
case_ wide "" --v6-share 0.3 --ipfix-wide --refresh 10

echo "collect_tshark.sh: all checks passed"
exit 0
