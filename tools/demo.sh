#!/bin/sh
# demo.sh - the main job until the storage network exists: generate traffic,
# store it in four leaf stores (one per tank key), ask example queries of the
# tank that answers each best, and validate every stored file.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/dipstorage"
gen="$top/tools/flowgen/flowgen"
dir=${DIP_DEMO_DIR:-/tmp/dipstorage-demo}
records=${DIP_DEMO_RECORDS:-300000}
export DIP_HOME="$top"

rm -rf "$dir"
mkdir -p "$dir"
echo "== generating $records flow records (seeded, Zipf-skewed hosts, weighted services)"
"$gen" -n "$records" --seed 42 --format batch -o "$dir/flows.bin"
for key in src dst sport dport; do
    echo "== storing them in the $key tank ($dir/$key)"
    "$bin" store ingest --dir "$dir/$key" --key "$key" "$dir/flows.bin"
done

host=$("$bin" store export --dir "$dir/src" 2>/dev/null | sed -n '3s/.*src="\([^"]*\)".*/\1/p;3q')
run() { # TANK DESCRIPTION XPATH
    start=$(date +%s%N)
    "$bin" store query --dir "$dir/$1" "$3" > "$dir/answer.xml"
    end=$(date +%s%N)
    found=$(sed -n 's/.*<result [^>]*count="\([0-9]*\)".*/\1/p' "$dir/answer.xml")
    value=$(sed -n 's:.*<\(number\|boolean\|string\)>\(.*\)</.*:\2:p' "$dir/answer.xml")
    printf '%-34s %-6s %8.1f ms  %s\n' "$2" "$1" "$(echo "($end - $start) / 1000000" | bc -l)" \
        "${value:-$found flows}"
}
echo "== queries (description, tank, time for the whole command, answer)"
run src "all flows from $host" "//flow[@src='$host']"
run dport "number of ssh flows" "count(//flow[@dport=22])"
run dst "flows into 10.1.0.0/16" "count(/tank/o[@v=10]/o[@v=1]//flow)"
run sport "DNS answers (UDP from port 53)" "count(//flow[@sport=53 and @proto=17])"
run src "bytes sent from 10/8" "sum(/tank/o[@v=10]//flow/@bytes)"
run dport "any flow to telnet?" "boolean(//flow[@dport=23])"
run src "largest flows (> 10 MB)" "count(//flow[@bytes > 10000000])"
echo "== validating every stored file against dipstorage.xsd"
"$bin" validate "$dir/src" "$dir/dst" "$dir/sport" "$dir/dport" | tail -n 1
"$bin" store stats --dir "$dir/src"
