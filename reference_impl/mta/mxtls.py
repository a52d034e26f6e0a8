"""TLS client contexts for the sender's STARTTLS with MX hosts (RFC 8461 sections 4.2, 7.2; RFC 7435).

The verifying context checks the chain against the configured trust anchors and the MX name
as a DNS-ID only (RFC 8461 section 4.2 by way of RFC 6125: no CN fallback); the unverified one
is opportunistic TLS (RFC 7435), and the one DANE sessions use (RFC 7672 section 3: the chain
is then matched against the TLSA records, :func:`presented_chain`). Both refuse protocols below
the floor (TLS 1.2, RFC 8461 section 7.2, RFC 8996) unless a mutant lowers it.
"""

from __future__ import annotations

import _ssl
import ssl
import warnings
from collections.abc import Callable
from typing import Any

_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
MxContextFactory = Callable[[str | None, str], ssl.SSLContext]


def _apply_floor(context: ssl.SSLContext, floor: str) -> None:
    """RFC 8461 section 7.2, RFC 8996: no protocol below ``floor`` (TLS 1.2 by default)."""
    version = _TLS_VERSIONS.get(floor, ssl.TLSVersion.TLSv1_2)
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 otherwise
    with warnings.catch_warnings():  # lowering the floor below 1.2 is deprecated, and meant
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version


def verified_mx_context(ca_file: str | None, floor: str) -> ssl.SSLContext:
    """The verifying client context for MX hosts: chain to ``ca_file`` (None: the system
    store), the MX name as a DNS-ID (RFC 8461 section 4.2 and RFC 6125 6.4.4: no CN
    fallback; a wildcard only as the whole left-most label, OpenSSL's rule), TLS >= floor."""
    context = ssl.create_default_context(cafile=ca_file)
    context.hostname_checks_common_name = False
    _apply_floor(context, floor)
    return context


def chain_verified_mx_context(ca_file: str | None, floor: str) -> ssl.SSLContext:
    """The context for a REQUIRETLS message's next hop (RFC 8689 section 4.2.1 step 4): the chain
    is verified to ``ca_file`` by OpenSSL, the host name is not, because RFC 8689 lets the MX
    name match a DNS-ID or a CN-ID (RFC 6125 6.4.4), which the sender checks after the handshake
    (:func:`reference_impl.requiretls.nexthop.check_session`); TLS >= floor."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _apply_floor(context, floor)
    return context


def unverified_mx_context(floor: str) -> ssl.SSLContext:
    """Opportunistic TLS without authentication (RFC 7435), still TLS >= floor."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _apply_floor(context, floor)
    return context


# The chain a session's server presented, leaf first (DER), read from the client session.
PeerChain = Callable[[Any], list[bytes]]


def _der(cert: object) -> bytes | None:
    if isinstance(cert, bytes):
        return cert  # Python 3.13+: SSLObject.get_unverified_chain() gives DER bytes
    public_bytes = getattr(cert, "public_bytes", None)  # 3.10-3.12: _ssl.Certificate
    der = public_bytes(_ssl.ENCODING_DER) if callable(public_bytes) else None
    return der if isinstance(der, bytes) else None


def presented_chain(client: Any) -> list[bytes]:
    """The certificates the MX sent in the handshake, leaf first (RFC 7672 section 3: DANE
    matches what the server presented; with DANE-TA(2) the trust anchor is among them).

    Python 3.11 has no public accessor for the peer's chain (``SSLObject.get_unverified_chain``
    is public from 3.13); the private ``_sslobj`` method of 3.10-3.12 is used when present, and
    the leaf alone (``peer_certificate_der`` of the SMTP client) otherwise. The client's transport
    is read defensively, like its local address (``sender.socket_local_ip``)."""
    transport = getattr(getattr(client, "_stream", None), "transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    ssl_object = get_extra_info("ssl_object") if callable(get_extra_info) else None
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        getter = getattr(owner, "get_unverified_chain", None)
        if not callable(getter):
            continue
        try:
            chain = getter()
        except (ssl.SSLError, ValueError):
            chain = None
        ders = [_der(cert) for cert in chain or ()]
        if ders and all(der is not None for der in ders):
            return [der for der in ders if der is not None]
    leaf = getattr(client, "peer_certificate_der", None)
    return [leaf] if isinstance(leaf, bytes) and leaf else []
