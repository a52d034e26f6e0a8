"""The decisions of the HTTPS report endpoint, sans-IO (RFC 8460 section 5.4).

Given a request (method, target, headers, body) :class:`ReportEndpoint` says what to answer;
the asyncio server (``receiver_server``) only moves bytes and stores what is accepted.

* Reports are delivered "by POST to HTTPS" (section 5.4): another method on the report path
  gets 405 with ``Allow: POST`` (RFC 9110 section 15.5.6); another path gets 404.
* The body size is capped (section 5.2: "a commonly observed receiver limit is ten
  megabytes"; section 7: flooding of the rua endpoint). A Content-Length above the cap is
  refused with 413 before any of the body is read (:meth:`ReportEndpoint.check_head`); a
  chunked body is counted while it is read, by the adapter, against :attr:`body_limit`.
* The media type must be ``application/tlsrpt+json`` or ``application/tlsrpt+gzip``
  (sections 5.4, 6.4, 6.5); parameters such as ``charset`` are ignored. Anything else: 415.
* A body the validator finds an error in (not JSON, broken gzip, schema errors of section
  4.4) gets 400 and a one-line plain-text reason naming the rule ids.
* An accepted report is stored, then answered with 201 (section 5.4: "typically a 200 or
  201"); a report already stored (same sender and report-id, section 5.3) with 200, so the
  sender stops retrying (section 5.5); a store that fails with 500, so it retries.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from reference_impl.tlsrpt.errors import Finding, TlsRptError
from reference_impl.tlsrpt.receiver_judges import PayloadJudge, error_rules
from reference_impl.tlsrpt.receiver_variant import REPORT_MEDIA_TYPES, ReceiverVariant

__all__ = [
    "DEFAULT_BODY_LIMIT",
    "AcceptedReport",
    "HttpDecision",
    "HttpReply",
    "HttpRequest",
    "ReportEndpoint",
    "best_effort_report",
    "media_type_of",
]

DEFAULT_BODY_LIMIT = 10 * 1024 * 1024
"""RFC 8460 section 5.2: "a commonly observed receiver limit is ten megabytes"."""

_TEXT = (("content-type", "text/plain; charset=utf-8"),)
_MAX_REASON_RULES = 12  # a 400 names at most this many rule ids; the store keeps them all


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as the endpoint sees it; header names in any case."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        return header_values(self.headers, name)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What to answer. The adapter adds the framing headers (Content-Length, Connection)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = _TEXT
    reason: str = ""  # why, for the log (not sent)


@dataclass(frozen=True, slots=True)
class AcceptedReport:
    """A report the endpoint accepted, for the store."""

    report: dict[str, Any]
    findings: tuple[Finding, ...]
    content_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpDecision:
    """The reply, and the report to store first when there is one (then ``reply`` is the
    answer once it is stored; see :meth:`ReportEndpoint.stored_reply`)."""

    reply: HttpReply
    accepted: AcceptedReport | None = None


def header_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def media_type_of(content_type: str) -> str:
    """The media type of a Content-Type value, lower case, without parameters (RFC 9110 8.3.1)."""
    return content_type.split(";", 1)[0].strip().lower()


def _text(status: int, message: str, *extra: tuple[str, str]) -> HttpReply:
    return HttpReply(status, (message + "\n").encode("utf-8"), (*_TEXT, *extra), message)


class ReportEndpoint:
    """The report endpoint at ``path``: every decision of section 5.4, no I/O."""

    def __init__(
        self,
        path: str,
        *,
        judge: PayloadJudge,
        variant: ReceiverVariant | None = None,
        max_body_bytes: int = DEFAULT_BODY_LIMIT,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"the report path {path!r} must start with '/'")
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self.path = path
        self.variant = variant if variant is not None else ReceiverVariant()
        self._judge = judge
        self._max_body_bytes = max_body_bytes

    @property
    def body_limit(self) -> int | None:
        """The most body bytes to read; None: no limit (a negative control only)."""
        return self._max_body_bytes if self.variant.enforce_size_limit else None

    # -- the head: everything decided before reading the body ----------------------------

    def check_head(self, method: str, target: str, headers: tuple[tuple[str, str], ...]) -> HttpDecision | None:
        """The final decision when the head alone settles it, else None (read the body)."""
        variant = self.variant
        if not self._is_report_target(target):
            return HttpDecision(_text(404, "not found: reports are POSTed to the report path"))
        if method in ("GET", "HEAD") and variant.answer_get_as_report:
            return HttpDecision(_text(200, "report accepted"))
        if method != "POST":
            # Section 5.4: reports are delivered by POST; RFC 9110 15.5.6: a 405 lists Allow.
            return HttpDecision(_text(405, f"method {_shown(method)} not allowed: use POST", ("allow", "POST")))
        if variant.redirect_to is not None:
            return HttpDecision(_text(302, "report path moved", ("location", variant.redirect_to)))
        lengths = header_values(headers, "content-length")
        length = _content_length(lengths)
        if lengths and length is None:
            return HttpDecision(_text(400, "invalid Content-Length"))
        limit = self.body_limit
        if length is not None and limit is not None and length > limit:
            # Section 5.2 / 7: refused before a byte of the body is read.
            return HttpDecision(_text(413, f"report larger than {limit} bytes"))
        return self._check_media_type(header_values(headers, "content-type"))

    def _check_media_type(self, values: list[str]) -> HttpDecision | None:
        if self.variant.accept_any_media_type:
            return None
        media = media_type_of(values[0]) if len(values) == 1 else None
        # Sections 5.4, 6.4, 6.5: application/tlsrpt+json or application/tlsrpt+gzip only.
        if media in REPORT_MEDIA_TYPES and media not in self.variant.refused_media_types:
            return None
        shown = ", ".join(_shown(value) for value in values) or "none"
        accepted = " or ".join(sorted(REPORT_MEDIA_TYPES - self.variant.refused_media_types)) or "nothing"
        return HttpDecision(_text(415, f"media type {shown} refused: send {accepted}"))

    def _is_report_target(self, target: str) -> bool:
        target = _origin_form(target)
        if target == self.path:
            return True
        # A query the sender copied from the rua URI is tolerated unless the path has its own.
        return "?" not in self.path and target.split("?", 1)[0] == self.path

    # -- the whole request ---------------------------------------------------------------

    def decide(self, request: HttpRequest) -> HttpDecision:
        """The decision for a complete request (the head checks included)."""
        early = self.check_head(request.method, request.target, request.headers)
        if early is not None:
            return early
        limit = self.body_limit
        if limit is not None and len(request.body) > limit:
            return HttpDecision(_text(413, f"report larger than {limit} bytes"))
        content_types = request.values("content-type")
        content_type = content_types[0] if len(content_types) == 1 else None
        if not self.variant.validate:
            report = best_effort_report(request.body)
            return HttpDecision(
                self.stored_reply(duplicate=False), AcceptedReport(report, (), content_type, request.body)
            )
        # The validator gets the bare media type; another type only passes with a variant, and
        # then the validator sniffs the body (gzip magic) itself.
        media = media_type_of(content_type) if content_type is not None else None
        judged_type = media if media in REPORT_MEDIA_TYPES else None
        try:
            validation = self._judge(request.body, content_type=judged_type)
        except TlsRptError as exc:
            return HttpDecision(_text(400, f"report refused: {exc.rule}"))
        findings = tuple(validation.findings)
        errors = error_rules(findings)
        if errors:
            shown = ", ".join(errors[:_MAX_REASON_RULES]) + (", ..." if len(errors) > _MAX_REASON_RULES else "")
            return HttpDecision(_text(400, f"report refused: {shown}"))
        if validation.report is None:
            return HttpDecision(_text(400, "report refused: no report found"))
        if self.variant.status_on_valid is not None:
            return HttpDecision(_text(self.variant.status_on_valid, "report not processed"))
        accepted = AcceptedReport(dict(validation.report), findings, content_type, request.body)
        return HttpDecision(self.stored_reply(duplicate=False), accepted)

    def stored_reply(self, *, duplicate: bool) -> HttpReply:
        """The answer once an accepted report is stored (or found already stored)."""
        if duplicate:
            # Section 5.3: the report-id lets the receiver "identify and ignore duplicate
            # reports"; still a success, or the sender would retry it (section 5.5).
            return _text(200, "report already stored")
        return _text(self.variant.success_status, "report stored")

    @staticmethod
    def store_failed_reply() -> HttpReply:
        """Section 5.4: anything but a success is a failure the sender may retry."""
        return _text(500, "report not stored, try again later")


def _content_length(values: list[str]) -> int | None:
    # RFC 9110 section 8.6: one value, or a list of identical values; digits only.
    parts = {part.strip() for value in values for part in value.split(",")}
    if len(parts) != 1:
        return None
    (text,) = parts
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _origin_form(target: str) -> str:
    """The path and query of a request target; an absolute-form target loses its scheme and
    authority (RFC 9112 section 3.2.2)."""
    if target.startswith("/"):
        return target
    scheme, sep, rest = target.partition("://")
    if not sep or not scheme.isalpha():
        return target
    slash = rest.find("/")
    query = rest.find("?")
    if slash < 0 or (0 <= query < slash):
        return "/" + rest[query:] if query >= 0 else "/"
    return rest[slash:]


def _shown(value: str, limit: int = 60) -> str:
    """Untrusted header text, escaped and truncated for a reply or a log."""
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


def best_effort_report(body: bytes, limit: int = DEFAULT_BODY_LIMIT) -> dict[str, Any]:
    """The JSON object in ``body`` (gzip or not) without any validation, or ``{}``: only the
    negative control that skips validation uses it. Decompression is bounded."""
    data = body
    if body[:2] == b"\x1f\x8b":
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = decompressor.decompress(body, limit)
        except zlib.error:
            return {}
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
