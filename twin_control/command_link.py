"""UDP client of the cell's command channel: numbered commands, acks, retries with the same seq.

The socket is non-blocking and :meth:`CommandLink.poll` is called from a timer, so nothing ever
waits on the network. A command is sent again (same datagram, same seq: the cell may apply it
twice, which every command tolerates) until acked or out of attempts. A newer command of the same
kind (speed, run state, joint positions) supersedes an unacked older one, so a late retry can never
undo it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from twin_control.config import LinkConfig
from twin_control.safety import CellCommand
from twin_core.levels import Level
from twin_core.network import UdpEndpoint
from twin_core.status import Status
from twin_sensors.wire import MAX_DATAGRAM, CommandName, WireError, encode_command, make_command, parse_ack

T = TypeVar('T')
TIMEOUT = 'timeout'
KIND = {CommandName.STOP: 'run', CommandName.RESUME: 'run', CommandName.SPEED_OVERRIDE: 'speed',
        CommandName.JOINT_POSITIONS: 'joints'}


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """How a command ended: acked (``ok`` or the cell's ``error``), lost (``timeout``) or superseded."""

    seq: int
    command: CellCommand
    tag: T
    ok: bool
    error: str
    attempts: int
    round_trip: float | None  # s from the first send to the ack; None without an ack


@dataclass
class _Pending(Generic[T]):
    command: CellCommand
    tag: T
    datagram: bytes
    first_sent: float
    last_sent: float
    attempts: int = 1


@dataclass
class LinkStats:
    """Counters and the latest ack, for diagnostics."""

    sent: int = 0
    retries: int = 0
    acked: int = 0
    rejected: int = 0
    lost: int = 0
    superseded: int = 0
    unexpected: int = 0  # late acks, acks of unknown seqs, malformed replies
    last_ack: float | None = None
    last_round_trip: float | None = None
    last_error: str = ''


class CommandLink(UdpEndpoint, Generic[T]):
    """Sends commands to ``config.host:config.port`` and matches the acks; ``tag`` travels along."""

    def __init__(self, config: LinkConfig, first_seq: int = 1) -> None:
        self.config = config
        self.stats = LinkStats()
        self.up: bool | None = None  # None until the first command ends
        self._seq = first_seq
        self._pending: dict[int, _Pending[T]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def send(self, command: CellCommand, tag: T, now: float) -> tuple[int, list[Outcome[T]]]:
        """Send ``command``; return its seq and the outcomes of the commands it supersedes."""
        seq, self._seq = self._seq, self._seq + 1
        datagram = encode_command(make_command(seq, command.name, command.value))
        superseded = [self._finish(old, False, f'superseded by seq {seq}')
                      for old, pending in list(self._pending.items())
                      if KIND[pending.command.name] == KIND[command.name]]
        self.stats.superseded += len(superseded)
        self._pending[seq] = _Pending(command, tag, datagram, now, now)
        self._transmit(datagram)
        self.stats.sent += 1
        return seq, superseded

    def health(self, now: float) -> Status:
        """ERROR while commands go unacked; the counters and the latest ack (``now``: monotonic s)."""
        stats, address = self.stats, f'{self.config.host}:{self.config.port}'
        if self.up is None:
            level, message = Level.OK, f'{address}: no command sent yet'
        elif self.up:
            level, message = Level.OK, f'{address}: acked'
        else:
            level, message = Level.ERROR, f'{address}: commands not acked ({stats.last_error or "timeout"})'
        return Status('link', level, message, {
            'sent': stats.sent, 'retries': stats.retries, 'acked': stats.acked, 'rejected': stats.rejected,
            'lost': stats.lost, 'superseded': stats.superseded, 'unexpected': stats.unexpected,
            'in_flight': self.in_flight, 'last_ack_age_s': 'never' if stats.last_ack is None else now - stats.last_ack,
            'last_round_trip_ms': 'n/a' if stats.last_round_trip is None else stats.last_round_trip * 1e3,
            'last_error': stats.last_error}, address)

    def poll(self, now: float) -> list[Outcome[T]]:
        """Read every ack waiting, resend or give up on overdue commands; return what ended."""
        ended = self._receive(now)
        for seq, pending in list(self._pending.items()):
            if now - pending.last_sent < self.config.ack_timeout:
                continue
            if pending.attempts >= self.config.attempts:
                self.stats.lost += 1
                self.up = False
                ended.append(self._finish(seq, False, TIMEOUT))
            else:
                pending.attempts += 1
                pending.last_sent = now
                self.stats.retries += 1
                self._transmit(pending.datagram)
        return ended

    def _receive(self, now: float) -> list[Outcome[T]]:
        ended = []
        while self._socket is not None:
            try:
                datagram = self._socket.recv(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:  # nothing listens on the command port
                self.stats.last_error = 'connection refused'
                continue
            try:
                ack = parse_ack(datagram)
            except WireError as error:
                self.stats.unexpected += 1
                self.stats.last_error = str(error)
                continue
            if ack.seq not in self._pending:
                self.stats.unexpected += 1
                continue
            self.up = True
            self.stats.last_ack = now
            self.stats.acked += ack.ok
            self.stats.rejected += not ack.ok
            if not ack.ok:
                self.stats.last_error = ack.error or 'rejected'
            self.stats.last_round_trip = now - self._pending[ack.seq].first_sent
            ended.append(self._finish(ack.seq, ack.ok, ack.error or '', self.stats.last_round_trip))
        return ended

    def _finish(self, seq: int, ok: bool, error: str, round_trip: float | None = None) -> Outcome[T]:
        pending = self._pending.pop(seq)
        return Outcome(seq, pending.command, pending.tag, ok, error, pending.attempts, round_trip)

    def _transmit(self, datagram: bytes) -> None:
        if self._socket is None:
            raise RuntimeError('command link is not open')
        try:
            self._socket.sendto(datagram, (self.config.host, self.config.port))
        except OSError as error:  # retried like a lost datagram
            self.stats.last_error = f'send failed: {error}'
