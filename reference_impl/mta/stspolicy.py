"""MTA-STS enforcement decisions of the sending MTA, sans-IO (RFC 8461 sections 4, 5, 6, 7.2, 8.4).

Discovery itself (TXT record, HTTPS fetch, cache; sections 3 and 5.1) is the planner of
:mod:`reference_impl.mtasts.discovery`; this module decides what its outcome means for one
delivery job, and the asyncio side (:mod:`reference_impl.mta.sender`) obeys:

* :func:`mode_in_force`: section 5, a policy whose mode is ``none`` is treated as no active
  policy; ``testing`` and ``enforce`` are in force.
* :func:`mx_decision`: sections 4.1 and 5 with 8.4. An MX host that matches none of the
  ``mx`` patterns is, under ``enforce``, treated as unreachable: the walk goes on as after a
  transient error and the host is never connected to. Under ``testing`` the mismatch is
  recorded (section 6) and delivery proceeds.
* :func:`enforce_tls`: sections 4.2, 5 and 7.2. Under ``enforce`` every TLS failure (no
  STARTTLS, STARTTLS refused or stripped, a certificate that does not validate, a failed
  handshake, a protocol below TLS 1.2) gives the host up; never plaintext, never unverified.
  Under ``testing`` and without a policy the opportunistic decision of
  :mod:`reference_impl.mta.delivery` applies, which records the failure and delivers.
* :func:`no_delivery_outcome`: section 5, a message no MX could take under ``enforce`` is a
  temporary failure (deferred, never bounced at once); the queue bounces it only at the end of
  its lifetime, and every attempt, the last included, starts with discovery, i.e. with the TXT
  record checked again ("MUST NOT permanently fail to deliver messages before checking, via
  DNS, for the presence of an updated policy").
* :func:`canonical_txt` and :func:`canonical_fetch` put a swapped record selector or policy
  parser (the mutants) in front of the planner, which always reads with the reference ones:
  when the swapped reading agrees with the reference, the answer passes unchanged; when it
  does not, the planner gets the canonical rendering of what the swapped part read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from reference_impl.mta.delivery import TlsAction, TlsSituation
from reference_impl.mta.queue import OutcomeKind
from reference_impl.mta.records import POLICY_TYPE_NONE, POLICY_TYPE_STS
from reference_impl.mtasts.discovery import FetchErrorKind, FetchResult, PolicyOutcome, StsFailure, TxtAnswer
from reference_impl.mtasts.errors import PolicyError, RecordError
from reference_impl.mtasts.policy import Mode, Policy, PolicyReadings, parse_policy, render_policy
from reference_impl.mtasts.record import RecordReadings, StsRecord, render_record, select_record

RecordSelector = Callable[[Sequence[Sequence[bytes]], RecordReadings], StsRecord | None]
PolicyParser = Callable[[bytes | str, PolicyReadings], Policy]
ModeOf = Callable[[Policy | None], Mode | None]
MxMatcher = Callable[[Policy, str], bool]

# A TXT answer the reference selector always rejects as invalid (section 3.1: an id is
# 1*32(ALPHA / DIGIT)); handed to the planner when a swapped selector rejects the record.
_INVALID_RECORD = b"v=STSv1; id=;"


class MxAction(Enum):
    """What to do with one MX host of the walk under the policy in force."""

    DELIVER = "deliver"  # no policy in force, or the host matches
    REPORT_AND_DELIVER = "report-and-deliver"  # testing mode, no match: record, deliver anyway
    SKIP = "skip"  # enforce mode, no match: as if unreachable (8.4)


@dataclass(frozen=True, slots=True)
class StsApplied:
    """The MTA-STS state of one delivery job: the policy discovery produced and the mode in
    force, plus what TLSRPT needs (RFC 8460 section 4.4 "policies")."""

    mode: Mode | None  # None: no policy in force (none found, or mode none)
    policy: Policy | None = None
    policy_strings: tuple[str, ...] = ()  # the policy's lines, as fetched
    record_id: str | None = None
    failure: StsFailure | None = None  # a discovery failure to report (RFC 8461 section 6)
    reason: str = ""

    @property
    def policy_type(self) -> str:
        """RFC 8460 section 4.4: "sts" when a policy (or a failed attempt at one) is
        involved, else "no-policy-found"."""
        return POLICY_TYPE_STS if self.policy is not None or self.failure is not None else POLICY_TYPE_NONE

    @property
    def mx_patterns(self) -> tuple[str, ...]:
        return self.policy.mx if self.policy is not None else ()


NO_POLICY = StsApplied(mode=None, reason="MTA-STS not looked up")


def mode_in_force(policy: Policy | None) -> Mode | None:
    """Section 5: ``none`` means "no active policy"; enforce and testing are in force."""
    if policy is None or policy.mode is Mode.NONE:
        return None
    return policy.mode


def mx_decision(mode: Mode | None, matches: bool) -> MxAction:
    """Sections 4.1, 5 and 8.4: what a match or mismatch of the MX host means in ``mode``."""
    if mode is None or matches:
        return MxAction.DELIVER
    if mode is Mode.ENFORCE:
        # 5: "MUST NOT deliver the message to this host"; 8.4: traverse the MX list as usual,
        # the invalid candidate treated as if it had a transient error.
        return MxAction.SKIP
    # 5: testing mode delivers anyway; the failure is reported (section 6).
    return MxAction.REPORT_AND_DELIVER


def enforce_tls(situation: TlsSituation) -> TlsAction:
    """The TLS decision under ``enforce`` (sections 4.2, 5, 7.2): any failure - STARTTLS not
    offered or refused (stripped counts as not offered), a certificate that does not chain to
    a trusted root or lacks the MX name as a DNS-ID, a failed handshake, a protocol below
    TLS 1.2 - means this host MUST NOT get the message."""
    return TlsAction.NEXT_HOST


@dataclass(frozen=True, slots=True)
class NoDelivery:
    """Why no MX host took the message: the mode in force and how many hosts the policy
    excluded (mx mismatch or TLS failure under enforce)."""

    mode: Mode | None
    enforced_failures: int
    reason: str


NoDeliveryDecision = Callable[[NoDelivery], tuple[OutcomeKind, str]]
MxDecision = Callable[[Mode | None, bool], MxAction]


def no_delivery_outcome(situation: NoDelivery) -> tuple[OutcomeKind, str]:
    """Section 5: a policy failure is a temporary failure (the queue retries, and checks the
    TXT record again each time, before the lifetime ends in a bounce). RFC 3463: 4.7.5
    "cryptographic failure" when the policy excluded hosts, else 4.4.1 (RFC 5321 4.5.4.1)."""
    if situation.enforced_failures:
        return OutcomeKind.TEMPORARY, "4.7.5"
    return OutcomeKind.TEMPORARY, "4.4.1"


def policy_strings(text: str | None) -> tuple[str, ...]:
    """RFC 8460 section 4.4 "policy-string": the policy, one string per line (CRLF or LF)."""
    if not text:
        return ()
    return tuple(line for line in text.replace("\r\n", "\n").split("\n") if line)


def applied_from(outcome: PolicyOutcome, policy_text: str | None, mode_of: ModeOf) -> StsApplied:
    """The job's MTA-STS state from a discovery outcome (section 5.1 step 1)."""
    policy = outcome.policy
    text = policy_text if policy_text is not None else (render_policy(policy) if policy is not None else None)
    return StsApplied(
        mode=mode_of(policy),
        policy=policy,
        policy_strings=policy_strings(text) if policy is not None else (),
        record_id=outcome.record_id,
        failure=outcome.failure,
        reason=outcome.reason,
    )


# -- swapped readers in front of the planner -------------------------------------------------

_Reading = StsRecord | None | RecordError


def _select(selector: RecordSelector, rrs: Sequence[Sequence[bytes]], readings: RecordReadings) -> _Reading:
    try:
        return selector(rrs, readings)
    except RecordError as exc:
        return exc


def canonical_txt(answer: TxtAnswer, selector: RecordSelector, readings: RecordReadings) -> TxtAnswer:
    """The TXT answer as ``selector`` reads it (section 3.1), in a form the planner's
    reference selector reads the same way."""
    if answer.status != "ok" or selector is select_record:
        return answer
    chosen = _select(selector, answer.rrs, readings)
    reference = _select(select_record, answer.rrs, readings)
    same = (isinstance(chosen, RecordError) and isinstance(reference, RecordError)) or chosen == reference
    if same:
        return answer
    if chosen is None:
        return TxtAnswer("ok", ())
    if isinstance(chosen, RecordError):
        return TxtAnswer("ok", ((_INVALID_RECORD,),))
    return TxtAnswer("ok", ((render_record(chosen).encode("utf-8"),),))


def _parse(parser: PolicyParser, body: bytes, readings: PolicyReadings) -> Policy | Exception:
    try:
        return parser(body, readings)
    except (PolicyError, UnicodeError, ValueError) as exc:
        return exc


def canonical_fetch(result: FetchResult, parser: PolicyParser, readings: PolicyReadings) -> FetchResult:
    """The fetched body as ``parser`` reads it (section 3.2), in a form the planner's
    reference parser reads the same way."""
    if not result.ok or result.body is None or parser is parse_policy:
        return result
    chosen = _parse(parser, result.body, readings)
    reference = _parse(parse_policy, result.body, readings)
    if isinstance(chosen, Exception):
        if isinstance(reference, Exception):
            return result
        return FetchResult.failure(FetchErrorKind.INVALID_POLICY, str(chosen))
    if chosen == reference:
        return result
    return FetchResult.success(render_policy(chosen).encode("utf-8"))
