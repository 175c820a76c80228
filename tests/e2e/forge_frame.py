"""forge_frame.py - sends one node-link frame to a node over TLS with a
certificate of the caller's choice and prints the answer's code and message
(the attacker of cluster_authz.sh; not a test itself).

usage: forge_frame.py TLSDIR CERTNAME PORT ingest ORIGIN SEQ BATCHFILE
       forge_frame.py TLSDIR CERTNAME PORT query XPATH
The frame is the 13-byte header (u32 length, u8 type, u64 id, big-endian)
and its payload (src/route/proto.h). Prints "CODE MESSAGE" of an ACK or
ERROR (code 0: accepted), or "closed" when the node closes the link."""
import socket, ssl, struct, sys

tls, name, port, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if kind == "ingest":
    origin = sys.argv[5].encode()
    payload = bytes([len(origin)]) + origin + struct.pack(">Q", int(sys.argv[6])) + open(sys.argv[7], "rb").read()
    ftype = 1
else:
    xpath = sys.argv[5].encode()
    payload = struct.pack(">IB", 5000, 0) + xpath
    ftype = 3
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(tls + "/ca.pem")
ctx.load_cert_chain(tls + "/" + name + ".pem", tls + "/" + name + ".key")
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw) as s:
        s.sendall(struct.pack(">IBQ", len(payload), ftype, 1) + payload)
        data = b""
        try:
            while len(data) < 13 or len(data) < 13 + struct.unpack(">I", data[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        if len(data) < 21:
            print("closed")
            sys.exit(0)
        length, rtype, _ = struct.unpack(">IBQ", data[:13])
        code, _column = struct.unpack(">iI", data[13:21])
        print(code, data[21:13 + length].decode("utf-8", "replace"))
