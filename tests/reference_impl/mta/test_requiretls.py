"""REQUIRETLS end to end (RFC 8689 sections 4.2.1, 4.2.2, 5): the reference MTA in the world.

The world's DNS sets the AD bit for stages with ``DnsSpec(dnssec=True)``; its MX hosts list
REQUIRETLS after TLS when ``ehlo_keywords_tls`` says so and record the MAIL parameters they
got; bounces go to the world's mailbox (which lists REQUIRETLS after TLS). Each mutant of
:mod:`reference_impl.mta.requiretls_mutants` is shown to differ from the reference here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.world.observe import DeliveredMessage, SmtpSession
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
from conformance.world.world import Stage, World
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.config import MtaVariant
from reference_impl.mta.mta import MtaConfig, ReferenceMta
from reference_impl.mta.queue import RecipientState
from reference_impl.mta.receiver import params_as_strings
from reference_impl.mta.requiretls_mutants import REQUIRETLS_MUTANTS
from tests.reference_impl.mta.helpers import parse_mail, world_mta_settings

RT = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "REQUIRETLS")
GOOD = SmtpBehaviour(ehlo_keywords_tls=RT)
EXPIRED = CertSpec(profile=CertProfile.EXPIRED)
MUTANT = {v.name: v for v in REQUIRETLS_MUTANTS}
STS_TXT = DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=1")


def sts_host(mode: str = "enforce") -> PolicyHost:
    body = f"version: STSv1\r\nmode: {mode}\r\nmx: mx1.{{domain}}\r\nmax_age: 86400\r\n"
    return PolicyHost(name="mta-sts.{domain}", body=body)


@dataclass
class Harness:
    world: World
    tmp: Path
    clock: ManualClock
    mtas: list[ReferenceMta]
    sender_local: str = "a"
    sender_domain: str | None = None  # None: the stage's sender domain (the world's mailbox)

    async def run(
        self,
        spec: WorldSpec,
        variant: MtaVariant | None = None,
        *,
        params: tuple[str, ...] = ("REQUIRETLS",),
        headers: str = "",
        **config: Any,
    ) -> tuple[Stage, ReferenceMta]:
        """Stage ``spec``, submit one message from the stage's sender domain, wait."""
        stage = await self.world.stage("requiretls/run", spec)
        settings: dict[str, Any] = world_mta_settings(self.world, self.tmp / f"state-{len(self.mtas)}")
        settings.update(config)
        mta = ReferenceMta(MtaConfig(**settings), variant=variant, clock=self.clock)
        await mta.start()
        self.mtas.append(mta)
        data = (
            f"From: a@sender.{stage.domain}\r\nTo: user@{stage.domain}\r\nSubject: secret\r\n{headers}"
            "\r\nTHE SECRET BODY\r\n"
        ).encode()
        sender = f"{self.sender_local}@{self.sender_domain or 'sender.' + stage.domain}"
        mta.submit(sender.replace("{domain}", stage.domain), [f"user@{stage.domain}"], data, params)
        assert await mta.wait_idle(30)
        return stage, mta


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with World() as world:
        h = Harness(world, tmp_path, ManualClock(time.time()), [])
        try:
            yield h
        finally:
            for mta in h.mtas:
                await mta.stop()
                assert mta.errors == []


def world(*mx: MxHost, dnssec: bool = True, records: tuple[DnsRecord, ...] = (), sts: str | None = None) -> WorldSpec:
    return WorldSpec(
        mx=mx or (MxHost(name="mx1.{domain}", smtp=GOOD),),
        dns=DnsSpec(records=(*records, *((STS_TXT,) if sts else ())), dnssec=dnssec),
        policy_hosts=(sts_host(sts),) if sts else (),
    )


def delivered(stage: Stage, host: str) -> list[DeliveredMessage]:
    return [m for m in stage.log.of(DeliveredMessage) if m.host == f"{host}.{stage.domain}"]


def bounces(stage: Stage) -> list[DeliveredMessage]:
    return [m for m in stage.log.of(DeliveredMessage) if m.mail_from == ""]


def original_state(mta: ReferenceMta) -> tuple[RecipientState, str | None]:
    status = mta.message_states()[0]
    return status.state, status.status


def cleartext_mail_commands(stage: Stage) -> list[str]:
    """MAIL, RCPT or DATA a world MX saw outside TLS (section 4.2.1: never)."""
    return [
        line.text
        for session in stage.log.of(SmtpSession)
        for line in session.lines
        if not line.tls and line.text[:4].upper() in ("MAIL", "RCPT", "DATA")
    ]


def bounce_status(bounce: DeliveredMessage) -> str:
    report = parse_mail(bounce.data)
    [_, status_part, _] = report.get_payload()
    blocks = status_part.get_payload()
    return str(blocks[1]["Status"])


# -- relaying (section 4.2.1) -----------------------------------------------------------------------


async def test_a_qualifying_hop_gets_the_message_with_requiretls(harness: Harness) -> None:
    stage, mta = await harness.run(world())
    [message] = delivered(stage, "mx1")
    assert message.tls and "REQUIRETLS" in message.mail_options
    assert original_state(mta)[0] is RecipientState.DELIVERED and bounces(stage) == []

    stage, _ = await harness.run(world(), MUTANT["requiretls-param-dropped"])
    [message] = delivered(stage, "mx1")
    assert "REQUIRETLS" not in message.mail_options


async def test_an_mx_without_starttls_is_skipped_never_cleartext(harness: Harness) -> None:
    spec = world(
        MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)),
        MxHost(name="mx2.{domain}", preference=20, smtp=GOOD),
    )
    stage, _ = await harness.run(spec)
    assert delivered(stage, "mx1") == [] and cleartext_mail_commands(stage) == []
    [message] = delivered(stage, "mx2")
    assert message.tls and "REQUIRETLS" in message.mail_options
    # The host that failed got a QUIT (section 4.2.1).
    mx1 = [s for s in stage.log.of(SmtpSession) if s.host == f"mx1.{stage.domain}"]
    assert mx1 and all(any(line.text.upper() == "QUIT" for line in s.lines) for s in mx1)

    stage, _ = await harness.run(spec, MUTANT["requiretls-plaintext-fallback"])
    [message] = delivered(stage, "mx1")
    assert not message.tls and cleartext_mail_commands(stage) != []


async def test_an_untrusted_certificate_is_skipped(harness: Harness) -> None:
    spec = world(
        MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(ehlo_keywords_tls=RT, cert=EXPIRED)),
        MxHost(name="mx2.{domain}", preference=20, smtp=GOOD),
    )
    stage, _ = await harness.run(spec)
    assert delivered(stage, "mx1") == [] and len(delivered(stage, "mx2")) == 1

    stage, _ = await harness.run(spec, MUTANT["requiretls-cert-unverified"])
    assert len(delivered(stage, "mx1")) == 1


async def test_a_wrong_name_is_skipped_and_a_cn_id_qualifies(harness: Harness) -> None:
    wrong = SmtpBehaviour(ehlo_keywords_tls=RT, cert=CertSpec(profile=CertProfile.WRONG_NAME))
    spec = world(MxHost(name="mx1.{domain}", smtp=wrong), MxHost(name="mx2.{domain}", preference=20, smtp=GOOD))
    stage, _ = await harness.run(spec)
    assert delivered(stage, "mx1") == [] and len(delivered(stage, "mx2")) == 1

    cn_only = SmtpBehaviour(ehlo_keywords_tls=RT, cert=CertSpec(profile=CertProfile.CN_ONLY))
    stage, _ = await harness.run(world(MxHost(name="mx1.{domain}", smtp=cn_only)))
    [message] = delivered(stage, "mx1")
    assert message.tls and "REQUIRETLS" in message.mail_options


async def test_no_requiretls_after_tls_bounces_at_once_with_5_7_30(harness: Harness) -> None:
    spec = world(MxHost(name="mx1.{domain}"))
    stage, mta = await harness.run(spec, params=("REQUIRETLS", "RET=FULL"))
    assert delivered(stage, "mx1") == [] and cleartext_mail_commands(stage) == []
    assert original_state(mta) == (RecipientState.BOUNCED, "5.7.30")
    # Section 5: the NDN is sent with REQUIRETLS and returns headers only despite RET=FULL.
    [bounce] = bounces(stage)
    assert bounce.tls and "REQUIRETLS" in bounce.mail_options
    assert bounce_status(bounce) == "5.7.30"
    assert b"Subject: secret" in bounce.data and b"THE SECRET BODY" not in bounce.data

    stage, mta = await harness.run(spec, MUTANT["requiretls-bounce-wrong-code"])
    assert original_state(mta) == (RecipientState.BOUNCED, "5.7.10")
    stage, mta = await harness.run(spec, MUTANT["requiretls-defers"])
    assert original_state(mta)[0] is RecipientState.DEFERRED and bounces(stage) == []
    stage, _ = await harness.run(spec, MUTANT["requiretls-bounce-full-body"], params=("REQUIRETLS", "RET=FULL"))
    [bounce] = bounces(stage)
    assert b"THE SECRET BODY" in bounce.data
    stage, _ = await harness.run(spec, MUTANT["requiretls-bounce-without-requiretls"])
    [bounce] = bounces(stage)
    assert "REQUIRETLS" not in bounce.mail_options


async def test_tls_failure_everywhere_bounces_with_5_7_10(harness: Harness) -> None:
    spec = world(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)))
    stage, mta = await harness.run(spec)
    assert original_state(mta) == (RecipientState.BOUNCED, "5.7.10")
    [bounce] = bounces(stage)
    assert bounce_status(bounce) == "5.7.10" and cleartext_mail_commands(stage) == []


async def test_an_unvalidated_mx_name_needs_mta_sts(harness: Harness) -> None:
    stage, mta = await harness.run(world(dnssec=False))
    assert delivered(stage, "mx1") == [] and original_state(mta) == (RecipientState.BOUNCED, "5.7.10")
    assert [s for s in stage.log.of(SmtpSession) if s.host == f"mx1.{stage.domain}"] == []  # never connected

    stage, _ = await harness.run(world(dnssec=False), MUTANT["requiretls-no-dnssec-check"])
    assert len(delivered(stage, "mx1")) == 1

    stage, _ = await harness.run(world(dnssec=False, sts="enforce"))
    [message] = delivered(stage, "mx1")
    assert "REQUIRETLS" in message.mail_options


async def test_a_testing_policy_counts_only_when_configured(harness: Harness) -> None:
    stage, mta = await harness.run(world(dnssec=False, sts="testing"))
    assert delivered(stage, "mx1") == [] and original_state(mta)[0] is RecipientState.BOUNCED
    stage, _ = await harness.run(world(dnssec=False, sts="testing"), requiretls_sts_testing_counts=True)
    assert len(delivered(stage, "mx1")) == 1


# -- TLS-Required: No (sections 4.1, 4.2.2) ---------------------------------------------------------


async def test_tls_required_no_delivers_despite_an_enforce_failure_and_tries_starttls(harness: Harness) -> None:
    spec = world(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(cert=EXPIRED)), dnssec=False, sts="enforce")
    header = "TLS-Required: No\r\n"
    stage, mta = await harness.run(spec, params=(), headers=header)
    [message] = delivered(stage, "mx1")
    assert message.tls and original_state(mta)[0] is RecipientState.DELIVERED

    stage, mta = await harness.run(spec, MUTANT["tls-required-ignored"], params=(), headers=header)
    assert delivered(stage, "mx1") == [] and original_state(mta)[0] is RecipientState.DEFERRED
    stage, _ = await harness.run(spec, MUTANT["tls-required-no-starttls"], params=(), headers=header)
    [message] = delivered(stage, "mx1")
    assert not message.tls

    # Without the header the enforce policy keeps the message back (the control).
    stage, mta = await harness.run(spec, params=())
    assert delivered(stage, "mx1") == [] and original_state(mta)[0] is RecipientState.DEFERRED


async def test_tls_required_no_is_ignored_with_the_parameter(harness: Harness) -> None:
    spec = world(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)))
    header = "TLS-Required: No\r\n"
    stage, mta = await harness.run(spec, headers=header)
    assert delivered(stage, "mx1") == [] and cleartext_mail_commands(stage) == []
    assert original_state(mta) == (RecipientState.BOUNCED, "5.7.10")

    stage, _ = await harness.run(spec, MUTANT["tls-required-overrides-param"], headers=header)
    [message] = delivered(stage, "mx1")
    assert not message.tls


# -- receiving (section 4.1: the parameter is stored with the message) --------------------------------


def test_the_receiver_stores_the_parameter() -> None:
    assert params_as_strings({"REQUIRETLS": None, "BODY": "8BITMIME"}) == ("REQUIRETLS", "BODY=8BITMIME")


# -- non-delivery messages (section 5) ------------------------------------------------------------


async def test_the_ndn_skips_a_cleartext_mx_and_goes_on_without_the_keyword(harness: Harness) -> None:
    """Section 5: protected like the original (no cleartext MX), but not held back because the
    next hop lacks REQUIRETLS: the sender's domain here is the recipient domain."""
    harness.sender_domain = "{domain}"
    spec = world(
        MxHost(name="mx1.{domain}", preference=10, smtp=SmtpBehaviour(starttls=False)),
        MxHost(name="mx2.{domain}", preference=20),
    )
    stage, _ = await harness.run(spec)
    assert cleartext_mail_commands(stage) == []
    [ndn] = bounces(stage)
    assert ndn.host == f"mx2.{stage.domain}" and ndn.tls and "REQUIRETLS" not in ndn.mail_options
    assert bounce_status(ndn) == "5.7.30"


async def test_an_ndn_with_no_protected_path_is_deferred(harness: Harness) -> None:
    harness.sender_domain = "{domain}"
    stage, mta = await harness.run(world(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False))))
    assert bounces(stage) == [] and cleartext_mail_commands(stage) == []
    states = {s.address: (s.state, s.status) for s in mta.message_states()}
    assert states[f"a@{stage.domain}"] == (RecipientState.DEFERRED, "4.7.10")  # the NDN, to the sender


async def test_the_unprotected_ndn_mutant_sends_it_in_cleartext(harness: Harness) -> None:
    harness.sender_domain = "{domain}"
    spec = world(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)))
    stage, _ = await harness.run(spec, MUTANT["requiretls-ndn-unprotected"])
    [ndn] = bounces(stage)
    assert not ndn.tls and cleartext_mail_commands(stage) != []


def test_every_requiretls_mutant_is_registered() -> None:
    from conformance.targets.mutants import MUTANTS
    from reference_impl.mta.mutants import ALL_MUTANTS, REQUIRETLS_UNJUDGED

    judged = [v for v in REQUIRETLS_MUTANTS if v not in REQUIRETLS_UNJUDGED]
    assert all(v in ALL_MUTANTS and v.name in MUTANTS for v in judged)
    assert [v.name for v in REQUIRETLS_UNJUDGED] == ["requiretls-before-tls"]
    assert len(REQUIRETLS_MUTANTS) == 23
