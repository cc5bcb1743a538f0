"""Outbound HTTP to tenants' URLs (booking/integrations/net.py): which addresses are public, DNS rebinding,
the total deadline against trickling peers, the body cap, TLS to the checked address.

The hostile peers are real servers on 127.0.0.1, each bounded in time (a trickler stops after
a few seconds, so even a client without a deadline returns). Tests that must connect to
loopback pass allow_private=True; the classification tests take the refusal path.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from booking.domain.errors import InvalidInput
from booking.integrations import external_calendars, net, webhooks

DEADLINE = 1.5
SLACK = 1.0  # the watchdog's timer, thread switches, a loaded CI machine
TRICKLE_FOR = 6.0  # a trickler gives up after this, so a client with no total deadline returns too


class Trickler:
    """A raw HTTP server on loopback that answers `head` and then one byte every 0.5 s."""

    def __init__(self, head: bytes):
        self.head, self.closed_after, self.connections = head, [], 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/x"
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        started = time.monotonic()
        with conn:
            conn.settimeout(TRICKLE_FOR)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536) or b"\r\n\r\n"
                conn.sendall(self.head)
                while not self.stop.is_set() and time.monotonic() - started < TRICKLE_FOR:
                    time.sleep(0.5)
                    conn.sendall(b"x")
            except OSError:  # the client hung up: note when
                self.closed_after.append(time.monotonic() - started)

    def close(self):
        self.stop.set()
        self.listener.close()


BODY_TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 100000\r\n\r\n"
HEADER_TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: "


@pytest.fixture
def trickler():
    servers = []

    def make(head: bytes) -> Trickler:
        servers.append(Trickler(head))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


class Plain:
    """A well-behaved HTTP server on loopback answering `body` (optionally chunked) to any request."""

    def __init__(self, body: bytes = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", chunked: bool = False):
        self.hosts: list[str] = []
        plain = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                with contextlib.suppress(ConnectionError):  # a webhook send hangs up after the status line: fine
                    self._reply()

            def _reply(self):
                plain.hosts.append(self.headers["host"])
                if "content-length" in self.headers:
                    self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                if chunked:
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 1000):
                        piece = body[start : start + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plain():
    servers = []

    def make(**kwargs) -> Plain:
        servers.append(Plain(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def outgoing(url: str) -> webhooks.Outgoing:
    return webhooks.Outgoing("delivery-1", url, {"content-type": "application/json"}, b'{"type":"test"}')


# --- which addresses are public ------------------------------------------------------------------

TEREDO_CLIENT_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"  # client 127.0.0.1 (stored inverted)
TEREDO_SERVER_PRIVATE = "2001:0:a01:203:8000:63bf:a247:28f1"  # server 10.1.2.3, client 93.184.215.14 (inverted)

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "192.168.0.10",
    "172.16.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "2001:db8::1",
    # NAT64, well-known prefix: the last 32 bits are the IPv4 address reached
    "64:ff9b::7f00:1",
    "64:ff9b::a01:203",
    "64:ff9b::c0a8:a",
    # NAT64, local-use prefix: what it embeds depends on the operator, so never public
    "64:ff9b:1::a00:1",
    "64:ff9b:1::5db8:d70e",
    # 6to4: bits 16-48 are the IPv4 address reached
    "2002:7f00:1::1",
    "2002:a01:203::1",
    "2002:c0a8:a::1",
    # IPv4-mapped and the deprecated IPv4-compatible form
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "::ffff:192.168.0.10",
    "::ffff:0.0.0.0",
    "::7f00:1",
    # Teredo, whatever its server and client
    TEREDO_CLIENT_LOOPBACK,
    TEREDO_SERVER_PRIVATE,
]
PUBLIC = ["93.184.215.14", "2606:2800:220:1::1", "64:ff9b::5db8:d70e", "2002:5db8:d70e::1", "::ffff:93.184.215.14"]


def literal(address: str, path: str = "/hook") -> str:
    return f"http://[{address}]{path}" if ":" in address else f"http://{address}{path}"


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_that_reach_loopback_private_or_special_networks_are_refused(address):
    assert not net.is_public(net.ipaddress.ip_address(address))
    with pytest.raises(InvalidInput) as refused:
        webhooks.check_url(literal(address), allow_private=False)
    assert "non-public address" in refused.value.errors["url"][0]
    with pytest.raises(net.RequestFailed, match="non-public address"):
        net.request("GET", literal(address), allow_private=False, deadline=DEADLINE, max_bytes=10)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_including_nat64_6to4_and_mapped_forms_of_public_ipv4(address):
    assert net.is_public(net.ipaddress.ip_address(address))
    webhooks.check_url(literal(address), allow_private=False)


def test_the_teredo_examples_embed_what_their_names_say():
    assert net.ipaddress.ip_address(TEREDO_CLIENT_LOOPBACK).teredo[1] == net.ipaddress.ip_address("127.0.0.1")
    assert net.ipaddress.ip_address(TEREDO_SERVER_PRIVATE).teredo == (
        net.ipaddress.ip_address("10.1.2.3"),
        net.ipaddress.ip_address("93.184.215.14"),
    )


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public(monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            real("93.184.215.14", port, *a, **k) + real("64:ff9b::7f00:1", port, *a, **k)
            if host == "mixed.test"
            else real(host, port, *a, **k)
        ),
    )
    with pytest.raises(InvalidInput) as refused:
        webhooks.check_url("https://mixed.test/hook", allow_private=False)
    assert refused.value.errors["url"] == ["The host resolves to a non-public address (64:ff9b::7f00:1)."]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://[::1/",
        "http://example.com/a\r\nX-Injected: 1",
        "http://example.com/a b",
        "http://@example.com/",
        "gopher://example.com/",
    ],
)
def test_urls_that_are_not_plain_http_are_a_field_error_not_a_crash(url):
    with pytest.raises(InvalidInput) as refused:
        webhooks.check_url(url, allow_private=True)
    assert list(refused.value.errors) == ["url"]


# --- DNS rebinding -------------------------------------------------------------------------------


@pytest.fixture
def rebinding(monkeypatch, plain):
    """`rebind.test` answers a public address to the first lookup and 127.0.0.1 to any later one.
    The public host is played by a loopback server: connections to 93.184.215.14 are sent there."""
    server = plain()
    lookups, connected = [], []
    real_lookup, real_connect = socket.getaddrinfo, socket.create_connection

    def lookup(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        return real_lookup("93.184.215.14" if len(lookups) == 1 else "127.0.0.1", port, *args, **kwargs)

    def connect(address, *args, **kwargs):
        connected.append(address[0])
        if address[0] == "93.184.215.14":
            address = ("127.0.0.1", server.port)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket, "create_connection", connect)
    return type(
        "Rebinding",
        (),
        {
            "url": f"http://rebind.test:{server.port}/calendar.ics",
            "server": server,
            "lookups": lookups,
            "connected": connected,
        },
    )


def test_a_request_connects_to_the_address_it_checked_never_to_a_second_answer(rebinding):
    answer = net.request("GET", rebinding.url, allow_private=False, deadline=DEADLINE, max_bytes=1000)
    assert answer.status == 200 and answer.body.startswith(b"BEGIN:VCALENDAR")
    assert rebinding.lookups == ["rebind.test"]  # resolved once
    assert rebinding.connected == ["93.184.215.14"]
    assert rebinding.server.hosts == [f"rebind.test:{rebinding.server.port}"]  # the Host is the URL's name


def test_a_calendar_fetch_connects_to_the_address_it_checked(rebinding):
    assert external_calendars.fetch(rebinding.url, allow_private=False).startswith("BEGIN:VCALENDAR")
    assert rebinding.connected == ["93.184.215.14"] and rebinding.lookups == ["rebind.test"]


def test_a_webhook_send_connects_to_the_address_it_checked(rebinding):
    outcome = webhooks.send(outgoing(rebinding.url), allow_private=False)
    assert outcome.status_code == 200 and outcome.error is None
    assert rebinding.connected == ["93.184.215.14"] and rebinding.lookups == ["rebind.test"]


def test_a_send_and_a_fetch_to_a_name_that_now_resolves_inside_are_refused_before_connecting(monkeypatch):
    real_lookup, connected = socket.getaddrinfo, []
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real_lookup("64:ff9b::7f00:1" if host == "moved.test" else host, port, *a, **k),
    )
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: connected.append(address))
    outcome = webhooks.send(outgoing("https://moved.test/hook"), allow_private=False)
    assert outcome.status_code is None
    assert outcome.error == "The host resolves to a non-public address (64:ff9b::7f00:1)."
    with pytest.raises(InvalidInput) as refused:
        external_calendars.fetch("https://moved.test/c.ics", allow_private=False)
    assert refused.value.errors["url"] == [
        "Could not fetch the calendar: The host resolves to a non-public address (64:ff9b::7f00:1)."
    ]
    assert connected == []


# --- the total deadline --------------------------------------------------------------------------


def timed(call):
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except Exception as error:  # noqa: BLE001 - the test looks at what was raised
        return error, time.monotonic() - started


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline(trickler):
    server = trickler(BODY_TRICKLE)
    failure, took = timed(
        lambda: net.request("GET", server.url, allow_private=True, deadline=DEADLINE, max_bytes=200_000)
    )
    assert isinstance(failure, net.RequestFailed) and str(failure) == "The request took longer than 1.5 s."
    assert DEADLINE - 0.1 < took < DEADLINE + SLACK
    waited = time.monotonic()
    while not server.closed_after and time.monotonic() - waited < 3:  # noticed on its second byte after
        time.sleep(0.1)
    assert server.closed_after and server.closed_after[0] < DEADLINE + 2.5  # the connection is gone, not left


def test_headers_trickled_a_byte_at_a_time_are_cut_off_at_the_deadline(trickler):
    server = trickler(HEADER_TRICKLE)
    failure, took = timed(
        lambda: net.request("GET", server.url, allow_private=True, deadline=DEADLINE, max_bytes=1000, read_body=False)
    )
    assert isinstance(failure, net.RequestFailed) and "took longer than 1.5 s" in str(failure)
    assert took < DEADLINE + SLACK


def test_a_name_that_takes_too_long_to_resolve_is_cut_off_at_the_deadline(monkeypatch):
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.test":
            time.sleep(3)
        return real("127.0.0.1" if host == "slow-dns.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    failure, took = timed(
        lambda: net.request("GET", "http://slow-dns.test/", allow_private=True, deadline=1.0, max_bytes=10)
    )
    assert isinstance(failure, net.RequestFailed) and "did not resolve within 1 s" in str(failure)
    assert took < 1.0 + SLACK


@pytest.mark.parametrize("head", [BODY_TRICKLE, HEADER_TRICKLE], ids=["body", "headers"])
def test_a_trickling_calendar_server_is_refused_at_the_fetch_deadline(trickler, monkeypatch, head):
    monkeypatch.setattr(external_calendars, "FETCH_DEADLINE", DEADLINE, raising=False)
    server = trickler(head)
    failure, took = timed(lambda: external_calendars.fetch(server.url, allow_private=True))
    assert isinstance(failure, InvalidInput)
    assert failure.errors["url"] == ["Could not fetch the calendar: The request took longer than 1.5 s."]
    assert took < DEADLINE + SLACK


def test_a_webhook_receiver_that_trickles_its_headers_is_cut_off_at_the_send_deadline(trickler, monkeypatch):
    monkeypatch.setattr(webhooks, "SEND_DEADLINE", DEADLINE, raising=False)
    server = trickler(HEADER_TRICKLE)
    outcome, took = timed(lambda: webhooks.send(outgoing(server.url), allow_private=True))
    assert outcome.status_code is None and outcome.error == "The request took longer than 1.5 s."
    assert took < DEADLINE + SLACK


def test_a_webhook_receivers_body_is_not_waited_for(trickler, monkeypatch):
    monkeypatch.setattr(webhooks, "SEND_DEADLINE", DEADLINE, raising=False)
    server = trickler(BODY_TRICKLE)
    outcome, took = timed(lambda: webhooks.send(outgoing(server.url), allow_private=True))
    assert outcome.status_code == 200 and outcome.error is None  # the status is the answer
    assert took < 1.0


# --- the byte cap --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_cap_is_refused_and_one_at_the_cap_accepted(plain, chunked):
    server = plain(body=b"y" * 4096, chunked=chunked)
    url = f"http://127.0.0.1:{server.port}/"
    with pytest.raises(net.RequestFailed, match=r"^The response is larger than 4095 bytes\.$"):
        net.request("GET", url, allow_private=True, deadline=DEADLINE, max_bytes=4095)
    assert net.request("GET", url, allow_private=True, deadline=DEADLINE, max_bytes=4096).body == b"y" * 4096


def test_a_calendar_over_the_cap_is_refused(plain, monkeypatch):
    monkeypatch.setattr(external_calendars, "MAX_BYTES", 2048)
    server = plain(body=b"BEGIN:VCALENDAR\r\n" + b"X" * 4096, chunked=True)
    with pytest.raises(InvalidInput) as refused:
        external_calendars.fetch(f"http://127.0.0.1:{server.port}/c.ics", allow_private=True)
    assert refused.value.errors["url"] == ["Could not fetch the calendar: The response is larger than 2 KB."]


# --- TLS to the checked address ------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An https server on 127.0.0.1 with a certificate for calendar.test (self-signed), which
    records the server name each client asked for; calendar.test and other.test resolve to it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=calendar.test",
            "-addext",
            "subjectAltName=DNS:calendar.test",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    names = []
    server_side.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = Plain()
    server.server.socket = server_side.wrap_socket(server.server.socket, server_side=True)
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host in ("calendar.test", "other.test") else host, *a, **k),
    )
    yield type(
        "TLS",
        (),
        {
            "port": server.port,
            "names": names,
            "hosts": server.hosts,
            "client": ssl.create_default_context(cafile=str(cert)),
        },
    )
    server.close()


def test_https_to_the_checked_address_still_sends_and_verifies_the_host_name(tls_server):
    answer = net.request(
        "GET",
        f"https://calendar.test:{tls_server.port}/c.ics",
        allow_private=True,
        deadline=5,
        max_bytes=1000,
        tls=tls_server.client,
    )
    assert answer.status == 200
    assert tls_server.names == ["calendar.test"]  # SNI is the name, not 127.0.0.1
    assert tls_server.hosts == [f"calendar.test:{tls_server.port}"]


def test_https_refuses_a_certificate_for_another_name(tls_server):
    with pytest.raises(net.RequestFailed, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        net.request(
            "GET",
            f"https://other.test:{tls_server.port}/c.ics",
            allow_private=True,
            deadline=5,
            max_bytes=1000,
            tls=tls_server.client,
        )
