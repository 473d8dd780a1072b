"""asyncua helpers shared by the twin's OPC UA servers: a server on its own asyncio loop in a
background thread, string node ids, and engineering units by their UNECE Recommendation 20 codes.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future

from asyncua import Server, ua

from twin_core.workers import Workers

_log = logging.getLogger(__name__)

UNECE_NAMESPACE = 'http://www.opcfoundation.org/UA/units/un/cefact'


def engineering_units(code: str, symbol: str, description: str) -> ua.EUInformation:
    """The ``EngineeringUnits`` value of a UNECE unit, e.g. ``('CEL', '°C', 'degree Celsius')``."""
    return ua.EUInformation(NamespaceUri=UNECE_NAMESPACE, UnitId=int.from_bytes(code.encode('ascii'), 'big'),
                            DisplayName=ua.LocalizedText(symbol), Description=ua.LocalizedText(description))


def node_id(identifier: str, namespace: int) -> ua.NodeId:
    """The string node id ``ns=<namespace>;s=<identifier>``."""
    # asyncua annotates NodeId's fields with its OPC UA type classes (ua.String, ua.Int16), yet takes
    # plain str and int as its own code passes them.
    return ua.NodeId(identifier, namespace)  # type: ignore[arg-type]


class ServerThread(ABC):
    """An asyncua server on its own loop in a supervised worker; ``_tick`` runs every ``period`` s.

    If ``_tick`` raises, the server stops, the failure goes to the :class:`Workers` (reported) and
    the worker starts the server again after a backoff.
    """

    def __init__(self, name: str, period: float, workers: Workers | None = None) -> None:
        self.name, self.period = name, period
        self.workers = workers or Workers()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop = threading.Event()
        self._ready: Future[None] = Future()

    @abstractmethod
    async def _start_server(self) -> Server:
        """Build, configure and start the server (runs on the server loop)."""

    @abstractmethod
    async def _tick(self, server: Server) -> None:
        """Periodic work on the server loop, e.g. writing the latest values."""

    def start(self, timeout: float = 10.0) -> None:
        """Start the server worker; return once the endpoint accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f'{self.name} already started')
        self._thread = self.workers.spawn(self.name, self._run, self._stop)
        try:
            self._ready.result(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and join its thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        if self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop has ended (the worker is between runs)
                pass
        thread.join(timeout)
        if thread.is_alive():
            _log.error('%s thread did not stop within %.1f s', self.name, timeout)

    def _run(self) -> None:
        if self._ready.done():  # a restart: nobody waits for this run's start
            self._ready = Future()
        asyncio.run(self._serve(self._ready))
        if not self._stop.is_set() and (error := self._ready.exception()) is not None:
            raise error

    async def _serve(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await self._start_server()
        except Exception as error:  # reported by start() (first run) or by the worker (restarts)
            ready.set_exception(error)
            return
        try:
            ready.set_result(None)
            while not self._stopping.is_set():
                await self._tick(server)
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.period)
                except TimeoutError:
                    pass
        finally:
            await server.stop()
