"""The twin as an OPC UA server: asyncua on its own loop thread serving :class:`TwinAddressSpace`.

Security (``security.enabled``): the only endpoint is Basic256Sha256 Sign&Encrypt with the
server certificate; sessions need a user name and password from the users file, and the client
application certificate must be trusted by the trust directory (itself or its CA), else the
session is refused with BadCertificateUntrusted.

``update`` is thread-safe and never blocks on the network; the server loop writes the latest
values at ``write_rate_hz``. HistoryRead of ActualPosition variables is answered by a
:data:`HistorySource` (the twin state node's history, through the node shell).

Commands: with a :data:`CommandSink` the controller offers a writable SpeedOverrideSetpoint (%).
Only sessions of a logged-in user may write it (anonymous ones get BadUserAccessDenied); a write
that is not a finite Double within 0..100 % gets BadTypeMismatch or BadOutOfRange. Such a Write
request is refused as a whole, nothing in it is written, and the refusal is counted. Accepted
values go to the sink as 0..1, in the order written: the node shell publishes them as operator
requests to the actuation node, which alone decides what the cell is told.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.user_managers import UserManager

from twin_bridge.opcua_config import SecurityConfig, ServerConfig
from twin_bridge.opcua_space import TwinAddressSpace, from_datetime, speed_override_command, to_datetime
from twin_core.dead_letters import DeadLetters
from twin_core.opcua import ServerThread, node_id
from twin_core.stamps import to_seconds
from twin_core.workers import Workers

_log = logging.getLogger(__name__)
for _name in ('asyncua', 'asyncua.server', 'asyncua.common'):
    logging.getLogger(_name).setLevel(logging.WARNING)
# The trust store logs a traceback per untrusted certificate; the validator's status code says it all.
logging.getLogger('asyncuagds.validate').setLevel(logging.CRITICAL)

HistorySource = Callable[[str, int, int, int], tuple[Sequence[float], Sequence[float]]]
"""(path e.g. joint_1.position, start ns, end ns (0: newest), max samples (0: all)) -> (stamps s, values)."""
CommandSink = Callable[[float, str], None]
"""Takes an accepted speed override request (0..1) and the user who wrote it; called on the server
loop, must not block."""
PBKDF2_ROUNDS = 100_000


def _data_value(variant: ua.Variant, source: datetime, server: datetime) -> ua.DataValue:
    # DataValue's timestamps are annotated as asyncua's ua.DateTime class; it takes any datetime.
    return ua.DataValue(variant, SourceTimestamp=source, ServerTimestamp=server)  # type: ignore[arg-type]


def password_entry(user: str, password: str) -> str:
    """A users-file line ``name:salt_hex:pbkdf2_sha256_hex`` for ``password``."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, PBKDF2_ROUNDS)
    return f'{user}:{salt.hex()}:{digest.hex()}'


class PasswordUserManager(UserManager):
    """Accepts a session whose user name and password match an entry of the users file."""

    def __init__(self, users_file: Path) -> None:
        self._users: dict[str, tuple[bytes, bytes]] = {}
        for line in users_file.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith('#'):
                name, salt, digest = line.strip().split(':')
                self._users[name] = (bytes.fromhex(salt), bytes.fromhex(digest))

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        salt, digest = self._users.get(username or '', (b'', b''))
        attempt = hashlib.pbkdf2_hmac('sha256', (password or '').encode(), salt or b'-', PBKDF2_ROUNDS)
        if not salt or not hmac.compare_digest(attempt, digest):
            _log.warning('rejected OPC UA session of user %r', username)
            return None
        return User(role=UserRole.User, name=username)


class _ServiceHistory(HistoryStorageInterface):
    """HistoryRead backend that asks a :data:`HistorySource` (in a worker thread: it may block)."""

    def __init__(self, source: HistorySource, paths: Mapping[ua.NodeId, str], on_error: Callable[[str], None]) -> None:
        super().__init__()
        self.source, self.paths, self.on_error = source, paths, on_error

    async def init(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def read_node_history(self, node_id: ua.NodeId, start: datetime | None, end: datetime | None,
                                nb_values: int) -> tuple[list[ua.DataValue], datetime | None]:
        path = self.paths.get(node_id)
        if path is None:
            return [], None
        try:
            stamps, values = await asyncio.to_thread(self.source, path, from_datetime(start), from_datetime(end),
                                                     nb_values)
        except Exception as error:  # reported in the node's diagnostics; the client gets no data
            self.on_error(f'history of {path}: {error}')
            return [], None
        return [_data_value(ua.Variant(float(v), ua.VariantType.Double), to_datetime(t), to_datetime(t))
                for t, v in zip(stamps, values)], None


@dataclass(frozen=True)
class ServerStats:
    """What the server has done so far."""

    running: bool
    clients: int
    writes: int
    last_error: str
    commands: int = 0  # setpoint writes accepted and handed to the command sink
    rejected_commands: int = 0  # setpoint writes refused with a Bad status code


class TwinServer(ServerThread):
    """OPC UA server of the twin (one thread, one asyncio loop)."""

    def __init__(self, config: ServerConfig, history: HistorySource | None = None,
                 speed_override: CommandSink | None = None, workers: Workers | None = None,
                 dead_letters: DeadLetters | None = None) -> None:
        super().__init__('twin-opcua', 1.0 / config.write_rate_hz, workers)
        self.dead_letters = dead_letters
        self.config, self.history, self.speed_override = config, history, speed_override
        self.space = TwinAddressSpace(config, commands=speed_override is not None)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[object, datetime | None]] = {}
        self._ids: dict[str, ua.NodeId] = {}
        self._clients = 0
        self._writes = 0
        self._commands = self._rejected_commands = 0
        self._last_error = ''
        self._running = False

    def update(self, values: Mapping[str, object], stamp_ns: int = 0) -> None:
        """Hand over ``{node_id: value}`` (stamped ``stamp_ns`` since the epoch, 0: none) for the next write."""
        source = to_datetime(to_seconds(stamp_ns)) if stamp_ns else None
        with self._lock:
            self._pending.update((key, (value, source)) for key, value in values.items())

    def stats(self) -> ServerStats:
        with self._lock:
            return ServerStats(self._running, self._clients, self._writes, self._last_error,
                               self._commands, self._rejected_commands)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self._running = False

    def _error(self, message: str) -> None:
        _log.warning('%s', message)
        with self._lock:
            self._last_error = message

    # ----------------------------------------------------------------- server thread

    async def _start_server(self) -> Server:
        security = self.config.security
        server = Server(user_manager=PasswordUserManager(_path(security.users_file)) if security.enabled else None)
        server.disable_clock()  # its 1 s clock task would delay stop() by up to a second
        await server.init()
        server.set_endpoint(self.config.endpoint)
        server.set_server_name('ros2-digital-twin')
        await server.set_application_uri(self.config.application_uri)
        if security.enabled:
            await self._secure(server, security)
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        await self._build_address_space(server)
        if self.speed_override is not None:
            server.subscribe_server_callback(CallbackType.PreWrite, self._take_commands)
        await server.start()
        self._running = True
        _log.info('twin OPC UA server at %s (security %s)', self.config.endpoint,
                  'Basic256Sha256 Sign&Encrypt' if security.enabled else 'none')
        return server

    @staticmethod
    async def _secure(server: Server, security: SecurityConfig) -> None:
        await server.load_certificate(str(_path(security.certificate)))
        await server.load_private_key(str(_path(security.private_key)))
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.UserNameIdentityToken])
        trust_store = TrustStore([_path(security.trust_dir)], [])
        await trust_store.load()
        server.set_certificate_validator(CertificateValidator(
            CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT, trust_store))

    async def _build_address_space(self, server: Server) -> None:
        index = await server.register_namespace(self.config.namespace)
        folders: dict[tuple[str, ...], Any] = {(): server.nodes.objects}

        async def folder(path: tuple[str, ...]) -> Any:
            if path not in folders:
                parent = await folder(path[:-1])
                folders[path] = await parent.add_object(node_id('/'.join(path), index),
                                                        ua.QualifiedName(path[-1], index))
            return folders[path]

        history_paths: dict[ua.NodeId, str] = {}
        for key, variable in self.space.variables.items():
            parent = await folder(variable.path[:-1])
            node = await parent.add_variable(node_id(key, index), ua.QualifiedName(variable.path[-1], index),
                                             ua.Variant(variable.initial, variable.variant))
            if variable.unit is not None:
                await node.add_property(index, 'EngineeringUnits', variable.unit)
            if variable.limits is not None:
                await node.add_property(index, 'EURange', ua.Range(*variable.limits))
            if variable.writable:
                await node.set_writable()
            if variable.history and self.history is not None:
                await node.write_attribute(ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True)))
                await node.set_attr_bit(ua.AttributeIds.AccessLevel, ua.AccessLevel.HistoryRead)
                await node.set_attr_bit(ua.AttributeIds.UserAccessLevel, ua.AccessLevel.HistoryRead)
                history_paths[node.nodeid] = variable.history
            self._ids[key] = node.nodeid
        if self.history is not None:
            server.iserver.history_manager.set_storage(_ServiceHistory(self.history, history_paths, self._error))

    def _take_commands(self, event: ServerItemCallback, _service: object) -> None:
        """PreWrite: check every setpoint write of a client's request, then hand them to the sink.

        Raising refuses the whole request with that status code before anything is written.
        """
        setpoint = self._ids.get(self.space.speed_override_setpoint)
        items = [item for item in event.request_params.NodesToWrite
                 if item.NodeId == setpoint and item.AttributeId == ua.AttributeIds.Value]
        if not items or not event.is_external:
            return
        commands: list[float] = []
        for item in items:
            try:
                if not _logged_in(event.user):
                    raise PermissionError('SpeedOverrideSetpoint: anonymous sessions may not command the cell')
                commands.append(speed_override_command(item.Value.Value))
            except (PermissionError, TypeError, ValueError) as error:
                self._refuse(_REASON[type(error)], str(error), item.Value.Value)
                raise _STATUS[type(error)] from None
        assert self.speed_override is not None
        for command in commands:
            try:
                self.speed_override(command, event.user.name)
            except Exception as error:  # e.g. the node shutting down; the client must not believe it went through
                self._refuse('forward_failed', f'SpeedOverrideSetpoint: cannot forward {command:g}: {error}', command)
                raise ua.uaerrors.BadInternalError from None
            with self._lock:
                self._commands += 1

    def _refuse(self, reason: str, message: str, value: object) -> None:
        self._error(message)
        with self._lock:
            self._rejected_commands += 1
        if self.dead_letters is not None:
            self.dead_letters.add('opcua SpeedOverrideSetpoint', reason, message, repr(value)[:1000])

    async def _tick(self, server: Server) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._clients = len(server.bserver.clients) if server.bserver is not None else 0
        now = datetime.now(UTC)
        written = 0
        for key, (value, source) in pending.items():
            variable = self.space.variables.get(key)
            if variable is None:
                self._error(f'no variable {key}')
                continue
            await server.write_attribute_value(self._ids[key], _data_value(
                ua.Variant(value, variable.variant), source or now, now))
            written += 1
        with self._lock:
            self._writes += written


_STATUS: dict[type[Exception], type[ua.UaStatusCodeError]] = {
    PermissionError: ua.uaerrors.BadUserAccessDenied, TypeError: ua.uaerrors.BadTypeMismatch,
    ValueError: ua.uaerrors.BadOutOfRange}
_REASON = {PermissionError: 'not_logged_in', TypeError: 'wrong_type', ValueError: 'out_of_range'}


def _logged_in(user: User | None) -> bool:
    """A session of a user from the users file (anonymous sessions have no name)."""
    return user is not None and user.role in (UserRole.User, UserRole.Admin) and bool(user.name)


def _path(name: str) -> Path:
    return Path(name).expanduser()

