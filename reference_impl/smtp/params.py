"""Checks of ESMTP MAIL/RCPT parameters for the server core.

RFC 5321 4.1.1.11 (555 for unrecognised parameters), RFC 6152 2 (BODY), RFC 1870 6 (SIZE),
RFC 6531 3.4-3.5 (SMTPUTF8), RFC 8689 4 (REQUIRETLS takes no value), RFC 3461 (DSN names).
"""

from __future__ import annotations

from collections.abc import Mapping

from .commands import PathArgument

__all__ = ["MAIL_PARAMS_OF", "RCPT_PARAMS_OF", "ParamProblem", "check_params"]

# Which MAIL / RCPT parameters each advertised extension makes acceptable.
MAIL_PARAMS_OF: dict[str, tuple[str, ...]] = {
    "8BITMIME": ("BODY",),  # RFC 6152
    "SIZE": ("SIZE",),  # RFC 1870
    "SMTPUTF8": ("SMTPUTF8",),  # RFC 6531
    "REQUIRETLS": ("REQUIRETLS",),  # RFC 8689
    "DSN": ("RET", "ENVID"),  # RFC 3461
}
RCPT_PARAMS_OF: dict[str, tuple[str, ...]] = {"DSN": ("NOTIFY", "ORCPT")}

ParamProblem = tuple[int, str, str]  # reply code, enhanced status code, text


def check_params(
    path: PathArgument,
    accepted: frozenset[str],
    what: str,
    mail_params: Mapping[str, str | None],
    esmtp: bool,
    max_message_size: int,
) -> ParamProblem | None:
    """The reply that refuses ``path`` because of its parameters, or None when they are
    acceptable. ``mail_params`` are those of the transaction's MAIL (for RCPT) or of
    ``path`` itself (for MAIL)."""
    for keyword, value in path.params:
        # RFC 5321 4.1.1.11: unknown parameters (or any at all after HELO) get 555.
        if not esmtp or keyword not in accepted:
            return 555, "5.5.4", f"{what} parameters not recognized or not implemented"
        text = value or ""
        if keyword == "BODY" and text.upper() not in ("7BIT", "8BITMIME"):
            return 501, "5.5.4", "Bad BODY value"  # RFC 6152 2
        if keyword == "SIZE":
            if not (text.isascii() and text.isdigit()) or len(text) > 20:
                return 501, "5.5.4", "Bad SIZE value"
            if int(text) > max_message_size:
                # RFC 1870 6: declared size above the fixed maximum.
                return 552, "5.3.4", "Message size exceeds fixed maximum"
        if keyword in ("SMTPUTF8", "REQUIRETLS") and value is not None:
            # RFC 6531 3.4 and RFC 8689 4: these parameters take no value.
            return 501, "5.5.4", f"{keyword} takes no value"
    if not path.address.isascii() and "SMTPUTF8" not in mail_params:
        # RFC 6531 3.5: a non-ASCII address needs the SMTPUTF8 parameter on MAIL.
        return 553, "5.6.7", "Non-ASCII address requires SMTPUTF8"
    return None
