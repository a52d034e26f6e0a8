"""Typed errors of the reference SMTP implementation (RFC 5321, RFC 3207).

One base class, ``SmtpError``, for the whole ``reference_impl.smtp`` family, split the way
h11 splits its errors:

* ``LocalProtocolError``: *we* were asked to do something the protocol forbids (send MAIL
  before the greeting, a second STARTTLS inside TLS, a command containing CR or LF).
* ``RemoteProtocolError``: the *peer* broke the protocol (a malformed or oversized reply,
  a bad command line). It carries the reply code and enhanced status code a server answers
  with, so the server core can turn the error straight into a reply.

The adapter errors (``SmtpTimeout``, ``SmtpConnectionLost``, ``TlsHandshakeFailed``) live here
too so that callers catch one family; this module imports no I/O modules.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "RemoteProtocolError",
    "SmtpConnectionLost",
    "SmtpError",
    "SmtpTimeout",
    "TlsHandshakeFailed",
]


class SmtpError(Exception):
    """Base class of every error raised by ``reference_impl.smtp``."""


class LocalProtocolError(SmtpError):
    """The caller asked the core to do something illegal; nothing was sent."""

    def __init__(self, message: str, *, section: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.section = section  # e.g. "RFC 3207 4.2"


class RemoteProtocolError(SmtpError):
    """The peer broke the protocol.

    ``code``/``enhanced`` are what a server replies with for this error (e.g. 501 "5.5.4");
    a client-side parser leaves them None.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced: str | None = None,
        section: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.enhanced = enhanced
        self.section = section


class SmtpTimeout(SmtpError):
    """An operation did not complete within its deadline."""


class SmtpConnectionLost(SmtpError):
    """The peer closed the connection (or it broke) while we still expected data."""


class TlsHandshakeFailed(SmtpError):
    """The TLS handshake after STARTTLS (or for implicit TLS) failed.

    ``verify_code`` is OpenSSL's X509 verification result when certificate verification was
    the cause (e.g. 10 for "certificate has expired"), otherwise None.
    """

    def __init__(self, reason: str, verify_code: int | None = None) -> None:
        super().__init__(reason if verify_code is None else f"{reason} (verify code {verify_code})")
        self.reason = reason
        self.verify_code = verify_code
