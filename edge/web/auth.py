"""Who may see the live view: the token, its cookie, and the Host header check.

* Bound to a loopback address (the default) the view needs no token: reach it
  from elsewhere through ``ssh -L 8080:127.0.0.1:8080 pi@board``.
* Bound to anything else it requires one (generated and printed when not given).
  ``?token=T`` is accepted once and turned into an HttpOnly, SameSite=Strict cookie;
  tokens are compared in constant time (:func:`hmac.compare_digest`).
* The Host header must name this machine: a loopback name, an IP literal (when
  bound to all addresses or to that IP), the host name, or an ``--allow-host``.
  That stops DNS rebinding, where a page from elsewhere reaches a loopback server
  through a name that resolves to 127.0.0.1.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

COOKIE = "hybrid_edge_token"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def host_name(header: str) -> str:
    """The host part of a Host header (``[::1]:8080`` -> ``::1``, ``pi:8080`` -> ``pi``), lower-case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Access:
    """The access policy of one server."""

    bind: str
    token: str | None
    allow_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_bind(cls, bind: str, token: str | None, allow_hosts: tuple[str, ...] = ()) -> "Access":
        """Loopback binds may go without a token; any other bind gets one (a new one when ``token`` is None)."""
        if token is None and not is_loopback(bind):
            token = new_token()
        names = {h.lower() for h in allow_hosts}
        if not is_loopback(bind):
            hostname = socket.gethostname().lower()
            names |= {hostname, f"{hostname}.local"}
        return cls(bind, token or None, frozenset(names))

    def host_allowed(self, header: str | None) -> bool:
        """Does the Host header name this server (see the module docstring)?"""
        if not header:
            return False
        host = host_name(header)
        if is_loopback(host) or host in self.allow_hosts:
            return True
        if _is_ip(host):
            return self.bind in ("0.0.0.0", "::", "") or host == self.bind.strip("[]").lower()
        return False

    def check(self, query_token: str | None, cookie_header: str | None) -> int:
        """200 when allowed, 401 when no token was presented, 403 for a wrong one."""
        if self.token is None:
            return 200
        presented = query_token if query_token is not None else cookie_token(cookie_header)
        if presented is None:
            return 401
        return 200 if hmac.compare_digest(presented.encode(), self.token.encode()) else 403

    def set_cookie(self) -> str:
        """The Set-Cookie value that carries the token from now on."""
        return f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"


def cookie_token(header: str | None) -> str | None:
    """The token cookie's value, if the request has one."""
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None
