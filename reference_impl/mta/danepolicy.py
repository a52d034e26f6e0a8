"""DANE decisions of the sending MTA, sans-IO (RFC 7672 sections 2.2, 3, 6; RFC 8460 section 4.3.2.1).

The TLSA lookups themselves are the asyncio edge's (:mod:`reference_impl.mta.danediscover`);
this module decides what their answers mean for each MX host of a delivery job, and the
sender (:mod:`reference_impl.mta.sender`, the handshake in :mod:`reference_impl.mta.securing`) obeys:

* :func:`secure_destination`: RFC 7672 sections 2.2.1-2.2.3. TLSA records are looked up only
  for an MX host that was found securely: the MX RRset (or, for the implicit MX of section
  2.2.2, the denial of one) and the host's address records all validated (the AD bit from the
  validating resolver the MTA trusts, RFC 6840 section 5.7). Otherwise the host is "insecure"
  and DANE does not apply.
* :func:`tlsa_state`: the TLSA answer for ``_25._tcp.<mx host>`` (section 2.2.3):

  - a validated, non-empty RRset: DANE applies (``APPLIES``). STARTTLS is mandatory and the
    chain must match one usable record (section 3); if every record is unusable (PKIX-TA(0),
    PKIX-EE(1), or parameters this implementation does not know: section 3.1.3, RFC 7671
    section 4) TLS is still mandatory but not authenticated (section 2.2);
  - NXDOMAIN or NODATA, or an answer without the AD bit ("insecure"): no DANE for this host;
  - a lookup that failed (SERVFAIL, timeout) for a host found securely: the MX is not used
    (sections 2.1.1 and 2.2.3: a failed lookup in a signed zone may be an attacker's, so no
    downgrade to non-DANE delivery), and RFC 8460 4.3.2.1 reports "dnssec-invalid": "no valid
    records were returned from the recursive resolver".
  - Mandatory DANE (section 6, RFC 8460 4.3.2.1 "dane-required"): for a recipient domain the
    MTA is configured to require DANE for, a host without a validated TLSA RRset is not used
    and is reported as "dane-required".

* :func:`enforce_dane`: the TLS decision while DANE applies (sections 2.2 and 3): no
  STARTTLS, a failed handshake or a chain that matches no usable record: the host is given up
  (never plaintext, never unauthenticated delivery). A host given up this way counts like an
  MTA-STS ``enforce`` failure: a message no host took is deferred with 4.7.5.

Precedence: where DANE applies to an MX host it decides alone, MTA-STS is not consulted for
that host (RFC 8461 section 2: "senders who implement MTA-STS validation MUST NOT allow MTA-STS
Policy validation to override a failing DANE validation"); for hosts without DANE the MTA-STS
policy of the job applies as before.

The report's policy (RFC 8460 sections 4.4 and 4.5): policy-type "tlsa", policy strings the TLSA
RRset in presentation form, sorted so that the sessions of one RRset always group into one
policy entry, and no "mx-host".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from reference_impl.dane.errors import TlsaError
from reference_impl.dane.tlsa import DaneVerdict, TlsaRecord, parse_tlsa, presentation, usable_records, verify_chain
from reference_impl.mta.delivery import TlsAction, TlsDecision, TlsSituation
from reference_impl.mta.mxplan import LookupResult, LookupStatus
from reference_impl.mta.records import TlsResultType

__all__ = [
    "NO_DANE",
    "NO_DANE_MX",
    "SMTP_PORT",
    "ChainMatcher",
    "DaneApplied",
    "DaneParts",
    "DaneStatus",
    "MxDane",
    "TlsaGate",
    "TlsaStateDecision",
    "enforce_dane",
    "secure_destination",
    "tlsa_name",
    "tlsa_state",
]

SMTP_PORT = 25  # RFC 7672 section 2.2.3: TLSA records of SMTP servers are at _25._tcp


class DaneStatus(Enum):
    """What DANE means for one MX host of a job."""

    NONE = "none"  # no DANE: no TLSA, insecure, or not looked up
    APPLIES = "applies"  # a validated TLSA RRset: STARTTLS mandatory, chain authenticated
    DNSSEC_INVALID = "dnssec-invalid"  # the TLSA lookup failed for a secure host: not used
    REQUIRED = "dane-required"  # mandatory DANE and no validated TLSA RRset: not used


@dataclass(frozen=True, slots=True)
class MxDane:
    """The DANE state of one MX host."""

    status: DaneStatus
    records: tuple[TlsaRecord, ...] = ()  # the records of the RRset this implementation reads
    policy_strings: tuple[str, ...] = ()  # the whole RRset in presentation form (RFC 8460 4.5)
    detail: str = ""

    @property
    def usable(self) -> tuple[TlsaRecord, ...]:
        """RFC 7672 section 3.1.3: the DANE-TA(2) and DANE-EE(3) records."""
        return usable_records(self.records)

    @property
    def blocks(self) -> bool:
        """The host is not used at all (no session is attempted)."""
        return self.status in (DaneStatus.DNSSEC_INVALID, DaneStatus.REQUIRED)

    @property
    def result_type(self) -> TlsResultType | None:
        """RFC 8460 section 4.3.2.1: the result recorded for a host DANE does not let us use."""
        if self.status is DaneStatus.DNSSEC_INVALID:
            return TlsResultType.DNSSEC_INVALID
        if self.status is DaneStatus.REQUIRED:
            return TlsResultType.DANE_REQUIRED
        return None


NO_DANE_MX = MxDane(DaneStatus.NONE)


@dataclass(frozen=True, slots=True)
class DaneApplied:
    """The DANE state of every MX host of one job (hosts not listed: no DANE)."""

    hosts: tuple[tuple[str, MxDane], ...] = ()

    def for_host(self, name: str) -> MxDane:
        return next((state for host, state in self.hosts if host == name), NO_DANE_MX)


NO_DANE = DaneApplied()


def tlsa_name(host: str, port: int = SMTP_PORT) -> str:
    """RFC 6698 section 3, RFC 7672 section 2.2.3: ``_25._tcp.<TLSA base domain>``; the base
    domain is the MX host name (CNAME expansion of the host is not done here)."""
    return f"_{port}._tcp.{host.rstrip('.')}"


TlsaGate = Callable[[bool, bool], bool]  # (MX answer validated, host addresses validated) -> look TLSA up?
TlsaStateDecision = Callable[[LookupResult | None, bool], MxDane]  # (TLSA answer or None, required) -> state
ChainMatcher = Callable[[Sequence[TlsaRecord], Sequence[bytes], Sequence[str]], DaneVerdict]


def secure_destination(mx_authenticated: bool, host_authenticated: bool) -> bool:
    """RFC 7672 sections 2.2.1-2.2.3: TLSA is looked up only for a host found through validated
    answers (the MX RRset or its denial, and the host's address records)."""
    return mx_authenticated and host_authenticated


def _records(texts: Sequence[str]) -> tuple[tuple[TlsaRecord, ...], tuple[str, ...]]:
    """The readable records and the presentation strings of the whole RRset, sorted."""
    records: list[TlsaRecord] = []
    strings: set[str] = set()
    for text in texts:
        try:
            record = parse_tlsa(text)
        except TlsaError:
            strings.add(" ".join(text.split()))  # unusable (RFC 7671 section 4), still published
            continue
        records.append(record)
        strings.add(presentation(record))
    return tuple(records), tuple(sorted(strings))


def tlsa_state(answer: LookupResult | None, required: bool) -> MxDane:
    """RFC 7672 sections 2.2.3 and 6, RFC 8460 4.3.2.1: the DANE state of one MX host from its
    TLSA answer (None: not looked up, the host is insecure) and whether DANE is mandatory for
    the recipient domain."""
    if answer is not None and answer.status is LookupStatus.TEMPFAIL:
        detail = f"TLSA lookup failed: {answer.detail or 'no answer'}"
        return MxDane(DaneStatus.DNSSEC_INVALID, detail=detail)
    if answer is not None and answer.status is LookupStatus.OK and answer.authenticated and answer.tlsa:
        records, strings = _records(answer.tlsa)
        return MxDane(DaneStatus.APPLIES, records, strings)
    if not required:
        return NO_DANE_MX
    if answer is None:
        why = "the MX host was not found through DNSSEC-validated answers"
    elif answer.status is LookupStatus.OK:
        why = "the TLSA answer is not DNSSEC-validated"
    else:
        why = "no TLSA records"
    return MxDane(DaneStatus.REQUIRED, detail=f"DANE required: {why}")


def enforce_dane(situation: TlsSituation) -> TlsAction:
    """RFC 7672 sections 2.2 and 3: under DANE every TLS failure (no STARTTLS, a failed
    handshake, a chain that matches no usable TLSA record) gives the host up."""
    return TlsAction.NEXT_HOST


@dataclass(frozen=True, slots=True)
class DaneParts:
    """The DANE parts of an :class:`~reference_impl.mta.config.MtaVariant` (each a mutant's target)."""

    tlsa_wanted: TlsaGate = secure_destination
    tlsa_state: TlsaStateDecision = tlsa_state
    enforcement: TlsDecision = enforce_dane
    matcher: ChainMatcher = verify_chain
