"""``python -m reference_impl.mta`` with TLSRPT on: SIGUSR1 makes it send today's reports (RFC 8460)."""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import sys
import time
from pathlib import Path

from conformance.world.observe import DeliveredMessage, ObservationLog, ReportPost
from conformance.world.spec import (
    CertProfile,
    CertSpec,
    DnsRecord,
    DnsSpec,
    MxHost,
    ReportEndpoint,
    SmtpBehaviour,
    WorldSpec,
)
from conformance.world.world import World
from reference_impl.smtp.aio_client import AsyncSmtpClient

DEADLINE_S = 20.0


def read_ready(ready: Path) -> tuple[str, int] | None:
    """The submission address once the MTA has written the whole ready file."""
    text = ready.read_text(encoding="utf-8") if ready.exists() else ""
    if not text.endswith("\n"):
        return None
    host, _, port = text.strip().rpartition(":")
    return host, int(port)


async def wait_ready(ready: Path, proc: asyncio.subprocess.Process) -> tuple[str, int]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        address = read_ready(ready)
        if address is not None:
            return address
        assert proc.returncode is None, "the MTA exited early"
        await asyncio.sleep(0.05)
    raise AssertionError("the MTA did not become ready")


async def submit(address: tuple[str, int], recipient: str) -> None:
    client = await AsyncSmtpClient.connect(*address, timeout=5, local_hostname="client.test")
    try:
        assert (await client.ehlo()).code == 250
        assert (await client.mail("a@sender.test")).code == 250
        assert (await client.rcpt(recipient)).code == 250
        assert (await client.data(b"Subject: hi\r\n\r\nhello\r\n")).code == 250
        await client.quit()
    finally:
        await client.close()


async def test_sigusr1_sends_todays_reports(tmp_path: Path) -> None:
    async with World() as world:
        spec = WorldSpec(
            mx=(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(cert=CertSpec(profile=CertProfile.EXPIRED))),),
            dns=DnsSpec(
                records=(
                    DnsRecord(
                        name="_smtp._tls.{domain}", type="TXT", value="v=TLSRPTv1; rua=https://tlsrpt.{domain}/tlsrpt"
                    ),
                )
            ),
            report_endpoints=(ReportEndpoint(),),
        )
        stage = await world.stage("tlsrpt/standalone", spec)
        info = world.info
        ready = tmp_path / "ready"
        argv = [
            "-m",
            "reference_impl.mta",
            "--hostname=mta.standalone.test",
            f"--state-dir={tmp_path / 'state'}",
            f"--resolver={info.resolver[0]}:{info.resolver[1]}",
            f"--mx-port={info.smtp_port}",
            f"--ca-file={info.trust_bundle}",
            "--submission=127.0.0.1:0",
            f"--ready-file={ready}",
            "--tlsrpt-org=Standalone Reporter",
            "--tlsrpt-contact=tlsrpt@reporter.test",
            "--tlsrpt-domain=reporter.test",
            f"--tlsrpt-https-port={info.https[1]}",
        ]
        log_file = (tmp_path / "mta.log").open("wb")
        proc = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=log_file, stderr=log_file)
        try:
            address = await wait_ready(ready, proc)
            await submit(address, f"user@{stage.domain}")

            def delivered(log: ObservationLog) -> bool | None:
                return True if log.of(DeliveredMessage) else None

            assert await stage.log.wait_for(delivered, time.monotonic() + DEADLINE_S)
            # The TLS record is stored when the session ends: signal until a report comes.
            deadline = time.monotonic() + DEADLINE_S
            while not stage.log.of(ReportPost) and time.monotonic() < deadline:
                proc.send_signal(signal.SIGUSR1)
                await stage.log.wait_for(lambda log: log.of(ReportPost) or None, time.monotonic() + 0.5)
            [post, *_] = stage.log.of(ReportPost)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
            log_file.close()
        assert proc.returncode == 0  # SIGTERM is a clean stop
        report = json.loads(gzip.decompress(post.body))
        assert report["organization-name"] == "Standalone Reporter"
        [policy] = report["policies"]
        assert policy["policy"]["policy-domain"] == stage.domain
        assert [d["result-type"] for d in policy["failure-details"]] == ["certificate-expired"]
