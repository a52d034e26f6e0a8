"""Broken TLSRPT records: the mutants of the policy-domain role for RFC 8460 section 3.

The reference publishes the scenario's own ``_smtp._tls`` TXT record, which is correct; each
function here breaks it in one way that real domains get wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.world.spec import DnsRecord, WorldSpec

Deployment = Callable[[WorldSpec], WorldSpec]


def _is_tlsrpt_txt(record: DnsRecord) -> bool:
    return record.type == "TXT" and record.name.lower().startswith("_smtp._tls.")


def _rewrite(change: Callable[[DnsRecord], DnsRecord | tuple[DnsRecord, ...] | None]) -> Deployment:
    """A deployment that replaces each TLSRPT record by what ``change`` makes of it."""

    def deploy(spec: WorldSpec) -> WorldSpec:
        records: list[DnsRecord] = []
        for record in spec.dns.records:
            if not _is_tlsrpt_txt(record):
                records.append(record)
                continue
            changed = change(record)
            if isinstance(changed, DnsRecord):
                records.append(changed)
            elif changed is not None:
                records.extend(changed)
        return spec.model_copy(update={"dns": spec.dns.model_copy(update={"records": tuple(records)})})

    return deploy


def _value(record: DnsRecord, value: str) -> DnsRecord:
    return record.model_copy(update={"value": value})


TLSRPT_DEPLOYMENTS: dict[str, tuple[str, Deployment]] = {
    "deploy-tlsrpt-missing": ("no _smtp._tls TXT record (RFC 8460 3)", _rewrite(lambda r: None)),
    "deploy-tlsrpt-duplicated": (
        "two v=TLSRPTv1 records: senders see none (RFC 8460 3)",
        _rewrite(lambda r: (r, _value(r, "v=TLSRPTv1; rua=mailto:other@{report_domain}"))),
    ),
    "deploy-tlsrpt-version-case": (
        "v=tlsrptv1 in lower case: the version is case-sensitive (RFC 8460 3)",
        _rewrite(lambda r: _value(r, "v=tlsrptv1; rua=mailto:tlsrpt@{report_domain}")),
    ),
    "deploy-tlsrpt-no-rua": ("a record without rua (RFC 8460 3)", _rewrite(lambda r: _value(r, "v=TLSRPTv1;"))),
    "deploy-tlsrpt-http-rua": (
        "rua with an http: URI, a scheme senders do not use (RFC 8460 3)",
        _rewrite(lambda r: _value(r, "v=TLSRPTv1; rua=http://tlsrpt.{domain}/tlsrpt")),
    ),
    "deploy-tlsrpt-unencoded-bang": (
        "a raw '!' inside the rua URI, which must be percent-encoded (RFC 8460 3)",
        _rewrite(lambda r: _value(r, "v=TLSRPTv1; rua=mailto:tls!rpt@{report_domain}")),
    ),
    "deploy-tlsrpt-wrong-owner": (
        "the record published at _smtp._tcp instead of _smtp._tls (RFC 8460 3)",
        _rewrite(lambda r: r.model_copy(update={"name": r.name.replace("_smtp._tls.", "_smtp._tcp.", 1)})),
    ),
}
