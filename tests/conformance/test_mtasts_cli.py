"""`mailtls mta-sts check-record / check-policy / check-domain`: rules named with RFC sections."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.world.spec import (
    CertProfile,
    CertSpec,
    DnsRecord,
    DnsSpec,
    MxHost,
    PolicyHost,
    SmtpBehaviour,
    WorldSpec,
)
from conformance.world.world import World


def test_check_record_ok_and_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mta-sts", "check-record", "v=STSv1; id=20260101"]) == 0
    assert main(["mta-sts", "check-record", "v=stsv1; id=a!b"]) == 1
    out = capsys.readouterr().out
    assert "RFC 8461 section 3.1 [txt-version-first]" in out and "[txt-id-invalid]" in out


def test_check_policy_names_line_and_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "mta-sts.txt"
    policy.write_bytes(b"version: STSv1\r\nmode: Enforce\r\nmx: mx1.example.com\r\nmax_age: 86400\r\n")
    assert main(["mta-sts", "check-policy", str(policy), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert (error["rule"], error["section"], error["line"]) == ("policy-mode-invalid", "3.2", 2)


def test_check_policy_unreadable_file_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mta-sts", "check-policy", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


class _WorldThread:
    """A world on its own loop, so the CLI (which runs its own loop) can query it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.world = World()
        self.call(self.world.start())

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(30)

    def close(self) -> None:
        self.call(self.world.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def world() -> Iterator[_WorldThread]:
    runtime = _WorldThread()
    yield runtime
    runtime.close()


def deployment(mx_cert: CertProfile) -> WorldSpec:
    return WorldSpec(
        dns=DnsSpec(records=(DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=1"),)),
        policy_hosts=(
            PolicyHost(
                name="mta-sts.{domain}",
                body="version: STSv1\r\nmode: enforce\r\nmx: mx1.{domain}\r\nmax_age: 1209600\r\n",
            ),
        ),
        mx=(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(cert=CertSpec(profile=mx_cert))),),
    )


@pytest.mark.parametrize(
    ("mx_cert", "status", "rule"), [(CertProfile.VALID, 0, None), (CertProfile.EXPIRED, 1, "mx-certificate-invalid")]
)
def test_check_domain_against_the_world(
    world: _WorldThread, capsys: pytest.CaptureFixture[str], mx_cert: CertProfile, status: int, rule: str | None
) -> None:
    stage = world.call(world.world.stage("cli/check-domain", deployment(mx_cert)))
    info = world.world.info
    argv = [
        "mta-sts",
        "check-domain",
        stage.domain,
        "--resolver",
        f"{info.resolver[0]}:{info.resolver[1]}",
        "--https-port",
        str(info.https[1]),
        "--smtp-port",
        str(info.smtp_port),
        "--ca-file",
        str(info.trust_bundle),
        "--json",
    ]
    assert main(argv) == status
    document = json.loads(capsys.readouterr().out)
    rules = [f["rule"] for f in document["findings"] if f["severity"] == "error"]
    assert rules == ([rule] if rule else [])


def test_domain_scenarios_against_a_named_domain(world: _WorldThread, tmp_path: Path) -> None:
    """A target file naming a domain (here one served by another world, standing in for the
    Internet): the policy-domain scenarios lint that domain through its resolver."""
    stage = world.call(world.world.stage("cli/named-domain", deployment(CertProfile.EXPIRED)))
    info = world.world.info
    target = tmp_path / "domain.toml"
    target.write_text(
        f'name = "named"\nroles = ["policy-domain"]\n[policy_domain]\ndomain = "{stage.domain}"\n'
        f'resolver = "{info.resolver[0]}:{info.resolver[1]}"\nhttps_port = {info.https[1]}\n'
        f'smtp_port = {info.smtp_port}\nca_file = "{info.trust_bundle}"\n',
        encoding="utf-8",
    )
    report = tmp_path / "r"
    assert main(["run", "-q", "--target", str(target), "--select", "mta-sts/domain/*", "--report", str(report)]) == 1
    verdicts = {r["id"]: r["verdict"] for r in json.loads((report / "results.json").read_text())["results"]}
    assert verdicts["mta-sts/domain/mx-certificate"] == "FAIL"  # its MX certificate is expired
    assert verdicts["mta-sts/domain/policy-text-plain"] == "PASS"
