"""Outbound HTTP to URLs a tenant gave us (webhook receivers, calendar feeds), under bounds.

Every request is resolved once, every address it resolved to is checked, and the
connection goes to the address that was checked: a name that answers a public address
to the check and 127.0.0.1 to the connect (DNS rebinding) never reaches the inside.
For https the TLS server name and the certificate check still use the URL's host name.

Per-read timeouts do not bound a request: a peer that sends one byte every few seconds
never lets a read time out. So each request has one total deadline, from the name
lookup to the last body byte, enforced by a timer that shuts the socket down (which
wakes a read blocked on the peer), and the body has a byte cap. Redirects are never
followed; the connection is never reused.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
TEREDO = ipaddress.ip_network("2001::/32")
CHUNK = 64 * 1024


class RequestFailed(Exception):
    """The request was refused before it was sent, broke a bound, or failed; the message says which."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(repr=False)  # names in lower case
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII: an IDNA-encoded name or an address literal, without brackets
    port: int
    authority: str  # the Host header
    path: str  # path and query


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address delivers to: mapped, NAT64 or 6to4."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return ip.sixtofour


def is_public(ip: IPAddress) -> bool:
    """Whether a receiver at `ip` is on the public internet.

    Decided here rather than by `is_global` alone: Python 3.11 calls NAT64, 6to4 and
    IPv4-compatible (::a.b.c.d) addresses global whatever they embed. An address that
    embeds IPv4 is judged by what it embeds; any other IPv6 must be global unicast
    (2000::/3) and not Teredo (2001::/32, a deprecated tunnel whose client address a
    relay reaches). The local-use NAT64 prefix 64:ff9b:1::/48 is refused: its embedding
    depends on the operator.
    """
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    if ip.version == 6 and (ip not in GLOBAL_UNICAST or ip in TEREDO):
        return False
    return ip.is_global and not ip.is_multicast


def target(url: object) -> Target:
    """The parts of an absolute http(s) URL a request needs; RequestFailed if it is not one."""
    if not isinstance(url, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise RequestFailed("Must be an absolute http or https URL.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range or not a number, a bad IPv6 literal
        raise RequestFailed("Must be an absolute http or https URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestFailed("Must be an absolute http or https URL.")
    if "@" in parts.netloc:
        raise RequestFailed("Must not carry credentials.")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise RequestFailed(f"The host '{parts.hostname}' does not resolve.") from None
    default = 443 if parts.scheme == "https" else 80
    port = default if port is None else port
    shown = f"[{host}]" if literal is not None and literal.version == 6 else host
    authority = shown if port == default else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, authority, path)


def resolve(where: Target, *, allow_private: bool, within: float) -> list[str]:
    """The addresses `where` resolves to, each checked; RequestFailed if any is not public
    (unless allowed), or the name does not resolve within `within` seconds."""
    infos = _lookup(where.host, where.port, within)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not is_public(ip):
                raise RequestFailed(f"The host resolves to a non-public address ({ip}).")
    return addresses


def check(url: str, *, allow_private: bool, within: float = 10.0) -> None:
    """What `request` checks before connecting, without connecting: for validating a URL on input."""
    where = target(url)
    if not allow_private:
        resolve(where, allow_private=False, within=within)


def request(
    method: str,
    url: str,
    *,
    allow_private: bool,
    deadline: float,
    max_bytes: int,
    headers: dict | None = None,
    body: bytes | None = None,
    read_body: bool = True,
    tls: ssl.SSLContext | None = None,
) -> Response:
    """One request to the address that was checked, all of it within `deadline` seconds.

    The body is refused past `max_bytes`; with `read_body=False` it is not read at all
    (the answer is its status and headers). `tls` replaces the default context (tests).
    """
    ends = time.monotonic() + deadline
    where = target(url)
    addresses = resolve(where, allow_private=allow_private, within=deadline)
    watchdog = _Watchdog(ends)
    connection = http.client.HTTPConnection(where.host, where.port)
    response = None
    try:
        connection.sock = _connect(where, addresses, watchdog, tls or _default_tls())
        connection.request(
            method, where.path, body=body, headers={**_own(headers), "host": where.authority, "connection": "close"}
        )
        response = connection.getresponse()
        content = _read(response, max_bytes) if read_body else b""
        if watchdog.fired:  # a body cut at the deadline can look complete: a read-to-close one ends at EOF
            raise TimeoutError
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, content)
    except RequestFailed:
        raise
    except Exception as failure:  # noqa: BLE001 - refused, reset, TLS, malformed answer, or cut by the watchdog
        if watchdog.fired or watchdog.left() <= 0:
            raise RequestFailed(f"The request took longer than {deadline:g} s.") from None
        raise RequestFailed(f"{type(failure).__name__}: {failure}"[:300]) from None
    finally:
        watchdog.close()
        if response is not None:
            response.close()  # the socket's file stays open until its reader is closed too
        connection.close()


def _own(headers: dict | None) -> dict:
    """The caller's headers less those this module sets: the Host is the URL's, never reused."""
    return {k: v for k, v in (headers or {}).items() if k.lower() not in ("host", "connection")}


def _read(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = response.getheader("content-length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise RequestFailed(f"The response is larger than {_size(max_bytes)}.")
    chunks, size = [], 0
    while chunk := response.read(min(CHUNK, max_bytes + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise RequestFailed(f"The response is larger than {_size(max_bytes)}.")
    return b"".join(chunks)


def _connect(where: Target, addresses: list[str], watchdog: _Watchdog, tls: ssl.SSLContext) -> socket.socket:
    """A connected (and for https, TLS-verified) socket to the first of `addresses` that answers."""
    failure: Exception = RequestFailed("The host resolves to no address.")
    for address in addresses:
        if watchdog.left() <= 0:
            break
        try:
            sock = socket.create_connection((address, where.port), timeout=watchdog.left())
        except OSError as error:
            failure = error
            continue
        watchdog.watch(sock)
        if where.scheme == "https":
            # the handshake is done after the watchdog has the TLS socket, so it can cut a trickled one
            sock = tls.wrap_socket(sock, server_hostname=where.host, do_handshake_on_connect=False)
            watchdog.watch(sock)
            sock.do_handshake()
        return sock
    raise failure


class _Watchdog:
    """Shuts the watched socket down at the deadline: a read blocked on a trickling peer then
    returns at once, whatever the per-read timeout."""

    def __init__(self, ends: float) -> None:
        self.ends, self.fired = ends, False
        self.sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(ends - time.monotonic(), 0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return self.ends - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self.sock = sock
            if self.fired:
                self._shut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                # the plain socket's shutdown: an SSLSocket's would drop its TLS state under a reader
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self.sock is not None:
                self.sock.close()
            self.sock = None


def _lookup(host: str, port: int, within: float) -> list[tuple]:
    """getaddrinfo within `within` seconds; the lookup itself has no timeout, so it runs in a
    thread left to the resolver's own timeout if it overruns."""
    answer: dict = {}

    def look() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            answer["error"] = error

    lookup = threading.Thread(target=look, name=f"resolve {host}", daemon=True)
    lookup.start()
    lookup.join(max(within, 0))
    if lookup.is_alive():
        raise RequestFailed(f"The host '{host}' did not resolve within {within:g} s.")
    if "error" in answer or not answer.get("infos"):
        raise RequestFailed(f"The host '{host}' does not resolve.")
    return answer["infos"]


@cache
def _default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # the system's CAs, hostname checked


def _size(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
