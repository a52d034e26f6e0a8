"""An external SUT, described by a TOML file.

Example::

    name = "postfix"
    version = "3.7.11"
    description = "Debian's Postfix, pointed at the world by tools/postfix/start"
    roles = ["sending-mta", "receiving-mta"]
    claims = []

    [sending]
    submission = "127.0.0.1:10587"     # the suite injects messages here (SMTP, no auth)

    [receiving]
    address = "127.0.0.1:25"           # the SUT's inbound SMTP server
    mx_name = "mx.sut.test"            # the name its certificate must carry
    ca_file = "sut-ca.pem"             # verifies that certificate; relative to this file

The file is validated like the catalog: an error names the file, the line and the field.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.catalog.model import Role
from conformance.catalog.source import dotted
from conformance.errors import DataFileError
from conformance.targets.base import SmtpEndpoint, Target
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


class TargetFile(_Strict):
    name: str = Field(min_length=1)
    version: str = ""
    description: str = ""
    roles: tuple[Role, ...] = Field(min_length=1)
    claims: tuple[str, ...] = ()
    sending: SendingSection | None = None
    receiving: ReceivingSection | None = None


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
    if Role.RECEIVING_MTA in parsed.roles and parsed.receiving is None:
        raise DataFileError(
            path,
            _line_of(text, ("roles",)),
            "receiving",
            "role receiving-mta needs a [receiving] table",
        )
    return parsed


class ExternalTarget(Target):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = load_target_file(path)
        self.name = self.spec.name
        self.version = self.spec.version
        self.description = self.spec.description
        self.roles = frozenset(self.spec.roles)
        self.claims = frozenset(self.spec.claims)

    async def start(self, world: World) -> None:
        """An external SUT is already running; the user configured it with ``mailtls world``."""

    async def stop(self) -> None:
        pass

    def submission_endpoint(self) -> tuple[str, int] | None:
        return split_hostport(self.spec.sending.submission) if self.spec.sending else None

    def smtp_endpoint(self) -> SmtpEndpoint | None:
        receiving = self.spec.receiving
        if receiving is None:
            return None
        host, port = split_hostport(receiving.address)
        trust = (self.path.parent / receiving.ca_file) if receiving.ca_file else None
        return SmtpEndpoint(host=host, port=port, mx_name=receiving.mx_name, trust_file=trust)
