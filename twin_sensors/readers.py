"""Background readers for device byte streams (serial ports, UDP) that reconnect on their own.

A reader thread opens its source, hands every chunk to ``on_data(chunk, receive_ns)`` and, when
the source fails or never appears, retries with exponential backoff. ``on_state(connected,
detail)`` is called once per change of state, never per failed attempt.
"""
from __future__ import annotations

import os
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from twin_core.config import describe
from twin_core.network import check_host
from twin_core.restart import Backoff
from twin_core.workers import Workers

DataCallback = Callable[[bytes, int], None]
StateCallback = Callable[[bool, str], None]
READ_TIMEOUT = 0.05  # s; bounds how long stop() waits for the reader thread
MAX_DATAGRAM = 65535
MAX_SERIAL_READ = 65536  # bytes taken from the port's buffer per wake-up


def reason(error: OSError | serial.SerialException) -> str:
    """The system's words for an error that carries an errno (pyserial repeats the port in its
    message), else the error's own message.
    """
    number = getattr(error, 'errno', None)
    return os.strerror(number) if isinstance(number, int) and number > 0 else str(error)


def reconnect_backoff() -> Backoff:
    """Delays between attempts to reach a device: 0.1 s, doubling up to 2 s, reset once connected."""
    return Backoff(initial=0.1, maximum=2.0)


class ReaderThread(ABC):
    """Opens a source, reads it in a thread until ``stop``, reopens it with backoff after failures."""

    def __init__(self, on_data: DataCallback, on_state: StateCallback,
                 clock: Callable[[], int] = time.time_ns, backoff: Backoff | None = None,
                 workers: Workers | None = None) -> None:
        self.on_data, self.on_state, self.clock = on_data, on_state, clock
        self.backoff = backoff or reconnect_backoff()
        self.workers = workers or Workers()
        self.connected: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    @abstractmethod
    def source(self) -> str:
        """A human-readable name of the source (port path, endpoint)."""

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _read(self) -> bytes:
        """The next chunk (b'' on timeout); raise OSError / SerialException when the source fails."""

    @abstractmethod
    def _close(self) -> None: ...

    def start(self) -> None:
        """Read in a supervised worker: an error in ``on_data`` restarts the reader, reported."""
        self._thread = self.workers.spawn(f'reader {self.source}', self._run, self._stop)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _set_state(self, connected: bool, detail: str) -> None:
        if connected != self.connected:
            self.connected = connected
            self.on_state(connected, detail)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._open()
            except (OSError, serial.SerialException) as error:
                self._set_state(False, f'cannot open {self.source}: {reason(error)}')
                self._stop.wait(self.backoff.delay())
                continue
            self.backoff.reset()
            self._set_state(True, f'opened {self.source}')
            try:
                while not self._stop.is_set():
                    chunk = self._read()
                    if chunk:
                        self.on_data(chunk, self.clock())
            except (OSError, serial.SerialException) as error:
                self._set_state(False, f'lost {self.source}: {error}')
            except Exception as error:  # the worker restarts the reader: until then no data flows
                self._set_state(False, f'reader failed: {type(error).__name__}: {error}')
                raise
            finally:
                self._close()


@dataclass(frozen=True)
class SerialConfig:
    """A serial port."""

    port: str = field(default='/dev/ttyUSB0', metadata=describe('Serial device (or a symlink to it).'))
    baud: int = field(default=921600, metadata=describe('Baud rate.', min=300, max=12_000_000))
    batch_period: float = field(default=0.0, metadata=describe(
        'Seconds to let lines gather after a read that brought data (0: read each line as it comes). '
        'Fewer wake-ups for a kHz stream; each line comes up to this much later, and receipt stamps '
        'are that much less exact (device stamps keep the fastest delivery: unaffected).', min=0.0, max=0.05))


class SerialReader(ReaderThread):
    """Reads whatever bytes are waiting (at least one, with a short timeout): keeps up with kHz line rates.

    pyserial opens and configures the port; the reads wait on its file descriptor with one ``poll``
    and take everything waiting in one ``os.read``, a third of the CPU per line of pyserial's
    ``read(in_waiting or 1)``, which wakes twice per line and builds a timeout object each call.
    """

    def __init__(self, config: SerialConfig, on_data: DataCallback, on_state: StateCallback,
                 clock: Callable[[], int] = time.time_ns, workers: Workers | None = None) -> None:
        super().__init__(on_data, on_state, clock, workers=workers)
        self.config = config
        self._port: serial.Serial | None = None
        self._poll = select.poll()
        self._gather = False  # the last read brought data: let the next lines gather first

    @property
    def source(self) -> str:
        return self.config.port

    def _open(self) -> None:
        self._port = serial.Serial(self.config.port, self.config.baud, timeout=READ_TIMEOUT)
        self._port.reset_input_buffer()  # a backlog would carry stale receive times
        self._poll = select.poll()
        self._poll.register(self._port.fileno(), select.POLLIN)

    def _read(self) -> bytes:
        assert self._port is not None
        if self._gather:
            time.sleep(self.config.batch_period)
        if not self._poll.poll(READ_TIMEOUT * 1000):
            self._gather = False
            return b''
        data = os.read(self._port.fileno(), MAX_SERIAL_READ)
        self._gather = self.config.batch_period > 0.0
        if not data:  # readable yet empty: the device went away (as pyserial reports it)
            raise serial.SerialException('device reports readiness to read but returned no data')
        return data

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


@dataclass(frozen=True)
class UdpConfig:
    """A bound UDP socket: the device sends its datagrams to this address and port."""

    host: str = field(default='127.0.0.1', metadata=describe(
        'Local IPv4 address to bind (the interface facing the device; 0.0.0.0: all).'))
    port: int = field(default=7502, metadata=describe('UDP port to bind.', min=1, max=65535))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


class UdpReader(ReaderThread):
    """Receives one datagram per chunk; a busy port is retried like a missing serial device."""

    def __init__(self, config: UdpConfig, on_data: DataCallback, on_state: StateCallback,
                 clock: Callable[[], int] = time.time_ns, workers: Workers | None = None) -> None:
        super().__init__(on_data, on_state, clock, workers=workers)
        self.config = config
        self._socket: socket.socket | None = None

    @property
    def source(self) -> str:
        return f'udp://{self.config.host}:{self.config.port}'

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.config.host, self.config.port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(READ_TIMEOUT)
        self._socket = sock

    def _read(self) -> bytes:
        assert self._socket is not None
        try:
            return self._socket.recv(MAX_DATAGRAM)
        except TimeoutError:
            return b''

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
