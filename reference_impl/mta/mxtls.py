"""TLS client contexts for the sender's STARTTLS with MX hosts (RFC 8461 sections 4.2, 7.2; RFC 7435).

The verifying context checks the chain against the configured trust anchors and the MX name
as a DNS-ID only (RFC 8461 section 4.2 by way of RFC 6125: no CN fallback); the unverified one
is opportunistic TLS (RFC 7435). Both refuse protocols below the floor (TLS 1.2, RFC 8461
section 7.2, RFC 8996) unless a mutant lowers it.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable

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


def unverified_mx_context(floor: str) -> ssl.SSLContext:
    """Opportunistic TLS without authentication (RFC 7435), still TLS >= floor."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _apply_floor(context, floor)
    return context
