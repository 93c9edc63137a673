#!/usr/bin/env python3
"""The web server of scripts/e2e-browser, run in the testbed's WAN namespace.

Serves one tiny HTML page over HTTPS (TCP, HTTP/1.1, Python's ssl module) and over
HTTP/3 (QUIC on UDP, aioquic), each on its own list of addresses. The page names the
host the browser asked for and the protocol it came over, so the test reads both from
the browser's DOM; every TLS handshake's SNI and every request go to the log (one line
each, flushed), so the test can also tell which names ever reached the server.

Usage: h3server.py --cert CRT --key KEY --log FILE [--tcp ADDR]... [--udp ADDR]...
"""

import argparse
import asyncio
import html
import http.server
import socket
import ssl
import sys
import threading
import time

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import HandshakeCompleted, ProtocolNegotiated

PORT = 443
_log_lock = threading.Lock()
_log_file = None


def log(*fields):
    line = " ".join(str(f) for f in fields)
    with _log_lock:
        _log_file.write(f"{time.time():.3f} {line}\n")
        _log_file.flush()


def page(host, proto):
    """The page: a marker line the test greps for, with the host and the protocol."""
    host = html.escape(host or "-")
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>mimamori e2e</title></head>"
        f'<body><p id="marker">mimamori-e2e-page host={host} proto={proto}</p></body></html>\n'
    ).encode()


# --- HTTPS over TCP -------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        log("https", "request", host, self.path, self.client_address[0])
        body = page(host, "https") if self.path != "/favicon.ico" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx):
        self.address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.ctx = ctx
        super().__init__((addr, PORT), Handler)

    def get_request(self):
        sock, peer = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), peer

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread, bounded, so a client the gateway
        # cut off mid-handshake never holds up the others.
        request.settimeout(10)
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError) as e:
            log("https", "handshake-failed", client_address[0], type(e).__name__)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        log("https", "error", client_address[0], sys.exc_info()[0].__name__)


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])

    def sni(sslobj, name, _ctx):
        log("https", "sni", name or "-")

    ctx.sni_callback = sni
    return ctx


# --- HTTP/3 over QUIC -----------------------------------------------------------------


class H3Protocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._h3 = None

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            log("h3", "handshake", event.alpn_protocol)
        if self._h3 is None:
            return
        for ev in self._h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                self._request(ev)

    def _request(self, ev):
        headers = dict(ev.headers)
        host = headers.get(b":authority", b"").decode(errors="replace").split(":")[0]
        path = headers.get(b":path", b"/").decode(errors="replace")
        log("h3", "request", host, path)
        body = page(host, "h3") if path != "/favicon.ico" else b""
        self._h3.send_headers(
            ev.stream_id,
            [
                (b":status", b"200" if body else b"404"),
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        )
        self._h3.send_data(ev.stream_id, body, end_stream=True)
        self.transmit()


async def main():
    global _log_file
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tcp", action="append", default=[], help="address for HTTPS on TCP 443")
    ap.add_argument("--udp", action="append", default=[], help="address for HTTP/3 on UDP 443")
    a = ap.parse_args()
    _log_file = open(a.log, "a", buffering=1)

    ctx = tls_context(a.cert, a.key)
    for addr in a.tcp:
        srv = TLSServer(addr, ctx)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        log("listen", "tcp", addr, PORT)

    qconf = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    qconf.load_cert_chain(a.cert, a.key)
    for addr in a.udp:
        await serve(addr, PORT, configuration=qconf, create_protocol=H3Protocol)
        log("listen", "udp", addr, PORT)
    log("ready")
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
