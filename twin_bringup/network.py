"""Network address rules: every socket the twin opens for a device or a test stays on loopback."""
from __future__ import annotations

import ipaddress


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
