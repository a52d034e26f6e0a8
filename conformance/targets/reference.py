"""The embedded reference implementation as a target, and its mutants.

The reference MTA runs in the runner's event loop but is reached only the way an external
SUT is: messages go in through its SMTP submission listener, probes connect to its inbound
SMTP listener, and it finds the world's MX hosts through the world's DNS. Being our own
code, it can also say when it is done with a message and what TLS results it recorded,
which lets scenarios end early and check what TLSRPT will report.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.catalog.model import Role
from conformance.drivers.checks import SutRecord
from conformance.targets.base import ReportReceiverEndpoint, SmtpEndpoint, Target
from conformance.world.dkim import DKIM_SELECTOR, WorldDkimKey, key_record_name
from conformance.world.spec import CertSpec, DnsRecord, WorldSpec
from reference_impl.mta.mta import MtaConfig, MtaVariant, ReferenceMta
from reference_impl.mta.queue import RecipientState, RetryPolicy
from reference_impl.mta.reporting import TlsRptConfig
from reference_impl.tlsrpt.receiver import ReportReceiver, server_tls_context
from reference_impl.tlsrpt.receiver_variant import ReceiverVariant

if TYPE_CHECKING:
    from conformance.world.world import World

REFERENCE_MX_NAME = "mx.reference.test"
# RFC 8460: the reference's reporting domain (contact-info, DKIM d=, report mail sender) and
# the name of its report receiver. The world serves the reporting domain's zone for the run.
REPORTING_DOMAIN = "reporter.reference.test"
RECEIVER_NAME = "tlsrpt.reference.test"
RECEIVER_REPORT_DOMAIN = "reports.reference.test"
_SETTLE_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class Variant:
    """A build of the reference: the MTA's replaceable parts plus the inbound certificate."""

    name: str
    description: str
    mta: MtaVariant = field(default_factory=MtaVariant)
    inbound_cert: CertSpec = field(default_factory=CertSpec)
    # For the policy-domain role: how this build breaks the scenario's deployment (None: it doesn't).
    deployment: Callable[[WorldSpec], WorldSpec] | None = None
    # For the report-receiver role: how this build's report receiver misbehaves (None: it doesn't).
    receiver: ReceiverVariant | None = None


REFERENCE = Variant("reference", "the embedded reference implementation")


def _fast_retries(variant: MtaVariant) -> MtaVariant:
    """Report redelivery (RFC 8460 5.5) after one second instead of a minute, so that a scenario
    sees the retry; the schedule's shape (doubling, 24-hour horizon, none for a mutant) stays."""
    parts = variant.tlsrpt
    backoff = dataclasses.replace(parts.backoff, first_delay_s=1.0, max_delay_s=60.0)
    return dataclasses.replace(variant, tlsrpt=dataclasses.replace(parts, backoff=backoff))


class ReferenceTarget(Target):
    roles = frozenset({Role.SENDING_MTA, Role.RECEIVING_MTA, Role.POLICY_DOMAIN, Role.REPORT_RECEIVER})
    # requiretls-sts-testing-ignored: the reading the reference implements where RFC 8689 4.2.1
    # is silent (an MTA-STS policy in testing mode does not validate an MX name).
    claims = frozenset(
        {"tls-records", "starttls", "tlsrpt", "report-store", "dane", "requiretls", "requiretls-sts-testing-ignored"}
    )

    def __init__(self, variant: Variant = REFERENCE) -> None:
        self.variant = variant
        self.name = variant.name
        self.description = variant.description
        from conformance import __version__

        self.version = __version__
        self._mta: ReferenceMta | None = None
        self._state_dir: Path | None = None
        self._receiver: ReportReceiver | None = None
        self._receiver_trust: Path | None = None
        self._unpublish: Callable[[], None] | None = None

    async def start(self, world: World) -> None:
        assert world.plan is not None
        info = world.info
        self._state_dir = Path(tempfile.mkdtemp(prefix="mailtls-reference-"))
        cert = world.ca.issue(REFERENCE_MX_NAME, self.variant.inbound_cert)
        config = MtaConfig(
            hostname=REFERENCE_MX_NAME,
            state_dir=self._state_dir,
            resolver=info.resolver,
            mx_port=info.smtp_port,
            ca_file=info.trust_bundle,
            submission_listen=(world.plan.services.submission, 0),
            inbound_listen=(world.plan.services.sut, 0),
            inbound_cert_file=cert.cert_path,
            inbound_key_file=cert.key_path,
            dns_timeout_s=2.0,
            smtp_timeout_s=5.0,
            session_timeout_s=20.0,
            # Scenarios judge the first delivery attempt; retries come from the world's
            # perspective as a second session, which the cache scenarios rely on later.
            retry=RetryPolicy(),
            max_concurrency=32,
            poll_interval_s=0.5,
            # RFC 8461 section 3.3: policy hosts are the world's HTTPS server (443, or 8443
            # unprivileged); a fetch gives up well within a scenario's deadline.
            sts_port=info.https[1],
            sts_fetch_timeout_s=5.0,
            tlsrpt=self._reporting(world, self._state_dir),
        )
        self._mta = ReferenceMta(config, variant=_fast_retries(self.variant.mta))
        await self._mta.start()
        await self._start_receiver(world)

    def _reporting(self, world: World, state_dir: Path) -> TlsRptConfig:
        """RFC 8460 reporting for the reference: a DKIM key whose record (with s=tlsrpt, section
        3) the world serves, and the reporting domain's MX (bounces of report mail) at the
        world's mailbox. POSTs use the world's HTTPS port; retries come after one second, not
        a minute, so that a scenario sees the retry of section 5.5."""
        key = WorldDkimKey.generate()
        key_file = state_dir / "tlsrpt-dkim.pem"
        key_file.write_bytes(key.private_pem)
        info = world.info
        self._unpublish = world.publish_zone(
            REPORTING_DOMAIN,
            [
                DnsRecord(name=key_record_name(REPORTING_DOMAIN), type="TXT", value=key.record_strings()),
                DnsRecord(name=REPORTING_DOMAIN, type="MX", value=f"10 mailbox.{REPORTING_DOMAIN}"),
                DnsRecord(name=f"mailbox.{REPORTING_DOMAIN}", type="A", value=info.mailbox[0]),
            ],
        )
        return TlsRptConfig(
            organization_name="MailTLS Conformance reference MTA",
            contact_info=f"tlsrpt@{REPORTING_DOMAIN}",
            reporting_domain=REPORTING_DOMAIN,
            dkim_selector=DKIM_SELECTOR,
            dkim_key_file=key_file,
            https_port=info.https[1],
            post_timeout_s=5.0,
        )

    async def _start_receiver(self, world: World) -> None:
        """The reference report receiver (RFC 8460 5.3, 5.4) on the SUT's address."""
        assert self._state_dir is not None and world.plan is not None
        cert = world.ca.issue(RECEIVER_NAME, CertSpec())
        self._receiver_trust = world.info.trust_bundle
        self._receiver = ReportReceiver(
            self._state_dir / "received-reports",
            tls=server_tls_context(cert.cert_path, cert.key_path),
            host=world.plan.services.sut,
            path="/tlsrpt",
            variant=self.variant.receiver,
            txt_lookup=world.txt_lookup,
            report_domain=RECEIVER_REPORT_DOMAIN,
            smtp_hostname=RECEIVER_NAME,
            request_timeout_s=10.0,
        )
        await self._receiver.start()

    async def stop(self) -> None:
        if self._receiver is not None:
            await self._receiver.stop()
            self._receiver = None
        if self._unpublish is not None:
            self._unpublish()
            self._unpublish = None
        if self._mta is not None:
            await self._mta.stop()
            self._mta = None
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    @property
    def mta(self) -> ReferenceMta:
        assert self._mta is not None, "target not started"
        return self._mta

    def submission_endpoint(self) -> tuple[str, int] | None:
        return self.mta.submission_address

    def smtp_endpoint(self) -> SmtpEndpoint | None:
        host, port = self.mta.inbound_address
        return SmtpEndpoint(host=host, port=port, mx_name=REFERENCE_MX_NAME, trust_file=None)

    @property
    def can_settle(self) -> bool:
        return True

    async def settled(self, domain: str, deadline: float) -> str | None:
        """Poll the queue until every recipient at ``domain`` left the queued/in-flight states."""
        while time.monotonic() < deadline:
            # The scenario's recipients are at its domain or below it (e.g. user@sub.<domain>).
            states = [s for s in self.mta.message_states() if s.domain == domain or s.domain.endswith("." + domain)]
            if states and all(s.state not in (RecipientState.QUEUED, RecipientState.INFLIGHT) for s in states):
                kinds = {s.state for s in states}
                if kinds == {RecipientState.DELIVERED}:
                    return "delivered"
                return "bounced" if RecipientState.BOUNCED in kinds else "deferred"
            await asyncio.sleep(_SETTLE_POLL_S)
        return None

    def deployment(self, spec: WorldSpec) -> WorldSpec:
        return self.variant.deployment(spec) if self.variant.deployment is not None else spec

    # ------------------------------------------------------------ TLSRPT (RFC 8460)

    def _policy_domains(self, domain: str) -> set[str]:
        """The scenario's domain and the Policy Domains below it: DANE results belong to the TLSA
        base domain, an MX host of the scenario (RFC 8460 section 3)."""
        recorded = {r.policy_domain for r in self.mta.tls_records()}
        return {domain} | {d for d in recorded if d.endswith("." + domain)}

    async def request_reports(self, domain: str) -> str:
        outcomes = await self.mta.send_reports(domains=self._policy_domains(domain))
        if not outcomes:
            return f"report run for {domain}: no TLS sessions recorded for it today"
        return "report run: " + "; ".join(str(o) for o in outcomes)

    async def reports_done(self, domain: str, deadline: float) -> bool:
        """Done when the queue holds no report mail in flight for the domain and the outbox no
        pending POST of its reports (a retry still due counts as pending until the deadline)."""
        domains = self._policy_domains(domain)
        while time.monotonic() < deadline:
            pending = [e for d in domains for e in self.mta.report_submissions(d)]
            if not pending and await self.settled(domain, min(deadline, time.monotonic() + _SETTLE_POLL_S)):
                return True
            await asyncio.sleep(_SETTLE_POLL_S)
        return False

    def report_receiver(self) -> ReportReceiverEndpoint | None:
        if self._receiver is None:
            return None
        smtp = self._receiver.smtp_address
        return ReportReceiverEndpoint(
            https_url=self._receiver.url,
            https_host=RECEIVER_NAME,
            mail_host=smtp[0] if smtp else None,
            mail_port=smtp[1] if smtp else 25,
            mail_address=f"tlsrpt@{RECEIVER_REPORT_DOMAIN}",
            trust_file=self._receiver_trust,
        )

    def stored_reports(self) -> list[dict[str, Any]] | None:
        if self._receiver is None:
            return None
        return [
            {"report-id": stored.report.get("report-id"), "domain": stored.policy_domain, "transport": stored.transport}
            for stored in self._receiver.received()
        ]

    def tls_records(self, policy_domain: str) -> list[SutRecord] | None:
        return [
            SutRecord(mx_host=r.mx_host, result=r.result_type.value, at=r.at)
            for r in self.mta.tls_records()
            if r.policy_domain == policy_domain
        ]
