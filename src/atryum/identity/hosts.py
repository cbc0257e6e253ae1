"""The Host allow-list (DNS rebinding) and the no-auth-means-loopback rule (identity.md §3-4).

A page on `evil.example` that re-points its name to 127.0.0.1 reaches a local Atryum with
`Host: evil.example:8080`; refusing Host names Atryum does not serve stops it. Served names come
from `public_base_url`, the listen address and `[server] allowed_hosts`; a loopback listen address
serves `localhost`, `127.0.0.1` and `[::1]`.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from atryum.config import Config

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class ExposureError(Exception):
    """Atryum would serve operator routes without authentication beyond this machine."""


def _listen_host(config: Config) -> str:
    return config.server.listen_addr.rsplit(":", 1)[0].strip("[]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_enabled(config: Config) -> bool:
    return any(block.enabled for block in config.auth)


def operators_must_authenticate(config: Config) -> bool:
    return auth_enabled(config) and not config.server.allow_unauthenticated


def check_exposure(config: Config) -> str | None:
    """Raise when listening beyond loopback with nothing authenticating operators; return the
    warning to log at every start when `allow_unauthenticated` makes that an explicit choice."""
    host = _listen_host(config)
    if auth_enabled(config) and not config.server.allow_unauthenticated:
        return None
    if not auth_enabled(config) and is_loopback(host):
        return None
    if config.server.allow_unauthenticated:
        return (
            "operator routes are served WITHOUT authentication ([server] allow_unauthenticated "
            f"= true, listening on {config.server.listen_addr}); anyone who reaches this address "
            "can change rules and approve calls"
        )
    raise ExposureError(
        f"refusing to start: listen_addr {config.server.listen_addr!r} is not a loopback address "
        "and no [[auth]] block is enabled, so anyone who reaches it could change rules and "
        "approve calls. Enable an [[auth]] block (identity.md), listen on 127.0.0.1, or set "
        "[server] allow_unauthenticated = true if something in front of Atryum authenticates "
        "operators."
    )


def _split(hostport: str) -> tuple[str, str]:
    """`host[:port]` (with `[v6]`) → (lower-case host without brackets, port or '')."""
    hostport = hostport.strip().lower()
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest.removeprefix(":")
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    return hostport, ""


class HostAllowList:
    def __init__(self, config: Config) -> None:
        names: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        public = urlsplit(config.server.public_base_url).netloc
        entries = [*config.server.allowed_hosts, public] if public else config.server.allowed_hosts
        for entry in entries:
            host, port = _split(entry)
            if port:
                pairs.add((host, port))
            elif host:
                names.add(host)
        listen = _listen_host(config).lower()
        if listen in ("", "0.0.0.0", "::"):
            # all interfaces: the loopback names still reach it; others come from the config
            names.update(LOOPBACK_NAMES)
        elif is_loopback(listen):
            names.update(LOOPBACK_NAMES)
        else:
            names.add(listen)
        self.names = frozenset(names)
        self.pairs = frozenset(pairs)

    def allows(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host, port = _split(host_header)
        return host in self.names or (host, port) in self.pairs
