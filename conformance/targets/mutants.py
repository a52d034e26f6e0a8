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
}


def _registry() -> dict[str, Variant]:
    variants = [Variant(name=v.name, description=_DESCRIPTIONS[v.name], mta=v) for v in mta.ALL_MUTANTS]
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
    return {v.name: v for v in variants}


MUTANTS: dict[str, Variant] = _registry()
