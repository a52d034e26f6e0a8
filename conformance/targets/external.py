"""An external SUT, described by a TOML file.

Example::

    name = "postfix"
    version = "3.7.11"
    description = "Debian's Postfix, pointed at the world by tools/postfix/start"
    roles = ["sending-mta", "receiving-mta"]
    claims = []

    [sending]
    submission = "127.0.0.1:10587"     # the suite injects messages here (SMTP, no auth)

    # TLSRPT (RFC 8460): how to make the SUT send its reports now (argv; MAILTLS_DOMAIN names
    # the policy domain), and how long to wait for them. Without a command the suite just waits.
    report_command = ["./send-reports"]
    report_wait_s = 30

    [receiving]
    address = "127.0.0.1:25"           # the SUT's inbound SMTP server
    mx_name = "mx.sut.test"            # the name its certificate must carry
    ca_file = "sut-ca.pem"             # verifies that certificate; relative to this file

The file is validated like the catalog: an error names the file, the line and the field.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.catalog.model import Role
from conformance.catalog.source import dotted
from conformance.errors import DataFileError, TargetError
from conformance.targets.base import (
    PolicyDomainEndpoint,
    ReportReceiverEndpoint,
    ReportRequestError,
    SmtpEndpoint,
    Target,
)
from conformance.world.world import World

_HOSTPORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>[0-9]{1,5})$")


def split_hostport(text: str) -> tuple[str, int]:
    match = _HOSTPORT.match(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return match["host"].strip("[]"), int(match["port"])


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendingSection(_Strict):
    submission: str
    report_command: tuple[str, ...] = ()
    report_wait_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("submission")
    @classmethod
    def _hostport(cls, value: str) -> str:
        split_hostport(value)
        return value


class ReceivingSection(_Strict):
    address: str
    mx_name: str = Field(min_length=1)
    ca_file: str | None = None

    @field_validator("address")
    @classmethod
    def _hostport(cls, value: str) -> str:
        split_hostport(value)
        return value


class PolicyDomainSection(_Strict):
    """A real domain whose MTA-STS deployment the policy-domain scenarios lint."""

    domain: str = Field(min_length=1)
    resolver: str | None = None  # HOST:PORT; None: the system's resolver
    https_port: int = Field(default=443, gt=0, lt=65536)
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    ca_file: str | None = None  # None: the system's trust store

    @field_validator("resolver")
    @classmethod
    def _hostport(cls, value: str | None) -> str | None:
        if value is not None:
            split_hostport(value)
        return value


class ReportReceiverSection(_Strict):
    """Where the SUT takes TLSRPT reports (RFC 8460 sections 5.3 and 5.4)."""

    https_url: str | None = Field(default=None, pattern=r"^https://")
    https_host: str | None = None  # SNI and Host header when the URL names an address
    mail: str | None = None  # HOST:PORT of the SMTP intake
    mail_address: str | None = None
    ca_file: str | None = None  # verifies the SUT's certificate; None: not verified

    @field_validator("mail")
    @classmethod
    def _hostport(cls, value: str | None) -> str | None:
        if value is not None:
            split_hostport(value)
        return value


class LifecycleSection(_Strict):
    """Commands that start and stop the SUT around a run, for SUTs that must be configured
    with the world's addresses (which are only known once the world is up). Each command is
    an argv list; relative paths are taken from the target file's folder. They get the
    world's facts in MAILTLS_* environment variables (see ``world_environment``). The
    program ``{python}`` stands for the interpreter the suite runs on."""

    start: tuple[str, ...] = Field(min_length=1)
    stop: tuple[str, ...] = ()
    start_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    stop_timeout_s: float = Field(default=60.0, gt=0, le=3600)


class TargetFile(_Strict):
    name: str = Field(min_length=1)
    version: str = ""
    description: str = ""
    roles: tuple[Role, ...] = Field(min_length=1)
    claims: tuple[str, ...] = ()
    sending: SendingSection | None = None
    receiving: ReceivingSection | None = None
    lifecycle: LifecycleSection | None = None
    policy_domain: PolicyDomainSection | None = None
    report_receiver: ReportReceiverSection | None = None


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """TOML keeps no positions: find the line that sets the innermost named key, inside its
    table when there is one."""
    keys = [k for k in loc if isinstance(k, str)]
    if not keys:
        return None
    table, key = (keys[0], keys[-1]) if len(keys) > 1 else (None, keys[0])
    in_table = table is None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = table is not None and stripped.strip("[] ") == table
            if table is not None and in_table and key == table:
                return number
            continue
        if in_table and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def load_target_file(path: Path) -> TargetFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, None, "file", f"cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise DataFileError(path, int(match[1]) if match else None, "toml", str(exc)) from exc
    try:
        parsed = TargetFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        raise DataFileError(path, _line_of(text, loc), dotted(loc), err["msg"]) from exc
    if Role.SENDING_MTA in parsed.roles and parsed.sending is None:
        raise DataFileError(path, _line_of(text, ("roles",)), "sending", "role sending-mta needs a [sending] table")
    if Role.POLICY_DOMAIN in parsed.roles and parsed.policy_domain is None:
        raise DataFileError(
            path, _line_of(text, ("roles",)), "policy_domain", "role policy-domain needs a [policy_domain] table"
        )
    if Role.REPORT_RECEIVER in parsed.roles and parsed.report_receiver is None:
        raise DataFileError(
            path,
            _line_of(text, ("roles",)),
            "report_receiver",
            "role report-receiver needs a [report_receiver] table",
        )
    if Role.RECEIVING_MTA in parsed.roles and parsed.receiving is None:
        raise DataFileError(
            path,
            _line_of(text, ("roles",)),
            "receiving",
            "role receiving-mta needs a [receiving] table",
        )
    return parsed


def world_environment(world: World, state_dir: Path) -> dict[str, str]:
    """What a lifecycle command learns about the world, as MAILTLS_* variables."""
    info = world.info
    return {
        "MAILTLS_DNS_HOST": info.resolver[0],
        "MAILTLS_DNS_PORT": str(info.resolver[1]),
        "MAILTLS_CA_FILE": str(info.trust_bundle),
        "MAILTLS_SMTP_PORT": str(info.smtp_port),
        "MAILTLS_HTTPS_HOST": info.https[0],
        "MAILTLS_HTTPS_PORT": str(info.https[1]),
        "MAILTLS_MAILBOX": f"{info.mailbox[0]}:{info.mailbox[1]}",
        "MAILTLS_NETWORK": info.network,
        "MAILTLS_TAG": info.tag,
        "MAILTLS_STATE_DIR": str(state_dir),
    }


class ExternalTarget(Target):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._state_dir: Path | None = None
        self._env: dict[str, str] = {}
        self.spec = load_target_file(path)
        self.name = self.spec.name
        self.version = self.spec.version
        self.description = self.spec.description
        self.roles = frozenset(self.spec.roles)
        self.claims = frozenset(self.spec.claims)

    async def start(self, world: World) -> None:
        """Run the lifecycle start command, if any; otherwise the SUT is already running and
        the user configured it with what ``mailtls world`` printed."""
        lifecycle = self.spec.lifecycle
        self._state_dir = Path(tempfile.mkdtemp(prefix=f"mailtls-{self.name}-"))
        self._env = {**os.environ, **world_environment(world, self._state_dir)}
        if lifecycle is not None:
            await self._run_command(lifecycle.start, lifecycle.start_timeout_s, "lifecycle start")

    async def stop(self) -> None:
        lifecycle = self.spec.lifecycle
        if self._state_dir is None:
            return
        try:
            if lifecycle is not None and lifecycle.stop:
                await self._run_command(lifecycle.stop, lifecycle.stop_timeout_s, "lifecycle stop")
        finally:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    async def _run_command(
        self, argv: tuple[str, ...], timeout_s: float, what: str, env: dict[str, str] | None = None
    ) -> str:
        program = argv[0]
        if program == "{python}":
            program = sys.executable  # the interpreter the suite runs on, with its packages
        elif not os.path.isabs(program) and os.sep in program:
            program = str(self.path.parent / program)
        proc = await asyncio.create_subprocess_exec(
            program,
            *argv[1:],
            env={**self._env, **(env or {})},
            cwd=str(self.path.parent),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TargetError(f"{self.path}: {what} command did not finish within {timeout_s:.0f} s") from None
        text = output.decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            tail = text.splitlines()[-15:]
            raise TargetError(f"{self.path}: {what} command exited {proc.returncode}:\n" + "\n".join(tail))
        return text

    async def request_reports(self, domain: str) -> str:
        sending = self.spec.sending
        if sending is None or not sending.report_command:
            return await super().request_reports(domain)
        try:
            output = await self._run_command(
                sending.report_command, sending.report_wait_s, "report", {"MAILTLS_DOMAIN": domain}
            )
        except TargetError as exc:
            raise ReportRequestError(str(exc)) from exc
        return f"report command {' '.join(sending.report_command)} ran" + (f": {output[-300:]}" if output else "")

    @property
    def report_wait_s(self) -> float | None:
        return self.spec.sending.report_wait_s if self.spec.sending else None

    def report_receiver(self) -> ReportReceiverEndpoint | None:
        section = self.spec.report_receiver
        if section is None:
            return None
        host, port = split_hostport(section.mail) if section.mail else (None, 25)
        return ReportReceiverEndpoint(
            https_url=section.https_url,
            https_host=section.https_host,
            mail_host=host,
            mail_port=port,
            mail_address=section.mail_address,
            trust_file=(self.path.parent / section.ca_file) if section.ca_file else None,
        )

    def submission_endpoint(self) -> tuple[str, int] | None:
        return split_hostport(self.spec.sending.submission) if self.spec.sending else None

    def policy_domain(self) -> PolicyDomainEndpoint | None:
        section = self.spec.policy_domain
        if section is None:
            return None
        return PolicyDomainEndpoint(
            domain=section.domain,
            resolver=split_hostport(section.resolver) if section.resolver else None,
            https_port=section.https_port,
            smtp_port=section.smtp_port,
            ca_file=(self.path.parent / section.ca_file) if section.ca_file else None,
        )

    def smtp_endpoint(self) -> SmtpEndpoint | None:
        receiving = self.spec.receiving
        if receiving is None:
            return None
        host, port = split_hostport(receiving.address)
        trust = (self.path.parent / receiving.ca_file) if receiving.ca_file else None
        return SmtpEndpoint(host=host, port=port, mx_name=receiving.mx_name, trust_file=trust)
