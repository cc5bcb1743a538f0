"""Real HTTP servers on 127.0.0.1 for the isolation tests: a well-behaved webhook receiver, a hostile
one (200 then a body trickled a byte at a time, or never an answer), and a calendar feed that can
turn into a bomb or a trickle.

Every server stops on close(): its open connections are cut, so whatever waits on them ends,
and no test waits longer than its own bounds.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server:
    """A threading HTTP server on loopback that remembers its client sockets to cut them on close."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str):
        self.stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        server = self

        class Tracking(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request, client_address):
                with server._lock:
                    server._sockets.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request):
                with server._lock:
                    server._sockets.discard(request)
                super().shutdown_request(request)

        handler.owner = self
        self.httpd = Tracking(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}{path}"
        threading.Thread(target=self.httpd.serve_forever, name=f"server-{path}", daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        with self._lock:
            for client in list(self._sockets):
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
        self.httpd.server_close()


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: _Server

    def log_message(self, *args):
        pass


class Receiver(_Server):
    """Answers every POST with 204 and notes when each event arrived (time.monotonic())."""

    def __init__(self):
        self.arrivals: dict[str, float] = {}  # appointment id -> monotonic arrival time

        class Handler(_Quiet):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                appointment = body.get("data", {}).get("appointment", {}).get("id")
                self.owner.arrivals.setdefault(appointment, time.monotonic())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler, "/hooks/fine")


class HostileReceiver(_Server):
    """`trickle`: 200 with a long Content-Length, then one byte every 0.2 s until closed (each read
    well inside any per-read timeout). `slow-headers`: the status line and headers a byte every
    0.2 s, never ending. `silent`: reads the request and never answers."""

    def __init__(self, mode: str = "trickle"):
        self.mode = mode
        self.open = 0  # requests being held right now
        self.most_at_once = 0
        self.requests = 0
        counter = threading.Lock()

        class Handler(_Quiet):
            def do_POST(self):
                owner = self.owner
                self.rfile.read(int(self.headers["content-length"]))
                with counter:
                    owner.open += 1
                    owner.requests += 1
                    owner.most_at_once = max(owner.most_at_once, owner.open)
                try:
                    if owner.mode == "trickle":
                        self.send_response(200)
                        self.send_header("content-length", "1000000")
                        self.end_headers()
                    trickled = iter(b"HTTP/1.1 200 OK\r\n" * 1000)
                    while not self._peer_gone(0.2):
                        if owner.mode == "trickle":
                            self.wfile.write(b"x")
                        elif owner.mode == "slow-headers":
                            self.wfile.write(bytes([next(trickled)]))
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    with counter:
                        owner.open -= 1
                self.close_connection = True

            def _peer_gone(self, seconds: float) -> bool:
                """Wait `seconds`; True as soon as the client hung up (or the server stops), so the
                count of requests held is what the client holds, not what we have not noticed yet."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    if self.owner.stopping.is_set():
                        return True
                    readable, _, _ = select.select([self.connection], [], [], 0.02)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                return False

        super().__init__(Handler, "/hooks/hostile")


def calendar(*rules: str) -> str:
    """An iCalendar document with one busy event per rule (an empty rule: a single event)."""
    events = "".join(
        "BEGIN:VEVENT\r\n"
        f"UID:e{i}@hostile.example\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260101T030000Z\r\nDTEND:20260101T030001Z\r\n"
        + (f"RRULE:{rule}\r\n" if rule else "")
        + "END:VEVENT\r\n"
        for i, rule in enumerate(rules)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n{events}END:VCALENDAR\r\n"


BENIGN = calendar("")
BOMB = calendar("FREQ=SECONDLY")  # no COUNT, no UNTIL: one occurrence a second, for ever


class CalendarServer(_Server):
    """Serves BENIGN until `mode` is changed: `bomb` serves BOMB, `trickle` sends 200 and then a
    byte every 0.5 s until closed."""

    def __init__(self):
        self.mode = "benign"
        self.fetches = 0

        class Handler(_Quiet):
            def do_GET(self):
                owner = self.owner
                owner.fetches += 1
                if owner.mode == "trickle":
                    self.send_response(200)
                    self.send_header("content-type", "text/calendar")
                    self.send_header("content-length", "1000000")
                    self.end_headers()
                    try:
                        while not owner.stopping.wait(0.5):
                            self.wfile.write(b"X")
                            self.wfile.flush()
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                body = (BOMB if owner.mode == "bomb" else BENIGN).encode()
                self.send_response(200)
                self.send_header("content-type", "text/calendar")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, "/calendar.ics")
