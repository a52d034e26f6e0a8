"""The world as a whole: staging, routing observations to their scenario, restaging."""

from __future__ import annotations

import ssl

import dns.asyncquery
import dns.message
import dns.rcode
import h11

from conformance.world.observe import DnsQuery, ReportPost
from conformance.world.spec import DnsPatch, DnsRecord, DnsSpec, ReportEndpoint, WorldPatch, WorldSpec
from conformance.world.world import World


async def _post(world: World, host: str, path: str, body: bytes) -> int:
    import asyncio

    context = ssl.create_default_context(cafile=str(world.info.trust_bundle))
    reader, writer = await asyncio.open_connection(*world.info.https, ssl=context, server_hostname=host)
    conn = h11.Connection(h11.CLIENT)
    writer.write(
        conn.send(
            h11.Request(
                method="POST",
                target=path,
                headers=[
                    ("Host", host),
                    ("Content-Type", "application/tlsrpt+json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ],
            )
        )
    )
    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    await writer.drain()
    status = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    writer.close()
    await writer.wait_closed()
    return status


async def test_report_posts_reach_their_stage() -> None:
    async with World() as world:
        stage = await world.stage("world/report", WorldSpec(report_endpoints=(ReportEndpoint(status=201),)))
        other = await world.stage("world/other", WorldSpec())
        status = await _post(world, f"tlsrpt.{stage.domain}", "/tlsrpt", b'{"report": 1}')
        assert status == 201
        [post] = stage.log.of(ReportPost)
        assert post.body == b'{"report": 1}' and post.content_type == "application/tlsrpt+json"
        assert other.log.of(ReportPost) == []


async def test_restage_replaces_records_and_each_stage_sees_its_own_queries() -> None:
    async with World() as world:
        spec = WorldSpec(dns=DnsSpec(records=(DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=1"),)))
        stage = await world.stage("world/restage", spec)

        async def txt() -> list[str]:
            query = dns.message.make_query(f"_mta-sts.{stage.domain}", "TXT")
            answer = await dns.asyncquery.udp(query, world.info.resolver[0], port=world.info.resolver[1], timeout=3)
            return [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]

        assert await txt() == ["v=STSv1; id=1"]
        world.restage(
            stage,
            WorldPatch(dns=DnsPatch(set=(DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=2"),))),
        )
        stage.next_phase()
        assert await txt() == ["v=STSv1; id=2"]
        assert len(stage.log.of(DnsQuery)) == 2 and len(stage.phase_log.of(DnsQuery)) == 1


async def test_restage_can_add_dns_faults() -> None:
    from conformance.world.spec import DnsFault, DnsRule

    async with World() as world:
        spec = WorldSpec(dns=DnsSpec(records=(DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=1"),)))
        stage = await world.stage("world/faults", spec)
        world.restage(
            stage, WorldPatch(dns=DnsPatch(faults=(DnsRule(name="_mta-sts.{domain}", fault=DnsFault.SERVFAIL),)))
        )
        query = dns.message.make_query(f"_mta-sts.{stage.domain}", "TXT")
        answer = await dns.asyncquery.udp(query, world.info.resolver[0], port=world.info.resolver[1], timeout=3)
        assert answer.rcode() == dns.rcode.SERVFAIL
