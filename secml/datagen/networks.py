"""The address space of the synthetic world: where each kind of traffic comes from.

Ranges look like the real owners' (ISP, cloud and hosting blocks) so the data reads like a real
account's, but every address is drawn at random inside them: nothing here describes a real host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Org:
    """What GuardDuty's RemoteIpDetails says about a network."""

    isp: str
    org: str
    asn: str
    asn_org: str
    country_code: str
    country: str
    city: str
    lat: float
    lon: float


@dataclass
class Network:
    name: str
    kind: str
    org: Org
    start: int = 0  # index of the first address in the IpTable
    count: int = 0
    addresses: list[str] = field(default_factory=list)


class IpTable:
    """Every source string the generator can emit, addressed by index (vectorised picking)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.networks: dict[str, Network] = {}
        self.network_of: list[str] = []

    def add(self, net: Network, addresses: list[str]) -> Network:
        net.start = len(self.values)
        net.count = len(addresses)
        net.addresses = addresses
        self.values.extend(addresses)
        self.network_of.extend([net.name] * len(addresses))
        self.networks[net.name] = net
        return net

    def index(self, net: Network, i: int) -> int:
        return net.start + (i % net.count)


def random_hosts(rng: np.random.Generator, cidr: str, n: int) -> list[str]:
    """n distinct host addresses inside cidr, in draw order (deterministic for a given rng)."""
    net = ipaddress.ip_network(cidr)
    size = net.num_addresses
    base = int(net.network_address)
    seen: dict[int, None] = {}
    while len(seen) < n:
        if net.version == 4:
            offsets = rng.integers(1, max(2, size - 1), size=n * 2, dtype=np.int64)
        else:  # random interface ids (privacy addresses)
            hi = rng.integers(0, 1 << 32, size=n * 2, dtype=np.int64)
            lo = rng.integers(1, 1 << 32, size=n * 2, dtype=np.int64)
            offsets = [(int(h) << 32 | int(low)) % size for h, low in zip(hi, lo, strict=True)]
        for off in offsets:
            addr = base + int(off)
            if net.version == 4 and (addr & 0xFF) in (0, 255):
                continue
            seen.setdefault(addr, None)
            if len(seen) == n:
                break
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    return [str(cls(a)) for a in seen]


def sub_prefix(rng: np.random.Generator, cidr: str, new_prefix: int) -> str:
    """A random sub-network of cidr (a household's /24 inside an ISP block, a /64 for IPv6)."""
    net = ipaddress.ip_network(cidr)
    n_sub = 1 << min(62, new_prefix - net.prefixlen)
    k = int(rng.integers(0, n_sub))
    sub = ipaddress.ip_network(
        (int(net.network_address) + (k << (net.max_prefixlen - new_prefix)), new_prefix)
    )
    return str(sub)


def _org(isp, asn, country_code, country, city, lat, lon, org=None, asn_org=None) -> Org:
    return Org(
        isp, org or isp, str(asn), asn_org or isp.upper(), country_code, country, city, lat, lon
    )


US = ("US", "United States")

# Where humans live: (ISP, IPv4 block, IPv6 block or None, ASN, city, lat, lon).
HOME_ISPS = [
    ("Comcast Cable", "73.0.0.0/10", "2601:600::/24", 7922, "Oakland", 37.80, -122.27),
    ("Charter Communications", "76.167.0.0/16", None, 20001, "San Diego", 32.72, -117.16),
    ("Verizon Fios", "108.28.0.0/14", None, 701, "Seattle", 47.61, -122.33),
    ("AT&T Internet", "99.0.0.0/10", "2600:1700::/28", 7018, "San Jose", 37.34, -121.89),
    ("Sonic", "75.101.0.0/16", "2001:5a8::/32", 46375, "Santa Rosa", 38.44, -122.71),
    ("CenturyLink", "71.208.0.0/13", None, 209, "Portland", 45.52, -122.68),
]

# Where people travel: hotel and conference networks in other cities, and phone carriers.
TRAVEL_ISPS = [
    ("Cox Communications", "68.0.0.0/11", 22773, US, "Las Vegas", 36.17, -115.14),
    ("Spectrum", "66.108.0.0/15", 12271, US, "New York", 40.71, -74.01),
    (
        "British Telecommunications",
        "86.128.0.0/10",
        2856,
        ("GB", "United Kingdom"),
        "London",
        51.51,
        -0.13,
    ),
    ("Deutsche Telekom AG", "87.128.0.0/10", 3320, ("DE", "Germany"), "Berlin", 52.52, 13.40),
]
MOBILE = [
    ("T-Mobile USA", "172.56.0.0/16", "2607:fb90::/32", 21928),
    ("Verizon Wireless", "174.192.0.0/10", None, 6167),
]

# Attackers: hosting providers, Tor exits, a known-bad network, a foreign residential ISP.
ATTACKER_NETWORKS = {
    "hosting-digitalocean": (
        "DigitalOcean",
        "167.99.0.0/16",
        14061,
        US,
        "North Bergen",
        40.80,
        -74.01,
    ),
    "hosting-hetzner": (
        "Hetzner Online GmbH",
        "95.216.0.0/16",
        24940,
        ("FI", "Finland"),
        "Helsinki",
        60.17,
        24.94,
    ),
    "hosting-ovh": ("OVH SAS", "51.75.0.0/16", 16276, ("FR", "France"), "Roubaix", 50.69, 3.17),
    "tor-exit-a": (
        "Stiftung Erneuerbare Freiheit",
        "185.220.101.0/24",
        208294,
        ("DE", "Germany"),
        "Frankfurt am Main",
        50.11,
        8.68,
    ),
    "tor-exit-b": (
        "Quintex Alliance Consulting",
        "199.249.230.0/24",
        62744,
        US,
        "Clifton",
        32.73,
        -96.80,
    ),
    "malicious-bulletproof": (
        "Stark Industries Solutions",
        "45.9.148.0/24",
        44477,
        ("NL", "Netherlands"),
        "Amsterdam",
        52.37,
        4.90,
    ),
    "foreign-isp-vnpt": (
        "VNPT Corp",
        "113.161.0.0/16",
        45899,
        ("VN", "Vietnam"),
        "Hanoi",
        21.03,
        105.85,
    ),
    "scanner-a": (
        "Internet scanner hosting",
        "45.155.205.0/24",
        48721,
        ("RU", "Russia"),
        "Moscow",
        55.75,
        37.62,
    ),
    "scanner-b": (
        "Internet scanner hosting",
        "193.163.125.0/24",
        211298,
        ("GB", "United Kingdom"),
        "London",
        51.51,
        -0.13,
    ),
}

AWS_ORG = _org("Amazon.com", 16509, *US, "Boardman", 45.84, -119.70, asn_org="AMAZON-02")
AZURE_ORG = _org(
    "Microsoft Corporation",
    8075,
    *US,
    "Quincy",
    47.23,
    -119.85,
    asn_org="MICROSOFT-CORP-MSN-AS-BLOCK",
)
SERVICE_ORG = _org("Amazon Web Services", 16509, *US, "", 0.0, 0.0, asn_org="AMAZON")

# AWS addresses in us-west-2 (NAT gateway EIPs, Lambda's shared egress) and CI runners on Azure.
AWS_NAT_BLOCKS = ["44.224.0.0/11", "52.32.0.0/14", "54.68.0.0/14"]
AWS_LAMBDA_BLOCK = "35.160.0.0/13"
AZURE_CI_BLOCKS = ["20.42.0.0/15", "40.77.0.0/16", "52.179.0.0/16", "104.208.0.0/13"]


def make_org(
    isp: str, asn: int, country: tuple[str, str], city: str, lat: float, lon: float
) -> Org:
    return _org(isp, asn, country[0], country[1], city, lat, lon)
