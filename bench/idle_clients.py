#!/usr/bin/python3
"""Opens N PostgreSQL client connections to one endpoint (a proxy, usually) and holds them idle.

Used by bench/run.sh to measure a proxy's memory per idle client. Each connection is a raw
socket speaking the v3 protocol: StartupMessage, then SCRAM-SHA-256 (or md5 / cleartext, if
that is what the server asks for) until ReadyForQuery. Raw sockets instead of libpq because
libpq derives the SCRAM salted password (4096 PBKDF2 iterations) on every connect, which makes
the client, not the proxy, the bottleneck of 10,000 connects; here it is derived once per
(salt, iterations) and cached, and everything else of SCRAM (nonces, proof, the check of the
server's signature) is done per connection as a real client does. `--window` handshakes run
at once on non-blocking sockets.

Protocol with the caller, one line each on stdout:
  CONNECTED <n> <seconds> <connects_per_second>   all N are up; the caller measures now
  VERIFIED <n>                                     after SIGUSR1: that many sampled connections
                                                   (every 100th) answered SELECT 1 with 1
The connections are then held until SIGTERM or SIGINT (or --hold seconds), closed with
Terminate, and the script exits 0. Any failure prints `ERROR <message>` and exits 1.
"""

import argparse
import base64
import errno
import hashlib
import hmac
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

PROTOCOL_V3 = 196608


def fail(msg):
    print(f"ERROR {msg}", flush=True)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--dbname", required=True)
    p.add_argument("-n", "--clients", type=int, default=10000)
    p.add_argument("--window", type=int, default=128, help="handshakes in flight at once")
    p.add_argument("--hold", type=float, default=600.0, help="seconds to hold at most")
    p.add_argument("--connect-timeout", type=float, default=120.0,
                   help="seconds allowed for all connects together")
    a = p.parse_args()
    if a.clients < 1:
        p.error("--clients must be at least 1")
    if a.window < 1:
        p.error("--window must be at least 1")
    if not 0 < a.port < 65536:
        p.error("--port must be 1..65535")
    return a


def message(tag, payload):
    return tag + struct.pack("!I", len(payload) + 4) + payload


def error_text(payload):
    """The severity, SQLSTATE and message fields of an ErrorResponse."""
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return f"{fields.get('S', 'ERROR')} {fields.get('C', '?????')}: {fields.get('M', '(no message)')}"


class Client:
    """One connection's handshake state machine, driven by readable/writable events."""

    salted_cache = {}  # (salt, iterations) -> SaltedPassword: PBKDF2 once, not per connect

    def __init__(self, args, index):
        self.args = args
        self.index = index
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.inbuf = b""
        self.outbuf = b""
        self.ready = False
        self.nonce = None
        self.client_first_bare = None
        self.server_signature = None
        err = self.sock.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            raise ConnectionError(f"connect to {args.host}:{args.port}: {os.strerror(err)}")
        params = b"user\0" + args.user.encode() + b"\0database\0" + args.dbname.encode() + \
            b"\0application_name\0idle_clients\0\0"
        body = struct.pack("!I", PROTOCOL_V3) + params
        self.outbuf = struct.pack("!I", len(body) + 4) + body

    def fileno(self):
        return self.sock.fileno()

    def on_writable(self):
        if self.outbuf:
            n = self.sock.send(self.outbuf)
            self.outbuf = self.outbuf[n:]

    def on_readable(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection during the handshake")
        self.inbuf += data
        while len(self.inbuf) >= 5:
            tag = self.inbuf[0:1]
            length = struct.unpack("!I", self.inbuf[1:5])[0]
            if len(self.inbuf) < 1 + length:
                break
            payload = self.inbuf[5:1 + length]
            self.inbuf = self.inbuf[1 + length:]
            self.handle(tag, payload)

    def handle(self, tag, payload):
        if tag == b"R":
            self.on_auth(struct.unpack("!I", payload[:4])[0], payload[4:])
        elif tag == b"E":
            raise ConnectionError(error_text(payload))
        elif tag == b"Z":
            if self.server_signature is not None:
                raise ConnectionError("server finished SCRAM without sending its signature")
            self.ready = True
        elif tag in (b"S", b"K", b"N"):
            pass  # ParameterStatus, BackendKeyData, NoticeResponse
        else:
            raise ConnectionError(f"unexpected message {tag!r} during the handshake")

    def on_auth(self, code, data):
        a = self.args
        if code == 0:  # AuthenticationOk
            return
        if code == 3:  # cleartext
            self.outbuf += message(b"p", a.password.encode() + b"\0")
        elif code == 5:  # md5
            inner = hashlib.md5(a.password.encode() + a.user.encode()).hexdigest().encode()
            self.outbuf += message(b"p", b"md5" + hashlib.md5(inner + data[:4]).hexdigest().encode() + b"\0")
        elif code == 10:  # SASL: mechanisms
            mechanisms = [m for m in data.split(b"\0") if m]
            if b"SCRAM-SHA-256" not in mechanisms:
                raise ConnectionError(f"server offers no SCRAM-SHA-256, only {mechanisms}")
            self.nonce = base64.b64encode(os.urandom(18))
            self.client_first_bare = b"n=,r=" + self.nonce
            first = b"n,," + self.client_first_bare
            self.outbuf += message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
        elif code == 11:  # SASLContinue: server-first-message
            attrs = dict(kv.split(b"=", 1) for kv in data.split(b","))
            nonce, salt, iterations = attrs[b"r"], base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
            if not nonce.startswith(self.nonce):
                raise ConnectionError("SCRAM: server nonce does not extend the client nonce")
            key = (salt, iterations)
            salted = Client.salted_cache.get(key)
            if salted is None:
                salted = hashlib.pbkdf2_hmac("sha256", a.password.encode(), salt, iterations)
                Client.salted_cache[key] = salted
            final_bare = b"c=biws,r=" + nonce
            auth_message = self.client_first_bare + b"," + data + b"," + final_bare
            client_key = hmac.digest(salted, b"Client Key", "sha256")
            stored_key = hashlib.sha256(client_key).digest()
            signature = hmac.digest(stored_key, auth_message, "sha256")
            proof = bytes(x ^ y for x, y in zip(client_key, signature))
            server_key = hmac.digest(salted, b"Server Key", "sha256")
            self.server_signature = hmac.digest(server_key, auth_message, "sha256")
            self.outbuf += message(b"p", final_bare + b",p=" + base64.b64encode(proof))
        elif code == 12:  # SASLFinal: v=ServerSignature
            attrs = dict(kv.split(b"=", 1) for kv in data.split(b","))
            if self.server_signature is None or \
                    base64.b64decode(attrs.get(b"v", b"")) != self.server_signature:
                raise ConnectionError("SCRAM: wrong server signature")
            self.server_signature = None
        else:
            raise ConnectionError(f"unsupported authentication request {code}")

    def query_select_1(self):
        """SELECT 1 on a blocking socket; True when exactly one row with value 1 came back."""
        self.sock.setblocking(True)
        self.sock.settimeout(30)
        self.sock.sendall(message(b"Q", b"SELECT 1\0"))
        buf = b""
        values = []
        while True:
            while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed an idle connection")
                buf += chunk
            tag, length = buf[0:1], struct.unpack("!I", buf[1:5])[0]
            payload, buf = buf[5:1 + length], buf[1 + length:]
            if tag == b"E":
                raise ConnectionError(error_text(payload))
            if tag == b"D":
                (n,) = struct.unpack("!H", payload[:2])
                (vlen,) = struct.unpack("!i", payload[2:6])
                values.append(payload[6:6 + vlen] if n == 1 and vlen >= 0 else None)
            if tag == b"Z":
                return values == [b"1"]

    def close(self):
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1)
            self.sock.sendall(message(b"X", b""))
        except OSError:
            pass
        self.sock.close()


def open_all(a):
    sel = selectors.DefaultSelector()  # epoll: select() cannot watch fds above 1023
    done = []
    in_flight = 0
    started = 0
    deadline = time.monotonic() + a.connect_timeout

    def interest(c):
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)

    while len(done) < a.clients:
        while started < a.clients and in_flight < a.window:
            try:
                c = Client(a, started)
            except OSError as e:
                fail(f"connection {started + 1}: {e}")
            sel.register(c, interest(c))
            started += 1
            in_flight += 1
        if time.monotonic() > deadline:
            fail(f"only {len(done)} of {a.clients} connections were up after {a.connect_timeout:.0f} s")
        for key, events in sel.select(timeout=1.0):
            c = key.fileobj
            try:
                if events & selectors.EVENT_WRITE:
                    c.on_writable()
                if events & selectors.EVENT_READ:
                    c.on_readable()
            except (OSError, ConnectionError, KeyError, ValueError) as e:
                fail(f"connection {c.index + 1} (after {len(done)} were up): {e}")
            if c.ready:
                sel.unregister(c)
                in_flight -= 1
                done.append(c)
            else:
                sel.modify(c, interest(c))
    sel.close()
    return done


def main():
    a = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.clients + 64
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            fail(f"open file limit {hard} is too low for {a.clients} connections")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    state = {"stop": False, "verify": False}
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGINT, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGUSR1, lambda *_: state.update(verify=True))

    t0 = time.monotonic()
    conns = open_all(a)
    secs = time.monotonic() - t0
    print(f"CONNECTED {len(conns)} {secs:.2f} {len(conns) / secs:.0f}", flush=True)

    end = time.monotonic() + a.hold
    while not state["stop"] and time.monotonic() < end:
        if state["verify"]:
            state["verify"] = False
            sample = conns[::100]
            for c in sample:
                try:
                    ok = c.query_select_1()
                except (OSError, ConnectionError) as e:
                    fail(f"SELECT 1 on idle connection {c.index + 1}: {e}")
                if not ok:
                    fail(f"SELECT 1 on idle connection {c.index + 1} did not return 1")
            print(f"VERIFIED {len(sample)}", flush=True)
        time.sleep(0.05)
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
