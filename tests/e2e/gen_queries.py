# gen_queries.py FLOWS.XML N KEY - prints N XPath queries drawn from the
# records of a <flows> document (deterministic): equality and comparisons on
# every attribute, and/or/not, starts-with, contains, count(), sum(), index
# paths of the tank KEY and a few expressions that need the whole document.
import random, re, sys

path, n, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(1234)
recs = []
for line in open(path):
    if line.startswith('<flow '):
        recs.append(dict(re.findall(r'(\w+)="([^"]*)"', line)))
        if len(recs) >= 5000:
            break
numeric = ['sport', 'dport', 'proto', 'packets', 'bytes', 'first', 'last', 'flags', 'tos', 'in', 'out',
           'srcas', 'dstas', 'smask', 'dmask', 'domain', 'sampling']
text = ['src', 'dst', 'nexthop', 'exporter', 'id']

def value(attr):
    for _ in range(50):
        r = rng.choice(recs)
        if attr in r:
            return r[attr]
    return None

def pred():
    kind = rng.randrange(9)
    if kind == 0:
        a = rng.choice(text); v = value(a)
        return "@%s='%s'" % (a, v) if v else "@src!=''"
    if kind == 1:
        a = rng.choice(numeric); v = value(a)
        return "@%s=%s" % (a, v) if v else "@proto=6"
    if kind == 2:
        a = rng.choice(numeric); v = value(a) or '5'
        return "@%s %s %s" % (a, rng.choice(['<', '<=', '>', '>=', '!=']), v)
    if kind == 3:
        a = rng.choice(['src', 'dst']); v = value(a) or '10.0.0.1'
        cut = v[:rng.randrange(1, len(v))]
        return "starts-with(@%s, '%s')" % (a, cut)
    if kind == 4:
        a = rng.choice(['src', 'dst', 'id']); v = value(a) or '1'
        i = rng.randrange(len(v)); return "contains(@%s, '%s')" % (a, v[i:i + 2])
    if kind == 5:
        return "%s and %s" % (pred(), pred())
    if kind == 6:
        return "%s or %s" % (pred(), pred())
    if kind == 7:
        return "not(%s)" % pred()
    lo = rng.randrange(0, 60000); return "@dport >= %d and @dport < %d" % (lo, lo + rng.randrange(1, 3000))

def index_path():
    r = rng.choice(recs)
    if key in ('sport', 'dport'):
        return "/tank/p[@v=%s]/flow" % r[key]
    a = r[key]
    if ':' in a:
        return "/tank/v6//flow"
    o = a.split('.')
    depth = rng.randrange(1, 5)
    return "/tank" + ''.join("/o[@v=%s]" % x for x in o[:depth]) + "//flow"

out = []
while len(out) < n:
    kind = rng.randrange(10)
    if kind < 5:
        out.append("//flow[%s]" % pred())
    elif kind == 5:
        out.append("count(//flow[%s])" % pred())
    elif kind == 6:
        out.append("sum(//flow[%s]/@%s)" % (pred(), rng.choice(['bytes', 'packets'])))
    elif kind == 7:
        out.append(index_path())
    elif kind == 8:
        out.append("boolean(//flow[%s])" % pred())
    else:
        out.append(rng.choice(["count(/tank/*)", "(//flow[%s])[1]" % pred(), "count(//flow[last()])",
                               "string(//flow[%s]/@src)" % pred(), "count(//flow) > 100"]))
for q in out:
    print(q)
