"""Hypothesis strategies for TLSRPT records (RFC 8460 section 3), built from the parser's grammar strings."""

from __future__ import annotations

from hypothesis import strategies as st

from reference_impl.tlsrpt.record import EXT_NAME_PATTERN, EXT_VALUE_PATTERN, URI_PATTERN, ReportUri, TlsRptRecord

WSP = st.text(alphabet=" \t", max_size=3)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?"
hosts = st.from_regex(rf"{_LABEL}(?:\.{_LABEL}){{0,3}}", fullmatch=True)
# A dot-atom local part made only of characters a URI carries raw (no "!", "," or ";").
_LOCAL = r"[A-Za-z0-9_~+\-]{1,8}(?:\.[A-Za-z0-9_~+\-]{1,8}){0,2}"
_QUERY = r"(?:[A-Za-z0-9\-._~=&/?:@]|%[0-9A-F]{2}){0,12}"

mailto_uris = st.builds(
    lambda local, host, query: f"mailto:{local}@{host}{query}",
    st.from_regex(_LOCAL, fullmatch=True),
    hosts,
    st.one_of(st.just(""), st.from_regex(rf"\?subject={_QUERY}", fullmatch=True)),
)
https_uris = st.builds(
    lambda host, port, path: f"https://{host}{port}{path}",
    hosts,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}")),
    st.from_regex(r"(?:/(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2}){0,8}){0,3}", fullmatch=True),
)
report_uris = st.one_of(
    mailto_uris.map(lambda uri: ReportUri(uri, "mailto")),
    https_uris.map(lambda uri: ReportUri(uri, "https")),
)
# Any RFC 3986 URI that section 3 lets stand raw in a record (no ",", "!" or ";").
grammar_uris = st.from_regex(URI_PATTERN, fullmatch=True).filter(
    lambda uri: uri.isascii() and not any(char in uri for char in ",!;[")  # IP literals: tested by hand
)

ext_names = st.from_regex(EXT_NAME_PATTERN, fullmatch=True).filter(lambda name: name.lower() not in {"v", "rua"})
ext_values = st.from_regex(EXT_VALUE_PATTERN, fullmatch=True)

records = st.builds(
    TlsRptRecord,
    rua=st.lists(report_uris, min_size=1, max_size=3).map(tuple),
    extensions=st.lists(st.tuples(ext_names, ext_values), max_size=3, unique_by=lambda pair: pair[0]).map(tuple),
)


@st.composite
def record_texts(draw: st.DrawFn) -> tuple[str, TlsRptRecord]:
    """A valid record text with grammar-allowed whitespace, rua anywhere, and the record it means."""
    record = draw(records)
    rua = record.rua[0].uri
    for uri in record.rua[1:]:
        rua += draw(WSP) + "," + draw(WSP) + uri.uri  # *WSP "," *WSP
    fields = [f"{name}={value}" for name, value in record.extensions]
    fields.insert(draw(st.integers(0, len(fields))), f"rua={rua}")
    text = "v=TLSRPTv1"
    for field in fields:
        text += draw(WSP) + ";" + draw(WSP) + field  # field-delim = *WSP ";" *WSP
    if draw(st.booleans()):
        text += draw(WSP) + ";" + draw(WSP)  # [field-delim]
    return text, record


TOKENS = [
    "v=TLSRPTv1",
    "v=tlsrptv1",
    "v=",
    "rua=",
    "RUA=",
    "x=",
    ";",
    ",",
    " ",
    "\t",
    "=",
    "!",
    "%",
    "%2C",
    "%zz",
    "mailto:",
    "https://",
    "http://",
    "https:",
    "a@b.example",
    "@",
    "?subject=",
    "#",
    "[",
    "]",
    "::1",
    "v1.x",
    "reports",
    "\u00e9",
    "\x00",
    '"',
    "\\",
    "_smtp._tls",
]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).map("".join)
