"""The data a scenario stages into the world: DNS records, certificates, peers and their scripts.

These models are both the schema of the ``world:`` section of a scenario file (validated on
load, unknown keys rejected) and the configuration the peers consume, so a behaviour is
described once. Host names may contain the placeholder ``{domain}``, the scenario's own
recipient domain, which the world fills in when it stages the scenario; they are plain
names (no trailing dot) after that.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    """Base of every scenario-file model: immutable, and unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CertProfile(StrEnum):
    """The kinds of leaf certificate the world's CA mints (see ``conformance.world.ca``)."""

    VALID = "valid"  # chains to the trusted root, SAN dNSName = the names
    EXPIRED = "expired"  # notAfter in the past
    NOT_YET_VALID = "not-yet-valid"  # notBefore in the future
    WRONG_NAME = "wrong-name"  # valid, but for a name unrelated to the host
    WILDCARD = "wildcard"  # SAN "*.<parent of the first name>"
    CN_ONLY = "cn-only"  # the name only in the subject CN, no SAN
    SELF_SIGNED = "self-signed"  # issuer = subject, no CA
    UNTRUSTED_CA = "untrusted-ca"  # chains to the world's untrusted root
    WEAK_KEY = "weak-key"  # RSA 1024
    SRV_ID = "srv-id"  # SAN otherName SRVName (RFC 4985) for each srv_ids entry, plus DNS names
    XMPP_ADDR = "xmpp-addr"  # SAN otherName id-on-xmppAddr for each xmpp_addrs entry, plus DNS names


class CertSpec(Spec):
    profile: CertProfile = CertProfile.VALID
    # The names the certificate is for; empty means "the host's own name".
    names: tuple[str, ...] = ()
    srv_ids: tuple[str, ...] = ()  # e.g. "_xmpp-server.example.test"
    xmpp_addrs: tuple[str, ...] = ()


class Reply(Spec):
    """An SMTP reply: code, text lines (enhanced status code included in the text if wanted)."""

    code: int = Field(ge=200, le=599)
    text: str = ""


TlsVersionName = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class SmtpBehaviour(Spec):
    """How a world SMTP peer (an MX host) behaves; every field has the well-behaved default."""

    greeting: Reply = Reply(code=220, text="ESMTP world peer")
    # Keywords of the EHLO reply before TLS, besides STARTTLS (controlled by ``starttls``).
    ehlo_keywords: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8")
    # Keywords after TLS; None means the same as before TLS.
    ehlo_keywords_tls: tuple[str, ...] | None = None
    starttls: bool = True  # advertise and accept STARTTLS
    starttls_reply: Reply = Reply(code=220, text="2.0.0 Ready to start TLS")
    cert: CertSpec = CertSpec()
    tls_min: TlsVersionName = "TLSv1.2"
    tls_max: TlsVersionName = "TLSv1.3"
    mail_reply: Reply = Reply(code=250, text="2.1.0 OK")
    rcpt_reply: Reply = Reply(code=250, text="2.1.5 OK")
    data_reply: Reply = Reply(code=250, text="2.0.0 queued")
    # Close the connection right after the greeting (the greeting may be a 421/554).
    close_after_greeting: bool = False


class MitmMode(StrEnum):
    PASS = "pass"  # forward bytes untouched (still observes)
    STRIP_STARTTLS = "strip-starttls"  # remove STARTTLS from EHLO replies; refuse the command with 502
    STARTTLS_ERROR = "starttls-error"  # answer STARTTLS with 454 instead of forwarding it
    # Plaintext injected around the upgrade, the bug class of RFC 8314 Appendix A (CVE-2011-0411):
    INJECT_COMMANDS = "inject-commands"  # append ``inject`` to the client's STARTTLS line, towards the server
    INJECT_REPLIES = "inject-replies"  # append ``inject`` to the server's 220 to STARTTLS, towards the client


class MitmSpec(Spec):
    mode: MitmMode = MitmMode.PASS
    inject: str = ""


class MxHost(Spec):
    """One MX host of the scenario's recipient domain.

    The world allocates a loopback address for it, publishes ``<name> A <address>`` and
    ``<domain> MX <preference> <name>``, and runs an SMTP peer there (unless ``listen`` is
    false: connection refused)."""

    name: str  # e.g. "mx1.{domain}"
    preference: int = Field(default=10, ge=0, le=65535)
    listen: bool = True
    smtp: SmtpBehaviour = SmtpBehaviour()
    mitm: MitmSpec | None = None  # a man in the middle sits at the published address
    publish_mx: bool = True  # False: only the A record (for hosts reached otherwise)


RecordType = Literal["A", "AAAA", "MX", "TXT", "SRV", "CNAME", "TLSA"]


class DnsRecord(Spec):
    """A record in presentation form: TXT values are given unquoted, one string per list entry
    (``["v=STSv1; ", "id=1"]`` is one record of two character-strings)."""

    name: str
    type: RecordType
    value: str | tuple[str, ...]
    ttl: int = Field(default=300, ge=0)


class DnsFault(StrEnum):
    SERVFAIL = "servfail"
    NXDOMAIN = "nxdomain"
    TIMEOUT = "timeout"  # never answer


class DnsRule(Spec):
    """A scripted fault for one name (and optionally one type)."""

    name: str
    type: RecordType | None = None
    fault: DnsFault


class DnsSpec(Spec):
    records: tuple[DnsRecord, ...] = ()
    faults: tuple[DnsRule, ...] = ()
    # Answers for the scenario's names carry the AD bit (as a validating resolver would set it).
    dnssec: bool = False


class HttpFault(StrEnum):
    NONE = "none"
    REDIRECT = "redirect"  # 301 to ``redirect_to``
    SLOW_BODY = "slow-body"  # headers at once, then the body a byte per ``slow_interval_s``
    RESET = "reset"  # close the TCP connection after reading the request
    REFUSE = "refuse"  # nothing listens (the host's address is unreachable)


class PolicyHost(Spec):
    """An HTTPS host serving ``/.well-known/mta-sts.txt`` (or any path) for one name."""

    name: str  # e.g. "mta-sts.{domain}"
    path: str = "/.well-known/mta-sts.txt"
    status: int = Field(default=200, ge=100, le=599)
    content_type: str | None = "text/plain"  # None: no Content-Type header
    body: str = ""
    pad_to_bytes: int = Field(default=0, ge=0)  # pad the body with trailing comment lines to this size
    fault: HttpFault = HttpFault.NONE
    redirect_to: str = ""
    redirect_status: int = Field(default=301, ge=300, le=399)
    slow_interval_s: float = Field(default=0.0, ge=0)
    cert: CertSpec = CertSpec()
    extra_headers: tuple[tuple[str, str], ...] = ()


class ReportEndpoint(Spec):
    """An HTTPS collector for TLSRPT reports (RFC 8460 section 5.4): POSTs to ``path`` on
    ``name`` are recorded as ReportPost observations and answered with ``status``."""

    name: str = "tlsrpt.{domain}"
    path: str = "/tlsrpt"
    status: int = Field(default=200, ge=100, le=599)
    cert: CertSpec = CertSpec()
    # The first ``fail_first`` POSTs are answered ``fail_status`` (to see the sender retry, 5.5).
    fail_first: int = Field(default=0, ge=0)
    fail_status: int = Field(default=503, ge=300, le=599)


class WorldSpec(Spec):
    """Everything a scenario stages."""

    mx: tuple[MxHost, ...] = ()
    dns: DnsSpec = DnsSpec()
    policy_hosts: tuple[PolicyHost, ...] = ()
    report_endpoints: tuple[ReportEndpoint, ...] = ()


class RecordKey(Spec):
    name: str
    type: RecordType


class DnsPatch(Spec):
    """Changes to a staged zone: ``set`` replaces every record with the same name and type
    (or adds it), ``remove`` deletes every record with that name and type."""

    set: tuple[DnsRecord, ...] = ()
    remove: tuple[RecordKey, ...] = ()
    faults: tuple[DnsRule, ...] | None = None  # replaces the zone's faults; None keeps them


class WorldPatch(Spec):
    """What changes in a scenario's world between two phases (e.g. a new policy id)."""

    dns: DnsPatch = DnsPatch()
    policy_hosts: tuple[PolicyHost, ...] = ()  # replace the host of the same name (or add one)
