"""MTA-STS enforcement of the reference MTA, end to end through the real suite (RFC 8461 4, 5, 7.2).

A few scenarios, written into a temporary catalog, run against the reference (every one must
PASS) and against the MTA-STS mutants each is meant to catch (FAIL), the way the catalog's
negative controls run. The catalog's own scenarios (scenarios/rfc8461) build on the same
mutants; these tests check the enforcement and each mutant's visible effect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.catalog.loader import CatalogEntry, load_catalog
from conformance.catalog.requirements import load_inventory
from conformance.targets.mutants import MUTANTS
from conformance.targets.reference import REFERENCE
from conformance.verdict import Verdict
from tests.conformance.helpers import explain, run_against

INVENTORY = load_inventory()

_TXT = '{name: "_mta-sts.{domain}", type: TXT, value: "v=STSv1; id=20240101"}'
_HOST = 'name: "mta-sts.{domain}"'


def _policy(mode: str, *mx: str) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), "max_age: 86400"]
    return "\\r\\n".join(lines) + "\\r\\n"


CATALOG = f"""\
scenarios:
  - id: test/sts/enforce-valid-mx
    title: "enforce: a matching MX with a valid certificate gets the message over TLS"
    requirements: [rfc8461-4-check-mx-pattern]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "mx1.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: queried, name: "_mta-sts.{{domain}}", type: TXT}}
      - {{check: fetched, host: "mta-sts.{{domain}}", count: 1, without_headers: [if-none-match, if-modified-since]}}
      - {{check: delivered, host: "mx1.{{domain}}", tls: true}}
    mutants: [sts-conditional-get]

  - id: test/sts/enforce-mx-mismatch
    title: "enforce: an MX outside the policy's mx patterns never gets the message"
    requirements: [rfc8461-5-enforce-no-delivery-mx-mismatch]
    role: sending-mta
    needs: [tls-records]
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "mx9.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-delivered}}
      - {{check: tls-record, host: "mx1.{{domain}}", result: validation-failure}}
    mutants: [sts-ignored, sts-mx-match-ignored, sts-enforce-as-testing]

  - id: test/sts/enforce-backup-mx
    title: "enforce: an invalid primary MX is skipped, the valid backup gets the message (8.4)"
    requirements: [rfc8461-5-enforce-no-delivery-mx-mismatch]
    role: sending-mta
    world:
      mx:
        - {{name: "mx1.{{domain}}", preference: 10, smtp: {{cert: {{profile: expired}}}}}}
        - {{name: "mx2.{{domain}}", preference: 20}}
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "*.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: delivered, host: "mx2.{{domain}}", tls: true}}
    mutants: [sts-cert-not-verified]

  - id: test/sts/enforce-starttls-stripped
    title: "enforce: STARTTLS stripped by an attacker, no plaintext delivery"
    requirements: [rfc8461-5-enforce-no-delivery-no-starttls]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}", mitm: {{mode: strip-starttls}}}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "mx1.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-delivered}}
    mutants: [sts-starttls-optional, sts-ignored]

  - id: test/sts/enforce-cn-only
    title: "enforce: the MX name only in the certificate's CN is not enough"
    requirements: [rfc8461-4.2-sender-requires-san-dns-id]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}", smtp: {{cert: {{profile: cn-only}}}}}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "mx1.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-delivered}}
    mutants: [sts-cn-accepted, sts-cert-not-verified]

  - id: test/sts/enforce-tls11
    title: "enforce: an MX that only speaks TLS 1.1 does not get the message"
    requirements: [rfc8461-7.2-sender-tls12-or-higher]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}", smtp: {{tls_min: TLSv1, tls_max: TLSv1.1}}}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "mx1.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-delivered}}
    mutants: [sts-tls11-accepted]

  - id: test/sts/testing-mismatch-delivers
    title: "testing: an MX outside the policy still gets the message, and the failure is recorded"
    requirements: [rfc8461-6-report-mx-validation-failure]
    role: sending-mta
    needs: [tls-records]
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("testing", "mx9.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: delivered, host: "mx1.{{domain}}", tls: true}}
      - {{check: tls-record, host: "mx1.{{domain}}", result: validation-failure}}
    mutants: [{{name: sts-testing-as-enforce, verdict: WARN}}]

  - id: test/sts/redirect-not-followed
    title: "A policy host answering 301 gives no policy; the redirect target is never fetched"
    requirements: [rfc8461-3.3-no-redirects]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts:
        - {{{_HOST}, fault: redirect, redirect_to: "https://mta-sts2.{{domain}}/.well-known/mta-sts.txt"}}
        - {{name: "mta-sts2.{{domain}}", body: "{_policy("enforce", "mx9.{domain}")}"}}
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-fetched, host: "mta-sts2.{{domain}}"}}
      - {{check: delivered, host: "mx1.{{domain}}"}}
    mutants: [sts-follows-redirects]

  - id: test/sts/lenient-mode-rejected
    title: "A policy with 'mode: Enforce' is invalid: no policy, the message is delivered"
    requirements: [rfc8461-4-check-mx-pattern]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "version: STSv1\\nmode: Enforce\\nmx: mx9.{{domain}}\\nmax_age: 86400\\n"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: delivered, host: "mx1.{{domain}}"}}
    mutants: [sts-lenient-policy]

  - id: test/sts/bare-lf-policy
    title: "A policy with bare LF line ends is valid and enforced"
    requirements: [rfc8461-5-enforce-no-delivery-mx-mismatch]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "version: STSv1\\nmode: enforce\\nmx: MX9.{{domain}}\\nmax_age: 86400\\n"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: not-delivered}}
    mutants: [sts-crlf-only]

  - id: test/sts/uppercase-pattern-matches
    title: "mx patterns match case-insensitively"
    requirements: [rfc8461-4-check-mx-pattern]
    role: sending-mta
    world:
      mx: [{{name: "mx1.{{domain}}"}}]
      dns: {{records: [{_TXT}]}}
      policy_hosts: [{{{_HOST}, body: "{_policy("enforce", "MX1.{domain}")}"}}]
    stimulus: {{kind: send-message}}
    expect:
      - {{check: delivered, host: "mx1.{{domain}}", tls: true}}
    mutants: [sts-mx-case-sensitive]
"""


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> list[CatalogEntry]:
    folder: Path = tmp_path_factory.mktemp("sts-catalog")
    (folder / "sts.yaml").write_text(CATALOG, encoding="utf-8")
    return list(load_catalog(INVENTORY, folder).entries)


def test_reference_passes_every_sts_scenario(entries: list[CatalogEntry]) -> None:
    results = run_against(REFERENCE, entries, INVENTORY)
    bad = [explain(r) for r in results.values() if r.verdict is not Verdict.PASS]
    assert bad == [], "\n\n".join(bad)
    assert len(results) == len(entries)


MUTANT_NAMES = sorted(
    {
        "sts-conditional-get",
        "sts-ignored",
        "sts-mx-match-ignored",
        "sts-enforce-as-testing",
        "sts-cert-not-verified",
        "sts-starttls-optional",
        "sts-cn-accepted",
        "sts-tls11-accepted",
        "sts-testing-as-enforce",
        "sts-follows-redirects",
        "sts-lenient-policy",
        "sts-crlf-only",
        "sts-mx-case-sensitive",
    }
)


@pytest.mark.parametrize("mutant", MUTANT_NAMES)
def test_mutant_fails_its_scenarios(entries: list[CatalogEntry], mutant: str) -> None:
    mine = [e for e in entries if any(m.name == mutant for m in e.scenario.mutants)]
    assert mine, mutant
    results = run_against(MUTANTS[mutant], mine, INVENTORY)
    wrong = []
    for entry in mine:
        expected = next(m.verdict for m in entry.scenario.mutants if m.name == mutant)
        if results[entry.id].verdict.value != expected:
            wrong.append(f"expected {expected}\n" + explain(results[entry.id]))
    assert wrong == [], "\n\n".join(wrong)
