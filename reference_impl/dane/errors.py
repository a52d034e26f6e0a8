"""Errors of the DANE core (RFC 6698 section 2.2, RFC 7672 section 3).

One base class, :class:`DaneError`, for the whole ``reference_impl.dane`` package, with
structured fields: ``rule`` (a short kebab-case id such as ``tlsa-usage-unknown``), ``rfc`` and
``section`` (where the rule is written) and ``detail``. A parser here raises only a subclass of
:class:`DaneError` on bad input; anything else is a bug.
"""

from __future__ import annotations

__all__ = ["CertificateError", "DaneError", "TlsaError", "quote_value"]

_QUOTE_LIMIT = 60


def quote_value(value: str, limit: int = _QUOTE_LIMIT) -> str:
    """Untrusted text inside a message: ``repr``-escaped and cut to ``limit`` characters."""
    if len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


class DaneError(Exception):
    """Base of every error ``reference_impl.dane`` raises on purpose.

    ``str()`` reads ``RFC 6698 section 2.2 [tlsa-usage-unknown]: detail``.
    """

    def __init__(self, rule: str, rfc: str, section: str, detail: str) -> None:
        # args carries every field so that the error pickles and copies (Exception reduces to args)
        super().__init__(rule, rfc, section, detail)
        self.rule = rule
        self.rfc = rfc
        self.section = section
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.rfc} section {self.section} [{self.rule}]: {self.detail}"


class TlsaError(DaneError):
    """A TLSA record in presentation form that cannot be read (RFC 6698 section 2.2), or one
    whose parameters this implementation does not know (RFC 6698 sections 2.1.1-2.1.3)."""


class CertificateError(DaneError):
    """A certificate whose DER structure cannot be walked (RFC 5280 section 4.1)."""
