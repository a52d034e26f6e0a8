"""The mutant registry: deliberately broken builds of the reference, the catalog's negative controls.

Every scenario names at least one mutant it must judge FAIL (or WARN for a SHOULD). The MTA
parts each mutant swaps live in ``reference_impl.mta.mutants`` (one part per mutant); this
registry names them for ``--target mutant:NAME`` and adds the one mutant that is about the
target's deployment rather than its code (the certificate it is given).
"""

from __future__ import annotations

from conformance.targets.deployments import DEPLOYMENTS
from conformance.targets.reference import Variant
from conformance.world.spec import CertProfile, CertSpec
from reference_impl.mta import mutants as mta
from reference_impl.mta.mta import MtaVariant
from reference_impl.tlsrpt.receiver_mutants import RECEIVER_MUTANTS

_DESCRIPTIONS: dict[str, str] = {
    "no-starttls-offer": "never advertises STARTTLS (RFC 3207 6)",
    "starttls-after-tls": "advertises STARTTLS again inside TLS (RFC 3207 4.2)",
    "keeps-pipelined-plaintext": "executes plaintext pipelined after STARTTLS under TLS (RFC 3207 4.2, CVE-2011-0411)",
    "tls-max-1.1": "inbound TLS capped at TLS 1.1 (RFC 8461 7.2, RFC 8996)",
    "accepts-tls10": "inbound TLS accepts TLS 1.0 and 1.1 (RFC 8996 4, 5)",
    "sni-strict": "aborts the handshake on an unknown SNI name instead of a fallback chain (RFC 8461 7.1)",
    "mx-reverse-order": "walks MX hosts from the highest preference value (RFC 5321 5.1)",
    "no-mx-fallback": "tries only the first MX host (RFC 5321 5.1)",
    "never-starttls": "delivers in plaintext even when STARTTLS is offered (RFC 3207 6)",
    "no-sni": "sends no SNI to the MX (RFC 8461 7.1)",
    "records-success": "records every TLS session as successful (RFC 8460 4.3)",
    # MTA-STS (RFC 8461), reference_impl.mta.stsmutants
    "sts-ignored": "never looks MTA-STS up (RFC 8461 3)",
    "sts-mx-match-ignored": "enforce does not check the policy's mx patterns (RFC 8461 4.1, 5)",
    "sts-cert-not-verified": "enforce accepts an MX certificate that fails validation (RFC 8461 4.2)",
    "sts-cn-accepted": "the MX name may be in the certificate's CN only (RFC 8461 4.2)",
    "sts-starttls-optional": "enforce delivers in plaintext to an MX without STARTTLS (RFC 8461 5)",
    "sts-tls11-accepted": "enforce accepts an MX that negotiates TLS 1.1 (RFC 8461 7.2)",
    "sts-testing-as-enforce": "testing mode defers like enforce (RFC 8461 5)",
    "sts-enforce-as-testing": "enforce mode delivers anyway, like testing (RFC 8461 5)",
    "sts-none-as-enforce": "mode none is enforced (RFC 8461 5)",
    "sts-bounces-on-failure": "an enforce failure bounces at once instead of deferring (RFC 8461 5)",
    "sts-follows-redirects": "the policy fetch follows 3xx redirects (RFC 8461 3.3)",
    "sts-accepts-non-200": "any 2xx policy response counts, e.g. 201 (RFC 8461 3.3)",
    "sts-any-content-type": "a policy served as text/html is accepted (RFC 8461 3.2)",
    "sts-policy-host-cn-accepted": "the policy host certificate is matched with CN fallback (RFC 8461 3.3)",
    "sts-policy-host-unverified": "the policy host certificate is not verified at all (RFC 8461 3.3)",
    "sts-first-txt-wins": "with several v=STSv1 TXT records the first is used (RFC 8461 3.1)",
    "sts-txt-case-insensitive": "a TXT record starting v=stsv1 is accepted (RFC 8461 3.1)",
    "sts-last-duplicate-wins": "of duplicated policy fields the last wins (RFC 8461 3.2)",
    "sts-lenient-policy": "policy mode and version values are read case-insensitively (RFC 8461 3.2)",
    "sts-crlf-only": "a policy with bare LF line ends is rejected (RFC 8461 3.2, erratum 6253)",
    "sts-multi-label-wildcard": "mx '*.d' matches names at any depth below d (RFC 8461 4.1)",
    "sts-wildcard-matches-apex": "mx '*.d' matches d itself (RFC 8461 4.1)",
    "sts-mx-case-sensitive": "mx patterns are matched case-sensitively (RFC 8461 4.1)",
    "sts-renews-expired-policy": "renews an expired cached policy when the TXT id is unchanged, without fetching "
    "(RFC 8461 3.2, 5.1)",
    "sts-no-cache": "fetches the policy for every message (RFC 8461 3.3, 5.1)",
    "sts-drops-cache-without-txt": "drops the cached policy when the TXT record disappears (RFC 8461 3.1, 5.1)",
    "sts-conditional-get": "policy fetches send If-None-Match / If-Modified-Since (RFC 8461 3.3)",
    "sts-fetch-without-sni": "the policy fetch sends no SNI (RFC 8461 7.1)",
    "sts-retries-failed-fetch": "refetches a failed policy id at once, not after 5 minutes (RFC 8461 3.3)",
    "sts-parent-domain": "mail for sub.d also gets d's policy (RFC 8461 3.4)",
    # REQUIRETLS (RFC 8689): described where they are built.
    **mta.REQUIRETLS_DESCRIPTIONS,
}


def _registry() -> dict[str, Variant]:
    variants = [Variant(name=v.name, description=_DESCRIPTIONS[v.name], mta=v) for v in mta.ALL_MUTANTS]
    variants += [
        Variant(name=v.name, description=mta.TLSRPT_DESCRIPTIONS[v.name], mta=v)
        for v in mta.TLSRPT_MUTANTS
        # The world stages ASCII domains only, so no scenario can see U-labels (RFC 8460 4.4) yet.
        if v.name != "tlsrpt-ulabel-domain"
    ]
    variants.append(
        Variant(
            name="wrong-mx-cert",
            description="inbound certificate names another host (RFC 8461 4.2)",
            mta=MtaVariant(name="wrong-mx-cert"),
            inbound_cert=CertSpec(profile=CertProfile.WRONG_NAME),
        )
    )
    variants += [
        Variant(name=name, description=description, mta=MtaVariant(name=name), deployment=deploy)
        for name, (description, deploy) in DEPLOYMENTS.items()
    ]
    variants += [
        Variant(
            name=m.name,
            description=f"{m.description} (RFC 8460 {m.section})",
            mta=MtaVariant(name=m.name),
            receiver=m.variant,
        )
        for m in RECEIVER_MUTANTS.values()
    ]
    return {v.name: v for v in variants}


MUTANTS: dict[str, Variant] = _registry()
