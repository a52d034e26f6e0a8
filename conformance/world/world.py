"""The world: every simulated peer, started once per run, and the staging of scenarios into it.

``World.start()`` brings up the shared services (DNS, the HTTPS server for policy hosts and
report collection, the mailbox) on the run's loopback range. ``World.stage(scenario)``
returns a ``Stage``: the scenario's own domain, its hosts on their own addresses, its DNS
zone, its policy hosts, and an ``ObservationLog`` that receives everything the world sees
for that scenario. Stages are independent, so scenarios run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conformance.errors import WorldError
from conformance.world.addresses import AddressPlan
from conformance.world.ca import WorldCA
from conformance.world.dkim import WorldDkimKey, key_record_name
from conformance.world.dns import DnsError, WorldDns
from conformance.world.https import WorldHttps
from conformance.world.mailbox import Mailbox
from conformance.world.mitm import StartTlsMitm
from conformance.world.observe import DeliveredMessage, Observation, ObservationLog
from conformance.world.smtp_peer import SmtpPeer
from conformance.world.spec import (
    CertSpec,
    DnsRecord,
    DnsSpec,
    HttpFault,
    MxHost,
    PolicyHost,
    ReportEndpoint,
    WorldPatch,
    WorldSpec,
)

# The shared mailbox that receives bounces (DSNs) and report mail for every stage's sender domain.
MAILBOX_HOST = "mailbox.world.test"


@dataclass(frozen=True, slots=True)
class Ports:
    dns: int
    https: int
    smtp: int

    @staticmethod
    def privileged() -> Ports:
        """The real ports, for an external SUT that cannot be told others (needs root)."""
        return Ports(dns=53, https=443, smtp=25)

    @staticmethod
    def unprivileged() -> Ports:
        """High ports; enough for the reference target, which is told where to connect."""
        return Ports(dns=5353, https=8443, smtp=2525)


@dataclass(frozen=True, slots=True)
class WorldInfo:
    """What an external SUT must be configured with to live in this world."""

    resolver: tuple[str, int]
    trust_bundle: Path
    smtp_port: int
    https: tuple[str, int]
    mailbox: tuple[str, int]
    network: str
    tag: str


def dane_ee_tlsa(chain_pem: bytes) -> str:
    """``3 1 1 <hex>``: DANE-EE, SubjectPublicKeyInfo, SHA-256 (RFC 6698 2.1, RFC 7672 3.1.1)
    of the chain's leaf, in presentation form."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


def _expand(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace("{" + key + "}", value)
    return text


_SLUG = re.compile(r"[^a-z0-9-]+")


def scenario_domain(scenario_id: str, index: int, tag: str) -> str:
    """A DNS-safe domain unique in the run, readable in evidence: ``mx-fallback-7.r42.test``."""
    last = _SLUG.sub("-", scenario_id.rsplit("/", 1)[-1].lower()).strip("-")[:40] or "s"
    return f"{last}-{index}.{tag}.test"


@dataclass
class Stage:
    """One scenario's part of the world."""

    scenario_id: str
    domain: str
    names: dict[str, str]  # placeholders -> values: domain, sender_domain, mailbox
    log: ObservationLog  # everything, for the evidence
    phase_log: ObservationLog = field(default_factory=ObservationLog)  # the current phase only, for checks
    hosts: dict[str, str] = field(default_factory=dict)  # host name -> published address
    zone: DnsSpec = field(default_factory=DnsSpec)  # what the world's DNS serves for the stage now
    policy_hosts: dict[str, PolicyHost] = field(default_factory=dict)  # concrete, by name
    smtp_hosts: frozenset[str] = frozenset()  # the names of the stage's MX hosts
    certificates: dict[str, str] = field(default_factory=dict)  # MX host -> the certificate it offers, described
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def observe(self, event: Observation) -> None:
        """The sink every peer of this stage reports to."""
        self.log.add(event)
        self.phase_log.add(event)

    def next_phase(self) -> None:
        self.phase_log = ObservationLog()

    def expand(self, text: str) -> str:
        return _expand(text, self.names)

    def host_of(self, address: str) -> str | None:
        for name, addr in self.hosts.items():
            if addr == address:
                return name
        return None


class World:
    def __init__(
        self,
        *,
        ports: Ports | None = None,
        second_octet: int | None = None,
        network: ipaddress.IPv4Network | None = None,
        workdir: Path | None = None,
        peer_timeout_s: float = 30.0,
    ) -> None:
        self.ports = ports or Ports.unprivileged()
        self._requested_octet = second_octet
        self._network = network
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mailtls-world-"))
        self.peer_timeout_s = peer_timeout_s
        self.plan: AddressPlan | None = None
        self.ca = WorldCA(self.workdir / "ca")
        self.unrouted = ObservationLog()
        self._dns: WorldDns | None = None
        self._https: WorldHttps | None = None
        self._mailbox: Mailbox | None = None
        self._stages: dict[str, Stage] = {}  # apex domain -> stage
        self._count = 0
        self._dkim: WorldDkimKey | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        octets = [self._requested_octet] if self._requested_octet else AddressPlan.candidates()
        if self._network is not None:
            octets = [0]  # one plan, the user's
        last_error: OSError | None = None
        for octet in octets[:20]:
            plan = AddressPlan.custom(self._network) if self._network is not None else AddressPlan(octet)
            dns = WorldDns(plan.services.dns, self.ports.dns, unrouted_sink=self.unrouted.add)
            try:
                await dns.start()
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    raise WorldError(f"cannot start DNS on {plan.services.dns}:{self.ports.dns}: {exc}") from exc
                last_error = exc
                continue
            self.plan, self._dns = plan, dns
            break
        else:
            where = str(self._network) if self._network is not None else "127.0.0.0/8"
            raise WorldError(f"no free run range on {where}: {last_error}")
        try:
            self._https = WorldHttps(self._https_context, unrouted_sink=self.unrouted.add)
            await self._https.start(self.plan.services.https, self.ports.https)
            self._mailbox = Mailbox(MAILBOX_HOST, self._route_mail, tls_context_factory=self._mailbox_context)
            await self._mailbox.start(self.plan.services.mailbox, self.ports.smtp)
        except OSError as exc:
            await self.stop()
            raise WorldError(f"cannot start the world's services: {exc}") from exc

    async def stop(self) -> None:
        for apex in list(self._stages):
            await self.unstage(self._stages[apex])
        for service in (self._mailbox, self._https, self._dns):
            if service is not None:
                with contextlib.suppress(Exception):
                    await service.stop()
        self._mailbox = self._https = self._dns = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> World:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def info(self) -> WorldInfo:
        assert self.plan is not None and self._dns is not None and self._https is not None
        assert self._mailbox is not None
        return WorldInfo(
            resolver=self._dns.address,
            trust_bundle=self.ca.trust_bundle_path(),
            smtp_port=self.ports.smtp,
            https=self._https.address,
            mailbox=self._mailbox.address,
            network=str(self.plan.network),
            tag=self.plan.tag,
        )

    def publish_zone(self, apex: str, records: Sequence[DnsRecord]) -> Callable[[], None]:
        """Serve a zone that belongs to no scenario, e.g. the DKIM key of the target's reporting
        domain (RFC 8460 section 3); queries for it are logged as unrouted. Returns the remover."""
        assert self._dns is not None, "world not started"
        apex = apex.lower().rstrip(".")
        self._dns.add_zone(apex, DnsSpec(records=tuple(records)), self.unrouted.add)
        return self._zone_remover(apex)

    def _zone_remover(self, apex: str) -> Callable[[], None]:
        return lambda: self._dns.remove_zone(apex) if self._dns else None

    def txt_lookup(self, name: str) -> list[bytes] | None:
        """TXT records as the world serves them, read directly (see ``WorldDns.txt``)."""
        return self._dns.txt(name) if self._dns is not None else None

    @property
    def dkim(self) -> WorldDkimKey:
        """The key the world signs report mail with (made on first use, one per world)."""
        if self._dkim is None:
            self._dkim = WorldDkimKey.generate()
        return self._dkim

    def allocate(self) -> str:
        assert self.plan is not None, "world not started"
        return self.plan.allocate()

    # ------------------------------------------------------------ contexts

    def _https_context(self, host: str, cert: CertSpec) -> ssl.SSLContext:
        return self.ca.server_context(host, cert)

    def _mailbox_context(self) -> ssl.SSLContext:
        """The mailbox answers for ``mailbox.<mail domain>`` of every stage: by SNI it presents a
        certificate for that name, so a sender that verifies the name (the NDN of a REQUIRETLS
        message, RFC 8689 section 5) finds a qualifying path back."""
        context = self.ca.server_context(MAILBOX_HOST, CertSpec())
        by_name: dict[str, ssl.SSLContext] = {}

        def choose(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            if name is None or not name.startswith("mailbox.") or self._stage_for(name) is None:
                return  # the default certificate (mailbox.world.test)
            if name not in by_name:
                by_name[name] = self.ca.server_context(name, CertSpec())
            sock.context = by_name[name]

        context.sni_callback = choose
        return context

    def _route_mail(self, message: DeliveredMessage) -> None:
        """The mailbox is shared: each message goes to the stage owning a recipient's domain."""
        for rcpt in message.rcpt_tos:
            stage = self._stage_for(rcpt.rsplit("@", 1)[-1].strip(">").lower())
            if stage is not None:
                stage.observe(message)
                return
        self.unrouted.add(message)

    def _stage_for(self, name: str) -> Stage | None:
        name = name.rstrip(".")
        for apex, stage in self._stages.items():
            if name == apex or name.endswith("." + apex):
                return stage
        return None

    # ------------------------------------------------------------ staging

    async def stage(self, scenario_id: str, spec: WorldSpec) -> Stage:
        assert self.plan is not None and self._dns is not None and self._https is not None
        self._count += 1
        domain = scenario_domain(scenario_id, self._count, self.plan.tag)
        names = {
            "domain": domain,
            "sender_domain": f"sender.{domain}",
            # Where the scenario's TLSRPT ``mailto:`` reports go (RFC 8460 section 3): the mailbox.
            "report_domain": f"reports.{domain}",
            "tag": self.plan.tag,
        }
        stage = Stage(scenario_id=scenario_id, domain=domain, names=names, log=ObservationLog())
        self._stages[domain] = stage
        try:
            mx_records: list[DnsRecord] = []
            for mx in spec.mx:
                mx_records.extend(await self._stage_mx(stage, mx))
            # After the MX hosts: their {tlsa:NAME} placeholders are known now.
            records = [self._expand_record(r, names) for r in spec.dns.records] + mx_records
            for host in spec.policy_hosts:
                records.extend(self._stage_policy_host(stage, host))
            for endpoint in spec.report_endpoints:
                records.extend(self._stage_report_endpoint(stage, endpoint))
            # The sender's and the report domain receive bounces and reports in the shared mailbox.
            # They are zones of their own, always DNSSEC-signed whatever the scenario's zone is:
            # the way back to the sender is one a careful sender accepts (an NDN of a REQUIRETLS
            # message must find a validated MX name, RFC 8689 sections 4.2.1 and 5).
            for mail_domain in (names["sender_domain"], names["report_domain"]):
                mail_records = [
                    DnsRecord(name=mail_domain, type="MX", value="10 mailbox." + mail_domain),
                    DnsRecord(name="mailbox." + mail_domain, type="A", value=self.plan.services.mailbox),
                ]
                if mail_domain == names["sender_domain"]:
                    # The world's TLSRPT reporting domain: its DKIM key (RFC 8460 section 3).
                    mail_records.append(
                        DnsRecord(name=key_record_name(mail_domain), type="TXT", value=self.dkim.record_strings())
                    )
                self._dns.add_zone(mail_domain, DnsSpec(records=tuple(mail_records), dnssec=True), stage.observe)
                stage._closers.append(self._zone_remover(mail_domain))
            zone = DnsSpec(
                records=tuple(records),
                faults=tuple(f.model_copy(update={"name": _expand(f.name, names)}) for f in spec.dns.faults),
                dnssec=spec.dns.dnssec,
            )
            self._dns.add_zone(domain, zone, stage.observe)
            stage.zone = zone
            stage._closers.append(self._zone_remover(domain))
        except (DnsError, OSError) as exc:
            await self.unstage(stage)
            raise WorldError(f"cannot stage {scenario_id}: {exc}") from exc
        except BaseException:
            await self.unstage(stage)
            raise
        return stage

    @staticmethod
    def _expand_record(record: DnsRecord, names: dict[str, str]) -> DnsRecord:
        value = record.value
        expanded = _expand(value, names) if isinstance(value, str) else tuple(_expand(v, names) for v in value)
        return record.model_copy(update={"name": _expand(record.name, names), "value": expanded})

    async def _stage_mx(self, stage: Stage, mx: MxHost) -> list[DnsRecord]:
        name = stage.expand(mx.name)
        published = self.allocate()
        stage.hosts[name] = published
        stage.smtp_hosts = stage.smtp_hosts | {name}
        records = [DnsRecord(name=name, type="A", value=published)]
        if mx.publish_mx:
            records.append(DnsRecord(name=stage.domain, type="MX", value=f"{mx.preference} {name}"))
        if not mx.listen:
            return records  # nothing listens: connection refused
        behaviour = mx.smtp
        # Empty names: the CA uses the host's own name (and the wrong-name profile its own).
        cert = behaviour.cert.model_copy(update={"names": tuple(stage.expand(n) for n in behaviour.cert.names)})
        # DANE (RFC 7672): ``{tlsa:<host>}`` in a TLSA record is the host's DANE-EE SPKI SHA-256.
        issued = self.ca.issue(name, cert)
        stage.names[f"tlsa:{name}"] = dane_ee_tlsa(issued.chain_pem)
        stage.certificates[name] = issued.describe()

        def factory(cert: CertSpec = cert) -> ssl.SSLContext:
            return self.ca.server_context(name, cert, tls_min=behaviour.tls_min, tls_max=behaviour.tls_max)

        peer = SmtpPeer(name, behaviour, factory, stage.observe, session_timeout_s=self.peer_timeout_s)
        if mx.mitm is None:
            await peer.start(published, self.ports.smtp)
            stage._closers.append(peer.stop)
        else:
            hidden = self.allocate()
            await peer.start(hidden, self.ports.smtp)
            stage._closers.append(peer.stop)
            mitm = StartTlsMitm(
                name,
                mx.mitm,
                (hidden, self.ports.smtp),
                stage.observe,
                timeout_s=self.peer_timeout_s,
            )
            await mitm.start(published, self.ports.smtp)
            stage._closers.append(mitm.stop)
        return records

    def _stage_policy_host(self, stage: Stage, host: PolicyHost) -> list[DnsRecord]:
        assert self._https is not None and self.plan is not None
        name = stage.expand(host.name)
        concrete = host.model_copy(
            update={
                "name": name,
                "body": stage.expand(host.body),
                "redirect_to": stage.expand(host.redirect_to),
                "cert": host.cert.model_copy(update={"names": tuple(stage.expand(n) for n in host.cert.names)}),
            }
        )
        if host.fault is HttpFault.REFUSE:
            address = self.allocate()  # nothing listens there
        else:
            address = self.plan.services.https
            if name not in stage.policy_hosts:
                stage._closers.append(lambda: self._https.remove_host(name) if self._https else None)
            self._https.add_policy_host(concrete, stage.observe)
        stage.policy_hosts[name] = concrete
        stage.hosts[name] = address
        return [DnsRecord(name=name, type="A", value=address)]

    def _stage_report_endpoint(self, stage: Stage, endpoint: ReportEndpoint) -> list[DnsRecord]:
        assert self._https is not None and self.plan is not None
        name = stage.expand(endpoint.name)
        cert = endpoint.cert.model_copy(update={"names": tuple(stage.expand(n) for n in endpoint.cert.names)})
        self._https.add_report_endpoint(
            name,
            endpoint.path,
            stage.observe,
            status=endpoint.status,
            cert=cert,
            fail_first=endpoint.fail_first,
            fail_status=endpoint.fail_status,
        )
        stage._closers.append(lambda: self._https.remove_host(name) if self._https else None)
        stage.hosts[name] = self.plan.services.https
        return [DnsRecord(name=name, type="A", value=self.plan.services.https)]

    def restage(self, stage: Stage, patch: WorldPatch) -> None:
        """Apply a phase's changes to a staged world: DNS records and policy hosts."""
        assert self._dns is not None and self._https is not None
        records = list(stage.zone.records)
        drop = {(stage.expand(k.name).lower(), k.type) for k in patch.dns.remove}
        new = [self._expand_record(r, stage.names) for r in patch.dns.set]
        drop |= {(r.name.lower(), r.type) for r in new}
        records = [r for r in records if (r.name.lower(), r.type) not in drop] + new
        extra: list[DnsRecord] = []
        for host in patch.policy_hosts:
            name = stage.expand(host.name)
            if name in stage.policy_hosts:
                self._https.remove_host(name)
            extra.extend(self._stage_policy_host(stage, host))
        extra_keys = {(r.name.lower(), r.type) for r in extra}
        records = [r for r in records if (r.name.lower(), r.type) not in extra_keys] + extra
        update: dict[str, object] = {"records": tuple(records)}
        if patch.dns.faults is not None:
            update["faults"] = tuple(f.model_copy(update={"name": stage.expand(f.name)}) for f in patch.dns.faults)
        zone = stage.zone.model_copy(update=update)
        self._dns.remove_zone(stage.domain)
        self._dns.add_zone(stage.domain, zone, stage.observe)
        stage.zone = zone

    async def unstage(self, stage: Stage) -> None:
        for close in reversed(stage._closers):
            with contextlib.suppress(Exception):
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        stage._closers.clear()
        self._stages.pop(stage.domain, None)


def now() -> float:
    return time.monotonic()


__all__ = ["Observation", "Ports", "Stage", "World", "WorldInfo", "scenario_domain"]
