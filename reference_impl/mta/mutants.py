"""Deliberately broken variants of the reference MTA: the negative controls of the catalog.

Each mutant is the reference :class:`~reference_impl.mta.mta.MtaVariant` with exactly one part
swapped (DESIGN.md, "Every check can fail"). A scenario that none of them fails is not done.

The TLSRPT mutants (RFC 8460, :mod:`reference_impl.mta.tlsrpt_mutants`) and the DANE mutants
(RFC 7672 and the DANE side of RFC 8460, :mod:`reference_impl.mta.dane_mutants`) are exported
together as ``TLSRPT_MUTANTS`` with their one-line ``TLSRPT_DESCRIPTIONS``, which the registry
(``conformance.targets.mutants``) reads; they join ``ALL_MUTANTS`` once the registry knows their
descriptions otherwise.
"""

from __future__ import annotations

import dataclasses
import ssl
import warnings
from collections.abc import Callable
from typing import Any

from reference_impl.mta import dane_mutants as dane
from reference_impl.mta import requiretls_mutants as requiretls
from reference_impl.mta import stsmutants as sts
from reference_impl.mta import tlsrpt_mutants as tlsrpt
from reference_impl.mta.mta import MtaVariant, ServerStarter
from reference_impl.mta.mxplan import order_by_reverse_preference
from reference_impl.mta.records import TlsResultType, TlsSessionRecord
from reference_impl.mta.sender import walk_first_host_only
from reference_impl.smtp.server import SmtpServerConnection


def record_as_success(record: TlsSessionRecord) -> TlsSessionRecord:
    """Lies to TLSRPT: every session is reported as a success (RFC 8460 section 4.3)."""
    return dataclasses.replace(record, result_type=TlsResultType.SUCCESS, failure_reason=None)


class PlaintextKeepingServerConnection(SmtpServerConnection):
    """Keeps the plaintext pipelined after STARTTLS and runs it inside the TLS session
    (the CVE-2011-0411 flaw RFC 3207 section 4.2 forbids)."""

    def _discard_pending_plaintext(self) -> None:
        pass


class NoStartTlsOfferServerConnection(SmtpServerConnection):
    """Never advertises STARTTLS (RFC 3207 section 6: use TLS when possible)."""

    def _advertise_starttls(self) -> bool:
        return False


class StartTlsAfterTlsServerConnection(SmtpServerConnection):
    """Advertises STARTTLS again once TLS is active (RFC 3207 section 4.2 forbids it)."""

    def _advertise_starttls(self) -> bool:
        return self._tls_available


def no_sni(mx_name: str) -> str | None:
    """Sends no SNI to the MX (RFC 8461 section 7.1 asks for the MX host name)."""
    return None


def _tls_adjusted(adjust: Callable[[ssl.SSLContext], None]) -> Callable[[], ServerStarter]:
    """A server starter whose inbound TLS context is changed by ``adjust`` before use."""

    def starter() -> ServerStarter:
        from reference_impl.smtp.aio_server import start_smtp_server

        async def start(*args: Any, tls_context: ssl.SSLContext | None = None, **kwargs: Any) -> Any:
            if tls_context is not None:
                adjust(tls_context)
            return await start_smtp_server(*args, tls_context=tls_context, **kwargs)

        return start

    return starter


def _reject_unknown_sni() -> Callable[[], ServerStarter]:
    """A server starter whose TLS aborts with unrecognized_name when the client's SNI is not the
    server's host name (RFC 8461 section 7.1 requires a fallback certificate instead)."""

    def starter() -> ServerStarter:
        from reference_impl.smtp.aio_server import start_smtp_server

        async def start(*args: Any, tls_context: ssl.SSLContext | None = None, **kwargs: Any) -> Any:
            hostname = str(kwargs.get("hostname", "")).lower()

            def strict(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
                if name is not None and name.lower() != hostname:
                    return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
                return None

            if tls_context is not None:
                tls_context.sni_callback = strict
            return await start_smtp_server(*args, tls_context=tls_context, **kwargs)

        return start

    return starter


def _allow_old_versions(maximum: ssl.TLSVersion) -> Callable[[ssl.SSLContext], None]:
    def adjust(context: ssl.SSLContext) -> None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 otherwise
        with warnings.catch_warnings():  # deprecated versions are the point of these mutants
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum

    return adjust


# RFC 5321 section 5.1: MX hosts walked from the least preferred.
REVERSE_MX_ORDER = MtaVariant(name="mx-reverse-order", mx_ordering=order_by_reverse_preference)
# RFC 5321 section 5.1: never tries the next MX when the first one fails.
NO_MX_FALLBACK = MtaVariant(name="no-mx-fallback", host_walk=walk_first_host_only)
# RFC 8461 section 7.1: no SNI in the handshake with the MX.
NO_SNI = MtaVariant(name="no-sni", sni_for=no_sni)
# RFC 3207 section 6: STARTTLS never advertised by the listeners.
NO_STARTTLS_OFFER = MtaVariant(name="no-starttls-offer", server_connection_factory=NoStartTlsOfferServerConnection)
# RFC 3207 section 4.2: STARTTLS advertised again inside TLS.
STARTTLS_AFTER_TLS = MtaVariant(name="starttls-after-tls", server_connection_factory=StartTlsAfterTlsServerConnection)
# RFC 8461 section 7.2 / RFC 8996: inbound TLS capped at 1.1.
TLS_MAX_1_1 = MtaVariant(name="tls-max-1.1", server_starter=_tls_adjusted(_allow_old_versions(ssl.TLSVersion.TLSv1_1)))
# RFC 8461 section 7.1: an unknown SNI name aborts the handshake instead of getting a fallback chain.
SNI_STRICT = MtaVariant(name="sni-strict", server_starter=_reject_unknown_sni())
# RFC 8996 sections 4 and 5: inbound TLS also accepts 1.0 and 1.1.
ACCEPTS_TLS10 = MtaVariant(
    name="accepts-tls10", server_starter=_tls_adjusted(_allow_old_versions(ssl.TLSVersion.MAXIMUM_SUPPORTED))
)
# RFC 3207 / RFC 8461 section 5: never issues STARTTLS even when offered.
NO_STARTTLS = MtaVariant(name="never-starttls", attempt_starttls=False)
# RFC 3207 section 4.2: the listeners run plaintext pipelined before the handshake after it.
KEEPS_PLAINTEXT_AFTER_STARTTLS = MtaVariant(
    name="keeps-pipelined-plaintext",
    server_connection_factory=PlaintextKeepingServerConnection,
)
# RFC 8460 section 4.3: records every TLS session as "success".
RECORDS_ALL_SUCCESS = MtaVariant(name="records-success", record_hook=record_as_success)

STS_MUTANTS = sts.STS_MUTANTS
# RFC 8689 (REQUIRETLS), reference_impl.mta.requiretls_mutants. ``requiretls-before-tls`` is held
# back from ALL_MUTANTS: RFC 8689 does not regulate what a server lists or answers before TLS (the
# catalog records it, never judges it), so no scenario can name it and the catalog lint would fail;
# it joins once a scenario judges it.
REQUIRETLS_MUTANTS = requiretls.REQUIRETLS_MUTANTS
REQUIRETLS_DESCRIPTIONS = requiretls.REQUIRETLS_DESCRIPTIONS
REQUIRETLS_UNJUDGED = tuple(v for v in REQUIRETLS_MUTANTS if v.name == "requiretls-before-tls")
TLSRPT_MUTANTS = (*tlsrpt.TLSRPT_MUTANTS, *dane.DANE_MUTANTS)
TLSRPT_DESCRIPTIONS = {**tlsrpt.TLSRPT_DESCRIPTIONS, **dane.DANE_DESCRIPTIONS}

ALL_MUTANTS = (
    REVERSE_MX_ORDER,
    NO_MX_FALLBACK,
    NO_SNI,
    NO_STARTTLS_OFFER,
    STARTTLS_AFTER_TLS,
    TLS_MAX_1_1,
    ACCEPTS_TLS10,
    SNI_STRICT,
    NO_STARTTLS,
    KEEPS_PLAINTEXT_AFTER_STARTTLS,
    RECORDS_ALL_SUCCESS,
    *STS_MUTANTS,
    *(v for v in REQUIRETLS_MUTANTS if v not in REQUIRETLS_UNJUDGED),
)
