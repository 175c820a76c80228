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
show() { # DESCRIPTION then dipstorage query arguments
    what=$1; shift
    start=$(date +%s%N)
    "$bin" query --data "$dir" "$@" > "$dir/answer.xml" 2>/dev/null || true
    end=$(date +%s%N)
    tank=$(sed -n 's/.*<result [^>]*tank="\([a-z]*\)".*/\1/p' "$dir/answer.xml")
    found=$(sed -n 's/.*<result [^>]*count="\([0-9]*\)".*/\1/p' "$dir/answer.xml")
    value=$(sed -n 's:.*<\(number\|boolean\|string\)>\(.*\)</.*:\2:p' "$dir/answer.xml")
    err=$(sed -n 's:.*<error[^>]*>\(.*\)</error>.*:\1:p' "$dir/answer.xml")
    printf '%-36s %-6s %8.1f ms  %s\n' "$what" "${tank:--}" "$(echo "($end - $start) / 1000000" | bc -l)" \
        "${err:-${value:-$found flows}}"
}
echo "== queries: the analyser picks the tank (description, tank, time of the whole command, answer)"
show "all flows from $host" "//flow[@src='$host']"
show "number of ssh flows" "count(//flow[@dport=22])"
show "flows into 10.1.0.0/16" "count(/tank[@key='dst']/o[@v=10]/o[@v=1]//flow)"
show "DNS answers (UDP from port 53)" "count(//flow[@sport=53 and @proto=17])"
show "bytes sent from 10/8" "sum(/tank[@key='src']/o[@v=10]//flow/@bytes)"
echo "== the named queries of the catalogue (dipstorage query --list)"
for name in $("$bin" query --list | awk '/^[a-z]/ {print $1}'); do
    show "$name" --named "$name"
done
echo "== validating every stored file against dipstorage.xsd"
"$bin" validate "$dir/src" "$dir/dst" "$dir/sport" "$dir/dport" | tail -n 1
"$bin" store stats --dir "$dir/src"
