"""TLS as a state machine with no I/O: an ``ssl.SSLObject`` over two ``ssl.MemoryBIO``.

This is the mechanism ``trio.SSLStream`` itself is built on, used here through the standard
library's public API only (``SSLContext.wrap_bio``): ciphertext from the socket is fed in,
plaintext comes out; plaintext goes in, records to write come out. Whoever owns the socket
(:class:`~livemesh.transport.sockets.SocketIO`) drives it, so every byte of a connection passes
through code that livemesh owns, and no library's internals are involved.

What it covers:

* the handshake (:meth:`TlsState.handshake`), with certificate and host name verification as the
  context says (on in every default context): a refusal raises ``ssl.SSLCertVerificationError``;
* records decrypted in batches (:meth:`TlsState.decrypt`: every complete record at once), and
  what TLS writes while reading (a TLS 1.3 KeyUpdate answer, a post-handshake certificate, a
  session ticket on the server side) left in :attr:`TlsState.outgoing` for the owner to send;
* the end of the stream: the peer's close_notify, or a TCP EOF without one (taken as an end too,
  as ``https_compatible`` streams do: the WebSocket's own close frame says whether the end was
  clean), or an SSL error (the connection is broken);
* session resumption: a session offered at the start, and the session (with its TLS 1.3 ticket)
  read back afterwards.
"""

from __future__ import annotations

import ssl
from typing import Final

__all__ = ["TLS_RECORD_SIZE", "TlsState", "is_tls_eof"]

TLS_RECORD_SIZE: Final = 16384
"""The most plaintext one TLS record holds."""


def is_tls_eof(exc: BaseException) -> bool:
    """True for the peer closing TCP without close_notify (``SSLEOFError``; OpenSSL 3 may raise a
    plain ``SSLError`` naming ``UNEXPECTED_EOF_WHILE_READING``)."""
    return isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF_WHILE_READING" in str(exc)


class TlsState:
    """One TLS connection's state, client or server side.

    Args:
        context: The context (a client's verifies the server's certificate and, with
            ``check_hostname``, its name).
        server_side: True for the server end.
        server_hostname: The name to verify and to send as SNI (client side).
        session: A session to offer for resumption (client side).
    """

    __slots__ = ("end", "incoming", "outgoing", "ssl_object")

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> None:
        self.incoming = ssl.MemoryBIO()
        """Ciphertext received and not yet decrypted."""
        self.outgoing = ssl.MemoryBIO()
        """Records TLS wrote (handshake, encrypted data, answers) and nobody sent yet."""
        self.ssl_object = context.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )
        self.end: BaseException | None = None
        """How the stream ended, kept once seen: an ``SSLZeroReturnError`` made for the peer's
        close_notify, an EOF without it, or the SSL error that broke the connection."""

    def __repr__(self) -> str:
        return f"<TlsState version={self.ssl_object.version()} ended={self.end is not None}>"

    # ------------------------------------------------------------------ handshake

    def handshake(self) -> bool:
        """One step of the handshake with the bytes fed so far.

        Returns:
            True once the handshake is complete; False if it needs more bytes from the peer (send
            :attr:`outgoing` first: it may hold this side's next flight).

        Raises:
            ssl.SSLCertVerificationError: The peer's certificate (or its name) was refused.
            ssl.SSLError: Any other handshake failure (an alert, a protocol mismatch, an EOF).
        """
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    @property
    def handshaken(self) -> bool:
        """True once the handshake completed (a negotiated protocol version exists)."""
        return self.ssl_object.version() is not None

    # ------------------------------------------------------------------ reading

    def feed(self, data: bytes | bytearray) -> None:
        """Ciphertext from the socket; ``b""`` is the socket's EOF.

        Args:
            data: What one socket read returned.
        """
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    @property
    def has_input(self) -> bool:
        """True if fed bytes (or an EOF) may still decrypt to something, or end the stream."""
        return bool(self.incoming.pending or self.incoming.eof or self.ssl_object.pending())

    def decrypt(self, limit: int) -> bytes:
        """Every complete record fed so far, decrypted, up to about ``limit`` bytes of plaintext.

        ``b""`` when no complete record is there (the rest of one is still on its way) or the
        stream ended: then :attr:`end` is set (see :meth:`eof`). Why every record at once: one
        socket read usually brings several (a 37 KB audio frame is three), and one pass costs
        less than a round per record.

        Args:
            limit: Plaintext bytes wanted at most (a record may run over by one record's worth).

        Returns:
            The plaintext.
        """
        if self.end is not None:
            return b""
        ssl_object, incoming = self.ssl_object, self.incoming
        parts: list[bytes] = []
        size = 0
        try:
            while size < limit:
                # One record at most comes out per call; asking for more only makes ssl allocate
                # (and shrink) a bigger buffer each time.
                more = ssl_object.read(min(limit - size, TLS_RECORD_SIZE))
                if not more:  # the peer's close_notify
                    self.end = ssl.SSLZeroReturnError("close_notify")
                    break
                parts.append(more)
                size += len(more)
                if not (incoming.pending or incoming.eof or ssl_object.pending()):
                    # OpenSSL takes one record at a time from the BIO, with no read-ahead: nothing
                    # left to decrypt, so skip the read that would only raise SSLWantReadError.
                    break
        except ssl.SSLWantReadError:
            pass  # every complete record is decrypted
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self.end = exc
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def eof(self) -> bool:
        """Whether the stream's end is clean (close_notify, or a TCP EOF without it).

        Only meaningful once :attr:`end` is set.

        Returns:
            True for an end of stream; False for an SSL error (the connection is broken).
        """
        end = self.end
        return isinstance(end, ssl.SSLZeroReturnError) or (end is not None and is_tls_eof(end))

    # ------------------------------------------------------------------ writing

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """``data`` as records to write, behind anything TLS had queued (sent in that order).

        Args:
            data: Plaintext.

        Returns:
            Ciphertext: every record :attr:`outgoing` held, then ``data``'s.

        Raises:
            ssl.SSLError: TLS has failed (the connection is broken).
        """
        self.ssl_object.write(data)
        return self.outgoing.read()

    @property
    def has_answers(self) -> bool:
        """True if TLS wrote something while decrypting that the peer should get (a KeyUpdate
        answer, a post-handshake certificate). Not after the stream ended otherwise than by
        close_notify: what OpenSSL queues then is its alert for a peer that is gone."""
        return bool(self.outgoing.pending) and (
            self.end is None or isinstance(self.end, ssl.SSLZeroReturnError)
        )

    def take_output(self) -> bytes:
        """What TLS wrote and nobody sent yet (``b""``: nothing).

        Returns:
            Ciphertext to send before anything encrypted later.
        """
        return self.outgoing.read() if self.outgoing.pending else b""

    def close_notify(self) -> bytes:
        """This side's close_notify, to send before closing the socket (best effort).

        Returns:
            The alert's record (``b""`` if TLS cannot make one any more).
        """
        if self.end is not None and not self.eof():
            return b""
        try:
            self.ssl_object.unwrap()
        except ssl.SSLWantReadError:
            pass  # the peer's own close_notify is not awaited: the socket closes next
        except (ssl.SSLError, ValueError):
            return b""
        return self.take_output()
