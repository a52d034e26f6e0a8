"""Non-delivery messages for REQUIRETLS messages: RFC 8689 section 5, sans-IO.

"All non-delivery messages resulting from messages with the REQUIRETLS SMTP option ... MUST
also specify the REQUIRETLS SMTP option" (the DSN's own MAIL FROM carries it), and "If a
REQUIRETLS message is bounced, the server MUST behave as if RET=HDRS was present ... If both
RET=FULL and REQUIRETLS are present, the RET=FULL MUST be disregarded" (RFC 3461 section 4.3).
The phrase "unless redacted as described below" has no matching text; no redaction is done.

:class:`BounceRules` holds both decisions as replaceable functions; the queue asks them when
it writes a DSN (:mod:`reference_impl.mta.queue`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["BounceRules", "has_requiretls", "ndn_mail_params", "ndn_return_full"]


def has_requiretls(mail_params: Sequence[str]) -> bool:
    """RFC 8689 section 2: the REQUIRETLS MAIL parameter (keywords are case-insensitive)."""
    return any(p.partition("=")[0].upper() == "REQUIRETLS" for p in mail_params)


def ndn_mail_params(original_params: Sequence[str]) -> tuple[str, ...]:
    """Section 5: the MAIL parameters of the DSN for a message with ``original_params``."""
    return ("REQUIRETLS",) if has_requiretls(original_params) else ()


def ndn_return_full(original_params: Sequence[str]) -> bool:
    """RFC 3461 section 4.3 RET=FULL, disregarded for a REQUIRETLS message (section 5)."""
    if has_requiretls(original_params):
        return False
    for param in original_params:
        name, _, value = param.partition("=")
        if name.upper() == "RET":
            return value.upper() == "FULL"
    return False


@dataclass(frozen=True, slots=True)
class BounceRules:
    """What the DSN of a message carries (replaceable for mutants)."""

    mail_params: Callable[[Sequence[str]], tuple[str, ...]] = ndn_mail_params
    return_full: Callable[[Sequence[str]], bool] = ndn_return_full
