"""Mutants: deliberately broken builds of the reference, the negative controls of the catalog.

Every scenario names at least one mutant it must judge FAIL (or WARN for a SHOULD). Each
mutant swaps exactly one part of the reference (see ``MtaVariant``) and says in its
description which rule it breaks, so a scenario that stops catching it points at a real
gap in the check, not at a change of the mutant.
"""

from __future__ import annotations

import dataclasses
import ssl
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from conformance.targets.reference import Variant
from conformance.world.spec import CertProfile, CertSpec
from reference_impl.mta.mta import MtaVariant, ServerStarter
from reference_impl.mta.mxplan import MxOrdering, MxRecord, order_by_preference
from reference_impl.mta.records import TlsResultType, TlsSessionRecord
from reference_impl.mta.sender import walk_first_host_only
from reference_impl.smtp.server import SmtpServerConnection


class _NoStartTlsOffer(SmtpServerConnection):
    def _advertise_starttls(self) -> bool:
        return False  # breaks RFC 3207 6 (use TLS when possible)


class _StartTlsAfterTls(SmtpServerConnection):
    def _advertise_starttls(self) -> bool:
        return self._tls_available  # breaks RFC 3207 4.2: still advertised once TLS is active


class _KeepsPipelinedPlaintext(SmtpServerConnection):
    def _discard_pending_plaintext(self) -> None:
        pass  # breaks RFC 3207 4.2 / CVE-2011-0411: pipelined plaintext survives the upgrade


def _reversed_order(base: MxOrdering) -> MxOrdering:
    def order(records: Sequence[MxRecord]) -> tuple[MxRecord, ...]:
        return tuple(reversed(base(records)))

    return order


def _always_success(record: TlsSessionRecord) -> TlsSessionRecord:
    return dataclasses.replace(record, result_type=TlsResultType.SUCCESS, failure_reason=None)


def _tls_adjusted(adjust: Callable[[ssl.SSLContext], None]) -> Callable[[], ServerStarter]:
    """A server starter whose inbound TLS context is changed by ``adjust``."""

    def starter() -> ServerStarter:
        from reference_impl.smtp.aio_server import start_smtp_server

        async def start(
            *args: Any, tls_context: ssl.SSLContext | None = None, **kwargs: Any
        ) -> Any:
            if tls_context is not None:
                adjust(tls_context)
            return await start_smtp_server(*args, tls_context=tls_context, **kwargs)

        return start

    return starter


def _allow_old_versions(maximum: ssl.TLSVersion) -> Callable[[ssl.SSLContext], None]:
    def adjust(context: ssl.SSLContext) -> None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 otherwise
        with warnings.catch_warnings():  # deprecated versions are the point of this mutant
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum

    return adjust


def _variant(name: str, description: str, **changes: Any) -> Variant:
    inbound = changes.pop("inbound_cert", CertSpec())
    return Variant(
        name=name,
        description=description,
        mta=MtaVariant(name=name, **changes),
        inbound_cert=inbound,
    )


MUTANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        _variant(
            "no-starttls-offer",
            "never advertises STARTTLS (RFC 3207 6)",
            server_connection_factory=_NoStartTlsOffer,
        ),
        _variant(
            "starttls-after-tls",
            "advertises STARTTLS again inside TLS (RFC 3207 4.2)",
            server_connection_factory=_StartTlsAfterTls,
        ),
        _variant(
            "keeps-pipelined-plaintext",
            "executes plaintext pipelined after STARTTLS under TLS (RFC 3207 4.2, CVE-2011-0411)",
            server_connection_factory=_KeepsPipelinedPlaintext,
        ),
        _variant(
            "tls-max-1.1",
            "inbound TLS capped at TLS 1.1 (RFC 8461 7.2, RFC 8996)",
            server_starter=_tls_adjusted(_allow_old_versions(ssl.TLSVersion.TLSv1_1)),
        ),
        _variant(
            "accepts-tls10",
            "inbound TLS accepts TLS 1.0 and 1.1 (RFC 8996 4, 5)",
            server_starter=_tls_adjusted(_allow_old_versions(ssl.TLSVersion.MAXIMUM_SUPPORTED)),
        ),
        _variant(
            "wrong-mx-cert",
            "inbound certificate names another host (RFC 8461 4.2)",
            inbound_cert=CertSpec(profile=CertProfile.WRONG_NAME),
        ),
        _variant(
            "mx-reverse-order",
            "walks MX hosts from the highest preference value (RFC 5321 5.1)",
            mx_ordering=_reversed_order(order_by_preference),
        ),
        _variant(
            "no-mx-fallback",
            "tries only the first MX host (RFC 5321 5.1)",
            host_walk=walk_first_host_only,
        ),
        _variant(
            "never-starttls",
            "delivers in plaintext even when STARTTLS is offered (RFC 3207 6)",
            attempt_starttls=False,
        ),
        _variant(
            "records-success",
            "records every TLS session as successful (RFC 8460 4.3)",
            record_hook=_always_success,
        ),
    ]
}
