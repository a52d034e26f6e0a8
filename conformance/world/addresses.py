"""Loopback addresses for one run of the world.

A run takes one /16 of 127.0.0.0/8 (127.R.0.0/16), so two runs on one machine never
collide: the world's fixed services sit at 127.R.0.x, and every host a scenario stages gets
its own address from 127.R.1.1 upwards. Because every host has its own address, all SMTP
peers can share one port number (25 in privileged mode), which is what a real sending MTA
expects.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass

from conformance.errors import WorldError

# The first octets a run may take: 127.0.x.x and 127.1.x.x are left to the machine
# (127.0.0.1 and friends), 127.255 is avoided out of caution with broadcast-like addresses.
_SECOND_OCTETS = range(16, 255)


@dataclass(frozen=True, slots=True)
class ServiceAddresses:
    """The world's fixed services in a run's /16."""

    dns: str
    https: str
    mailbox: str
    sut: str  # where the reference target listens (inbound SMTP)
    submission: str  # the reference target's submission listener


class AddressPlan:
    """The addresses of one run: fixed service addresses plus a pool for staged hosts."""

    def __init__(self, second_octet: int) -> None:
        if second_octet not in _SECOND_OCTETS:
            raise WorldError(f"127.{second_octet}.0.0/16 is not a usable run range")
        self.network = ipaddress.IPv4Network(f"127.{second_octet}.0.0/16")
        self.tag = f"r{second_octet}"  # a short name for the run, used in the scenario domains
        base = f"127.{second_octet}.0."
        self.services = ServiceAddresses(
            dns=base + "53",
            https=base + "43",
            mailbox=base + "25",
            sut=base + "2",
            submission=base + "3",
        )
        self._pool: Iterator[str] = (
            f"127.{second_octet}.{third}.{fourth}" for third in range(1, 256) for fourth in range(1, 255)
        )

    @classmethod
    def custom(cls, network: ipaddress.IPv4Network) -> AddressPlan:
        """A plan over addresses the user configured (``--network``), e.g. for a SUT on another
        host: the first five addresses hold the world's services, the rest are for staged
        hosts. Each staged host needs its own address, so the network needs room for them."""
        hosts = [str(h) for h in network.hosts()]
        if len(hosts) < 8:
            raise WorldError(f"--network {network}: at least 8 usable addresses are needed")
        plan = cls.__new__(cls)
        plan.network = network
        plan.tag = f"n{int(network.network_address) % 100000}"
        plan.services = ServiceAddresses(
            dns=hosts[0], https=hosts[1], mailbox=hosts[2], sut=hosts[3], submission=hosts[4]
        )
        plan._pool = iter(hosts[5:])
        return plan

    def allocate(self) -> str:
        """A fresh address for a staged host; never handed out twice in a run."""
        try:
            return next(self._pool)
        except StopIteration:
            raise WorldError(f"no address left in {self.network}") from None

    @staticmethod
    def candidates(seed: int | None = None) -> list[int]:
        """Second octets to try, in a random order so concurrent runs rarely race."""
        octets = list(_SECOND_OCTETS)
        random.Random(seed).shuffle(octets)
        return octets
