"""MtaConfig's DANE settings (RFC 7672 section 6, RFC 8460 4.3.2.1 "dane-required")."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_impl.mta.__main__ import build_parser
from reference_impl.mta.config import MtaConfig
from reference_impl.mta.errors import MtaConfigError


def config(**changes: object) -> MtaConfig:
    return MtaConfig(hostname="mta.test", state_dir=Path("/nonexistent"), resolver=("127.0.0.1", 53), **changes)  # type: ignore[arg-type]


def test_dane_is_on_and_required_nowhere_by_default() -> None:
    default = config()
    assert default.dane and default.dane_required_domains == frozenset()
    assert not default.dane_required("d.test")


def test_required_domains_compare_case_insensitively_without_the_root_dot() -> None:
    required = config(dane_required_domains=frozenset({"Bank.Example."}))
    assert required.dane_required("bank.example") and required.dane_required("BANK.example.")
    assert not required.dane_required("sub.bank.example")  # the domain itself, not its children


@pytest.mark.parametrize("domains", ["bank.example", frozenset({""}), frozenset({"."}), frozenset({3})])
def test_required_domains_must_be_names(domains: object) -> None:
    with pytest.raises(MtaConfigError):
        config(dane_required_domains=domains)


def test_required_domains_need_dane_on() -> None:
    with pytest.raises(MtaConfigError):
        config(dane=False, dane_required_domains=frozenset({"bank.example"}))


def test_the_command_line_takes_dane_required_domains() -> None:
    base = [
        "--hostname",
        "mta.test",
        "--state-dir",
        "/tmp/x",
        "--resolver",
        "127.0.0.1:53",
        "--submission",
        "127.0.0.1:0",
    ]
    assert build_parser().parse_args(base).dane_required == []
    args = build_parser().parse_args([*base, "--dane-required", "a.test", "--dane-required", "b.test"])
    assert args.dane_required == ["a.test", "b.test"]
