#!/usr/bin/env python3
"""An HTTP client that half-closes: it sends its request, shuts down its sending side
(shutdown(SHUT_WR), so the server meets the FIN right after the request), and reads the whole
response slowly, for longer than the shim's grace. A server that answers a half-closed peer is
legal TCP; the shim must not cut it while the reply is still going out.

    halfclose_http.py --port P --path /big.bin --expect-sha256 HEX [--http 1.0|1.1]
                      [--count N] [--chunk BYTES] [--pause-ms MS]

Prints one line per request (bytes, whether the body is whole, how long it took) and exits 0
only if every body was complete and matched.
"""
import argparse
import hashlib
import socket
import sys
import time


def fetch(port, path, version, chunk, pause):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    request = f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n"
    if version == "1.0":
        request += "Connection: close\r\n"
    s.sendall((request + "\r\n").encode())
    s.shutdown(socket.SHUT_WR)
    data = bytearray()
    start = time.monotonic()
    while True:
        got = s.recv(chunk)
        if not got:
            break
        data += got
        time.sleep(pause)
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, length, body, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--expect-sha256", required=True)
    ap.add_argument("--http", choices=["1.0", "1.1"], default="1.1")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--pause-ms", type=int, default=40)
    a = ap.parse_args()
    bad = 0
    for i in range(a.count):
        status, length, body, took = fetch(a.port, a.path, a.http, a.chunk, a.pause_ms / 1000)
        whole = (status.endswith(" 200 OK") and length == len(body)
                 and hashlib.sha256(body).hexdigest() == a.expect_sha256)
        bad += not whole
        print(f"request={i + 1} http={a.http} status='{status}' body={len(body)}/{length} "
              f"whole={whole} took_ms={took * 1000:.0f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
