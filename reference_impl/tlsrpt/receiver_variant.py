"""Behaviour knobs of the reference TLSRPT report receiver (RFC 8460 sections 3, 5.4, 5.6).

The defaults are the correct receiver. Each knob names one rule it can break, so that the
negative controls of ``receiver_mutants`` are the reference with one knob turned:

* ``validate`` - section 4.4 (the schema) and 5.2/5.4 (JSON or gzip body): a report that does
  not parse or breaks the schema is refused (400) or, by mail, ignored.
* ``accept_any_media_type`` / ``refused_media_types`` - section 5.4 and 6.4/6.5: the two media
  types a sender uses are ``application/tlsrpt+json`` and ``application/tlsrpt+gzip``.
* ``enforce_size_limit`` - section 5.2 ("a commonly observed receiver limit is ten megabytes")
  and section 7 (flooding of the rua endpoint).
* ``status_on_valid`` / ``redirect_to`` - section 5.4: "The receiving system MUST return a
  'successful' response ..., typically a 200 or 201". ``status_on_valid`` also makes the mail
  intake store nothing and answer 554 to a valid report.
* ``require_dkim`` - section 3: "Reports lacking such a signature MUST be ignored".
* ``domain_from_subject`` - section 5.6: the report body, not the Subject, is authoritative.
* ``answer_get_as_report`` - section 5.4: reports are delivered by POST.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["REPORT_MEDIA_TYPES", "ReceiverVariant"]

REPORT_MEDIA_TYPES = frozenset({"application/tlsrpt+json", "application/tlsrpt+gzip"})
"""RFC 8460 sections 6.4 and 6.5: the media types of a report, plain and gzip-compressed."""


@dataclass(frozen=True, slots=True)
class ReceiverVariant:
    """How the receiver behaves; ``ReceiverVariant()`` is the reference behaviour."""

    validate: bool = True
    accept_any_media_type: bool = False
    refused_media_types: frozenset[str] = field(default_factory=frozenset)
    enforce_size_limit: bool = True
    success_status: int = 201  # section 5.4: "typically a 200 or 201"
    status_on_valid: int | None = None  # answer this instead of success, and store nothing
    redirect_to: str | None = None  # answer POSTs to the report path with 302 to this target
    require_dkim: bool = True
    domain_from_subject: bool = False
    answer_get_as_report: bool = False

    def __post_init__(self) -> None:
        if not 200 <= self.success_status <= 299:
            raise ValueError("success_status must be a 2xx status (RFC 8460 section 5.4)")
        if self.status_on_valid is not None and not 100 <= self.status_on_valid <= 599:
            raise ValueError("status_on_valid must be an HTTP status")
        if self.redirect_to is not None and not self.redirect_to.startswith("/"):
            raise ValueError("redirect_to must be an origin-form target starting with '/'")
