"""Decisions of one delivery attempt, sans-IO: TLS policy, reply classes, ESMTP parameters.

Implements:
- RFC 3207 section 4 (STARTTLS is offered in EHLO; a 220 starts the handshake, 454 means TLS
  is unavailable) and RFC 7435 section 4 (opportunistic security: when authentication fails,
  encrypt without it rather than fall back to cleartext) as the replaceable
  :func:`opportunistic_tls` decision;
- RFC 8460 section 4.3 (result types) for the failures the sender observes itself;
- RFC 5321 section 4.2.1 (reply classes: 2yz done, 4yz transient, 5yz permanent);
- RFC 3461 sections 5.2.1 and 5.2.2 (DSN parameters are relayed only to a server that
  advertises DSN), RFC 6152 (BODY=8BITMIME), RFC 6531 (SMTPUTF8), RFC 1870 (SIZE);
- RFC 8689 section 4.2.1 (a REQUIRETLS message never leaves in the clear or unverified);
- RFC 8460 section 3 (TLSRPT report mail is delivered despite any TLS failure) as
  :func:`report_mail_tls`, the decision the MTA uses for jobs flagged as report mail.

MTA-STS enforcement (RFC 8461 sections 4, 5, 7.2) lives in :mod:`reference_impl.mta.stspolicy`:
the sender asks :func:`opportunistic_tls` when no policy is enforced and the enforcement
decision when one is (``TlsSituation.sts_mode``), at each TLS decision point, and obeys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from reference_impl.mta.dsn import esmtp_param, sanitize_field_text, status_from_reply
from reference_impl.mta.queue import OutcomeKind, RecipientOutcome
from reference_impl.mta.records import TlsResultType
from reference_impl.mtasts.policy import Mode

# OpenSSL X509_V_ERR_* codes, grouped into the RFC 8460 section 4.3.1 result types.
_EXPIRED = frozenset({10})  # CERT_HAS_EXPIRED
_HOST_MISMATCH = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_NOT_TRUSTED = frozenset(
    {
        2,  # UNABLE_TO_GET_ISSUER_CERT
        18,  # DEPTH_ZERO_SELF_SIGNED_CERT
        19,  # SELF_SIGNED_CERT_IN_CHAIN
        20,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        21,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
        24,  # INVALID_CA
        27,  # CERT_UNTRUSTED
        28,  # CERT_REJECTED
        47,  # PERMITTED_VIOLATION (name constraints)
        48,  # EXCLUDED_VIOLATION (name constraints)
    }
)


class TlsStage(Enum):
    """The points of a session where TLS did not simply succeed."""

    NOT_OFFERED = "not-offered"  # EHLO had no STARTTLS
    REFUSED = "refused"  # STARTTLS was answered with something other than 220
    CERTIFICATE_INVALID = "certificate-invalid"  # the handshake failed verification
    HANDSHAKE_FAILED = "handshake-failed"  # the handshake failed for another reason
    PROTOCOL_TOO_OLD = "protocol-too-old"  # a session below the TLS floor (RFC 8461 7.2)


class TlsAction(Enum):
    CONTINUE_PLAINTEXT = "continue-plaintext"  # go on without TLS (same or a new session)
    RETRY_UNVERIFIED = "retry-unverified"  # reconnect and use TLS without verification
    NEXT_HOST = "next-host"  # give this host up


@dataclass(frozen=True, slots=True)
class TlsSituation:
    stage: TlsStage
    policy_domain: str
    mx_host: str
    result_type: TlsResultType
    detail: str | None
    requiretls: bool  # the message carries REQUIRETLS (RFC 8689)
    sts_mode: Mode | None = None  # the MTA-STS mode in force for the domain (None: no policy)


TlsDecision = Callable[[TlsSituation], TlsAction]


def opportunistic_tls(situation: TlsSituation) -> TlsAction:
    """The reference sender's TLS policy without MTA-STS: encrypt when possible, never
    refuse to deliver because of TLS, except for a REQUIRETLS message."""
    if situation.requiretls:
        # RFC 8689 section 4.2.1: no cleartext and no unverified TLS for a REQUIRETLS
        # message; the next host (or, in the end, a bounce) is the only way on. The sender asks
        # RequireTlsParts.tls_decision for such messages; this guard stays for other callers.
        return TlsAction.NEXT_HOST
    if situation.stage in (TlsStage.NOT_OFFERED, TlsStage.REFUSED):
        return TlsAction.CONTINUE_PLAINTEXT  # RFC 3207 section 4: STARTTLS is optional
    if situation.stage is TlsStage.CERTIFICATE_INVALID:
        # RFC 7435 section 4: unauthenticated encryption beats cleartext.
        return TlsAction.RETRY_UNVERIFIED
    # A broken handshake says nothing good about this host; another MX may do better.
    return TlsAction.NEXT_HOST


def report_mail_tls(situation: TlsSituation) -> TlsAction:
    """The TLS decision for TLSRPT report mail (RFC 8460 section 3: "Sending MTAs MUST deliver
    reports despite any TLS-related failures"; 5.3.1: "MUST NOT honor MTA-STS or DANE TLSA
    failures"): STARTTLS is tried, an invalid certificate is used unverified, and any other
    TLS failure falls back to plaintext ("This may mean that the reports are delivered
    unencrypted")."""
    if situation.stage is TlsStage.CERTIFICATE_INVALID:
        return TlsAction.RETRY_UNVERIFIED
    return TlsAction.CONTINUE_PLAINTEXT


# Protocol versions as ``ssl.SSLObject.version()`` names them, oldest first.
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def version_at_least(version: str | None, floor: str) -> bool:
    """Whether a negotiated protocol ``version`` is ``floor`` or newer (RFC 8461 section 7.2,
    RFC 8996: TLS 1.2 or higher). Unknown or missing versions are not."""
    if version not in TLS_VERSIONS or floor not in TLS_VERSIONS:
        return False
    return TLS_VERSIONS.index(version) >= TLS_VERSIONS.index(floor)


def classify_verify_failure(verify_code: int | None) -> TlsResultType:
    """RFC 8460 section 4.3.1 result type for an OpenSSL verification code; anything else
    is the section 4.3.3 catch-all."""
    if verify_code in _EXPIRED:
        return TlsResultType.CERTIFICATE_EXPIRED
    if verify_code in _HOST_MISMATCH:
        return TlsResultType.CERTIFICATE_HOST_MISMATCH
    if verify_code in _NOT_TRUSTED:
        return TlsResultType.CERTIFICATE_NOT_TRUSTED
    return TlsResultType.VALIDATION_FAILURE


def reply_text(code: int, lines: Sequence[str]) -> str:
    """A remote reply as one line of text for logs and DSNs (sanitised, bounded)."""
    return sanitize_field_text(f"{code} " + " / ".join(lines), limit=500)


def classify_reply(code: int) -> OutcomeKind:
    """RFC 5321 section 4.2.1: 2yz success, 5yz permanent, everything else transient (a 1yz
    or 3yz where a final reply was due is a protocol error we may retry)."""
    if 200 <= code < 300:
        return OutcomeKind.DELIVERED
    if 500 <= code < 600:
        return OutcomeKind.PERMANENT
    return OutcomeKind.TEMPORARY


def outcome_for_reply(address: str, code: int, lines: Sequence[str], remote_mta: str | None) -> RecipientOutcome:
    kind = classify_reply(code)
    first = lines[0] if lines else ""
    status = "2.0.0" if kind is OutcomeKind.DELIVERED else status_from_reply(code, first)
    if kind is OutcomeKind.TEMPORARY and not status.startswith("4"):
        status = "4.0.0"
    return RecipientOutcome(address, kind, status, reply_text(code, lines), remote_mta)


def outcomes_for_all(
    addresses: Sequence[str],
    kind: OutcomeKind,
    status: str,
    diagnostic: str,
    remote_mta: str | None = None,
) -> tuple[RecipientOutcome, ...]:
    return tuple(RecipientOutcome(a, kind, status, diagnostic, remote_mta) for a in addresses)


def requires_tls(mail_params: Sequence[str]) -> bool:
    """RFC 8689 section 3: the REQUIRETLS MAIL parameter (no value)."""
    return any(p.partition("=")[0].upper() == "REQUIRETLS" for p in mail_params)


def outbound_mail_params(
    mail_params: Sequence[str], extensions: Mapping[str, str], message_size: int
) -> tuple[str, ...]:
    """The MAIL FROM parameters to relay, given what the next server advertises."""
    out: list[str] = []
    if "SIZE" in extensions:
        out.append(f"SIZE={message_size}")  # RFC 1870 section 6: our own size estimate
    body = esmtp_param(mail_params, "BODY")
    if body is not None and body.upper() == "8BITMIME" and "8BITMIME" in extensions:
        out.append("BODY=8BITMIME")  # RFC 6152 section 3
    if esmtp_param(mail_params, "SMTPUTF8") is not None and "SMTPUTF8" in extensions:
        out.append("SMTPUTF8")  # RFC 6531 section 3.4
    if "DSN" in extensions:  # RFC 3461 section 5.2.1 (a) and (b); 5.2.2 (a) otherwise
        for keyword in ("RET", "ENVID"):
            value = esmtp_param(mail_params, keyword)
            if value is not None:
                out.append(f"{keyword}={value}")
    if requires_tls(mail_params) and "REQUIRETLS" in extensions:
        out.append("REQUIRETLS")  # RFC 8689 section 4.2.1
    return tuple(out)


def outbound_rcpt_params(rcpt_params: Sequence[str], extensions: Mapping[str, str]) -> tuple[str, ...]:
    """RFC 3461 section 5.2.1 (c) and (d): NOTIFY and ORCPT go on unchanged, only to a
    server that advertises DSN (section 5.2.2 (a))."""
    if "DSN" not in extensions:
        return ()
    out = []
    for keyword in ("NOTIFY", "ORCPT"):
        value = esmtp_param(rcpt_params, keyword)
        if value is not None:
            out.append(f"{keyword}={value}")
    return tuple(out)
