"""REQUIRETLS mutants (RFC 8689): the reference MTA with one RFC 8689 part broken.

Receiving side (sections 2, 4.1) through SMTP server subclasses, relaying (4.2.1), the
``TLS-Required`` header (4.2.2) and bounces (5) through :class:`~reference_impl.requiretls.
policy.RequireTlsParts`. Each is registered in :data:`reference_impl.mta.mutants.ALL_MUTANTS`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from reference_impl.mta.config import MtaVariant
from reference_impl.mta.delivery import report_mail_tls
from reference_impl.mta.queue import OutcomeKind, RecipientOutcome
from reference_impl.requiretls.bounce import BounceRules, has_requiretls, ndn_return_full
from reference_impl.requiretls.header import find_tls_required
from reference_impl.requiretls.nexthop import (
    NextHop,
    NextHopFailure,
    QualifyOptions,
    check_mx_name,
    check_session,
    failure_status,
)
from reference_impl.requiretls.policy import RequireTlsParts
from reference_impl.smtp.replies import Reply
from reference_impl.smtp.server import SmtpServerConnection

__all__ = ["REQUIRETLS_DESCRIPTIONS", "REQUIRETLS_MUTANTS"]


class RequireTlsBeforeTlsServerConnection(SmtpServerConnection):
    """Advertises and accepts REQUIRETLS on a cleartext session (RFC 8689 section 2)."""

    def _requiretls_available(self) -> bool:
        return True


class RequireTlsNotAdvertisedServerConnection(SmtpServerConnection):
    """Does not implement REQUIRETLS: never lists it in the EHLO reply, not even after STARTTLS,
    and refuses the parameter as unknown (RFC 8689 section 2, RFC 5321 4.1.1.11)."""

    def _advertise_requiretls(self) -> bool:
        return False

    def _requiretls_problem(self, value: str | None) -> Reply | None:
        return self._reply(555, "5.5.4", "MAIL FROM parameters not recognized or not implemented")


class RequireTlsValueServerConnection(SmtpServerConnection):
    """Accepts ``REQUIRETLS=YES`` (RFC 8689 section 2: the parameter takes no value)."""

    def _requiretls_problem(self, value: str | None) -> Reply | None:
        return super()._requiretls_problem(None)


def _no_dnssec_check(hop: NextHop, options: QualifyOptions) -> NextHopFailure | None:
    return check_mx_name(dataclasses.replace(hop, mx_dnssec_validated=True), options)


def _sts_testing_counts(hop: NextHop, options: QualifyOptions) -> NextHopFailure | None:
    return check_mx_name(hop, dataclasses.replace(options, sts_testing_counts=True))


def _no_cert_check(hop: NextHop) -> NextHopFailure | None:
    return check_session(dataclasses.replace(hop, dane_verified=True))


def _plaintext_ok(hop: NextHop) -> NextHopFailure | None:
    return None if not hop.tls_established else check_session(hop)


def _drop_requiretls(mail_params: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for p in mail_params if not has_requiretls((p,)))


def _defer(failure: NextHopFailure) -> tuple[OutcomeKind, str]:
    return OutcomeKind.TEMPORARY, "4" + failure_status(failure)[1:]


def _swapped_code(failure: NextHopFailure) -> tuple[OutcomeKind, str]:
    return OutcomeKind.PERMANENT, "5.7.10" if failure is NextHopFailure.NO_REQUIRETLS else "5.7.30"


def _no_dane(hop: NextHop) -> NextHopFailure | None:
    return check_session(dataclasses.replace(hop, dane_verified=False))


_ANY_TLS_REQUIRED = re.compile(rb"(?im)^tls-required:[ \t]*no[ \t]*\r?$")


def _header_any_value(mail_params: Sequence[str], data: bytes) -> bool:
    return not has_requiretls(mail_params) and find_tls_required(data).count > 0


def _header_exact_line(mail_params: Sequence[str], data: bytes) -> bool:
    header = data.split(b"\r\n\r\n", 1)[0]
    return not has_requiretls(mail_params) and b"\r\nTLS-Required: No\r\n" in b"\r\n" + header + b"\r\n"


def _header_repeated_ok(mail_params: Sequence[str], data: bytes) -> bool:
    header = data.split(b"\r\n\r\n", 1)[0]
    return not has_requiretls(mail_params) and _ANY_TLS_REQUIRED.search(header) is not None


def _header_anywhere(mail_params: Sequence[str], data: bytes) -> bool:
    return not has_requiretls(mail_params) and _ANY_TLS_REQUIRED.search(data) is not None


def _tls_refusal_deferred(outcomes: tuple[RecipientOutcome, ...]) -> tuple[RecipientOutcome, ...]:
    return tuple(
        dataclasses.replace(o, kind=OutcomeKind.TEMPORARY, status="4" + o.status[1:])
        if o.kind is OutcomeKind.PERMANENT and o.status.startswith("5.7.")
        else o
        for o in outcomes
    )


def _header_ignored(mail_params: Sequence[str], data: bytes) -> bool:
    return False


def _header_overrides_param(mail_params: Sequence[str], data: bytes) -> bool:
    return find_tls_required(data).tls_optional


def _full_return(mail_params: Sequence[str]) -> bool:
    ret = [p.partition("=")[2].upper() for p in mail_params if p.partition("=")[0].upper() == "RET"]
    return ret == ["FULL"] or ndn_return_full(mail_params)


def _no_bounce_params(mail_params: Sequence[str]) -> tuple[str, ...]:
    return ()


def _parts(**changes: object) -> RequireTlsParts:
    return dataclasses.replace(RequireTlsParts(), **changes)  # type: ignore[arg-type]


REQUIRETLS_MUTANTS = (
    MtaVariant(name="requiretls-before-tls", server_connection_factory=RequireTlsBeforeTlsServerConnection),
    MtaVariant(name="requiretls-not-advertised", server_connection_factory=RequireTlsNotAdvertisedServerConnection),
    MtaVariant(name="requiretls-value-accepted", server_connection_factory=RequireTlsValueServerConnection),
    MtaVariant(name="tls-required-ignored", requiretls=_parts(tls_optional=_header_ignored)),
    MtaVariant(name="tls-required-no-starttls", requiretls=_parts(optional_attempts_starttls=False)),
    MtaVariant(name="tls-required-overrides-param", requiretls=_parts(tls_optional=_header_overrides_param)),
    MtaVariant(name="requiretls-no-dnssec-check", requiretls=_parts(mx_name_check=_no_dnssec_check)),
    MtaVariant(
        name="requiretls-cert-unverified",
        requiretls=_parts(verify_certificate=False, session_check=_no_cert_check),
    ),
    MtaVariant(name="requiretls-param-dropped", requiretls=_parts(relay_params=_drop_requiretls)),
    MtaVariant(name="requiretls-defers", requiretls=_parts(no_hop_outcome=_defer)),
    MtaVariant(
        name="requiretls-plaintext-fallback",
        requiretls=_parts(tls_decision=report_mail_tls, verify_certificate=False, session_check=_plaintext_ok),
    ),
    MtaVariant(
        name="requiretls-bounce-full-body",
        requiretls=_parts(bounce=BounceRules(return_full=_full_return)),
    ),
    MtaVariant(
        name="requiretls-bounce-without-requiretls",
        requiretls=_parts(bounce=BounceRules(mail_params=_no_bounce_params)),
    ),
    MtaVariant(name="requiretls-bounce-wrong-code", requiretls=_parts(no_hop_outcome=_swapped_code)),
    MtaVariant(name="requiretls-sts-testing-counts", requiretls=_parts(mx_name_check=_sts_testing_counts)),
    MtaVariant(name="requiretls-dane-ignored", requiretls=_parts(session_check=_no_dane)),
    MtaVariant(name="requiretls-ndn-unprotected", requiretls=_parts(ndn_protected=False)),
    MtaVariant(name="requiretls-ndn-needs-requiretls", requiretls=_parts(ndn_needs_keyword=True)),
    MtaVariant(name="tls-required-any-value", requiretls=_parts(tls_optional=_header_any_value)),
    MtaVariant(name="tls-required-exact-line", requiretls=_parts(tls_optional=_header_exact_line)),
    MtaVariant(name="tls-required-repeated-honoured", requiretls=_parts(tls_optional=_header_repeated_ok)),
    MtaVariant(name="tls-required-anywhere", requiretls=_parts(tls_optional=_header_anywhere)),
    MtaVariant(name="tls-required-refusal-deferred", requiretls=_parts(optional_outcomes=_tls_refusal_deferred)),
)

REQUIRETLS_DESCRIPTIONS = {
    "requiretls-before-tls": "advertises and accepts REQUIRETLS on a cleartext session (RFC 8689 2)",
    "requiretls-not-advertised": "no REQUIRETLS: never advertised, not even after STARTTLS, parameter refused "
    "(RFC 8689 2)",
    "requiretls-value-accepted": "accepts MAIL FROM:<..> REQUIRETLS=YES (RFC 8689 2)",
    "tls-required-ignored": "TLS-Required: No has no effect: MTA-STS/DANE failures still block (RFC 8689 4.2.2)",
    "tls-required-no-starttls": "with TLS-Required: No, STARTTLS is not even tried (RFC 8689 4.2.2)",
    "tls-required-overrides-param": "TLS-Required: No is honoured despite the REQUIRETLS parameter (RFC 8689 4.1)",
    "requiretls-no-dnssec-check": "REQUIRETLS relays to an MX name neither DNSSEC- nor MTA-STS-validated "
    "(RFC 8689 4.2.1)",
    "requiretls-cert-unverified": "REQUIRETLS relays without verifying the MX certificate (RFC 8689 4.2.1)",
    "requiretls-param-dropped": "drops the REQUIRETLS tag: relays like any message, without the parameter "
    "(RFC 8689 4.2.1)",
    "requiretls-defers": "defers instead of bouncing when no MX qualifies for REQUIRETLS (RFC 8689 4.2.1)",
    "requiretls-plaintext-fallback": "relays a REQUIRETLS message in cleartext when TLS fails (RFC 8689 4.2.1)",
    "requiretls-bounce-full-body": "the NDN of a REQUIRETLS message returns the full body on RET=FULL (RFC 8689 5)",
    "requiretls-bounce-without-requiretls": "the NDN of a REQUIRETLS message is sent without REQUIRETLS (RFC 8689 5)",
    "requiretls-bounce-wrong-code": "a REQUIRETLS bounce swaps 5.7.30 and 5.7.10 (RFC 8689 4.2.1)",
    "requiretls-sts-testing-counts": "counts an MTA-STS policy in testing mode as validating the MX name, while "
    "claiming the opposite reading (RFC 8689 4.2.1)",
    "requiretls-dane-ignored": "a DANE-verified next hop does not qualify: only a trusted chain counts (RFC 8689 2)",
    "requiretls-ndn-unprotected": "the NDN of a REQUIRETLS message goes under the ordinary TLS policy, "
    "cleartext included (RFC 8689 5)",
    "requiretls-ndn-needs-requiretls": "the NDN of a REQUIRETLS message is held back when the next hop lacks "
    "REQUIRETLS (RFC 8689 5)",
    "tls-required-any-value": "any TLS-Required value (Yes too) makes TLS optional (RFC 8689 3, 4.1)",
    "tls-required-exact-line": "only the exact line 'TLS-Required: No' counts: folded or other-case forms are "
    "ignored (RFC 8689 3)",
    "tls-required-repeated-honoured": "honours TLS-Required: No even when the field appears more than once "
    "(RFC 8689 3)",
    "tls-required-anywhere": "a 'TLS-Required: No' line in the body counts as the header field (RFC 8689 4.1)",
    "tls-required-refusal-deferred": "a TLS-Required: No message refused for want of TLS (530) is deferred, "
    "no NDN (RFC 8689 4.2.2)",
}
