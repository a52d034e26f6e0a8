"""The embedded reference implementation as a target, and its mutants.

The reference MTA runs in the runner's event loop but is reached only the way an external
SUT is: messages go in through its SMTP submission listener, probes connect to its inbound
SMTP listener, and it finds the world's MX hosts through the world's DNS. Being our own
code, it can also say when it is done with a message and what TLS results it recorded,
which lets scenarios end early and check what TLSRPT will report.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.catalog.model import Role
from conformance.drivers.checks import SutRecord
from conformance.targets.base import SmtpEndpoint, Target
from conformance.world.spec import CertSpec, WorldSpec
from reference_impl.mta.mta import MtaConfig, MtaVariant, ReferenceMta
from reference_impl.mta.queue import RecipientState, RetryPolicy

if TYPE_CHECKING:
    from conformance.world.world import World

REFERENCE_MX_NAME = "mx.reference.test"
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


REFERENCE = Variant("reference", "the embedded reference implementation")


class ReferenceTarget(Target):
    roles = frozenset({Role.SENDING_MTA, Role.RECEIVING_MTA, Role.POLICY_DOMAIN})
    claims = frozenset({"tls-records", "starttls"})

    def __init__(self, variant: Variant = REFERENCE) -> None:
        self.variant = variant
        self.name = variant.name
        self.description = variant.description
        from conformance import __version__

        self.version = __version__
        self._mta: ReferenceMta | None = None
        self._state_dir: Path | None = None

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
        )
        self._mta = ReferenceMta(config, variant=self.variant.mta)
        await self._mta.start()

    async def stop(self) -> None:
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

    def tls_records(self, policy_domain: str) -> list[SutRecord] | None:
        return [
            SutRecord(mx_host=r.mx_host, result=r.result_type.value, at=r.at)
            for r in self.mta.tls_records()
            if r.policy_domain == policy_domain
        ]
