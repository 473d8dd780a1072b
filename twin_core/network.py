"""Network addresses in configuration: host and endpoint checks, and a UDP socket helper.

Devices, PLCs and brokers may be anywhere on the cell's network: these checks only reject
values that cannot name a host (typos, a scheme or port pasted into a host field), never an
address because it is not local.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

_LABEL = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$')
_LOOPBACK_NAMES = frozenset({'localhost', 'localhost.localdomain'})


def check_host(host: str, *, ipv4_only: bool = False) -> str:
    """Return ``host`` if it is an IP address or a DNS host name; raise ValueError otherwise.

    With ``ipv4_only`` (the value feeds an IPv4 socket) an IPv6 address is rejected too.
    Names are checked for their shape only, not resolved: DNS may not be up yet.
    """
    if not isinstance(host, str) or not host:
        raise ValueError('host must be an IP address or a host name, got an empty value')
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if ipv4_only and address.version != 4:
            raise ValueError(f'host must be an IPv4 address or a host name (the socket is IPv4), got {host!r}')
        return host
    if ':' in host or '/' in host:
        raise ValueError(f'host must be an IP address or a host name without scheme or port, got {host!r}')
    labels = host.removesuffix('.').split('.')
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f'host must be an IP address or a host name (letters, digits, "-", "_", "."), got {host!r}')
    if labels[-1].isdigit():  # all-numeric: meant as an IPv4 address, e.g. 192.168.1.300 or 10.0.1
        raise ValueError(f'host {host!r} is not a valid IPv4 address')
    return host


def check_opcua_endpoint(endpoint: str) -> str:
    """Return the host of an ``opc.tcp://<host>:<port>[/path]`` URL; raise ValueError otherwise."""
    shape = f'endpoint must look like opc.tcp://<host>:<port>/<path>, got {endpoint!r}'
    url = urlsplit(endpoint)
    try:
        port = url.port
    except ValueError:  # not a number, or beyond 65535
        raise ValueError(f'{shape}: the port must be a number in 1..65535') from None
    if url.scheme != 'opc.tcp' or not url.hostname:
        raise ValueError(shape)
    if port is None:
        raise ValueError(f'{shape}: the port is missing (OPC UA servers usually listen on 4840)')
    if port == 0:
        raise ValueError(f'{shape}: the port must be a number in 1..65535')
    try:
        return check_host(url.hostname)
    except ValueError as error:
        raise ValueError(f'endpoint {endpoint!r}: {error}') from None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1: reachable from this machine only."""
    if host.lower().removesuffix('.') in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UdpEndpoint:
    """A non-blocking UDP socket, opened and closed with its owner."""

    _socket: socket.socket | None = None

    def open(self) -> None:
        """Create the socket (unbound: the system picks the local port)."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def close(self) -> None:
        """Close the socket; harmless when it is not open."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
