"""The world's TLSRPT pieces: the DKIM key every stage publishes for its sender domain, the
report mail domain, zones of no scenario (a target's reporting domain), and direct TXT reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dkim
import dns.asyncresolver
import dns.flags
import pytest

from conformance.world.dkim import DKIM_SELECTOR, key_record_name
from conformance.world.spec import DnsRecord, WorldSpec
from conformance.world.world import World


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with World() as running:
        yield running


async def test_every_stage_publishes_the_world_dkim_key_and_a_report_mail_domain(world: World) -> None:
    stage = await world.stage("tlsrpt/w", WorldSpec())
    record = world.txt_lookup(key_record_name(stage.names["sender_domain"]))
    assert record is not None and record[0].startswith(b"v=DKIM1; k=rsa; s=tlsrpt; p=")
    # The sender and report domains are zones of their own, DNSSEC-signed whatever the scenario's
    # zone is: an MX answer with the AD bit, a way back a careful sender accepts (RFC 8689 5).
    for mail_domain in (stage.names["sender_domain"], stage.names["report_domain"]):
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [world.info.resolver[0]]
        resolver.port = world.info.resolver[1]
        resolver.use_edns(0, dns.flags.DO, 1232)
        answer = await resolver.resolve(mail_domain, "MX", raise_on_no_answer=False)
        assert answer.rrset is not None and str(answer.rrset[0].exchange).startswith("mailbox." + mail_domain)
        assert answer.response.flags & dns.flags.AD
    # The key signs what the world sends, and verifies through the lookup.
    message = b"From: a@" + stage.names["sender_domain"].encode() + b"\r\nSubject: x\r\n\r\nbody\r\n"
    signed = dkim.sign(message, DKIM_SELECTOR.encode(), stage.names["sender_domain"].encode(), world.dkim.private_pem)
    assert dkim.verify(
        signed + message, dnsfunc=lambda name, timeout=5: (world.txt_lookup(name.decode()) or [b""])[0], tlsrpt=True
    )


async def test_published_zone_is_served_until_removed(world: World) -> None:
    remove = world.publish_zone(
        "reporter.example.test", [DnsRecord(name="k.reporter.example.test", type="TXT", value=("ab", "cd"))]
    )
    assert world.txt_lookup("k.reporter.example.test") == [b"abcd"]
    assert world.txt_lookup("K.Reporter.Example.Test.") == [b"abcd"]
    assert world.txt_lookup("other.reporter.example.test") is None
    remove()
    assert world.txt_lookup("k.reporter.example.test") is None
