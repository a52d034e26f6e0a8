"""Broken deployments: the mutants of the policy-domain role (RFC 8461).

For the policy-domain role the SUT is a domain's MTA-STS deployment: its TXT record, its
policy host, its policy file and its MX hosts. The reference deploys the scenario's own,
correct deployment; each function here breaks it in exactly one way, the way real domains
get it wrong, and the scenario that checks that rule must judge the result FAIL.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from conformance.targets.tlsrpt_deployments import TLSRPT_DEPLOYMENTS
from conformance.world.spec import CertProfile, CertSpec, DnsRecord, HttpFault, MxHost, PolicyHost, WorldSpec

Deployment = Callable[[WorldSpec], WorldSpec]


def _is_sts_txt(record: DnsRecord) -> bool:
    return record.type == "TXT" and record.name.lower().startswith("_mta-sts.")


def _records(spec: WorldSpec, records: tuple[DnsRecord, ...]) -> WorldSpec:
    return spec.model_copy(update={"dns": spec.dns.model_copy(update={"records": records})})


def _policy_hosts(spec: WorldSpec, change: Callable[[PolicyHost], PolicyHost]) -> WorldSpec:
    return spec.model_copy(update={"policy_hosts": tuple(change(h) for h in spec.policy_hosts)})


def _mx_hosts(spec: WorldSpec, change: Callable[[MxHost], MxHost]) -> WorldSpec:
    return spec.model_copy(update={"mx": tuple(change(m) for m in spec.mx)})


def txt_missing(spec: WorldSpec) -> WorldSpec:
    """No _mta-sts TXT record: senders never look for the policy (3.1)."""
    return _records(spec, tuple(r for r in spec.dns.records if not _is_sts_txt(r)))


def txt_duplicated(spec: WorldSpec) -> WorldSpec:
    """A second v=STSv1 record: senders must treat the domain as having no policy (3.1)."""
    extra = tuple(r.model_copy(update={"value": "v=STSv1; id=duplicate1"}) for r in spec.dns.records if _is_sts_txt(r))
    return _records(spec, spec.dns.records + extra)


def txt_malformed(spec: WorldSpec) -> WorldSpec:
    """An id with punctuation, which the grammar forbids (3.1)."""
    return _records(
        spec,
        tuple(
            r.model_copy(update={"value": "v=STSv1; id=2026-01-01!"}) if _is_sts_txt(r) else r for r in spec.dns.records
        ),
    )


def policy_not_found(spec: WorldSpec) -> WorldSpec:
    """The policy host answers 404 (3.3: only 200 counts)."""
    return _policy_hosts(spec, lambda h: h.model_copy(update={"status": 404, "body": "not found\n"}))


def policy_redirect(spec: WorldSpec) -> WorldSpec:
    """The policy host redirects (3.3: senders must not follow)."""
    return _policy_hosts(
        spec,
        lambda h: h.model_copy(
            update={"fault": HttpFault.REDIRECT, "redirect_to": "https://www.{domain}/.well-known/mta-sts.txt"}
        ),
    )


def policy_html(spec: WorldSpec) -> WorldSpec:
    """The policy served as text/html (3.3: senders should reject it)."""
    return _policy_hosts(spec, lambda h: h.model_copy(update={"content_type": "text/html"}))


def _policy_cert(profile: CertProfile) -> Deployment:
    def deploy(spec: WorldSpec) -> WorldSpec:
        return _policy_hosts(spec, lambda h: h.model_copy(update={"cert": CertSpec(profile=profile)}))

    deploy.__doc__ = f"The policy host's certificate is {profile.value} (3.3)."
    return deploy


def policy_invalid(spec: WorldSpec) -> WorldSpec:
    """``mode: Enforce``: values are case-sensitive, so the policy is invalid (3.2)."""
    return _policy_hosts(
        spec, lambda h: h.model_copy(update={"body": h.body.replace("mode: enforce", "mode: Enforce")})
    )


def policy_mx_mismatch(spec: WorldSpec) -> WorldSpec:
    """The policy's mx patterns name hosts the domain's MX records do not (4.1)."""
    return _policy_hosts(
        spec, lambda h: h.model_copy(update={"body": re.sub(r"(?m)^mx:.*$", "mx: mail.elsewhere.invalid", h.body)})
    )


def policy_short_max_age(spec: WorldSpec) -> WorldSpec:
    """max_age of one hour: legal, but 10.2 asks for weeks."""
    return _policy_hosts(
        spec, lambda h: h.model_copy(update={"body": re.sub(r"(?m)^max_age:.*$", "max_age: 3600", h.body)})
    )


def mx_no_starttls(spec: WorldSpec) -> WorldSpec:
    """The MX hosts do not offer STARTTLS (4.2, 5)."""
    return _mx_hosts(spec, lambda m: m.model_copy(update={"smtp": m.smtp.model_copy(update={"starttls": False})}))


def _mx_cert(profile: CertProfile) -> Deployment:
    def deploy(spec: WorldSpec) -> WorldSpec:
        return _mx_hosts(
            spec, lambda m: m.model_copy(update={"smtp": m.smtp.model_copy(update={"cert": CertSpec(profile=profile)})})
        )

    deploy.__doc__ = f"The MX hosts' certificates are {profile.value} (4.2)."
    return deploy


def mx_tls11(spec: WorldSpec) -> WorldSpec:
    """The MX hosts stop at TLS 1.1 (7.2 asks for 1.2 or higher)."""
    return _mx_hosts(
        spec,
        lambda m: m.model_copy(update={"smtp": m.smtp.model_copy(update={"tls_min": "TLSv1", "tls_max": "TLSv1.1"})}),
    )


DEPLOYMENTS: dict[str, tuple[str, Deployment]] = {
    "deploy-txt-missing": ("no _mta-sts TXT record (RFC 8461 3.1)", txt_missing),
    "deploy-txt-duplicated": ("two v=STSv1 TXT records (RFC 8461 3.1)", txt_duplicated),
    "deploy-txt-malformed": ("TXT id with punctuation (RFC 8461 3.1)", txt_malformed),
    "deploy-policy-404": ("policy host answers 404 (RFC 8461 3.3)", policy_not_found),
    "deploy-policy-redirect": ("policy host redirects (RFC 8461 3.3)", policy_redirect),
    "deploy-policy-html": ("policy served as text/html (RFC 8461 3.3)", policy_html),
    "deploy-policy-cert-wrong-name": (
        "policy host certificate for another name (RFC 8461 3.3)",
        _policy_cert(CertProfile.WRONG_NAME),
    ),
    "deploy-policy-cert-expired": ("policy host certificate expired (RFC 8461 3.3)", _policy_cert(CertProfile.EXPIRED)),
    "deploy-policy-cert-cn-only": (
        "policy host name only in the certificate CN (RFC 8461 3.3)",
        _policy_cert(CertProfile.CN_ONLY),
    ),
    "deploy-policy-cert-untrusted": (
        "policy host certificate from an untrusted CA (RFC 8461 3.3)",
        _policy_cert(CertProfile.UNTRUSTED_CA),
    ),
    "deploy-policy-invalid": ("policy with mode: Enforce (RFC 8461 3.2)", policy_invalid),
    "deploy-policy-mx-mismatch": ("policy mx patterns miss the MX hosts (RFC 8461 4.1)", policy_mx_mismatch),
    "deploy-policy-short-max-age": ("max_age of one hour (RFC 8461 10.2)", policy_short_max_age),
    "deploy-mx-no-starttls": ("MX hosts without STARTTLS (RFC 8461 4.2, 5)", mx_no_starttls),
    "deploy-mx-cert-expired": ("MX certificates expired (RFC 8461 4.2)", _mx_cert(CertProfile.EXPIRED)),
    "deploy-mx-cert-cn-only": ("MX name only in the certificate CN (RFC 8461 4.2)", _mx_cert(CertProfile.CN_ONLY)),
    "deploy-mx-cert-wrong-name": ("MX certificates for another name (RFC 8461 4.2)", _mx_cert(CertProfile.WRONG_NAME)),
    "deploy-mx-tls11": ("MX hosts stop at TLS 1.1 (RFC 8461 7.2)", mx_tls11),
    **TLSRPT_DEPLOYMENTS,
}
