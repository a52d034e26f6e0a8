"""MTA-STS policy discovery for one Policy Domain at one moment: a sans-IO planner.

RFC 8461 section 3 (discovery: the ``_mta-sts`` TXT record, section 3.1, then the HTTPS
fetch, section 3.3), section 5.1 (the control flow: a cached policy whose time since fetch
has not exceeded ``max_age`` is applied; a new ``id`` triggers a fetch) and section 10.2
(refresh cached policies well before they expire, even when the TXT record is unavailable).

The planner yields its next request and takes the result, so an asyncio driver
(:func:`reference_impl.mtasts.fetch.discover_policy`), a synchronous one and the tests all
run the same logic::

    plan = Discovery("example.com", cache_entry=entry, last_failure=note, now=t, config=cfg)
    while not isinstance(request := plan.next_request(), Finished):
        if isinstance(request, LookupTxt):
            plan.take_txt(answer_for(request.name))
        else:
            plan.take_fetch(fetch(request.domain))
    outcome = request.outcome

States::

    LOOKUP_TXT --take_txt--> FETCH --take_fetch--> DONE
                         \\-------------------------> DONE   (cache applies, or no policy)

The failure matrix, in the order the planner decides (RFC-NOTES 1.1):

============================================  ====================================
TXT answer                                    decision
============================================  ====================================
valid, same id as the unexpired cache          cached policy, no fetch (3.1, 5.1)
valid, id differs, or no usable cache          fetch; on failure the unexpired cache,
                                               else no policy (3.3)
none / invalid / several (3.1)                 unexpired cache if any, else no policy
servfail / timeout                             unexpired cache if any, else no policy
============================================  ====================================

A fetch that returns an unparsable policy counts as a failed fetch (3.3: "no policy can be
fetched"). An expired cache entry is never applied (3.3, 5.1). A failed fetch is not
repeated for the same ``id`` within :attr:`DiscoveryConfig.retry_after_failure_s` (3.3). A
cached policy close to expiry, or older than the refresh interval, is fetched again even when
its ``id`` is unchanged or the TXT record is unavailable (3.3, 10.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Literal

from reference_impl.mtasts.cache import CachedPolicy, FailureNote
from reference_impl.mtasts.errors import PolicyError, RecordError
from reference_impl.mtasts.policy import Mode, Policy, PolicyReadings, parse_policy
from reference_impl.mtasts.record import RecordReadings, select_record

WELL_KNOWN_PATH = "/.well-known/mta-sts.txt"
"""RFC 8461 section 3.2: the fixed well-known path of the policy on the Policy Host."""

TxtStatus = Literal["ok", "nxdomain", "nodata", "servfail", "timeout"]
Source = Literal["fresh", "cache", "none"]


class DiscoveryStateError(RuntimeError):
    """The caller drove the planner out of order (a bug in the caller, not bad input)."""


class StsFailure(StrEnum):
    """The RFC 8460 section 4.3.2.2 result types an MTA-STS policy failure is reported as."""

    FETCH_ERROR = "sts-policy-fetch-error"
    POLICY_INVALID = "sts-policy-invalid"
    WEBPKI_INVALID = "sts-webpki-invalid"


class FetchErrorKind(Enum):
    """Why an HTTPS policy fetch (RFC 8461 section 3.3) produced no policy."""

    DNS = "dns"  # the Policy Host name did not resolve
    CONNECT = "connect"  # no TCP connection to any address
    TLS_VERIFY = "tls-verify"  # certificate untrusted, expired or not valid for mta-sts.<domain>
    TLS = "tls"  # any other TLS failure (handshake, protocol version)
    HTTP_STATUS = "http-status"  # a status other than 200
    REDIRECT = "redirect"  # a 3xx, which MUST NOT be followed
    CONTENT_TYPE = "content-type"  # not text/plain (3.2)
    TOO_LARGE = "too-large"  # body above the size limit
    TIMEOUT = "timeout"  # the whole fetch exceeded its deadline
    HTTP_PROTOCOL = "http-protocol"  # malformed or truncated HTTP response
    INVALID_POLICY = "invalid-policy"  # the body is not a valid policy (3.2)

    @property
    def result_type(self) -> StsFailure:
        """The RFC 8460 section 4.3.2.2 result type for this kind of failure.

        A certificate that does not validate is "sts-webpki-invalid"; a response that arrived
        but is not an acceptable policy document (wrong media type, bad syntax) is
        "sts-policy-invalid"; everything else failed to retrieve the policy:
        "sts-policy-fetch-error".
        """
        if self is FetchErrorKind.TLS_VERIFY:
            return StsFailure.WEBPKI_INVALID
        if self in (FetchErrorKind.INVALID_POLICY, FetchErrorKind.CONTENT_TYPE):
            return StsFailure.POLICY_INVALID
        return StsFailure.FETCH_ERROR


@dataclass(frozen=True, slots=True)
class FetchError:
    kind: FetchErrorKind
    detail: str

    @property
    def result_type(self) -> StsFailure:
        return self.kind.result_type


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The result of one HTTPS policy fetch: a body (ok) or an error."""

    ok: bool
    body: bytes | None = None
    error: FetchError | None = None

    def __post_init__(self) -> None:
        if self.ok != (self.body is not None) or self.ok == (self.error is not None):
            raise ValueError("a FetchResult has a body when ok, an error otherwise")

    @classmethod
    def success(cls, body: bytes) -> FetchResult:
        return cls(True, body=body)

    @classmethod
    def failure(cls, kind: FetchErrorKind, detail: str) -> FetchResult:
        return cls(False, error=FetchError(kind, detail))


@dataclass(frozen=True, slots=True)
class TxtAnswer:
    """The answer to the ``_mta-sts`` TXT query; each RR is its tuple of character-strings.

    The adapter follows CNAMEs (RFC 8461 section 3.1: "senders MUST follow the CNAME
    pointers") and reports the final TXT RRset.
    """

    status: TxtStatus
    rrs: tuple[tuple[bytes, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class LookupTxt:
    name: str


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    domain: str
    host: str
    url: str


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """What discovery decided.

    ``policy`` is the policy to apply (its mode may be ``none``: section 5 says to treat the
    domain as having no active policy); ``record_id`` is the ``id`` that policy belongs to,
    or the TXT ``id`` when there is no policy. When ``store`` is set, the caller stores
    ``policy_text``/``policy`` under ``record_id``; when ``failed_fetch_id`` is set, the
    caller notes a failed fetch for that id (the five-minute rule of 3.3). ``failure`` is
    the RFC 8460 result type to report, if any (RFC 8461 section 6); ``alert`` asks for an
    administrator alert (a failed refresh of a cached policy whose mode is not ``none``,
    sections 3.3 and 10.2).
    """

    policy: Policy | None
    source: Source
    record_id: str | None
    store: bool
    failure: StsFailure | None
    reason: str
    policy_text: str | None = None
    failed_fetch_id: str | None = None
    alert: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: PolicyOutcome


Request = LookupTxt | FetchPolicy | Finished


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """Tunables; the defaults are the values RFC 8461 suggests."""

    retry_after_failure_s: float = 300.0
    """Section 3.3: after a failed GET, limit further attempts "to a period of five minutes
    or longer per version ID"."""
    refresh_before_s: float = 86400.0
    """Sections 3.3, 10.2: refresh a cached policy before it expires (this long before)."""
    refresh_every_s: float | None = 86400.0
    """Section 3.3: "a suggested refresh frequency is once per day"; None: only near expiry."""
    refresh_without_txt: bool = True
    """Section 10.2: refresh "regardless of the state of the _mta-sts TXT record"."""
    record_readings: RecordReadings = field(default_factory=RecordReadings)
    """How to read the TXT record where section 3.1 contradicts itself (erratum 6285)."""
    policy_readings: PolicyReadings = field(default_factory=PolicyReadings)
    """How to read what section 3.2 leaves open (max_age above the maximum, empty lines);
    give the cache the same readings."""

    def __post_init__(self) -> None:
        values = (self.retry_after_failure_s, self.refresh_before_s, self.refresh_every_s or 0.0)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError("discovery intervals must be finite and non-negative")
        if self.refresh_every_s is not None and self.refresh_every_s <= 0:
            raise ValueError("the refresh interval must be positive")


class DiscoveryState(Enum):
    LOOKUP_TXT = "lookup-txt"
    AWAIT_TXT = "await-txt"
    FETCH = "fetch"
    AWAIT_FETCH = "await-fetch"
    DONE = "done"


def policy_domain(domain: str) -> str:
    """The Policy Domain in the form used for DNS and HTTPS: lower case, no root dot, A-labels.

    A U-label domain (SMTPUTF8 mail) is converted with Python's IDNA codec; a name that
    cannot be converted raises ``ValueError``.
    """
    name = domain.strip().rstrip(".").lower()
    if not name or ".." in name:
        raise ValueError(f"not a domain name: {domain!r}")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a domain name: {domain!r}") from exc
    return name


def policy_host(domain: str) -> str:
    """Section 3.2: the Policy Host is "mta-sts" prepended to the Policy Domain."""
    return f"mta-sts.{policy_domain(domain)}"


def policy_url(domain: str) -> str:
    """Section 3.2: ``https://mta-sts.<domain>/.well-known/mta-sts.txt``."""
    return f"https://{policy_host(domain)}{WELL_KNOWN_PATH}"


def is_usable(entry: CachedPolicy | None, now: float) -> bool:
    """Sections 3.3, 5.1: only a cached policy whose age has not exceeded max_age applies."""
    return entry is not None and now < entry.expires_at


def needs_refresh(
    entry: CachedPolicy, now: float, refresh_before_s: float, *, refresh_every_s: float | None = None
) -> bool:
    """Whether an unexpired cached policy should be fetched again now.

    Sections 3.3 and 10.2: MTAs SHOULD proactively refresh cached policies before they
    expire ("a suggested refresh frequency is once per day"). True when the entry expires
    within ``refresh_before_s``, or (with ``refresh_every_s``) was fetched at least that long
    ago. The near-expiry window is at most half the entry's lifetime, so a short ``max_age``
    does not turn every message into a fetch. An expired entry needs a fetch, not a
    refresh: False.
    """
    if not is_usable(entry, now):
        return False
    window = min(refresh_before_s, (entry.expires_at - entry.fetched_at) / 2)
    if entry.expires_at - now <= window:
        return True
    return refresh_every_s is not None and now - entry.fetched_at >= refresh_every_s


def fetch_suppressed(note: FailureNote | None, record_id: str | None, now: float, retry_after_s: float) -> bool:
    """Section 3.3: "In the case where the HTTPS GET fails, implementers SHOULD limit further
    attempts to a period of five minutes or longer per version ID"."""
    if note is None or record_id is None or note.record_id != record_id:
        return False
    return note.failed_at <= now < note.failed_at + retry_after_s


class Discovery:
    """Policy discovery for one domain, with the cache entry and failure note read beforehand."""

    def __init__(
        self,
        domain: str,
        *,
        cache_entry: CachedPolicy | None,
        now: float,
        config: DiscoveryConfig | None = None,
        last_failure: FailureNote | None = None,
    ) -> None:
        self.domain = policy_domain(domain)
        self._now = now
        self._config = config or DiscoveryConfig()
        # Sections 3.3, 5.1: an expired entry is never applied; keep it only for its id.
        self._entry = cache_entry
        self._usable = cache_entry if is_usable(cache_entry, now) else None
        self._last_failure = last_failure
        self.state = DiscoveryState.LOOKUP_TXT
        self._pending: LookupTxt | FetchPolicy | None = None
        self._fetch_id: str | None = None  # the id the pending fetch is for
        self._fetch_reason = ""
        self._txt_valid = False
        self._outcome: PolicyOutcome | None = None

    @property
    def outcome(self) -> PolicyOutcome | None:
        return self._outcome

    def next_request(self) -> Request:
        """The request to carry out next (the same one until its result is taken)."""
        if self.state is DiscoveryState.LOOKUP_TXT:
            # Section 3.1: the TXT record "_mta-sts" at the Policy Domain.
            self._pending = LookupTxt(f"_mta-sts.{self.domain}")
            self.state = DiscoveryState.AWAIT_TXT
        elif self.state is DiscoveryState.FETCH:
            self._pending = FetchPolicy(self.domain, policy_host(self.domain), policy_url(self.domain))
            self.state = DiscoveryState.AWAIT_FETCH
        elif self.state is DiscoveryState.DONE:
            assert self._outcome is not None
            return Finished(self._outcome)
        assert self._pending is not None
        return self._pending

    # -- the TXT answer --------------------------------------------------------------------

    def take_txt(self, answer: TxtAnswer) -> None:
        self._expect(DiscoveryState.AWAIT_TXT)
        if answer.status in ("servfail", "timeout"):
            # A temporary DNS failure tells nothing about the policy: keep the cache (3.3:
            # no "live" policy can be discovered via DNS, a cached one MUST be applied).
            self._without_txt(f"TXT lookup failed ({answer.status})")
            return
        if answer.status != "ok":
            self._without_txt(f"no TXT record ({answer.status})")
            return
        try:
            record = select_record(answer.rrs, self._config.record_readings)
        except RecordError as exc:
            # Section 3.1: several records, or an invalid one: assume no available policy
            # (the cache is not dropped for that, 3.1 note and 5.1).
            self._without_txt(f"unusable TXT record: {exc}")
            return
        if record is None:
            self._without_txt("no TXT record starting with v=STSv1")
            return
        self._txt_valid = True
        self._with_txt(record.id)

    def _with_txt(self, txt_id: str) -> None:
        usable = self._usable
        if usable is not None and usable.record_id == txt_id:
            # Sections 3, 5.1: same id as the unexpired cached policy: no HTTPS request,
            # unless the entry is due for a proactive refresh (3.3, 10.2).
            if not self._refresh_due(usable):
                self._finish_cache(usable, "TXT id matches the cached policy")
                return
            self._start_fetch(txt_id, "refresh of the cached policy")
            return
        # Section 3.1: the id changed (or nothing usable is cached): fetch the policy.
        self._start_fetch(txt_id, "TXT id differs from the cache" if usable else "no usable cached policy")

    def _without_txt(self, why: str) -> None:
        usable = self._usable
        if usable is None:
            # Section 3.1: no usable TXT record and nothing cached: no MTA-STS policy.
            self._finish(PolicyOutcome(None, "none", None, False, None, why))
            return
        if self._config.refresh_without_txt and self._refresh_due(usable):
            # Section 10.2: refresh "regardless of the state of the _mta-sts TXT record",
            # so an attacker who blocks DNS does not outlast the cached policy.
            self._start_fetch(usable.record_id, f"{why}; refresh of the cached policy")
            return
        # Section 3.1 note, 3.3: a TXT record that is gone does not remove the cached policy.
        self._finish_cache(usable, f"{why}; cached policy applies")

    def _refresh_due(self, entry: CachedPolicy) -> bool:
        return needs_refresh(
            entry, self._now, self._config.refresh_before_s, refresh_every_s=self._config.refresh_every_s
        )

    def _start_fetch(self, fetch_id: str, why: str) -> None:
        if fetch_suppressed(self._last_failure, fetch_id, self._now, self._config.retry_after_failure_s):
            # Section 3.3: no new GET within five minutes of a failed one for this id.
            usable = self._usable
            why = f"{why}; fetch for id {fetch_id} suppressed after a recent failure"
            if usable is not None:
                self._finish_cache(usable, why)
            else:
                self._finish(PolicyOutcome(None, "none", fetch_id, False, None, why))
            return
        self._fetch_id = fetch_id
        self._fetch_reason = why
        self.state = DiscoveryState.FETCH

    # -- the fetch result ------------------------------------------------------------------

    def take_fetch(self, result: FetchResult) -> None:
        self._expect(DiscoveryState.AWAIT_FETCH)
        fetch_id = self._fetch_id
        if not result.ok or result.body is None:
            error = result.error or FetchError(FetchErrorKind.HTTP_PROTOCOL, "no body")
            self._fetch_failed(error)
            return
        try:
            # Section 3.2: the policy is UTF-8 text (charset parameters other than utf-8 or
            # us-ascii are ignored, so the body is always read as UTF-8); the parser judges
            # the bytes, the text is kept for the cache.
            policy = parse_policy(result.body, self._config.policy_readings)
            text = result.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fetch_failed(FetchError(FetchErrorKind.INVALID_POLICY, f"not UTF-8: {exc}"))
            return
        except PolicyError as exc:
            # Section 3.3: an invalid policy means no policy could be fetched.
            self._fetch_failed(FetchError(FetchErrorKind.INVALID_POLICY, str(exc)))
            return
        self._finish(
            PolicyOutcome(
                policy,
                "fresh",
                fetch_id,
                True,
                None,
                f"{self._fetch_reason}; policy fetched",
                policy_text=text,
            )
        )

    def _fetch_failed(self, error: FetchError) -> None:
        usable = self._usable
        why = f"{self._fetch_reason}; fetch failed ({error.kind.value}: {error.detail})"
        cached_mode_none = usable is not None and usable.policy.mode is Mode.NONE
        # RFC 8461 section 6: a fetch failure is reportable when a valid TXT record is
        # present, and when a valid policy is cached unless its mode is "none".
        reportable = self._txt_valid or (usable is not None and not cached_mode_none)
        failure = error.result_type if reportable else None
        # Sections 3.3, 10.2: alert on failed refreshes, "unless the cached policy mode is none".
        alert = usable is not None and not cached_mode_none
        if usable is not None:
            # Section 3.3: no live policy but a non-expired cached one: it MUST be applied.
            self._finish(
                PolicyOutcome(
                    usable.policy,
                    "cache",
                    usable.record_id,
                    False,
                    failure,
                    f"{why}; cached policy applies",
                    failed_fetch_id=self._fetch_id,
                    alert=alert,
                )
            )
            return
        # Section 3.3: valid TXT, no policy fetched and nothing cached: deliver as though
        # the domain had not implemented MTA-STS.
        self._finish(PolicyOutcome(None, "none", self._fetch_id, False, failure, why, failed_fetch_id=self._fetch_id))

    # -- helpers ---------------------------------------------------------------------------

    def _finish_cache(self, entry: CachedPolicy, why: str) -> None:
        self._finish(PolicyOutcome(entry.policy, "cache", entry.record_id, False, None, why))

    def _finish(self, outcome: PolicyOutcome) -> None:
        self._outcome = outcome
        self._pending = None
        self.state = DiscoveryState.DONE

    def _expect(self, state: DiscoveryState) -> None:
        if self.state is not state:
            raise DiscoveryStateError(f"result taken in state {self.state.value}, expected {state.value}")
