"""Stand-in receivers on 127.0.0.1: an HTTP API that misbehaves on demand, and an SMTP server.

The HTTP stand-in keeps its own books, as a real receiver would: complaints
are stored once per ``Idempotency-Key``; a second POST with a key it already
stored is answered with the first record and counted as a duplicate
delivery, so tests can tell "sent twice" from "stored twice".
"""
from __future__ import annotations

import email
import itertools
import json
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import Counter
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

#: What the stand-in does with one POST.
#: ok: store, answer 200 · fail500 / fail503 / throttle429 / reject400: answer without storing
#: drop: close without storing · reset: abort the connection (TCP RST) without storing
#: accept_drop: store, then close without answering · accept_500: store, then answer 500
#: slow_accept: store, answer after ``hang`` seconds · late_ok: store, answer after ``late`` seconds
#: hang: wait ``hang`` seconds (or until ``gate`` opens), then close without storing
#: gated: wait until ``gate`` opens, then store and answer 200
MODES = ("ok", "fail500", "fail503", "throttle429", "reject400", "drop", "reset", "accept_drop", "accept_500",
         "slow_accept", "late_ok", "hang", "gated")


class _QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-request (a SIGKILLed worker) are normal here, not worth a traceback."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """A LAPOR!-like HTTP API on 127.0.0.1 whose behaviour per request comes from *behave*."""

    def __init__(self, behave: Callable[[str, int], str] | None = None, *, hang: float = 2.0, late: float = 0.2):
        self.behave = behave or (lambda key, n: "ok")
        self.hang, self.late = hang, late
        self.gate = threading.Event()         # opened by a test to release "gated" (and "hang") requests
        self.lock = threading.Lock()
        self.posts: Counter = Counter()       # key -> POSTs seen
        self.stored: dict[str, dict] = {}     # key -> first body stored
        self.stored_count: Counter = Counter()  # key -> times a *new* record was created
        self.headers: dict[str, dict] = {}
        self.bodies: list[bytes] = []
        self.in_flight = 0                    # requests being handled right now
        self.max_in_flight = 0                # the most ever handled at once
        self.stored_at: dict[str, float] = {}   # key -> time.monotonic() it was first stored
        self._ids = itertools.count(1916449)
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/laporan"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() would wait forever for a loop never started
            self.server.shutdown()
        self.server.server_close()

    def script(self, *modes: str) -> None:
        """Answer the next POSTs with *modes* in order, then ``ok``."""
        queue = list(modes)
        self.behave = lambda key, n: queue.pop(0) if queue else "ok"

    def store(self, key: str, body: dict) -> dict:
        with self.lock:
            if key not in self.stored:
                remote = str(next(self._ids))
                self.stored[key] = {"body": body, "id": remote}
                self.stored_count[key] += 1
                self.stored_at[key] = time.monotonic()
            record = self.stored[key]
        return {"trackingid": record["id"], "link": f"https://www.lapor.go.id/laporan/{record['id']}"}

    @property
    def duplicates(self) -> int:
        """POSTs beyond the first per key (resends the idempotency key absorbed)."""
        return sum(n - 1 for n in self.posts.values() if n > 1)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    self._post()
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def _post(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    receiver.posts[key] += 1
                    n = receiver.posts[key]
                    receiver.headers[key] = dict(self.headers)
                    receiver.bodies.append(body)
                mode = receiver.behave(key, n)
                if mode in ("fail500", "fail503", "throttle429", "reject400"):
                    code = {"fail500": 500, "fail503": 503, "throttle429": 429, "reject400": 400}[mode]
                    return self._answer(code, {"error": mode})
                if mode == "drop":
                    return self._close()
                if mode == "reset":
                    return self._reset()
                if mode == "hang":
                    receiver.gate.wait(receiver.hang)
                    return self._close()
                if mode == "gated":
                    receiver.gate.wait()
                answer = receiver.store(key, json.loads(body or b"{}"))
                if mode == "accept_drop":
                    return self._close()
                if mode == "accept_500":
                    return self._answer(500, {"error": "stored, then failed"})
                if mode == "slow_accept":
                    time.sleep(receiver.hang)
                if mode == "late_ok":
                    time.sleep(receiver.late)
                self._answer(200, answer)

            def _answer(self, code, data):
                raw = json.dumps(data).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout): what a real server sees too

            def _reset(self):
                # SO_LINGER 0: closing sends RST instead of FIN, as a crashing proxy would.
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            def _close(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

        return Handler


class SMTPStandIn:
    """A minimal SMTP server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 standin ESMTP")
                sender, rcpts = "", []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 standin")
                    elif verb == "MAIL":
                        sender, rcpts = line.decode().split(":", 1)[1].strip(), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(line.decode().split(":", 1)[1].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = []
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\r\n", b".\n", b""):
                                break
                            data.append(chunk[1:] if chunk.startswith(b".") else chunk)
                        owner.messages.append(email.message_from_bytes(b"".join(data), policy=policy.default))
                        owner.envelopes.append((sender, rcpts))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # RSET, NOOP and the rest
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "SMTPStandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
