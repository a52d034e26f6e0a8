"""DKIM verification of emailed reports, for the receiver (RFC 8460 section 3, RFC 6376).

Section 3: "Reports sent via SMTP MUST contain a valid DomainKeys Identified Mail (DKIM)
signature by the reporting domain. Reports lacking such a signature MUST be ignored by the
recipient. DKIM signatures MUST NOT use the "l=" attribute ... The DKIM TXT record SHOULD
contain the appropriate service type declaration, "s=tlsrpt". If not present, the receiving
system MAY ignore reports lacking that service type."

So a signature counts when dkimpy verifies it, it has no ``l=`` tag, and its ``d=`` is the
reporting domain (:func:`aligned`). The key's service types are reported, for the caller's
``s=tlsrpt`` policy. Cryptography is dkimpy's (in its ``tlsrpt`` mode, which hashes the whole
body); the only I/O is the injected TXT lookup.

Two adjustments to dkimpy, both from RFC 6376 section 3.6.1: ``s=`` is a colon-separated
list, which dkimpy compares as a single value, so a list is narrowed to the one type dkimpy
should see (``tlsrpt``, else ``*``, else ``email``) before it reads the record; and dkimpy
raises exceptions other than ``DKIMException`` on some malformed signatures, which count as
invalid signatures here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import dkim

from reference_impl.tlsrpt.receiver_judges import TxtLookup

__all__ = ["MAX_SIGNATURES", "DkimResult", "SignatureCheck", "aligned", "check_signatures", "service_types"]

MAX_SIGNATURES = 8
"""Signatures verified per message; more only cost the receiver DNS lookups and RSA work."""

_SERVICE_TAG = re.compile(rb"(^|;)(\s*s\s*=)([^;]*)")


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict on one DKIM-Signature field."""

    domain: str | None  # d=
    selector: str | None  # s=
    verified: bool  # the cryptography holds (dkimpy)
    reason: str
    length_tag: bool = False  # l= present: forbidden by RFC 8460 section 3
    service_types: tuple[str, ...] | None = None  # the key's s= list; None: no s= tag
    temporary: bool = False  # the key could not be looked up (a DNS failure, not an answer)

    @property
    def declares_tlsrpt(self) -> bool:
        """The key record declares the tlsrpt service type (or "*") explicitly."""
        return self.service_types is not None and bool({"tlsrpt", "*"} & set(self.service_types))


@dataclass(frozen=True, slots=True)
class DkimResult:
    """Every signature of a message, checked."""

    signatures: tuple[SignatureCheck, ...]

    def by(self, reporting_domains: Iterable[str]) -> SignatureCheck | None:
        """The first verified signature without ``l=`` whose d= is one of ``reporting_domains``."""
        domains = [domain for domain in reporting_domains if domain]
        for signature in self.signatures:
            if not signature.verified or signature.length_tag or signature.domain is None:
                continue
            if any(aligned(signature.domain, domain) for domain in domains):
                return signature
        return None

    @property
    def temporary(self) -> bool:
        """Some key lookup failed: a retry might verify what failed now."""
        return any(signature.temporary for signature in self.signatures)

    def describe(self) -> str:
        if not self.signatures:
            return "no DKIM-Signature field"
        return "; ".join(
            f"d={signature.domain or '?'} s={signature.selector or '?'}: {signature.reason}"
            for signature in self.signatures
        )


def aligned(signing_domain: str, reporting_domain: str) -> bool:
    """Whether a signature by ``signing_domain`` is one "by the reporting domain".

    The same name, or one a parent of the other (DMARC's relaxed alignment, RFC 7489 section
    3.1.1, without the public suffix list); a single-label name such as ``com`` never aligns.
    """
    signer = signing_domain.strip().rstrip(".").lower()
    reporter = reporting_domain.strip().rstrip(".").lower()
    if not signer or not reporter:
        return False
    if signer == reporter:
        return True
    shorter, longer = sorted((signer, reporter), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def service_types(record: bytes) -> tuple[str, ...] | None:
    """The ``s=`` list of a DKIM key record (RFC 6376 section 3.6.1), or None without one."""
    match = _SERVICE_TAG.search(record)
    if match is None:
        return None
    text = match.group(3).decode("ascii", "replace")
    return tuple(part.strip().lower() for part in text.split(":") if part.strip())


def _for_dkimpy(record: bytes, types: tuple[str, ...] | None) -> bytes:
    if types is None or len(types) < 2:
        return record
    chosen = next((kind for kind in ("tlsrpt", "*", "email") if kind in types), types[0])
    return _SERVICE_TAG.sub(lambda m: m.group(1) + m.group(2) + chosen.encode("ascii"), record, count=1)


class _KeyLookup:
    """dkimpy's ``dnsfunc`` over the caller's TXT lookup; remembers what it saw."""

    def __init__(self, txt_lookup: TxtLookup | None) -> None:
        self._txt_lookup = txt_lookup
        self.types: tuple[str, ...] | None = None
        self.failure: str | None = None

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        self.types = None
        self.failure = None
        if self._txt_lookup is None:
            return None
        try:
            records = self._txt_lookup(name.decode("ascii", "replace").rstrip("."))
        except Exception as exc:  # the caller's DNS failed: say so, a retry may work
            self.failure = f"key lookup failed: {exc}"
            return None
        keys = [record for record in records or [] if b"p=" in record]
        if not keys:
            return None
        self.types = service_types(keys[0])
        return _for_dkimpy(keys[0], self.types)


def check_signatures(message: bytes, txt_lookup: TxtLookup | None) -> DkimResult:
    """Verify every DKIM-Signature of ``message`` (at most :data:`MAX_SIGNATURES`)."""
    try:
        count = sum(1 for name, _ in dkim.DKIM(message).headers if name.lower() == b"dkim-signature")
    except Exception:  # dkimpy refuses to parse the message at all: no signature to check
        return DkimResult(())
    return DkimResult(tuple(_check_one(message, index, txt_lookup) for index in range(min(count, MAX_SIGNATURES))))


def _check_one(message: bytes, index: int, txt_lookup: TxtLookup | None) -> SignatureCheck:
    lookup = _KeyLookup(txt_lookup)
    verifier = dkim.DKIM(message, tlsrpt=True)
    try:
        verified = bool(verifier.verify(idx=index, dnsfunc=lookup))
        reason = "valid signature" if verified else "signature does not verify"
    except dkim.DKIMException as exc:
        verified, reason = False, str(exc) or type(exc).__name__
    except Exception as exc:  # dkimpy on malformed input (binascii, IndexError, ...)
        verified, reason = False, f"malformed signature: {type(exc).__name__}"
    if lookup.failure is not None:
        reason = lookup.failure
    fields: dict[bytes, bytes] = getattr(verifier, "signature_fields", None) or {}
    length_tag = b"l" in fields
    if verified and length_tag:
        reason = "valid signature, but with l= (RFC 8460 section 3: MUST NOT)"
    return SignatureCheck(
        domain=_text(fields.get(b"d")),
        selector=_text(fields.get(b"s")),
        verified=verified,
        reason=reason,
        length_tag=length_tag,
        service_types=lookup.types,
        temporary=lookup.failure is not None,
    )


def _text(value: bytes | None) -> str | None:
    return value.decode("ascii", "replace").strip() if value is not None else None
