"""MTA-STS mutants of the reference MTA (RFC 8461): each swaps one part of ``MtaVariant``.

Every part is the reference function wrapped so that one rule breaks (a lenient parser that
normalises a line before calling :func:`~reference_impl.mtasts.policy.parse_policy`, a
matcher that accepts more before asking :func:`~reference_impl.mtasts.matching.policy_allows_mx`,
...); nothing in the reference branches on a flag. Each is observable from outside: the world
sees a delivery that should not happen (or none that should), a fetch or a DNS query.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from reference_impl.mta.clock import Clock
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.mta import MtaVariant
from reference_impl.mta.queue import OutcomeKind
from reference_impl.mta.sender import verified_mx_context
from reference_impl.mta.stsfetch_mutants import BrokenFetch
from reference_impl.mta.stspolicy import NoDelivery, enforce_tls, mode_in_force, no_delivery_outcome
from reference_impl.mtasts.cache import PolicyCache
from reference_impl.mtasts.discovery import DiscoveryConfig, PolicyOutcome, TxtAnswer
from reference_impl.mtasts.errors import PolicyError, RecordError
from reference_impl.mtasts.fetch import TxtLookup, discover_policy
from reference_impl.mtasts.matching import mx_pattern_matches, policy_allows_mx
from reference_impl.mtasts.policy import Mode, Policy, PolicyReadings, parse_policy
from reference_impl.mtasts.record import RecordReadings, StsRecord, select_record

# -- discovery (RFC 8461 sections 3, 3.4, 5.1) ---------------------------------------------


async def never_discover(domain: str, **_parts: Any) -> PolicyOutcome:
    """Section 3: never looks for a policy at all."""
    return PolicyOutcome(None, "none", None, False, None, "MTA-STS not implemented")


async def discover_without_cache(domain: str, *, cache: PolicyCache, **parts: Any) -> PolicyOutcome:
    """Sections 3.3, 5.1: forgets the cached policy before each message, so it fetches every time."""
    cache.remove(domain)
    return await discover_policy(domain, cache=cache, **parts)


async def discover_dropping_cache_without_txt(
    domain: str, *, cache: PolicyCache, lookup: TxtLookup, **parts: Any
) -> PolicyOutcome:
    """Section 3.1 note, 5.1: drops the cached policy when the TXT record is gone."""
    name = f"_mta-sts.{domain}"
    answer = await lookup(name)
    gone = answer.status in ("nxdomain", "nodata")
    if answer.status == "ok":
        try:
            gone = select_record(answer.rrs) is None
        except RecordError:
            gone = False
    if gone:
        cache.remove(domain)

    async def same_answer(asked: str) -> TxtAnswer:
        return answer if asked == name else await lookup(asked)

    return await discover_policy(domain, cache=cache, lookup=same_answer, **parts)


async def discover_renewing_expired_policy(
    domain: str, *, cache: PolicyCache, lookup: TxtLookup, clock: Clock, **parts: Any
) -> PolicyOutcome:
    """Sections 3.2, 5.1: when the cached policy has expired but the TXT id is unchanged, renews
    the old policy as if it had just been fetched, instead of fetching it again."""
    name = f"_mta-sts.{domain}"
    answer = await lookup(name)
    entry = cache.get(domain)
    if entry is not None and entry.is_expired(clock.now()) and answer.status == "ok":
        try:
            record = select_record(answer.rrs)
        except RecordError:
            record = None
        if record is not None and record.id == entry.record_id:
            cache.store(domain, entry.record_id, entry.policy_text, entry.policy)

    async def same_answer(asked: str) -> TxtAnswer:
        return answer if asked == name else await lookup(asked)

    return await discover_policy(domain, cache=cache, lookup=same_answer, clock=clock, **parts)


async def discover_with_parent(domain: str, **parts: Any) -> PolicyOutcome:
    """Section 3.4: for a domain without a policy, applies its parent domain's policy."""
    outcome = await discover_policy(domain, **parts)
    if outcome.policy is not None or domain.count(".") < 2:
        return outcome
    parent = domain.split(".", 1)[1]
    inherited = await discover_policy(parent, **parts)
    return inherited if inherited.policy is not None else outcome


# -- the TXT record (section 3.1) and the policy file (section 3.2) --------------------------


def first_txt_wins(rrs: Sequence[Sequence[bytes]], readings: RecordReadings) -> StsRecord | None:
    """Section 3.1: with several v=STSv1 records, uses the first instead of none."""
    kept = [rr for rr in rrs if b"".join(rr).startswith(b"v=STSv1")]
    return select_record(kept[:1], readings)


def txt_case_insensitive(rrs: Sequence[Sequence[bytes]], readings: RecordReadings) -> StsRecord | None:
    """Section 3.1: reads the version %s"v=STSv1" case-insensitively."""
    fixed = []
    for rr in rrs:
        data = b"".join(rr)
        fixed.append((b"v=STSv1" + data[7:],) if data[:7].lower() == b"v=stsv1" else tuple(rr))
    return select_record(fixed, readings)


_LINE_KEY = re.compile(r"^([^:\r\n]*):")


def _lines(body: bytes | str) -> list[str]:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return text.splitlines(keepends=True)


def last_duplicate_wins(body: bytes | str, readings: PolicyReadings) -> Policy:
    """Section 3.2: of duplicated version/mode/max_age lines, the last counts (not the first)."""
    lines = _lines(body)
    last: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _LINE_KEY.match(line)
        if match and match.group(1) in ("version", "mode", "max_age"):
            last[match.group(1)] = index
    kept = [
        line
        for index, line in enumerate(lines)
        if not ((m := _LINE_KEY.match(line)) and m.group(1) in last and last[m.group(1)] != index)
    ]
    return parse_policy("".join(kept), readings)


def lenient_policy(body: bytes | str, readings: PolicyReadings) -> Policy:
    """Section 3.2: reads the mode and version values case-insensitively."""
    fixed = []
    for line in _lines(body):
        match = re.match(r"^(mode|version):([ \t]*)(\S+)(.*)$", line, re.DOTALL)
        if match:
            key, space, value, rest = match.groups()
            value = value.lower() if key == "mode" else ("STSv1" if value.lower() == "stsv1" else value)
            line = f"{key}:{space}{value}{rest}"
        fixed.append(line)
    return parse_policy("".join(fixed), readings)


def crlf_only(body: bytes | str, readings: PolicyReadings) -> Policy:
    """Section 3.2 (erratum 6253): rejects a policy whose lines end in bare LF."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if re.search(rb"(?<!\r)\n", data):
        raise PolicyError("policy-bare-lf", "3.2", "a line ends in bare LF", None)
    return parse_policy(body, readings)


# -- MX matching (section 4.1) ---------------------------------------------------------------


def _host(mx_host: str) -> str:
    return mx_host.removesuffix(".").lower()


def multi_label_wildcard(policy: Policy, mx_host: str) -> bool:
    """Section 4.1: "*.d" matches names at any depth below d."""
    host = _host(mx_host)
    deep = any(p.startswith("*.") and host.endswith(p[1:].lower()) for p in policy.mx)
    return deep or policy_allows_mx(policy, mx_host)


def wildcard_matches_apex(policy: Policy, mx_host: str) -> bool:
    """Section 4.1: "*.d" also matches d itself."""
    apex = any(p.startswith("*.") and _host(mx_host) == p[2:].lower() for p in policy.mx)
    return apex or policy_allows_mx(policy, mx_host)


def mx_case_sensitive(policy: Policy, mx_host: str) -> bool:
    """Section 4.1: compares names case-sensitively."""
    host = mx_host.removesuffix(".")
    return any(
        mx_pattern_matches(p, host) and (p == host or (p.startswith("*.") and host.endswith(p[1:]))) for p in policy.mx
    )


def any_mx(policy: Policy, mx_host: str) -> bool:
    """Sections 4.1, 5: every MX host counts as matching the policy."""
    return True


# -- modes and enforcement (sections 4.2, 5, 7.2) --------------------------------------------


def _mode_swap(old: Mode, new: Mode) -> Callable[[Policy | None], Mode | None]:
    def mode_of(policy: Policy | None) -> Mode | None:
        if policy is not None and policy.mode is old:
            return new
        return mode_in_force(policy)

    return mode_of


def enforce_unverified(situation: TlsSituation) -> TlsAction:
    """Section 4.2: under enforce, an MX certificate that fails validation is used unverified."""
    if situation.stage is TlsStage.CERTIFICATE_INVALID:
        return TlsAction.RETRY_UNVERIFIED
    return enforce_tls(situation)


def enforce_without_starttls(situation: TlsSituation) -> TlsAction:
    """Section 5: under enforce, an MX without STARTTLS gets the message in plaintext."""
    if situation.stage in (TlsStage.NOT_OFFERED, TlsStage.REFUSED):
        return TlsAction.CONTINUE_PLAINTEXT
    return enforce_tls(situation)


def bounce_on_policy_failure(situation: NoDelivery) -> tuple[OutcomeKind, str]:
    """Section 5: a policy failure bounces at once instead of being retried."""
    if situation.enforced_failures:
        return OutcomeKind.PERMANENT, "5.7.5"
    return no_delivery_outcome(situation)


def cn_fallback_context(ca_file: str | None, floor: str) -> ssl.SSLContext:
    """Section 4.2: the MX name may be found in the subject CN when there is no DNS-ID."""
    context = verified_mx_context(ca_file, floor)
    context.hostname_checks_common_name = True
    return context


def _policy_host_cn(context: ssl.SSLContext) -> None:
    context.hostname_checks_common_name = True


def _policy_host_unverified(context: ssl.SSLContext) -> None:
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE


_CONDITIONAL = (("If-None-Match", '"mta-sts-policy"'), ("If-Modified-Since", "Thu, 01 Jan 2015 00:00:00 GMT"))


MxMatcherFn = Callable[[Policy, str], bool]


def _m(name: str, **parts: Any) -> MtaVariant:
    """The reference with the named parts (one per mutant) swapped."""
    return dataclasses.replace(MtaVariant(name=name), **parts)


STS_MUTANTS = (
    _m("sts-ignored", sts_discover=never_discover),
    _m("sts-renews-expired-policy", sts_discover=discover_renewing_expired_policy),
    _m("sts-mx-match-ignored", sts_mx_matcher=any_mx),
    _m("sts-cert-not-verified", sts_enforcement=enforce_unverified),
    _m("sts-cn-accepted", mx_tls_context=cn_fallback_context),
    _m("sts-starttls-optional", sts_enforcement=enforce_without_starttls),
    _m("sts-tls11-accepted", tls_floor="TLSv1.1"),
    _m("sts-testing-as-enforce", sts_mode_of=_mode_swap(Mode.TESTING, Mode.ENFORCE)),
    _m("sts-enforce-as-testing", sts_mode_of=_mode_swap(Mode.ENFORCE, Mode.TESTING)),
    _m("sts-none-as-enforce", sts_mode_of=_mode_swap(Mode.NONE, Mode.ENFORCE)),
    _m("sts-bounces-on-failure", sts_no_delivery=bounce_on_policy_failure),
    _m("sts-follows-redirects", sts_fetcher=BrokenFetch(follow_redirects=True)),
    _m("sts-accepts-non-200", sts_fetcher=BrokenFetch(any_2xx=True)),
    _m("sts-any-content-type", sts_fetcher=BrokenFetch(any_content_type=True)),
    _m("sts-policy-host-cn-accepted", sts_fetcher=BrokenFetch(adjust_context=_policy_host_cn)),
    _m("sts-policy-host-unverified", sts_fetcher=BrokenFetch(adjust_context=_policy_host_unverified)),
    _m("sts-first-txt-wins", sts_record_selector=first_txt_wins),
    _m("sts-txt-case-insensitive", sts_record_selector=txt_case_insensitive),
    _m("sts-last-duplicate-wins", sts_policy_parser=last_duplicate_wins),
    _m("sts-lenient-policy", sts_policy_parser=lenient_policy),
    _m("sts-crlf-only", sts_policy_parser=crlf_only),
    _m("sts-multi-label-wildcard", sts_mx_matcher=multi_label_wildcard),
    _m("sts-wildcard-matches-apex", sts_mx_matcher=wildcard_matches_apex),
    _m("sts-mx-case-sensitive", sts_mx_matcher=mx_case_sensitive),
    _m("sts-no-cache", sts_discover=discover_without_cache),
    _m("sts-drops-cache-without-txt", sts_discover=discover_dropping_cache_without_txt),
    _m("sts-conditional-get", sts_fetcher=BrokenFetch(extra_headers=_CONDITIONAL)),
    _m("sts-fetch-without-sni", sts_fetcher=BrokenFetch(send_sni=False)),
    _m("sts-retries-failed-fetch", sts_discovery_config=DiscoveryConfig(retry_after_failure_s=0.0)),
    _m("sts-parent-domain", sts_discover=discover_with_parent),
)
