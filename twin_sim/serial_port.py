"""A pty-backed emulated serial device whose port appears under a stable symlink."""

from __future__ import annotations

import logging
import os
import pty
import tty
from pathlib import Path

_log = logging.getLogger(__name__)
TRANSMIT_BUFFER = 4096  # bytes waiting for the kernel's pty buffer, like a UART driver's FIFO


class EmulatedSerialPort:
    """The device end of a serial line: a pty master whose slave is published at ``link``.

    Writes never block. Bytes the kernel cannot take yet wait in a small transmit buffer, as
    in a UART's FIFO; a message that does not fit there (reader absent or too slow) is dropped
    whole and counted, so the line never carries half a message. ``unplug``/``replug``
    emulate pulling the USB cable: the link disappears, then points to a new device node.
    """

    def __init__(self, link: str | Path) -> None:
        self.link = Path(link)
        self.bytes_written = 0
        self.bytes_dropped = 0
        self.writes_dropped = 0
        self._master: int | None = None
        self._device: str | None = None
        self._pending = bytearray()

    @property
    def device(self) -> str | None:
        """The current slave device path (e.g. ``/dev/pts/7``), None while unplugged."""
        return self._device

    @property
    def bytes_pending(self) -> int:
        """Bytes accepted but not yet taken by the kernel."""
        return len(self._pending)

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def open(self) -> None:
        """Create the pty and point the link at it (atomically replacing any stale link)."""
        if self._master is not None:
            raise RuntimeError(f"{self.link} is already open")
        master, slave = pty.openpty()
        try:
            tty.setraw(slave)
            device = os.ttyname(slave)
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        staging = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        staging.unlink(missing_ok=True)
        staging.symlink_to(device)
        os.replace(staging, self.link)
        self._master, self._device = master, device
        _log.info("serial device %s -> %s", self.link, device)

    def write(self, data: bytes) -> bool:
        """Queue ``data`` for the line; return False if it was dropped (whole)."""
        if self._master is not None:
            self._flush()
        if self._master is None or len(self._pending) + len(data) > TRANSMIT_BUFFER:
            self._count_drop(len(data))
            return False
        self._pending += data
        self._flush()
        return True

    def _flush(self) -> None:
        master = self._master
        assert master is not None  # called while open
        while self._pending:
            try:
                written = os.write(master, self._pending)
            except (BlockingIOError, InterruptedError):
                return
            self.bytes_written += written
            del self._pending[:written]

    def _count_drop(self, size: int) -> None:
        self.writes_dropped += 1
        self.bytes_dropped += size

    def close(self) -> None:
        """Close the device and remove the link if it still points to it."""
        if self._master is None:
            return
        try:
            if os.readlink(self.link) == self._device:
                self.link.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            _log.warning("cannot remove %s: %s", self.link, error)
        os.close(self._master)
        self._master, self._device = None, None
        self._pending.clear()

    unplug = close

    def replug(self) -> None:
        """Reconnect as a new device node (a reader must reopen the link)."""
        self.close()
        self.open()
