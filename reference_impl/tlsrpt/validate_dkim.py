"""The DKIM signature of a report mail (RFC 8460 section 3, RFC 6376), verified with dkimpy.

Section 3: "Reports sent via SMTP MUST contain a valid DKIM signature by the reporting domain.
Reports lacking such a signature MUST be ignored by the recipient. DKIM signatures MUST NOT use
the "l=" attribute [...] The DKIM TXT record SHOULD contain the appropriate service type
declaration, "s=tlsrpt"." Section 5.3: the TLS-Report-* headers "SHOULD be included in the DKIM
signature". Key records come from the caller's ``txt_lookup``; no DNS query is made here.

========================= ======== =============================================================
rule                      severity when
========================= ======== =============================================================
dkim-missing              error    no DKIM-Signature header
dkim-l-tag                error    a signature with ``l=`` (body length limit)
dkim-domain-mismatch      warning  no signature's ``d=`` is (a parent or child of) the reporting
                                   domain: the TLS-Report-Submitter or contact-info domain
dkim-headers-not-signed   info     the signature leaves TLS-Report-Domain/-Submitter unsigned
dkim-not-checked          info     no ``txt_lookup`` given: signatures are not verified
dkim-invalid              error    no signature verifies (the reason is in ``Validation.dkim``)
dkim-key-service-type     warning  a key record without ``s=tlsrpt`` (absent, ``*``, ``email``)
========================= ======== =============================================================
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from email.header import Header
from email.message import Message

import dkim

from reference_impl.tlsrpt.validate_result import Validation, finding, quote

__all__ = ["check_dkim"]

TxtLookup = Callable[[str], list[bytes] | None]

_SIGNED_REPORT_HEADERS = ("tls-report-domain", "tls-report-submitter")
# What dkimpy lets escape on a hostile message or key besides its own DKIMException.
_DKIM_FAILURES = (dkim.DKIMException, ValueError, TypeError, IndexError, KeyError, UnicodeError, binascii.Error)
_DNS_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_SERVICE_TAG = re.compile(rb"(?:^|;)[ \t]*s[ \t]*=(?P<value>[^;]*)")


class _Reasons:
    """A logger look-alike for dkimpy that keeps its error messages: the reason of a failure."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def isEnabledFor(self, level: int) -> bool:  # the logging.Logger method dkimpy calls
        return False

    def debug(self, message: object, *args: object) -> None:
        pass

    info = warning = debug

    def error(self, message: object, *args: object) -> None:
        self.errors.append(str(message))


def _tags(value: str) -> dict[str, str]:
    """A tag=value list (RFC 6376 3.2) with whitespace dropped from the values; the first of a
    repeated tag wins (dkimpy refuses the signature, which ``dkim-invalid`` then reports)."""
    tags: dict[str, str] = {}
    for spec in value.split(";"):
        name, equals, tag_value = spec.partition("=")
        if equals:
            tags.setdefault(name.strip(), re.sub(r"\s+", "", tag_value))
    return tags


def _aligned(signer: str, domains: set[str]) -> bool:
    signer = signer.lower().rstrip(".")
    return any(signer == domain or domain.endswith("." + signer) or signer.endswith("." + domain) for domain in domains)


def _header_text(value: object) -> str:
    return value.encode() if isinstance(value, Header) else str(value)


def check_dkim(
    raw: bytes, msg: Message, validation: Validation, txt_lookup: TxtLookup | None, *, reporting_domains: set[str]
) -> None:
    """Add the DKIM findings of ``raw`` (parsed as ``msg``) to ``validation`` and set its ``dkim``."""
    findings = validation.findings
    where = "header DKIM-Signature"
    values = [_header_text(v) for v in msg.get_all("DKIM-Signature") or []]
    if not values:
        findings.append(finding("dkim-missing", "3", "error", "no DKIM-Signature: the report MUST be ignored", where))
        validation.dkim = "none"
        return
    signatures = [_tags(value) for value in values]
    for number, tags in enumerate(signatures, start=1):
        if "l" in tags:
            message = f"signature {number} has l={quote(tags['l'])}: section 3 forbids a body length limit"
            findings.append(finding("dkim-l-tag", "3", "error", message, where))
    aligned = [tags for tags in signatures if _aligned(tags.get("d", ""), reporting_domains)]
    if reporting_domains and not aligned:
        signers = ", ".join(quote(tags.get("d", "")) for tags in signatures)
        message = f"signed by {signers}, not by the reporting domain {sorted(reporting_domains)}"
        findings.append(finding("dkim-domain-mismatch", "3", "warning", message, where))
    covering = aligned or signatures
    if not any(set(_SIGNED_REPORT_HEADERS) <= _signed_headers(tags) for tags in covering):
        message = "TLS-Report-Domain and TLS-Report-Submitter SHOULD be covered by the signature (h=)"
        findings.append(finding("dkim-headers-not-signed", "5.3", "info", message, where))
    if txt_lookup is None:
        message = "no key lookup given: the signature is not verified"
        findings.append(finding("dkim-not-checked", "3", "info", message, where))
        return
    keys: dict[str, bytes] = {}
    verdicts = [_verify(raw, index, txt_lookup, keys) for index in range(len(values))]
    if any(reason is None for reason in verdicts):
        validation.dkim = "pass"
    else:
        reason = next(reason for reason in verdicts if reason is not None)
        validation.dkim = f"fail: {reason}"
        message = f"no valid signature ({reason}): the report MUST be ignored"
        findings.append(finding("dkim-invalid", "3", "error", message, where))
    for name, record in keys.items():
        problem = _service_problem(record)
        if problem is not None:
            message = f"key {name} has {problem}: the record SHOULD say s=tlsrpt"
            findings.append(finding("dkim-key-service-type", "3", "warning", message, f"DNS {name}"))


def _signed_headers(tags: dict[str, str]) -> set[str]:
    return {name.strip().lower() for name in tags.get("h", "").split(":")}


def _verify(raw: bytes, index: int, txt_lookup: TxtLookup, keys: dict[str, bytes]) -> str | None:
    """None when signature ``index`` verifies, else why not."""
    reasons = _Reasons()

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace").rstrip(".")
        if len(text) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in text.split(".")):
            return None  # no lookup for a name no DNS could hold
        try:
            records = txt_lookup(text) or []
        except OSError as exc:
            raise dkim.DnsTimeoutError(str(exc)) from exc
        record = next((r for r in records if b"p=" in r), records[0] if records else None)
        if record is None:
            return None
        keys[text] = record
        return _service_for_dkimpy(record)

    try:
        verifier = dkim.DKIM(raw, logger=reasons, tlsrpt=True)
        if verifier.verify(idx=index, dnsfunc=dnsfunc):
            return None
    except _DKIM_FAILURES as exc:
        return f"{type(exc).__name__}: {quote(str(exc), 120)}"
    return reasons.errors[-1] if reasons.errors else "the signature does not verify"


def _service_for_dkimpy(record: bytes) -> bytes:
    """dkimpy compares s= as one value; RFC 6376 3.6.1 makes it a colon-separated list, so a
    list naming tlsrpt (or * or email) is handed over as that one service."""
    match = _SERVICE_TAG.search(record)
    if match is None:
        return record
    services = [service.strip().lower() for service in match["value"].split(b":")]
    for wanted in (b"tlsrpt", b"*", b"email"):
        if wanted in services:
            return record[: match.start("value")] + wanted + record[match.end("value") :]
    return record


def _service_problem(record: bytes) -> str | None:
    match = _SERVICE_TAG.search(record)
    if match is None:
        return "no s= tag (all services)"
    services = [service.strip().lower() for service in match["value"].split(b":")]
    return None if b"tlsrpt" in services else f"s={match['value'].strip().decode('ascii', 'replace')}"
