"""The chain an MX presented, as DANE reads it (RFC 7672 section 3), and the MX TLS contexts."""

from __future__ import annotations

import asyncio
import ssl
from types import SimpleNamespace

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from reference_impl.mta.mxtls import presented_chain, unverified_mx_context, verified_mx_context


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


async def test_presented_chain_is_every_certificate_sent_leaf_first() -> None:
    ca = trustme.CA()
    intermediate = ca.create_child_ca()
    cert = intermediate.issue_cert("mx.d.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    try:
        port = server.sockets[0].getsockname()[1]
        # The DANE session's context: no verification (RFC 7672 3.1.1), still TLS 1.2 or newer.
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=unverified_mx_context("TLSv1.2"), server_hostname="mx.d.test"
        )
        client = SimpleNamespace(_stream=SimpleNamespace(transport=writer.transport))
        chain = presented_chain(client)
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert chain == [_der(blob.bytes()) for blob in cert.cert_chain_pems]
    assert len(chain) == 2


def test_without_a_tls_transport_the_leaf_alone_or_nothing() -> None:
    assert presented_chain(SimpleNamespace(peer_certificate_der=b"leaf")) == [b"leaf"]
    assert presented_chain(SimpleNamespace(peer_certificate_der=None)) == []
    assert presented_chain(object()) == []


def test_contexts_keep_the_floor() -> None:
    assert verified_mx_context(None, "TLSv1.2").minimum_version is ssl.TLSVersion.TLSv1_2
    unverified = unverified_mx_context("TLSv1.3")
    assert unverified.minimum_version is ssl.TLSVersion.TLSv1_3 and unverified.verify_mode is ssl.CERT_NONE
