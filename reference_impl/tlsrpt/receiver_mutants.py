"""Deliberately broken report receivers: the negative controls of the receiver scenarios.

Each mutant is the reference :class:`~reference_impl.tlsrpt.receiver_variant.ReceiverVariant`
with one knob turned, so that it breaks exactly one rule of RFC 8460 (sections 3, 5.2, 5.4,
5.6). A receiver scenario that none of them fails is not done.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.tlsrpt.receiver_variant import ReceiverVariant

__all__ = ["RECEIVER_MUTANTS", "ReceiverMutant"]


@dataclass(frozen=True, slots=True)
class ReceiverMutant:
    """A named receiver variant with the rule it breaks."""

    name: str
    description: str
    section: str
    variant: ReceiverVariant


_MUTANTS = (
    ReceiverMutant(
        "recv-accepts-bad-json",
        "Skips validation: stores and acknowledges bodies that are not a valid report.",
        "4.4",
        ReceiverVariant(validate=False),
    ),
    ReceiverMutant(
        "recv-accepts-any-media-type",
        "Accepts a POST of any Content-Type, not only application/tlsrpt+json or +gzip.",
        "5.4",
        ReceiverVariant(accept_any_media_type=True),
    ),
    ReceiverMutant(
        "recv-rejects-gzip",
        "Answers 415 to application/tlsrpt+gzip, the compressed form senders SHOULD use.",
        "5.4",
        ReceiverVariant(refused_media_types=frozenset({"application/tlsrpt+gzip"})),
    ),
    ReceiverMutant(
        "recv-rejects-json",
        "Answers 415 to application/tlsrpt+json, the uncompressed form.",
        "5.4",
        ReceiverVariant(refused_media_types=frozenset({"application/tlsrpt+json"})),
    ),
    ReceiverMutant(
        "recv-no-size-limit",
        "Reads a body of any size and accepts it; no 413 above the limit.",
        "5.2",
        ReceiverVariant(enforce_size_limit=False),
    ),
    ReceiverMutant(
        "recv-error-on-valid",
        "Answers 500 to a valid POSTed report (554 to a mailed one) and stores nothing.",
        "5.4",
        ReceiverVariant(status_on_valid=500),
    ),
    ReceiverMutant(
        "recv-redirects",
        "Answers POSTs to the report path with a 302 to another path.",
        "5.4",
        ReceiverVariant(redirect_to="/tlsrpt-moved"),
    ),
    ReceiverMutant(
        "recv-accepts-unsigned-mail",
        "Stores emailed reports that lack a valid DKIM signature by the reporting domain.",
        "3",
        ReceiverVariant(require_dkim=False),
    ),
    ReceiverMutant(
        "recv-subject-wins",
        "Files an emailed report under the Subject's domain instead of the body's.",
        "5.6",
        ReceiverVariant(domain_from_subject=True),
    ),
    ReceiverMutant(
        "recv-get-accepted",
        "Answers 200 to a GET of the report path as if a report had been delivered.",
        "5.4",
        ReceiverVariant(answer_get_as_report=True),
    ),
)

RECEIVER_MUTANTS: dict[str, ReceiverMutant] = {mutant.name: mutant for mutant in _MUTANTS}
