#!/bin/sh
# demo.sh - the main job (`make demo`): start a local storage network
# (`dipstorage up`: four tanks of leaves and indexers, a collector and an
# access point, separate processes talking TLS over loopback), replay a few
# minutes of generated NetFlow v5 traffic into its collector, ask the
# catalogue's example queries and show what each found and how long it took,
# then validate the stored files. The network keeps running afterwards.
# DIP_DEMO_DIR (default /tmp/dipstorage-demo), DIP_DEMO_RECORDS (300000),
# DIP_DEMO_LEAVES (4 per tank), DIP_DEMO_PORT (first node-link port, 7700).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/dipstorage"
gen="$top/tools/flowgen/flowgen"
dir=${DIP_DEMO_DIR:-/tmp/dipstorage-demo}
records=${DIP_DEMO_RECORDS:-300000}
leaves=${DIP_DEMO_LEAVES:-4}
port=${DIP_DEMO_PORT:-7700}
export DIP_HOME="$top"

[ -f "$dir/cluster.xml" ] && "$bin" down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
echo "== starting a storage network in $dir: 4 tanks x $leaves leaves (dipstorage up)"
"$bin" up --dir "$dir" --leaves "$leaves" --base-port "$port"
client=$(sed -n 's/.*<front [^>]*client="\([^"]*\)".*/\1/p' "$dir/cluster.xml")
netflow=$(sed -n 's/.*<listen url="udp:\/\/\([^"]*\)".*/\1/p' "$dir/cluster.xml" | head -1)

echo "== replaying $records generated flow records as NetFlow v5 to the collector at $netflow"
"$gen" -n "$records" --seed 42 --v6-share 0 --format v5 --rate 50000 --to "udp://$netflow"
printf '== waiting until every tank has stored every record'
while :; do
    line=$("$bin" status --dir "$dir" --xml 2>/dev/null | grep -o 'behind="[0-9]*"' | tr -dc '0-9\n' | sort -n | tail -1)
    [ "${line:-1}" = 0 ] && break
    printf '.'; sleep 1
done
echo
"$bin" status --dir "$dir"

"$bin" query -c "$client" "//flow[@dport=22]" > "$dir/answer.xml" 2>/dev/null || true
host=$(sed -n 's/.*<flow src="\([^"]*\)".*/\1/p' "$dir/answer.xml" | head -1)
host=${host:-10.0.0.1}
show() { # DESCRIPTION then dipstorage query arguments
    what=$1; shift
    start=$(date +%s%N)
    "$bin" query -c "$client" "$@" > "$dir/answer.xml" 2>/dev/null || true
    end=$(date +%s%N)
    tank=$(sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p' "$dir/answer.xml")
    found=$(sed -n 's/.*<result [^>]*count="\([0-9]*\)".*/\1/p' "$dir/answer.xml")
    value=$(sed -n 's:.*<\(number\|boolean\|string\)>\(.*\)</.*:\2:p' "$dir/answer.xml")
    err=$(sed -n 's:.*<error[^>]*>\(.*\)</error>.*:\1:p' "$dir/answer.xml")
    printf '%-36s %-6s %8.1f ms  %s\n' "$what" "${tank:--}" "$(echo "($end - $start) / 1000000" | bc -l)" \
        "${err:-${value:-$found flows}}"
}
echo "== queries to the access point $client: the analyser picks the tank"
echo "   (description, tank, time of the whole command, answer)"
show "all flows from $host" "//flow[@src='$host']"
show "number of ssh flows" "count(//flow[@dport=22])"
show "flows into 10.1.0.0/16" "count(/tank[@key='dst']/o[@v=10]/o[@v=1]//flow)"
show "DNS answers (UDP from port 53)" "count(//flow[@sport=53 and @proto=17])"
show "bytes sent from 10/8" "sum(/tank[@key='src']/o[@v=10]//flow/@bytes)"
echo "== the named queries of the catalogue (dipstorage query --list)"
for name in $("$bin" query --list | awk '/^[a-z]/ {print $1}'); do
    show "$name" --named "$name"
done
echo "== the ssh flows as CSV (dipstorage export -t csv), first lines"
"$bin" export -c "$client" -t csv "//flow[@dport=22]" | head -n 4
echo "== validating the cluster map and every stored file against dipstorage.xsd"
"$bin" validate "$dir/cluster.xml" "$dir/nodes" | tail -n 1
echo "== the network keeps running: dipstorage query -c $client XPATH; dipstorage status --dir $dir;"
echo "   NetFlow/IPFIX to $(sed -n 's/.*<listen url="\([^"]*\)".*/\1/p' "$dir/cluster.xml" | tr '\n' ' ')"
echo "   stop it with: dipstorage down --dir $dir"
