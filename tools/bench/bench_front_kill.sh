#!/bin/sh
# bench_front_kill.sh - `make bench-front-kill`: records an IPFIX/TCP exporter
# loses when the front is killed with SIGKILL mid-stream (issue 22). IPFIX has
# no acknowledgement, so the front reads no more of a session until what it
# read is fsync'd in its spool (ARCHITECTURE §3 "Front"): a kill may lose only
# what the kernel's socket buffers held. On a local network (`dipstorage up
# --leaves 2`), each round sends a fresh flowgen IPFIX stream (its own seed)
# with tools/bench/ipfix_sender.py at BENCH_RATE records/s for BENCH_SECONDS,
# kills the front a random 1.5-4 s (kill_s) after the sender's first send
# (end_s: when the sender stopped, same clock), restarts it (`dipstorage up`)
# and waits until every tank holds the same count and the front has nothing
# behind. written = records in the messages whose sendall() completed; stored
# = what the tanks' count grew by; lost = written - stored (the front stores
# a session in order, so what is missing is the tail). bound = the sender's
# SO_SNDBUF (getsockopt at its end) + the front socket's receive buffer (`ss`
# skmem rb, the larger of before the kill and last seen; the tcp_rmem default
# without ss), in records at the stream file's bytes per record; both are the
# kernel's accounting (overhead included), so bound is generous. rq/sq = the
# front's Recv-Q / the sender's Send-Q (which on loopback also counts bytes in
# the front's queue not yet acknowledged), in records, just before the kill
# and last seen before the front's socket closed; close_ms = LAST-GONE, ms
# after the kill of the last /proc/net/tcp sample that saw the front's end
# established and of the first that did not (a killed process closes its
# sockets once every thread has left the kernel, e.g. an fsync; until then
# the kernel still takes bytes). beyond = lost - (rq + sq at the close):
# records neither queue held when last seen, i.e. read by the front but not
# yet in its spool, the sender's last partial message, or bytes that came
# between the last sample and the close (rq + sq may count a byte twice).
# Round 0 is a control: no kill, lost must be 0.
# Env: BENCH_ROUNDS (5 killed rounds), BENCH_RATE (50000), BENCH_SECONDS (6),
# BENCH_CONTROL_SECONDS (3), BENCH_CONVERGE_SECONDS (60), BENCH_KEEP=1 keeps
# the work folder. The table also goes to tools/bench/out/front-kill-*.txt.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/dipstorage"; gen="$top/tools/flowgen/flowgen"; sender="$top/tools/bench/ipfix_sender.py"
for f in "$bin" "$gen"; do [ -x "$f" ] || { echo "missing $f: run make all first" >&2; exit 1; }; done
command -v python3 >/dev/null 2>&1 || { echo "python3 missing (the sender)" >&2; exit 1; }
export DIP_HOME="$top"

rounds=${BENCH_ROUNDS:-5}
rate=${BENCH_RATE:-50000}
secs=${BENCH_SECONDS:-6}
control_secs=${BENCH_CONTROL_SECONDS:-3}
converge_secs=${BENCH_CONVERGE_SECONDS:-60}

W=$(mktemp -d /tmp/dip-bench-front-kill-XXXXXX)
net="$W/net"
sender_pid=""
trap '[ -n "$sender_pid" ] && kill "$sender_pid" 2>/dev/null; "$bin" down --dir "$net" >/dev/null 2>&1 || true; [ -n "${BENCH_KEEP:-}" ] && echo "kept $W" || rm -rf "$W"' EXIT
mkdir -p "$top/tools/bench/out"
out="$top/tools/bench/out/front-kill-$(date -u +%Y%m%dT%H%M%SZ).txt"

# A base port P with P .. P+N-1 free for TCP and UDP on 127.0.0.1, below the
# ephemeral range (as tests/e2e/lib.sh.inc's free_ports).
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
top = min(lo, 32768) - n
for _ in range(200):
    base = random.randrange(10000, top)
    socks = []
    try:
        for p in range(base, base + n):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit("no free range of %d ports below %d" % (n, top))
PY
}

# Prints "TOTAL" when every tank holds TOTAL records (the sum of its leaves)
# and the front has no batch behind for any tank, else "- src dst sport dport
# behind down".
tanks() {
    set -- $("$bin" status --dir "$net" --xml 2>/dev/null | python3 "$top/tools/status_counts.py" src dst sport dport behind down)
    if [ "$#" = 6 ] && [ "$1" = "$2" ] && [ "$1" = "$3" ] && [ "$1" = "$4" ] && [ "$5" = 0 ] && [ "$6" = 0 ]; then
        echo "$1"
    else
        echo - "$@"
    fi
}

# Waits until tanks() gives the same total twice, 1 s apart; prints it.
converged() {
    prev=""; deadline=$(( $(date +%s) + converge_secs ))
    while :; do
        now=$(tanks)
        case $now in -*) ;; *) [ "$now" = "$prev" ] && { echo "$now"; return 0; } ;; esac
        prev=$now
        [ "$(date +%s)" -lt "$deadline" ] || { echo "tanks did not converge in $converge_secs s: $now" >&2; return 1; }
        sleep 1
    done
}

# kill_front MODE DELAY: DELAY s after the sender's first send (the time in
# $W/ready), samples the IPFIX connection's two ends (the front's end: local
# port = IPFIX port) with `ss`, then /proc/net/tcp (faster, no rb); with MODE
# "kill" then sends SIGKILL to the front and samples /proc/net/tcp every ~1 ms
# until the front's end is no longer established (a process dies only once
# its threads leave the kernel, e.g. an fsync, and until then its socket
# still takes bytes). Prints "rb rq sq rb rq sq close_ms kill_s": the front's
# receive buffer (skmem rb) and Recv-Q and the sender's Send-Q, in bytes,
# right before the kill and last seen before the close ("-" where nothing was
# seen), close_ms as "LAST-GONE" (ms after the kill of the last sample that
# saw the front's end and of the first that did not; the close is between),
# and kill_s on the sender's clock. A trace goes to $W/trace.
kill_front() {
    python3 - "$1" "$2" "$ipfix" "$net/nodes/front/pid" "$W/ready" 2>> "$W/trace" <<'PY'
import os, re, signal, subprocess, sys, time
mode, delay, port, pidfile, ready = sys.argv[1:]
t_ready = float(open(ready).read())
time.sleep(max(0.0, t_ready + float(delay) - time.time()))
def sample_ss():
    """The front's skmem rb and Recv-Q, the sender's Send-Q (strings)."""
    try:
        out = subprocess.run(["ss", "-tmnH", "state", "established", "( sport = :%s or dport = :%s )" % (port, port)],
                             capture_output=True, text=True).stdout
    except OSError:
        return None
    lines = out.split("\n")
    front = None; sq = "-"
    for i, l in enumerate(lines):
        f = l.split()
        if len(f) < 4 or not f[0].isdigit():
            continue
        if f[2].endswith(":" + port):
            m = re.search(r"rb(\d+)", lines[i + 1] if i + 1 < len(lines) else "")
            front = (m.group(1) if m else "-", f[0])
        elif f[3].endswith(":" + port):
            sq = f[1]
    return None if front is None else (front[0], front[1], sq)
def sample_proc():
    """As sample_ss but from /proc/net/tcp (no rb; ~100 times faster than
    running ss): the front's end is local port = IPFIX port, established."""
    hexport = ":%04X" % int(port)
    rq = sq = None
    states = []
    for l in open("/proc/net/tcp").readlines()[1:]:
        f = l.split()
        tx, rx = (int(x, 16) for x in f[4].split(":"))
        if f[1].endswith(hexport) and f[3] != "0A":
            states.append("front:%s:%d/%d" % (f[3], rx, tx))
            if f[3] == "01":
                rq = str(rx)
        elif f[2].endswith(hexport):
            states.append("sender:%s:%d/%d" % (f[3], rx, tx))
            if f[3] == "01":
                sq = str(tx)
    print("%.4f" % (time.time() - t_ready), *states, file=sys.stderr)
    return None if rq is None else ("-", rq, sq or "-")
before = sample_ss() or sample_proc() or ("-", "-", "-")
last, ms, kill_s = before, "-", "-"
print("round", mode, file=sys.stderr)
if mode == "kill":
    now = sample_proc()  # the queues right before the kill; ss above took ms
    if now:
        before = (before[0],) + now[1:]
    t0 = time.monotonic()
    os.kill(int(open(pidfile).read().split()[0]), signal.SIGKILL)
    kill_s = "%.2f" % (time.time() - t_ready)
    print("%.4f killed" % (time.time() - t_ready), file=sys.stderr)
    seen = 0.0
    while time.monotonic() - t0 < 10:
        now = sample_proc()
        if now is None:
            break
        last = (before[0],) + now[1:]
        seen = time.monotonic() - t0
        time.sleep(0.0005)
    ms = "%d-%d" % (seen * 1000, (time.monotonic() - t0) * 1000)
print(*before, *last, ms, kill_s)
PY
}

recs() { awk -v q="$1" -v b="$bpr" 'BEGIN { if (q == "-") print "-"; else printf "%d", q / b }'; }
jget() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print("-" if v is None else v)' "$1" "$2"; }

base=$(free_ports 40)
ipfix=$((base + 32))
"$bin" up --dir "$net" --leaves 2 --base-port "$base" --client-port $((base + 30)) --netflow-port $((base + 31)) \
    --ipfix-port "$ipfix" > "$W/up.txt" 2>&1 || { cat "$W/up.txt" >&2; exit 1; }
set -- $(cat /proc/sys/net/ipv4/tcp_rmem); rmem_default=$2 rmem_max=$3
echo "front kill -9 under IPFIX/TCP: $rounds killed rounds + 1 control, $rate records/s, $(nproc) CPUs," \
     "ports $base.., tcp_rmem default $rmem_default max $rmem_max" | tee "$out"
fmt='%5s %6s %6s %8s %8s %6s %7s %11s %11s %6s %9s %8s %8s %7s  %s\n'
printf "$fmt" round kill_s end_s written stored lost bound rq/sq@kill rq/sq@close beyond close_ms \
    sndbuf rcvbuf bytes/rec "sender's end" | tee -a "$out"

total=$(converged)
rows="$W/rows"; : > "$rows"
r=0
while [ $r -le "$rounds" ]; do
    if [ $r -eq 0 ]; then n=$((rate * control_secs)); else n=$((rate * secs)); fi
    "$gen" -n "$n" --seed $((1000 + r)) --v6-share 0 --format ipfix -o "$W/flows.ipfix" 2>/dev/null
    bpr=$(awk -v b="$(wc -c < "$W/flows.ipfix")" -v n="$n" 'BEGIN { printf "%.2f", b / n }')
    rm -f "$W/ready"
    python3 "$sender" "$W/flows.ipfix" --to "127.0.0.1:$ipfix" --rate "$rate" --ready "$W/ready" \
        > "$W/sender.json" 2> "$W/sender.err" &
    sender_pid=$!
    i=0; while [ ! -e "$W/ready" ] && [ $i -lt 300 ] && kill -0 "$sender_pid" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    [ -e "$W/ready" ] || { cat "$W/sender.err" >&2; exit 1; }
    if [ $r -eq 0 ]; then
        set -- $(kill_front look 1.5)
    else
        set -- $(kill_front kill "$(python3 -c 'import random; print("%.2f" % random.uniform(1.5, 4))')")
    fi
    rb=$1 rq_kill=$2 sq_kill=$3 rq_close=$5 sq_close=$6 close_ms=$7 delay=$8
    [ "$4" != - ] && [ "$rb" != - ] && [ "$4" -gt "$rb" ] && rb=$4
    wait "$sender_pid" || { cat "$W/sender.err" >&2; exit 1; }
    sender_pid=""
    if [ $r -gt 0 ]; then
        "$bin" up --dir "$net" > "$W/up.txt" 2>&1 || { cat "$W/up.txt" >&2; exit 1; }
        grep -q '(1 started' "$W/up.txt" || echo "warning: up did not restart just the front: $(head -1 "$W/up.txt")" >&2
    fi
    now=$(converged)
    written=$(jget "$W/sender.json" records)
    sndbuf=$(jget "$W/sender.json" sndbuf)
    err=$(jget "$W/sender.json" error)
    end_s=$(jget "$W/sender.json" seconds)
    [ "$rb" = - ] && rcvbuf=$rmem_default || rcvbuf=$rb
    stored=$((now - total)); lost=$((written - stored)); total=$now
    bound=$(awk -v s="$sndbuf" -v r="$rcvbuf" -v b="$bpr" 'BEGIN { printf "%d", (s + r) / b }')
    [ "$err" = - ] && err="all sent" || err=${err%% *}
    beyond=$(awk -v l="$lost" -v q="$rq_close" -v s="$sq_close" -v b="$bpr" -v k="$delay" \
        'BEGIN { if (q == "-" || s == "-" || k == "-") print "-"; else printf "%d", l - int((q + s) / b) }')
    printf "$fmt" $r "$delay" "$end_s" "$written" "$stored" "$lost" "$bound" "$(recs "$rq_kill")/$(recs "$sq_kill")" \
        "$(recs "$rq_close")/$(recs "$sq_close")" "$beyond" "$close_ms" "$sndbuf" "$rcvbuf" "$bpr" "$err" | tee -a "$out"
    echo "$r $lost $bound $written $beyond" >> "$rows"
    r=$((r + 1))
done

python3 - "$rows" "$rmem_max" "$bpr" <<'PY' | tee -a "$out"
import statistics, sys
rows = [tuple(int(x) if x != "-" else None for x in l.split()) for l in open(sys.argv[1])]
control = [r for r in rows if r[0] == 0]
killed = [r for r in rows if r[0] > 0]
lost = [r[1] for r in killed]
ok = all(r[1] <= r[2] for r in killed)
print("control (no kill): lost %d -> %s" % (control[0][1], "ok" if control[0][1] == 0 else "FAIL, must be 0"))
if killed:
    print("killed rounds: lost per kill median %g, max %d (min %d); bound median %g records"
          % (statistics.median(lost), max(lost), min(lost), statistics.median(r[2] for r in killed)))
    print("every round lost <= its bound (sender SO_SNDBUF + front's receive buffer as ss showed it): %s"
          % ("yes" if ok else "NO"))
    print("(a receive buffer grown to tcp_rmem's max, %s bytes, would hold %d records more)"
          % (sys.argv[2], int(sys.argv[2]) / float(sys.argv[3])))
    beyond = [r[4] for r in killed if r[4] is not None]
    if beyond:
        print("lost beyond both queues as last seen before the close (read by the front but not yet spooled, a"
              " partial message, or bytes after the last ~1 ms sample): median %g, max %d records"
              % (statistics.median(beyond), max(beyond)))
sys.exit(0 if ok and control[0][1] == 0 else 1)
PY
