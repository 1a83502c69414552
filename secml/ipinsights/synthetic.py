"""Synthetic login sets for the quality benchmark and the end-to-end test.

``tutorial``: in the spirit of the SageMaker IP Insights tutorial's generator. Users get a home
and a work network out of a table of address ranges (ISP-like /16s and /20s, corporate /24s),
log in from a few addresses there with local jitter (dynamic addresses drift within the range),
and now and then travel (a login from a random network). Ten days; the first seven train.

``orgs``: users belong to organisations whose office networks are spread over the address space.
During training a user works from two of the organisation's offices; later from any of them.
A per-user heuristic cannot know the other offices; a model that learns from colleagues can.

``adjacent``: organisations own consecutive /16s; later logins come from ranges next to the
training ones that share no /16 with any training address.

Evaluation pairs: held-out logins of users seen in training (label 1) against the same users,
each held-out login's user once more, paired with an address from a random network of the
table (label 0): anomalies are drawn for the same users as the normal pairs, so no scorer
gains from which users the anomalies happen to pick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LoginSet:
    train_entities: np.ndarray  # object (str)
    train_ips: np.ndarray  # uint32
    test_entities: np.ndarray
    test_ips: np.ndarray
    test_labels: np.ndarray  # 1 real, 0 random network
    # per test pair: True for held-out real logins that are travel (a login from a random
    # network of the table, drawn as the negatives are); None where the set has no travel
    test_travel: np.ndarray | None = None

    @staticmethod
    def to_text(ips: np.ndarray) -> np.ndarray:
        ips = ips.astype(np.uint64)
        parts = [(ips >> np.uint64(s)) & np.uint64(255) for s in (24, 16, 8, 0)]
        out = parts[0].astype(str).astype(object)
        for p in parts[1:]:
            out = out + "." + p.astype(str).astype(object)
        return out

    def train_frame(self):
        import pandas as pd

        return pd.DataFrame({"entity": self.train_entities, "ip": self.to_text(self.train_ips)})

    def test_frame(self):
        import pandas as pd

        return pd.DataFrame({"entity": self.test_entities, "ip": self.to_text(self.test_ips)})


def _network_table(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, size) of `count` disjoint networks: /16 (ISPs), /20, /24 (companies)."""
    sizes = rng.choice(
        np.array([1 << 16, 1 << 12, 1 << 8], dtype=np.int64), count, p=[0.2, 0.3, 0.5]
    )
    starts = np.empty(count, dtype=np.int64)
    taken: set[int] = set()
    for i, size in enumerate(sizes):
        while True:
            # public-looking space: first octet 1..223, aligned to the network size
            start = int(rng.integers(1 << 24, 224 << 24)) // int(size) * int(size)
            if start >> 16 not in taken:
                taken.add(start >> 16)
                starts[i] = start
                break
    return starts, sizes


def _address_in(rng, starts, sizes, net, anchor_offset, jitter):
    """An address near a user's anchor in network `net` (local jitter, wrapped in the net)."""
    offset = (anchor_offset + rng.integers(-jitter, jitter + 1, size=len(net))) % sizes[net]
    return (starts[net] + offset).astype(np.uint32)


def _split_and_negatives(rng, user, day, ip, starts, sizes, train_days, travel=None):
    train = day < train_days
    known = np.unique(user[train])
    test = ~train & np.isin(user, known)
    test_user, test_ip = user[test], ip[test]
    neg_net = rng.integers(0, len(starts), size=len(test_user))
    neg_ip = (starts[neg_net] + rng.integers(0, sizes[neg_net])).astype(np.uint32)
    names = np.array([f"user_{u:06d}" for u in range(int(user.max()) + 1)], dtype=object)
    return LoginSet(
        names[user[train]],
        ip[train],
        np.concatenate([names[test_user], names[test_user]]),
        np.concatenate([test_ip, neg_ip]),
        np.r_[np.ones(len(test_ip)), np.zeros(len(neg_ip))],
        None if travel is None else np.r_[travel[test], np.zeros(len(neg_ip), dtype=bool)],
    )


def tutorial_logins(
    num_users: int = 2000,
    num_isps: int = 150,
    num_companies: int = 1500,
    logins_per_day: float = 6.0,
    other_range_rate: float = 0.05,
    travel_rate: float = 0.005,
    days: int = 10,
    train_days: int = 7,
    seed: int = 0,
) -> LoginSet:
    """ISPs own 1-4 ranges spread over the address space (like an ASN's prefixes); companies one.

    A user's home logins mostly come from near their usual address in one of their ISP's ranges
    (local jitter); now and then (``other_range_rate``) from anywhere in another of the ISP's
    ranges, which the user never showed before but other customers of the ISP did.
    """
    rng = np.random.default_rng(seed)
    isp_ranges = rng.integers(1, 5, num_isps)
    num_networks = int(isp_ranges.sum()) + num_companies
    starts, sizes = _network_table(rng, num_networks)
    # ISP ranges are the big ones (/16, /20); companies get /24s
    order = np.argsort(-sizes, kind="stable")
    starts, sizes = starts[order], sizes[order]
    owner = np.concatenate(
        [np.repeat(np.arange(num_isps), isp_ranges), np.arange(num_companies) + num_isps]
    )
    first_range = np.concatenate([[0], np.cumsum(isp_ranges)[:-1]])
    popularity = rng.pareto(1.5, num_isps) + 1
    isp = rng.choice(num_isps, num_users, p=popularity / popularity.sum())
    usual = first_range[isp] + rng.integers(0, isp_ranges[isp])
    work = int(isp_ranges.sum()) + rng.integers(0, num_companies, num_users)
    home_anchor = rng.integers(0, sizes[usual])
    work_anchor = rng.integers(0, sizes[work])
    per_user_day = rng.poisson(logins_per_day, size=(num_users, days))
    user = np.repeat(np.tile(np.arange(num_users), days), per_user_day.T.reshape(-1))
    day = np.repeat(np.repeat(np.arange(days), num_users), per_user_day.T.reshape(-1))
    n = len(user)
    at_work = rng.random(n) < 0.45
    net = np.where(at_work, work[user], usual[user])
    anchor = np.where(at_work, work_anchor[user], home_anchor[user])
    ip = _address_in(rng, starts, sizes, net, anchor, np.minimum(sizes[net] // 4, 64))
    other = ~at_work & (rng.random(n) < other_range_rate)
    o_user = user[other]
    o_net = first_range[isp[o_user]] + rng.integers(0, isp_ranges[isp[o_user]])
    ip[other] = (starts[o_net] + rng.integers(0, sizes[o_net])).astype(np.uint32)
    travel = rng.random(n) < travel_rate
    t_net = rng.integers(0, num_networks, int(travel.sum()))
    ip[travel] = (starts[t_net] + rng.integers(0, sizes[t_net])).astype(np.uint32)
    del owner
    return _split_and_negatives(rng, user, day, ip, starts, sizes, train_days, travel)


def organisation_logins(
    num_orgs: int = 100,
    users_per_org: int = 20,
    offices_per_org: int = 4,
    offices_in_training: int = 2,
    num_networks: int = 3000,
    logins_per_day: float = 6.0,
    days: int = 10,
    train_days: int = 7,
    seed: int = 0,
) -> LoginSet:
    rng = np.random.default_rng(seed)
    starts, sizes = _network_table(rng, num_networks)
    num_users = num_orgs * users_per_org
    org = np.repeat(np.arange(num_orgs), users_per_org)
    offices = np.stack(
        [rng.choice(num_networks, offices_per_org, replace=False) for _ in range(num_orgs)]
    )
    usual = np.stack(
        [rng.choice(offices_per_org, offices_in_training, replace=False) for _ in range(num_users)]
    )
    home = rng.integers(0, num_networks, num_users)
    home_anchor = rng.integers(0, sizes[home])
    per_user_day = rng.poisson(logins_per_day, size=(num_users, days))
    user = np.repeat(np.tile(np.arange(num_users), days), per_user_day.T.reshape(-1))
    day = np.repeat(np.repeat(np.arange(days), num_users), per_user_day.T.reshape(-1))
    n = len(user)
    later = day >= train_days
    which = np.where(
        later,
        rng.integers(0, offices_per_org, n),
        usual[user, rng.integers(0, offices_in_training, n)],
    )
    office_net = offices[org[user], which]
    at_home = rng.random(n) < 0.3
    net = np.where(at_home, home[user], office_net)
    anchor = np.where(at_home, home_anchor[user], rng.integers(0, sizes[net]))
    ip = _address_in(rng, starts, sizes, net, anchor, np.minimum(sizes[net] // 4, 64))
    return _split_and_negatives(rng, user, day, ip, starts, sizes, train_days)


def adjacent_range_logins(
    num_orgs: int = 100,
    users_per_org: int = 20,
    ranges_per_org: int = 8,
    ranges_in_training: int = 4,
    num_networks: int = 3000,
    logins_per_day: float = 6.0,
    days: int = 10,
    train_days: int = 7,
    seed: int = 0,
) -> LoginSet:
    """Organisations own ``ranges_per_org`` consecutive /16s. In training their users log in
    from the first ``ranges_in_training`` of them (two each); later only from the others:
    ranges *adjacent* in address space that share no /16 with any training address. A model
    that only knows the networks it saw has the /8 to go on; closeness in address space is
    what carries over (the nearest-seen heuristic's strength)."""
    rng = np.random.default_rng(seed)
    starts, sizes = _network_table(rng, num_networks)
    taken = {int(x) >> 16 for x in starts}
    org_base = []
    while len(org_base) < num_orgs:
        base = int(rng.integers(1 << 8, 224 << 8)) // ranges_per_org * ranges_per_org
        block = set(range(base, base + ranges_per_org))
        if not block & taken:
            taken |= block
            org_base.append(base)
    org_start = np.repeat(org_base, ranges_per_org) + np.tile(np.arange(ranges_per_org), num_orgs)
    starts = np.concatenate([org_start.astype(np.int64) << 16, starts])
    sizes = np.concatenate([np.full(num_orgs * ranges_per_org, 1 << 16, dtype=np.int64), sizes])
    num_users = num_orgs * users_per_org
    org = np.repeat(np.arange(num_orgs), users_per_org)
    usual = np.stack([rng.choice(ranges_in_training, 2, replace=False) for _ in range(num_users)])
    home = num_orgs * ranges_per_org + rng.integers(0, num_networks, num_users)
    home_anchor = rng.integers(0, sizes[home])
    per_user_day = rng.poisson(logins_per_day, size=(num_users, days))
    user = np.repeat(np.tile(np.arange(num_users), days), per_user_day.T.reshape(-1))
    day = np.repeat(np.repeat(np.arange(days), num_users), per_user_day.T.reshape(-1))
    n = len(user)
    later = day >= train_days
    which = np.where(
        later,
        rng.integers(ranges_in_training, ranges_per_org, n),
        usual[user, rng.integers(0, 2, n)],
    )
    office_net = org[user] * ranges_per_org + which
    at_home = rng.random(n) < 0.3
    net = np.where(at_home, home[user], office_net)
    anchor = np.where(at_home, home_anchor[user], rng.integers(0, sizes[net]))
    ip = _address_in(rng, starts, sizes, net, anchor, np.minimum(sizes[net] // 4, 64))
    return _split_and_negatives(rng, user, day, ip, starts, sizes, train_days)


def nearest_seen_heuristic(data: LoginSet) -> np.ndarray:
    """Score = -log(1 + distance from the user's numerically nearest training address)."""
    names, inverse = np.unique(
        np.concatenate([data.train_entities, data.test_entities]), return_inverse=True
    )
    tr_user = inverse[: len(data.train_entities)].astype(np.int64)
    te_user = inverse[len(data.train_entities) :].astype(np.int64)
    train_key = np.unique((tr_user << 32) | data.train_ips.astype(np.int64))
    test_key = (te_user << 32) | data.test_ips.astype(np.int64)
    pos = np.searchsorted(train_key, test_key)
    best = np.full(len(test_key), np.inf)
    for cand in (pos - 1, pos):
        c = np.clip(cand, 0, len(train_key) - 1)
        same_user = (train_key[c] >> 32) == te_user
        dist = np.abs(train_key[c] - test_key).astype(np.float64)
        best = np.minimum(best, np.where(same_user, dist, np.inf))
    return -np.log1p(best)
