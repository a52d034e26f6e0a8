"""What the runner needs from a system under test, whatever it is.

A target plays one or more roles. As a sending MTA it has a submission endpoint where the
suite injects messages, exactly as a user would; as a receiving MTA it has an SMTP endpoint
the suite's probes connect to. Some targets can say more about themselves (the reference can
report when a message is settled, and the TLS results it recorded); those answers are
optional, and checks that need them are N/A on targets that lack them (``needs``).
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.catalog.model import Role
from conformance.drivers.checks import SutRecord
from conformance.world.spec import WorldSpec

if TYPE_CHECKING:
    from conformance.world.world import World


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """Where the SUT's SMTP server listens, and the name its certificate should carry."""

    host: str
    port: int
    mx_name: str
    trust_file: Path | None  # CA bundle to verify the SUT's certificate; None: the world's CA


@dataclass(frozen=True, slots=True)
class PolicyDomainEndpoint:
    """A real domain to lint, and where to ask: the resolver (None: the system's), the ports,
    and the trust store (None: the system's)."""

    domain: str
    resolver: tuple[str, int] | None
    https_port: int = 443
    smtp_port: int = 25
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class ReportReceiverEndpoint:
    """Where the SUT receives TLSRPT reports (RFC 8460 sections 5.3, 5.4): an HTTPS URL and/or a
    mail intake (an SMTP server taking mail for ``mail_address``)."""

    https_url: str | None = None  # e.g. "https://127.0.0.1:8443/tlsrpt"
    https_host: str | None = None  # SNI and Host header; None: the URL's host
    mail_host: str | None = None
    mail_port: int = 25
    mail_address: str | None = None  # e.g. "tlsrpt@receiver.example"
    trust_file: Path | None = None  # CA bundle for the SUT's certificate; None: do not verify


class ReportRequestError(Exception):
    """The target could not be asked for its reports (e.g. its report command failed)."""


class Target(ABC):
    name: str
    description: str = ""
    version: str = ""
    roles: frozenset[Role] = frozenset()
    claims: frozenset[str] = frozenset()

    @abstractmethod
    async def start(self, world: World) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    def submission_endpoint(self) -> tuple[str, int] | None:
        return None

    def smtp_endpoint(self) -> SmtpEndpoint | None:
        return None

    @property
    def can_settle(self) -> bool:
        """Whether ``settled`` can tell when the SUT is done with a message."""
        return False

    async def settled(self, domain: str, deadline: float) -> str | None:
        """Wait until the SUT no longer works on the scenario's message to ``domain``
        (``delivered``, ``deferred`` or ``bounced``) or until the monotonic deadline; None
        when it cannot tell. Every scenario has its own recipient domain."""
        return None

    def deployment(self, spec: WorldSpec) -> WorldSpec:
        """For the policy-domain role: the deployment the world stages for a scenario. The
        reference deploys the scenario's own (correct) deployment; its mutants break it."""
        return spec

    def policy_domain(self) -> PolicyDomainEndpoint | None:
        """For the policy-domain role on a real domain: which domain and how to reach it.
        None: the scenario's domain, staged in the world."""
        return None

    def tls_records(self, policy_domain: str) -> list[SutRecord] | None:
        """The TLS session results the SUT recorded for a domain; None when it cannot tell."""
        return None

    # ------------------------------------------------------------ TLSRPT (RFC 8460)

    async def request_reports(self, domain: str) -> str:
        """Ask the SUT to send its TLSRPT reports for ``domain`` now (RFC 8460 reports are daily;
        a suite cannot wait a day). Returns a line of evidence; raises ReportRequestError.
        Targets without a trigger just let the suite wait for reports sent on their own."""
        return "the target has no report trigger: waiting for reports it sends by itself"

    @property
    def report_wait_s(self) -> float | None:
        """The longest the suite waits for reports after asking (None: the scenario's timeout)."""
        return None

    async def reports_done(self, domain: str, deadline: float) -> bool:
        """Wait until the SUT has finished delivering its reports for ``domain`` (every endpoint
        accepted, or given up until a later retry) or the deadline; False when it cannot tell."""
        return False

    def report_receiver(self) -> ReportReceiverEndpoint | None:
        """For the report-receiver role: where the SUT takes reports."""
        return None

    def stored_reports(self) -> list[dict[str, Any]] | None:
        """For the report-receiver role: the reports the SUT kept (their JSON); None: cannot tell."""
        return None


def trust_context(trust_file: Path) -> ssl.SSLContext:
    """A client context that verifies against ``trust_file`` only."""
    context = ssl.create_default_context(cafile=str(trust_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
