"""The scenario schema: what one catalog entry says, validated when the catalog loads.

A scenario names the requirement(s) it checks (ids of the inventory), the role the SUT
plays, the world it stages (``conformance.world.spec``), the stimulus, the expected
observations, and the mutants (broken variants of the reference) it must catch.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from conformance.world.spec import Spec, WorldPatch, WorldSpec


class Role(StrEnum):
    """What the SUT is in a scenario."""

    SENDING_MTA = "sending-mta"  # the SUT delivers a message into the world
    RECEIVING_MTA = "receiving-mta"  # the world's probe connects to the SUT as an SMTP client
    POLICY_DOMAIN = "policy-domain"  # the SUT is a domain's MTA-STS deployment (DNS, policy host, MX hosts)
    REPORT_RECEIVER = "report-receiver"  # the SUT receives TLSRPT reports (HTTPS endpoint or mail intake)


# ---------------------------------------------------------------- stimuli


class SendMessage(Spec):
    """Inject a message into the SUT through its submission endpoint, as a user would."""

    kind: Literal["send-message"]
    sender: str = "alice@{sender_domain}"
    recipients: tuple[str, ...] = ("bob@{domain}",)
    subject: str = "MailTLS conformance probe"
    body: str = "This message was sent by a MailTLS conformance scenario.\r\n"
    mail_params: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # extra header fields, e.g. ("TLS-Required", "No")
    # Header lines put verbatim at the top of the header section: folded or malformed fields
    # that a mail library would refuse to write (e.g. "TLS-Required:\r\n No").
    raw_headers: tuple[str, ...] = ()
    # Submit over STARTTLS (RFC 8689 4.1: REQUIRETLS is taken only over TLS). None: when a
    # parameter needs it (REQUIRETLS).
    tls: bool | None = None


class Probe(Spec):
    """Run a named probe (``conformance.drivers.probes``) against the SUT's SMTP server."""

    kind: Literal["probe"]
    probe: str
    options: dict[str, Any] = Field(default_factory=dict)


class CheckDomain(Spec):
    """Lint the policy domain's MTA-STS deployment as a sender would see it
    (``conformance.drivers.domain_check``): TXT record, policy host, policy, MX hosts."""

    kind: Literal["check-domain"]
    check_mx: bool = True
    # Which deployment: MTA-STS (RFC 8461) or the TLSRPT record (RFC 8460 section 3).
    what: Literal["mta-sts", "tlsrpt"] = "mta-sts"


ReportPayload = Literal["valid", "bad-json", "schema-invalid", "gzip-corrupt", "oversized", "empty", "unknown-keys"]


class PostReport(Spec):
    """POST a TLSRPT report to the SUT's report endpoint (RFC 8460 section 5.4): a valid report
    for the scenario's domain, or one broken as ``payload`` says. ``content_type`` None means
    the right media type for the body (``application/tlsrpt+gzip`` or ``+json``)."""

    kind: Literal["post-report"]
    payload: ReportPayload = "valid"
    gzip: bool = True
    content_type: str | None = None
    method: str = "POST"
    oversize_bytes: int = Field(default=128 * 2**20, ge=0)  # for payload "oversized"


class MailReport(Spec):
    """Deliver a TLSRPT report by mail to the SUT's report intake (RFC 8460 section 5.3),
    DKIM-signed by the world's reporting domain as ``dkim`` says."""

    kind: Literal["mail-report"]
    dkim: Literal["valid", "none", "l-tag", "tampered"] = "valid"
    # A Subject naming another domain than the report body (section 5.6: the body wins).
    subject_domain: str | None = None


Stimulus = Annotated[SendMessage | Probe | CheckDomain | PostReport | MailReport, Field(discriminator="kind")]


# ---------------------------------------------------------------- expectations


class Check(Spec):
    """Common to every expectation: which requirement it stands for (default: the scenario's
    first), and a one-line explanation shown with the verdict."""

    requirement: str | None = None
    because: str = ""
    # The suite's recommendation where the RFC leaves the behaviour open (e.g. RFC 8689 section 3
    # on a repeated field): a failure is WARN, never FAIL, whatever the requirement's level.
    warn_only: bool = False


class Delivered(Check):
    """The message reached a world MX (``host``, or any), over TLS if ``tls`` says so."""

    check: Literal["delivered"]
    host: str | None = None
    tls: bool | None = None
    # ESMTP parameters the delivering MAIL command must carry, e.g. REQUIRETLS (RFC 8689 4.2.1).
    mail_params: tuple[str, ...] = ()


class NotDelivered(Check):
    """The message never reached ``host`` (or any world MX) before the deadline, or before the
    SUT reported it settled (deferred or bounced) when the target can say so."""

    check: Literal["not-delivered"]
    host: str | None = None


class FirstContact(Check):
    """The first SMTP connection the SUT opened for this scenario went to ``host``."""

    check: Literal["first-contact"]
    host: str


class Contacted(Check):
    """The SUT opened an SMTP connection to ``host`` (whatever happened next)."""

    check: Literal["contacted"]
    host: str


class NotContacted(Check):
    """The SUT never opened an SMTP connection to ``host`` (e.g. a backup MX while the primary
    qualifies, or an MX an MTA-STS policy rules out)."""

    check: Literal["not-contacted"]
    host: str


class NoTlsRecord(Check):
    """The SUT recorded no TLS result for ``host`` (of type ``result``, if given) in this phase."""

    check: Literal["no-tls-record"]
    host: str
    result: str | None = None


class TlsRecord(Check):
    """The SUT recorded this TLS session result for ``host`` (RFC 8460 section 4.3 result
    types, or ``success``); needs a target that exposes its records (claim ``tls-records``)."""

    check: Literal["tls-record"]
    host: str
    result: str


class TlsSni(Check):
    """The SUT's TLS handshake with ``host`` sent SNI ``name`` (RFC 8461 section 7.1)."""

    check: Literal["tls-sni"]
    host: str
    name: str


class Fetched(Check):
    """The SUT requested ``path`` from the HTTPS host ``host`` (``count`` times, if given),
    never sending any of ``without_headers`` (e.g. conditional requests, RFC 8461 3.3)."""

    check: Literal["fetched"]
    host: str
    path: str = "/.well-known/mta-sts.txt"
    count: int | None = Field(default=None, ge=1)
    without_headers: tuple[str, ...] = ()


class NotFetched(Check):
    """The SUT never requested anything from ``host`` (e.g. a redirect target, or a policy
    host while a cached policy is still fresh)."""

    check: Literal["not-fetched"]
    host: str


class Queried(Check):
    """The SUT asked the world's DNS for ``name`` (``type``, if given)."""

    check: Literal["queried"]
    name: str
    type: str | None = None


class NotQueried(Check):
    """The SUT never asked the world's DNS for ``name`` (``type``, if given)."""

    check: Literal["not-queried"]
    name: str
    type: str | None = None


class Bounced(Check):
    """A delivery status notification for the message reached the sender (the world's mailbox,
    or, for a sender in the scenario's own domain, one of its MX hosts: ``host``): with this
    enhanced ``status`` in its delivery-status part, delivered itself with the REQUIRETLS
    parameter, returning headers only (RFC 8689 section 5), when those are given."""

    check: Literal["bounced"]
    host: str | None = None
    status: str | None = Field(default=None, pattern=r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")
    requiretls: bool | None = None
    headers_only: bool | None = None


class NoPlaintextMessage(Check):
    """No byte of the message crossed the wire outside TLS: no world peer (nor the attacker in
    front of one) saw MAIL, RCPT or DATA in cleartext (RFC 8689 section 4.2.1)."""

    check: Literal["no-plaintext-message"]


class NotBounced(Check):
    """No bounce reached the sender: before the deadline, or before the SUT reported the message
    deferred or delivered (e.g. RFC 8461 section 5: enforce failures defer, never bounce at once)."""

    check: Literal["not-bounced"]


class Fact(Check):
    """A fact a probe established about the SUT compares as stated."""

    check: Literal["fact"]
    fact: str
    equals: Any = None
    one_of: tuple[Any, ...] | None = Field(default=None, alias="in")
    not_in: tuple[Any, ...] | None = None
    contains: Any = None  # the fact is a list holding this value
    lacks: Any = None  # the fact is a list not holding this value

    @model_validator(mode="after")
    def _one_comparison(self) -> Fact:
        given = [x is not None for x in (self.equals, self.one_of, self.not_in, self.contains, self.lacks)]
        if sum(given) != 1:
            raise ValueError("a fact check needs exactly one of `equals`, `in`, `not_in`, `contains`, `lacks`")
        return self


# The checks a sending scenario (or phase) may use; the one list both the schema and the
# drivers read.
SendingCheck = (
    Delivered
    | NotDelivered
    | FirstContact
    | Contacted
    | NotContacted
    | TlsRecord
    | NoTlsRecord
    | TlsSni
    | Fetched
    | NotFetched
    | Queried
    | NotQueried
    | Bounced
    | NotBounced
    | NoPlaintextMessage
)
SendingCheckField = Annotated[SendingCheck, Field(discriminator="check")]


# ---------------------------------------------------------------- TLSRPT reports (RFC 8460)
# Judged on the reports the world received in the phase (HTTPS POSTs to a report endpoint and
# mail with a tlsrpt report part), after the suite asked the target for its reports.

ReportVia = Literal["https", "mail", "any"]


class ReportReceived(Check):
    """A report about the scenario's domain arrived (``via`` a transport, ``to`` a report
    endpoint host or mail address); ``accepted``: the endpoint answered it 2xx."""

    check: Literal["report-received"]
    via: ReportVia = "any"
    to: str | None = None
    accepted: bool = False
    compressed: bool | None = None  # gzip (section 5.2) or plain JSON; None: either


class NoReport(Check):
    """No report about the scenario's domain arrived (e.g. the domain publishes no usable record)."""

    check: Literal["no-report"]


class ReportValid(Check):
    """The reports received follow RFC 8460 (the suite's validator): an error finding fails,
    a warning finding (a SHOULD, or a form the RFC contradicts itself about) warns. ``rules``
    limits the judgement to those validator rules."""

    check: Literal["report-valid"]
    via: ReportVia = "any"
    rules: tuple[str, ...] = ()


class ReportPolicy(Check):
    """A report has a "policies" entry for the scenario's domain as stated (section 4.4)."""

    check: Literal["report-policy"]
    policy_type: Literal["sts", "tlsa", "no-policy-found"] | None = None
    successful: int | None = Field(default=None, ge=0)
    failed: int | None = Field(default=None, ge=0)
    policy_strings_include: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] | None = None
    absent: bool = False  # no entry for the domain is as stated (e.g. no no-policy-found entry)
    # The entry's policy-domain; default the scenario's domain. For DANE it is the TLSA base
    # domain, the MX host (RFC 8460 section 3, "Policy Domain").
    policy_domain: str | None = None


class ReportFailure(Check):
    """A "failure-details" entry for the scenario's domain with this result type (section 4.3),
    at ``mx_host`` and with ``count`` failed sessions if given; ``absent``: there is none."""

    check: Literal["report-failure"]
    result_type: str
    mx_host: str | None = None
    count: int | None = Field(default=None, ge=1)
    absent: bool = False
    with_reason: bool = False  # the entry carries a failure-reason-code (4.3.1, 4.3.3)
    policy_domain: str | None = None  # as for report-policy


ReportCheck = ReportReceived | NoReport | ReportValid | ReportPolicy | ReportFailure
REPORT_CHECK_TYPES = (ReportReceived, NoReport, ReportValid, ReportPolicy, ReportFailure)
REPORT_CHECKS = {get_args(kind.model_fields["check"].annotation)[0] for kind in get_args(ReportCheck)}


class Reading(Spec):
    """One reading of an ambiguous text (e.g. a reported erratum) and what it leads to."""

    name: str = Field(min_length=1)
    expect: tuple[SendingCheckField, ...] = Field(min_length=1)
    # A target that claims this names the reading it implements: then only that reading passes
    # (where the RFC is silent, the target file makes the expectation precise).
    claim: str | None = None


class AnyOf(Check):
    """Where the RFC can be read in more than one way, the SUT passes by following any one
    reading completely; the evidence says which. A SUT that follows none (e.g. loses or bounces
    the message) fails."""

    check: Literal["any-of"]
    readings: tuple[Reading, ...] = Field(min_length=2)


Expectation = Annotated[SendingCheck | AnyOf | Fact | ReportCheck, Field(discriminator="check")]

SENDING_CHECKS = (
    {get_args(kind.model_fields["check"].annotation)[0] for kind in get_args(SendingCheck)} | {"any-of"} | REPORT_CHECKS
)
RECEIVING_CHECKS = {"fact"}


# ---------------------------------------------------------------- mutants and scenarios


class MutantExpectation(Spec):
    """A mutant this scenario must catch, and the verdict it must give it."""

    name: str
    verdict: Literal["FAIL", "WARN"] = "FAIL"


class Phase(Spec):
    """A later step of a sending scenario: after ``wait_s`` seconds the world changes as the
    patch says (a new TXT id, a new policy), another message is sent, and the checks look at
    what the world saw during this phase only. Cache scenarios are built from phases, with
    small max_age values, so they work on an external SUT whose clock the suite cannot set."""

    title: str = ""
    wait_s: float = Field(default=0.0, ge=0, le=600)
    world: WorldPatch = WorldPatch()
    stimulus: SendMessage
    expect: tuple[Expectation, ...] = Field(min_length=1)


class Scenario(Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9.-]*)+$", max_length=120)
    title: str = Field(min_length=5, max_length=160)
    description: str = ""
    requirements: tuple[str, ...] = Field(min_length=1)
    role: Role
    needs: tuple[str, ...] = ()  # features the SUT must claim, else the verdict is N/A
    world: WorldSpec = WorldSpec()
    stimulus: Stimulus
    expect: tuple[Expectation, ...] = Field(min_length=1)
    mutants: tuple[MutantExpectation, ...] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0, le=600)  # per phase
    then: tuple[Phase, ...] = ()  # later phases (sending-mta role only)

    @property
    def report_phases(self) -> int:
        """How many phases end with a report step (RFC 8460 checks): each may wait for the SUT
        to settle and then for its reports, a timeout each."""
        phases = [self.expect, *(p.expect for p in self.then)]
        return sum(1 for expect in phases if any(isinstance(c, REPORT_CHECK_TYPES) for c in expect))

    @property
    def total_timeout_s(self) -> float:
        phases = 1 + len(self.then) + 2 * self.report_phases
        return self.timeout_s * phases + sum(p.wait_s for p in self.then)

    @model_validator(mode="before")
    @classmethod
    def _mutant_shorthand(cls, data: Any) -> Any:
        """``mutants: [name, ...]`` is short for ``[{name: name, verdict: FAIL}, ...]``."""
        if isinstance(data, dict) and isinstance(data.get("mutants"), list):
            data = dict(data)
            data["mutants"] = [{"name": m} if isinstance(m, str) else m for m in data["mutants"]]
        return data

    @model_validator(mode="after")
    def _checks_fit_role(self) -> Scenario:
        allowed = SENDING_CHECKS if self.role is Role.SENDING_MTA else RECEIVING_CHECKS
        for check in self.expect:
            if check.check not in allowed:
                raise ValueError(f"check {check.check!r} does not apply to role {self.role.value}")
        stimulus_kinds = {
            Role.SENDING_MTA: ("send-message",),
            Role.RECEIVING_MTA: ("probe",),
            Role.POLICY_DOMAIN: ("check-domain",),
            Role.REPORT_RECEIVER: ("post-report", "mail-report"),
        }[self.role]
        if self.stimulus.kind not in stimulus_kinds:
            raise ValueError(f"role {self.role.value} takes a {' or '.join(map(repr, stimulus_kinds))} stimulus")
        if self.then and self.role is not Role.SENDING_MTA:
            raise ValueError("phases (`then`) are for sending-mta scenarios")
        for phase in self.then:
            for check in phase.expect:
                if check.check not in SENDING_CHECKS:
                    raise ValueError(f"check {check.check!r} does not apply to a sending phase")
        return self


class CatalogFile(Spec):
    """One file of the catalog: a list of scenarios. ``templates`` holds YAML anchors that
    scenarios of the file share (e.g. a whole deployment); it is not read otherwise."""

    templates: dict[str, Any] = Field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = Field(min_length=1)
