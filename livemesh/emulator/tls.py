"""TLS for the emulator: a given certificate, or a throwaway trustme CA (the SDK only speaks wss).

With ``--tls`` the CA's PEM is returned (and written to ``ca_out``) so a client can trust it,
e.g. the official SDK through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from livemesh.emulator.config import EmulatorConfig


def server_context(config: EmulatorConfig) -> tuple[ssl.SSLContext | None, bytes | None]:
    """The server's SSL context (None for plain ws/http) and the throwaway CA's PEM, if any."""
    if config.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.certfile, config.keyfile)
        context.set_alpn_protocols(["http/1.1"])
        context.options |= ssl.OP_NO_RENEGOTIATION
        return context, None
    if not config.tls:
        return None, None
    ca = trustme.CA()
    names = ["127.0.0.1", "localhost", "::1"]
    if config.host not in names:
        names.append(config.host)
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    # No renegotiation (TLS 1.2): past the handshake, the peer encrypts and decrypts with the
    # SSLObject itself (livemesh.transport.tls) and expects no handshake messages.
    context.options |= ssl.OP_NO_RENEGOTIATION
    pem: bytes = ca.cert_pem.bytes()
    if config.ca_out:
        Path(config.ca_out).write_bytes(pem)
    return context, pem
