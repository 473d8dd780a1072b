"""A real Mosquitto broker on 127.0.0.1 for tests and benchmarks, and test certificates.

As root, mosquitto drops to user ``mosquitto``: its directory is world-readable and its
persistence directory belongs to that user.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import CONFIG_DIR, free_port

MOSQUITTO = shutil.which('mosquitto') or '/usr/sbin/mosquitto'


def bridge_params(path: Path, port: int, outbox: Path, overrides: dict[str, Any]) -> Path:
    """config/mqtt_bridge.yaml with the broker port, a private outbox and ``overrides`` merged in."""
    document = yaml.safe_load((CONFIG_DIR / 'mqtt_bridge.yaml').read_text())
    params = document['mqtt_bridge']['ros__parameters']
    params['broker']['port'] = port
    params['outbox']['directory'] = str(outbox)
    params['client'].update(reconnect_min=0.2, reconnect_max=1.0)
    for section, values in overrides.items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    path.write_text(yaml.safe_dump(document))
    return path


class Mosquitto:
    """A broker process with persistence; ``restart`` keeps the port, sessions and queues."""

    def __init__(self, directory: Path, settings: str = '', password: tuple[str, str] | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        data = directory / 'data'
        data.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam('mosquitto')
            os.chown(data, user.pw_uid, user.pw_gid)
        lines = [f'listener {self.port} 127.0.0.1', 'persistence true', f'persistence_location {data}/',
                 'max_queued_messages 100000', 'set_tcp_nodelay true', 'log_dest stdout', settings]
        if password:
            password_file = directory / 'passwords'
            password_file.write_text('')
            subprocess.run(['mosquitto_passwd', '-b', str(password_file), *password], check=True)
            password_file.chmod(0o644)
            lines += [f'password_file {password_file}', 'allow_anonymous false']
        else:
            lines.append('allow_anonymous true')
        self.conf = directory / 'mosquitto.conf'
        self.conf.write_text('\n'.join(lines) + '\n')
        self.log = directory / 'mosquitto.log'
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, 'a') as log:
            self.process = subprocess.Popen([MOSQUITTO, '-c', str(self.conf)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'mosquitto exited: {self.log.read_text()}')
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError('mosquitto did not start listening')

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistent state), SIGKILL if it will not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def make_certificates(directory: Path, name: str) -> dict[str, Path]:
    """A self-signed CA ``<name>-ca`` and a server (SAN 127.0.0.1) and a client certificate it signs."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {kind: directory / f'{name}-{kind}' for kind in
             ('ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key')}
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    run = lambda *args: subprocess.run(['openssl', *args], check=True, capture_output=True)  # noqa: E731
    run('req', '-x509', *key, '-keyout', str(paths['ca.key']), '-out', str(paths['ca.crt']),
        '-days', '1', '-subj', f'/CN={name}-ca')
    extensions = directory / f'{name}-san.ext'
    extensions.write_text('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    for kind in ('server', 'client'):
        request = directory / f'{name}-{kind}.csr'
        run('req', *key, '-keyout', str(paths[f'{kind}.key']), '-out', str(request),
            '-subj', f'/CN={name}-{kind}')
        run('x509', '-req', '-in', str(request), '-CA', str(paths['ca.crt']), '-CAkey', str(paths['ca.key']),
            '-CAcreateserial', '-out', str(paths[f'{kind}.crt']), '-days', '1', '-extfile', str(extensions))
    for path in paths.values():
        path.chmod(0o644)  # test keys, read by the mosquitto user
    return paths


@pytest.fixture
def broker_directory() -> Iterator[Path]:
    """A directory the mosquitto user can read (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix='twin-mosquitto-'))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def mosquitto(broker_directory: Path) -> Iterator:
    """``mosquitto(settings='', password=None)`` starts a broker; all are stopped at teardown."""
    brokers: list[Mosquitto] = []

    def start(settings: str = '', password: tuple[str, str] | None = None) -> Mosquitto:
        directory = broker_directory / f'broker{len(brokers)}'
        directory.mkdir(mode=0o755)
        broker = Mosquitto(directory, settings, password)
        brokers.append(broker)
        broker.start()
        return broker

    yield start
    for broker in brokers:
        broker.stop()
