#!/usr/bin/env python3
"""Keep-alive HTTP/1.1 load that counts every request left without an answer.

Usage: keepalive-load.py PORT SECONDS [CONNECTIONS]

Each connection sends GET / and reads the whole response, again and again, as wrk does; a
response with `connection: close` makes it reconnect, as a client must. A request that meets a
reset or a close before its response is a failure: it is what a server that drops keep-alive
connections while stopping does to its clients. Prints one line and exits 1 on any failure.
"""
import socket
import sys
import threading
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
connections = int(sys.argv[3]) if len(sys.argv) > 3 else 8
deadline = time.monotonic() + seconds
lock = threading.Lock()
totals = {"ok": 0, "failed": 0, "reconnects": 0}
failures = []


def answer(sock):
    """The response's head (lower-cased) once its body is read; None when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    head = head.decode("latin-1").lower()
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head


def client():
    sock = None
    while time.monotonic() < deadline:
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            head = answer(sock)
            if head is None:
                raise ConnectionError("closed before the response")
            with lock:
                totals["ok"] += 1
            if "connection: close" in head:
                sock.close()
                sock = None
                with lock:
                    totals["reconnects"] += 1
        except OSError as error:
            with lock:
                totals["failed"] += 1
                failures.append(repr(error))
            if sock is not None:
                sock.close()
            sock = None
            time.sleep(0.01)
    if sock is not None:
        sock.close()


threads = [threading.Thread(target=client) for _ in range(connections)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"requests ok {totals['ok']}, failed {totals['failed']}, reconnects after connection: close {totals['reconnects']}"
      + (f"; first failures: {failures[:3]}" if failures else ""))
sys.exit(1 if totals["failed"] or not totals["ok"] else 0)
