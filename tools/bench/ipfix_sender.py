#!/usr/bin/env python3
"""ipfix_sender.py - an IPFIX/TCP exporter for bench_front_kill.sh: sends the
messages of an IPFIX stream file (flowgen --format ipfix -o FILE) over one TCP
connection, paced at --rate records/s, and counts exactly how many records it
handed to the kernel. It stops at the first send error (the collector died)
and prints one JSON object:

  messages, records, bytes   whose sendall() completed (the kernel took them)
  sndbuf                     the socket's SO_SNDBUF at the end (as Linux
                             reports it: doubled, bookkeeping included)
  error                      the send error that stopped it ("ECONNRESET
                             (...) after N messages"), or null
  seconds                    from the first send to the end (--ready FILE
                             holds the wall-clock time of the first send)

A message's length is bytes 2-3 of its 16-byte header (RFC 7011 3.1).
Records per message come from the message's data sets (set id >= 256):
(set length - 4) // the record length of its template, learnt from the
template sets (set id 2, RFC 7011 3.4.1) and options template sets (set id 3,
3.4.2) seen earlier in the file, per (observation domain, template id).
Templates with a variable-length field (length 65535) make that count
impossible; the file is refused then.
"""
import argparse
import errno
import json
import socket
import struct
import sys
import time

VARLEN = 65535


def die(msg):
    sys.exit("ipfix_sender: " + msg)


def template_records(buf, pos, end, options):
    """Yields (template id, record length) of the template records in
    buf[pos:end]; record length None for a withdrawal."""
    while end - pos >= 4:
        tid, nfields = struct.unpack_from(">HH", buf, pos)
        pos += 4
        if options:
            if nfields == 0:  # withdrawal: template id, field count 0
                yield tid, None
                continue
            if end - pos < 2:
                die("options template %d: truncated" % tid)
            pos += 2  # scope field count
        if nfields == 0:
            yield tid, None
            continue
        length = 0
        for _ in range(nfields):
            if end - pos < 4:
                die("template %d: truncated field specifier" % tid)
            fid, flen = struct.unpack_from(">HH", buf, pos)
            pos += 4
            if fid & 0x8000:
                pos += 4  # enterprise number
            if flen == VARLEN:
                die("template %d has a variable-length field (element %d): records per message "
                    "cannot be counted from set lengths" % (tid, fid & 0x7FFF))
            length += flen
        if length == 0:
            die("template %d has records of length 0" % tid)
        yield tid, length


def parse_messages(data):
    """Returns a list of (offset, length, records), one per IPFIX message of
    the stream; dies on anything it cannot count exactly."""
    templates = {}
    out = []
    off = 0
    while off < len(data):
        if len(data) - off < 16:
            die("%d trailing bytes at offset %d: not a whole message header" % (len(data) - off, off))
        version, mlen, _t, _seq, domain = struct.unpack_from(">HHIII", data, off)
        if version != 10:
            die("message at offset %d: version %d, not IPFIX (10)" % (off, version))
        if mlen < 16 or off + mlen > len(data):
            die("message at offset %d: length %d does not fit the file" % (off, mlen))
        records = 0
        pos, end = off + 16, off + mlen
        while pos < end:
            if end - pos < 4:
                die("message at offset %d: truncated set header at %d" % (off, pos))
            sid, slen = struct.unpack_from(">HH", data, pos)
            if slen < 4 or pos + slen > end:
                die("set at offset %d: length %d does not fit its message" % (pos, slen))
            if sid in (2, 3):
                for tid, length in template_records(data, pos + 4, pos + slen, sid == 3):
                    if length is None:
                        templates.pop((domain, tid), None)
                    else:
                        templates[(domain, tid)] = length
            elif sid >= 256:
                length = templates.get((domain, sid))
                if length is None:
                    die("data set at offset %d: template %d of domain %d not seen before" % (pos, sid, domain))
                records += (slen - 4) // length
            pos += slen
        out.append((off, mlen, records))
        off += mlen
    return out


def main():
    ap = argparse.ArgumentParser(description="send an IPFIX stream file over TCP, paced, and count what was sent")
    ap.add_argument("file", help="IPFIX messages back to back (flowgen --format ipfix -o FILE)")
    ap.add_argument("--to", help="HOST:PORT of the collector's IPFIX/TCP listener (required unless --count-only)")
    ap.add_argument("--rate", type=float, default=50000, help="records per second (default 50000; 0 = unpaced)")
    ap.add_argument("--timeout", type=float, default=10, help="give up a send blocked this many seconds (default 10)")
    ap.add_argument("--ready", metavar="FILE",
                    help="once connected, just before the first send, write the time (Unix seconds) into FILE")
    ap.add_argument("--count-only", action="store_true", help="print the file's messages and records, send nothing")
    a = ap.parse_args()

    with open(a.file, "rb") as f:
        data = f.read()
    msgs = parse_messages(data)
    if a.count_only:
        print(json.dumps({"messages": len(msgs), "records": sum(m[2] for m in msgs), "bytes": len(data)}))
        return
    if not a.to:
        ap.error("--to HOST:PORT is required")

    host, _, port = a.to.rpartition(":")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=a.timeout)
    except OSError as e:
        die("connect to %s: %s" % (a.to, e))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent_msgs = sent_recs = sent_bytes = 0
    error = None
    view = memoryview(data)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%.6f\n" % time.time())
    start = time.monotonic()
    try:
        for off, mlen, recs in msgs:
            if a.rate > 0:
                # token bucket: message k leaves once the records before it are due
                wait = start + sent_recs / a.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sock.sendall(view[off:off + mlen])
            sent_msgs += 1
            sent_recs += recs
            sent_bytes += mlen
    except OSError as e:
        name = errno.errorcode.get(e.errno, "timeout" if isinstance(e, socket.timeout) else "error")
        error = "%s (%s) after %d messages" % (name, e.strerror or e, sent_msgs)
    seconds = time.monotonic() - start
    sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    sock.close()
    print(json.dumps({"messages": sent_msgs, "records": sent_recs, "bytes": sent_bytes,
                      "sndbuf": sndbuf, "error": error, "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
