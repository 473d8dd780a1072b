"""Network address rules: every socket the twin opens for a device or a test stays on loopback."""
from __future__ import annotations

import ipaddress
import socket


def require_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is ``localhost`` or an address in 127.0.0.0/8."""
    if host == 'localhost':
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f'host must be a loopback address, got {host!r}') from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"host must be in 127.0.0.0/8 or 'localhost', got {host!r}")


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
