"""OPC UA test helpers: certificates and users for the twin server, and a logged-in secure client."""
from __future__ import annotations

import asyncio
from pathlib import Path

from asyncua import Client
from asyncua.crypto import cert_gen
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

from twin_bridge.opcua_server import password_entry

CLIENT_URI = 'urn:test:scada'
USER, PASSWORD = 'scada', 's3cret'


def make_certificates(directory: Path, server_uri: str) -> dict[str, Path]:
    """Server, trusted client and untrusted client certificates (DER) and keys (PEM), and a users file."""
    (directory / 'trusted').mkdir(parents=True)
    files = {'server_cert': directory / 'server.der', 'server_key': directory / 'server.pem',
             'client_cert': directory / 'trusted' / 'scada.der', 'client_key': directory / 'scada.pem',
             'stranger_cert': directory / 'stranger.der', 'stranger_key': directory / 'stranger.pem'}

    async def generate() -> None:
        for name, uri, use in (('server', server_uri, ExtendedKeyUsageOID.SERVER_AUTH),
                               ('client', CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
                               ('stranger', CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH)):
            await cert_gen.setup_self_signed_certificate(files[f'{name}_key'], files[f'{name}_cert'], uri,
                                                         'localhost', [use], {})
    asyncio.run(generate())
    files['users'] = directory / 'users'
    files['users'].write_text(password_entry(USER, PASSWORD) + '\n')
    return files


async def connect(endpoint: str, files: dict[str, Path], who: str = 'client', password: str = PASSWORD) -> Client:
    """A connected Basic256Sha256 Sign&Encrypt client logged in as the test user."""
    client = Client(endpoint, timeout=5)
    client.application_uri = CLIENT_URI
    await client.set_security(SecurityPolicyBasic256Sha256, str(files[f'{who}_cert']), str(files[f'{who}_key']),
                              server_certificate=str(files['server_cert']))
    client.set_user(USER)
    client.set_password(password)
    await client.connect()
    return client
