"""status_counts.py - reads `dipstorage status --xml` on standard input and
prints the counts named as arguments on one line, for scripts (tests and
benchmarks) that wait for a network to converge:
  taken      records the front's replicator took      refused  ...it refused
  src dst sport dport   records a tank's leaves hold together
  refusals   messages every node refused (roles, origins, ranges)
  refused-batches  batches the tanks refused to the replicator
  behind     batches the replicator is behind at its slowest tank
  down       nodes that did not answer
usage: dipstorage status --dir D --xml | python3 tools/status_counts.py taken src dst"""
import re
import sys

doc = sys.stdin.read()
counts = dict.fromkeys(["src", "dst", "sport", "dport"], 0)
counts["refusals"] = 0
for m in re.finditer(r"<node [^>]*>", doc):
    e = m.group(0)
    refused = re.search(r' refused="(\d+)"', e)
    counts["refusals"] += int(refused.group(1)) if refused else 0
    if 'role="leaf"' in e:
        counts[re.search(r' tank="(\w+)"', e).group(1)] += int(re.search(r' records="(\d+)"', e).group(1))
rep = re.search(r'<replicator records="(\d+)" refused="(\d+)"', doc)
counts["taken"] = int(rep.group(1)) if rep else -1
counts["refused"] = int(rep.group(2)) if rep else -1
counts["refused-batches"] = sum(int(x) for x in re.findall(r'refused-batches="(\d+)"', doc))
counts["behind"] = max([int(b) for b in re.findall(r'<sender [^>]*behind="(\d+)"', doc)] or [0])
down = re.search(r'<status [^>]*down="(\d+)"', doc)
counts["down"] = int(down.group(1)) if down else -1
try:
    print(" ".join(str(counts[name]) for name in sys.argv[1:]))
except KeyError as e:
    sys.exit("status_counts.py: no count named %s" % e)
