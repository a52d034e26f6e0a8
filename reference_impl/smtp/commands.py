"""Server-side parsing of SMTP command lines (RFC 5321 4.1.1, 4.1.2, 4.5.3.1; RFC 6531 3.3).

``parse_command`` splits a command line into verb and argument; ``parse_mail_argument`` and
``parse_rcpt_argument`` parse ``FROM:<reverse-path> [SP Mail-parameters]`` and
``TO:<forward-path> [SP Rcpt-parameters]`` (RFC 5321 4.1.2) with ESMTP parameters
``keyword[=value]``. Every failure raises ``CommandSyntaxError`` carrying the reply code and
enhanced status code the server answers with (500/501/553).

Deliberate leniencies, each harmless to the envelope: spaces after "FROM:"/"TO:" (common
in the wild) and several spaces between parameters are accepted; a source route
(``@a,@b:``) is accepted and dropped as RFC 5321 4.1.1.3 and Appendix C ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RemoteProtocolError

__all__ = [
    "MAX_COMMAND_LINE",
    "MAX_DOMAIN",
    "MAX_LOCAL_PART",
    "MAX_PATH",
    "Command",
    "CommandSyntaxError",
    "PathArgument",
    "parse_command",
    "parse_esmtp_params",
    "parse_mail_argument",
    "parse_rcpt_argument",
]

MAX_COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4, including CRLF
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
MAX_DOMAIN = 255  # RFC 5321 4.5.3.1.2
MAX_PATH = 256  # RFC 5321 4.5.3.1.3, including the angle brackets

# RFC 5321 4.1.2 (with RFC 6531 3.3: any non-ASCII character counts as atext / a letter).
_VERB = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_STRING = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_QUOTED_STRING = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"')
_LET_DIG = r"[A-Za-z0-9\u0080-\U0010ffff]"
_LABEL = rf"(?:{_LET_DIG}(?:(?:{_LET_DIG}|-)*{_LET_DIG})?)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ADDRESS_LITERAL = re.compile(r"\[[\x21-\x5a\x5e-\x7e]+\]")
_AT_DOMAIN = rf"@{_LABEL}(?:\.{_LABEL})*"
_SOURCE_ROUTE = re.compile(rf"{_AT_DOMAIN}(?:,{_AT_DOMAIN})*:")
# RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_ESMTP_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# RFC 5321 4.1.2: esmtp-value = 1*(%d33-60 / %d62-126); RFC 6531 3.3 adds UTF-8.
_ESMTP_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")


class CommandSyntaxError(RemoteProtocolError):
    """A command line the server must refuse; ``code``/``enhanced`` give the reply."""

    code: int
    enhanced: str

    def __init__(self, message: str, code: int, enhanced: str, section: str) -> None:
        super().__init__(message, code=code, enhanced=enhanced, section=section)


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # upper case
    argument: str  # everything after the verb and one space; "" when absent


@dataclass(frozen=True, slots=True)
class PathArgument:
    """A parsed MAIL/RCPT argument: the mailbox ("" for the null path) and its parameters
    in order, keywords upper-cased, value None for a bare keyword."""

    address: str
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def param_map(self) -> dict[str, str | None]:
        return dict(self.params)


def parse_command(line: bytes, limit: int = MAX_COMMAND_LINE) -> Command:
    """A command line without its CRLF (RFC 5321 4.1.1); ``limit`` includes the CRLF (an
    extension may raise it, RFC 5321 4.5.3.1.4, e.g. RFC 8689 section 2 by 11 octets)."""
    if len(line) + 2 > limit:
        raise CommandSyntaxError("Line too long", 500, "5.5.2", "RFC 5321 4.5.3.1.4")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandSyntaxError("Invalid UTF-8 in command", 500, "5.5.2", "RFC 6531 3.3") from exc
    verb, sep, argument = text.partition(" ")
    if not _VERB.fullmatch(verb):
        raise CommandSyntaxError("Syntax error, command unrecognized", 500, "5.5.2", "RFC 5321 4.1.1")
    if any(ch < " " or ch == "\x7f" for ch in argument):
        raise CommandSyntaxError("Control character in argument", 501, "5.5.4", "RFC 5321 4.1.1")
    return Command(verb.upper(), argument if sep else "")


def _split_path(rest: str) -> tuple[str, str]:
    """``<path>`` at the start of ``rest`` -> (inside of the brackets, what follows)."""
    if not rest.startswith("<"):
        raise CommandSyntaxError("Path must be in angle brackets", 501, "5.5.4", "RFC 5321 4.1.2")
    i, quoted = 1, False
    while i < len(rest):
        ch = rest[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return rest[1:i], rest[i + 1 :]
        i += 1
    raise CommandSyntaxError("Unterminated path", 501, "5.5.4", "RFC 5321 4.1.2")


def _check_mailbox(mailbox: str) -> None:
    """RFC 5321 4.1.2: Mailbox = Local-part "@" ( Domain / address-literal )."""
    local, at, domain = mailbox.rpartition("@")
    if not at or not local:
        raise CommandSyntaxError("Bad address syntax", 501, "5.1.3", "RFC 5321 4.1.2")
    if not (_DOT_STRING.fullmatch(local) or _QUOTED_STRING.fullmatch(local)):
        raise CommandSyntaxError("Bad local part syntax", 501, "5.1.3", "RFC 5321 4.1.2")
    if not (_DOMAIN.fullmatch(domain) or _ADDRESS_LITERAL.fullmatch(domain)):
        raise CommandSyntaxError("Bad domain syntax", 501, "5.1.2", "RFC 5321 4.1.2")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise CommandSyntaxError("Local part too long", 501, "5.1.3", "RFC 5321 4.5.3.1.1")
    if len(domain.encode("utf-8")) > MAX_DOMAIN:
        raise CommandSyntaxError("Domain too long", 501, "5.1.2", "RFC 5321 4.5.3.1.2")


def parse_esmtp_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """``keyword[=value]`` separated by spaces (RFC 5321 4.1.2); keywords upper-cased."""
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(" "):
        if not item:
            continue
        keyword, eq, value = item.partition("=")
        if not _ESMTP_KEYWORD.fullmatch(keyword) or (eq and not _ESMTP_VALUE.fullmatch(value)):
            raise CommandSyntaxError("Syntax error in parameters", 501, "5.5.4", "RFC 5321 4.1.2")
        keyword = keyword.upper()
        if keyword in seen:
            raise CommandSyntaxError("Duplicate parameter", 501, "5.5.4", "RFC 5321 4.1.2")
        seen.add(keyword)
        params.append((keyword, value if eq else None))
    return tuple(params)


def _parse_path_argument(argument: str, prefix: str, *, null_ok: bool) -> PathArgument:
    if argument[: len(prefix)].upper() != prefix:
        raise CommandSyntaxError(f"Syntax: {prefix}<address> [parameters]", 501, "5.5.4", "RFC 5321 4.1.1")
    # Leniency: "MAIL FROM: <a@b>" is common and unambiguous.
    inside, rest = _split_path(argument[len(prefix) :].lstrip(" "))
    if rest and not rest.startswith(" "):
        raise CommandSyntaxError("Garbage after path", 501, "5.5.4", "RFC 5321 4.1.2")
    if len(inside) + 2 > MAX_PATH:
        raise CommandSyntaxError("Path too long", 501, "5.1.3", "RFC 5321 4.5.3.1.3")
    route = _SOURCE_ROUTE.match(inside)
    mailbox = inside[route.end() :] if route else inside
    if not mailbox:
        if route or not null_ok:
            raise CommandSyntaxError("Null path not allowed here", 501, "5.1.3", "RFC 5321 4.1.1.3")
    elif not (not null_ok and mailbox.lower() == "postmaster"):
        # RFC 5321 4.1.1.3: "<Postmaster>" without a domain is a valid forward-path.
        _check_mailbox(mailbox)
    return PathArgument(mailbox, parse_esmtp_params(rest))


def parse_mail_argument(argument: str) -> PathArgument:
    """``FROM:<reverse-path> [SP Mail-parameters]`` (RFC 5321 4.1.1.2); "" is the null path."""
    return _parse_path_argument(argument, "FROM:", null_ok=True)


def parse_rcpt_argument(argument: str) -> PathArgument:
    """``TO:<forward-path> [SP Rcpt-parameters]`` (RFC 5321 4.1.1.3)."""
    return _parse_path_argument(argument, "TO:", null_ok=False)
