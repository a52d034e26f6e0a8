"""The pure parts of the world's scripted SMTP peers, apart from any socket.

* Reply formatting: multiline replies per RFC 5321 section 4.2.1.
* MAIL FROM parameters: REQUIRETLS (RFC 8689 section 2, no value allowed), BODY (RFC 6152,
  RFC 3030), SIZE (RFC 1870 section 6), SMTPUTF8 (RFC 6531 section 3.4), RET and ENVID
  (RFC 3461 sections 4.3, 4.4); keywords per RFC 5321 section 4.1.2.
* TLS version limits for a peer's server context (RFC 8996 deprecates TLS 1.0/1.1; the world
  still offers them on request, so a scenario can check the SUT refuses them).
* The error family of the world's protocol peers (SMTP peer, mailbox, man in the middle).
"""

from __future__ import annotations

import re
import ssl
import warnings

from conformance.world.spec import TlsVersionName

LINE_LIMIT = 4096  # longest line a world peer reads; longer ones are refused, never buffered

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class PeerError(Exception):
    """Base of the errors of the world's protocol peers (SMTP peer, mailbox, MITM)."""


class PeerNotRunning(PeerError):
    """The peer was asked for its address (or started twice) in the wrong state."""


class PeerFailure(PeerError):
    """Something failed inside the peer while it served a session (re-raised by ``stop()``)."""


class MailParameterError(PeerError):
    """A MAIL FROM parameter the peer refuses; carries the SMTP reply to send."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def reply_lines(code: int, text: str) -> list[str]:
    """Format a reply as lines: ``code-text`` for all but the last, ``code text`` last
    (RFC 5321 section 4.2.1); ``text`` may hold several lines separated by newlines."""
    texts = [t.rstrip("\r") for t in text.split("\n")]
    out = []
    for i, t in enumerate(texts):
        sep = "-" if i < len(texts) - 1 else " "
        out.append(f"{code}{sep}{t}" if t or sep == "-" else f"{code}")
    return out


_BODY_VALUES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})
_RET_VALUES = frozenset({"FULL", "HDRS"})
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")  # esmtp-keyword, RFC 5321 section 4.1.2
_XTEXT = re.compile(r"[!-<>-~]+\Z")  # RFC 3461 section 4: printable ASCII except "=" and SP


def parse_mail_parameters(text: str) -> tuple[str, ...]:
    """Parse the parameters after ``MAIL FROM:<path>`` into normalised ``KEY`` / ``KEY=VALUE``
    strings (keywords and enumerated values upper case; ENVID kept as sent).

    Raises ``MailParameterError`` with the reply to send for anything the peer refuses."""
    out: list[str] = []
    seen: set[str] = set()
    for token in text.split():
        raw_key, eq, value = token.partition("=")
        if not _KEYWORD.match(raw_key):
            raise MailParameterError(501, "5.5.4 Malformed MAIL parameter")
        key = raw_key.upper()
        if key in seen:
            raise MailParameterError(501, f"5.5.4 Duplicate MAIL parameter {key}")
        seen.add(key)
        if key in ("REQUIRETLS", "SMTPUTF8"):
            # RFC 8689 section 2 (requiretls-param) and RFC 6531 section 3.4 take no value.
            if eq:
                raise MailParameterError(501, f"5.5.4 {key} takes no value")
            out.append(key)
            continue
        if key not in ("BODY", "SIZE", "RET", "ENVID"):
            raise MailParameterError(555, f"5.5.4 MAIL parameter {key} not recognised")
        if not value:
            raise MailParameterError(501, f"5.5.4 {key} needs a value")
        if key == "BODY" and value.upper() in _BODY_VALUES:
            out.append(f"BODY={value.upper()}")
        elif key == "RET" and value.upper() in _RET_VALUES:  # RFC 3461 section 4.3
            out.append(f"RET={value.upper()}")
        elif key == "SIZE" and value.isascii() and value.isdigit() and len(value) <= 20:
            out.append(f"SIZE={int(value)}")  # RFC 1870 section 6: size-value is digits
        elif key == "ENVID" and len(value) <= 100 and _XTEXT.match(value):
            out.append(f"ENVID={value}")  # RFC 3461 section 4.4: xtext, at most 100 chars
        else:
            raise MailParameterError(501, f"5.5.4 Invalid value for {key}")
    return tuple(out)


def apply_tls_versions(ctx: ssl.SSLContext, tls_min: TlsVersionName, tls_max: TlsVersionName) -> None:
    """Limit a server context to the scripted protocol versions."""
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated (RFC 8996); the world offers them on purpose so that a
        # scenario can check the SUT refuses them.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _TLS_VERSIONS[tls_min]
        ctx.maximum_version = _TLS_VERSIONS[tls_max]
    if tls_min in ("TLSv1", "TLSv1.1"):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses them at its default level


def encode_reply(text: str) -> bytes:
    """Reply text to bytes: client bytes aiosmtpd decoded with surrogateescape go back as
    they came; any other unencodable character (scenario text) is replaced, never fatal."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")
