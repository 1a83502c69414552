"""The behaviour model: who acts in the account, how often, and from which networks.

One "team" is the workshop's account population: developers, admins and a security analyst
(IAM users with access keys and console passwords, some also through an SSO admin role), the
root user, EC2 instance roles behind a NAT gateway, Lambda execution roles, a CI deploy user on
hosted runners, a backup user in a datacenter, and AWS services acting on their own. The
`large` preset is many teams in one account.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from secml.datagen import networks as nw
from secml.datagen.catalog import CATALOGS, TEMPLATE_INDEX, TEMPLATES

ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)

FIRST = [
    "alice",
    "bruno",
    "chen",
    "dana",
    "emeka",
    "farah",
    "gabriel",
    "hana",
    "ivan",
    "jules",
    "kiran",
    "lena",
    "mateo",
    "noor",
    "olga",
    "priya",
]
LAST = [
    "nguyen",
    "martins",
    "wei",
    "kowalski",
    "okafor",
    "haddad",
    "silva",
    "sato",
    "petrov",
    "moreau",
    "rao",
    "fischer",
    "garcia",
    "aziz",
    "ivanova",
    "shah",
]

UA_CLI = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off",
    "aws-cli/2.17.4 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-35-generic md/arch#x86_64 "
    "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.12.2 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/macos "
    "lang/go#1.22.1 md/GOOS#darwin md/GOARCH#arm64",
]
UA_BROWSER = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
]
UA_SSM = "aws-sdk-go/1.44.260 (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.131.0"
UA_EC2_APP = (
    "Boto3/1.34.90 md/Botocore#1.34.90 ua/2.0 os/linux#6.1.84-99.169.amzn2023.x86_64 "
    "md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.90"
)
UA_LAMBDA = (
    "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#5.10.214-223.837.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.34.34"
)
UA_CI = "aws-sdk-js/2.1600.0 linux/v20.12.2 promise aws-cdk/2.140.0"
UA_BACKUP = (
    "aws-sdk-java/2.25.40 Linux/5.15.0-105-generic OpenJDK_64-Bit_Server_VM/17.0.11+9 Java/17.0.11"
)
UA_ATTACK = {
    "kali": "Boto3/1.26.0 Python/3.11.4 Linux/6.3.0-kali1-amd64 Botocore/1.29.0",
    "pacu": "aws-cli/1.18.69 Python/3.8.10 Linux/5.4.0-77-generic botocore/1.17.0",
    "python": "Boto3/1.28.62 md/Botocore#1.31.62 ua/2.0 os/linux#5.15.0-91-generic md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.62",
    "browser": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
}

# Hour-of-week activity profiles (UTC; the company sits at UTC-7).
UTC_OFFSET = -7


def _profile(kind: str) -> np.ndarray:
    p = np.zeros(168)
    for h in range(168):
        day, hour = divmod(h, 24)
        local = (hour + UTC_OFFSET) % 24
        local_day = (day - (1 if hour + UTC_OFFSET < 0 else 0)) % 7  # 0 = Monday
        weekday = local_day < 5
        if kind == "work":
            if weekday and (9 <= local < 12 or 13 <= local < 18):
                v = 1.0
            elif weekday and local in (8, 12, 18, 19):
                v = 0.5
            elif weekday and 20 <= local <= 23:
                v = 0.12
            elif not weekday and 10 <= local <= 20:
                v = 0.06
            else:
                v = 0.01
        elif kind == "constant":
            v = 0.8 + 0.4 * (9 <= local < 21)
        elif kind == "nightly":
            v = 1.0 if 1 <= local < 4 else 0.005
        elif kind == "ci":
            v = 1.0 if weekday and 9 <= local < 19 else 0.04
        else:
            raise ValueError(kind)
        p[h] = v
    return p


PROFILES = {k: _profile(k) for k in ("work", "constant", "nightly", "ci")}


def rand_ids(rng: np.random.Generator, n: int, length: int) -> list[str]:
    raw = ALNUM[rng.integers(0, len(ALNUM), size=(n, length))]
    return [row.tobytes().decode() for row in raw]


def rand_hex(rng: np.random.Generator, n_chars: int) -> str:
    return rng.bytes((n_chars + 1) // 2).hex()[:n_chars]


@dataclass
class Person:
    """A human's network habits, shared by every identity they use (IAM user, SSO session)."""

    name: str
    office: nw.Network
    vpn: nw.Network
    home_ips: list[int]  # IpTable indices; the ISP hands out a new address on home_switch_day
    home_switch_day: int
    home_v6: list[int] | None  # one privacy address per day, or None without IPv6 at home
    mobile: list[int]  # one carrier address per day
    travel: dict[int, int]  # day -> hotel/conference address
    away: set[int]  # days off


@dataclass
class Actor:
    """One identity as CloudTrail shows it (one session name of a role is one actor)."""

    kind: str  # catalog key
    identity: str  # IAMUser | AssumedRole | Root | AWSService
    tuple_principal: str  # principalId before the ':' ("" for AWS services)
    name: str  # user name / role name / service
    session: str = ""  # role session name (instance id, function name, e-mail)
    person: int = -1
    rate: float = 0.0  # events per hour at profile 1.0
    profile: str = "work"
    east_share: float = 0.0  # share of regional calls made in us-east-1
    uas: list[int] = field(default_factory=list)  # UaTable indices for API calls
    browser_ua: int = -1
    fixed_nets: list[tuple[int, int, float]] = field(default_factory=list)  # (start, span, w)
    invoked_by: str = ""
    daily_session: bool = False  # autoscaled instances: a new instance id every day
    team: int = 0


@dataclass
class World:
    account_id: str
    detector_id: str
    trail_bucket: str
    ips: nw.IpTable
    uas: list[str]
    persons: list[Person]
    actors: list[Actor]
    days: int
    start: np.datetime64
    keys: dict = field(default_factory=dict)
    role_ids: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    access_keys: dict[str, str] = field(default_factory=dict)
    session_keys: np.ndarray | None = None  # [actor, day] -> ASIA key
    session_names: dict[tuple[int, int], str] = field(default_factory=dict)
    catalog_kinds: list[str] = field(default_factory=list)

    def actor_index(self, kind: str, team: int = 0, name: str | None = None) -> int:
        for i, a in enumerate(self.actors):
            if a.kind == kind and a.team == team and (name is None or a.name == name):
                return i
        raise KeyError((kind, team, name))


class _Uas:
    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, ua: str) -> int:
        if ua not in self.index:
            self.index[ua] = len(self.values)
            self.values.append(ua)
        return self.index[ua]


def build_world(rng: np.random.Generator, *, days: int, start: str, teams: int) -> World:
    account_id = "".join(str(d) for d in rng.integers(0, 10, 12))
    if account_id[0] == "0":
        account_id = "4" + account_id[1:]
    detector_id = rand_hex(rng, 32)
    ips = nw.IpTable()
    uas = _Uas()
    world = World(
        account_id,
        detector_id,
        f"aws-cloudtrail-logs-{account_id}-{rand_hex(rng, 8)}",
        ips,
        uas.values,
        [],
        [],
        days,
        np.datetime64(start, "s"),
    )

    # addresses AWS services show instead of an IP
    service_org = nw.SERVICE_ORG
    for host in (
        "ec2.amazonaws.com",
        "lambda.amazonaws.com",
        "config.amazonaws.com",
        "cloudformation.amazonaws.com",
        "AWS Internal",
    ):
        ips.add(nw.Network(f"service:{host}", "service", service_org), [host])

    for team in range(teams):
        _build_team(rng, world, uas, team)

    # attacker networks (never used by anyone's normal activity)
    for name, (isp, cidr, asn, country, city, lat, lon) in nw.ATTACKER_NETWORKS.items():
        ips.add(
            nw.Network(name, "attacker", nw.make_org(isp, asn, country, city, lat, lon)),
            nw.random_hosts(rng, cidr, 8),
        )

    a_count = len(world.actors)
    keys = rand_ids(rng, a_count * days, 16)
    world.session_keys = np.array(["ASIA" + k for k in keys], dtype=object).reshape(a_count, days)
    for i, a in enumerate(world.actors):
        if a.daily_session:
            for d in range(days):
                world.session_names[(i, d)] = "i-0" + rand_hex(rng, 16)
    world.catalog_kinds = sorted(CATALOGS)
    return world


def _net(rng, ips: nw.IpTable, name, kind, org: nw.Org, cidr: str, n: int) -> nw.Network:
    return ips.add(nw.Network(name, kind, org), nw.random_hosts(rng, cidr, n))


def _build_team(rng: np.random.Generator, world: World, uas: _Uas, team: int) -> None:
    ips, acct, days = world.ips, world.account_id, world.days
    sfx = "" if team == 0 else f"-t{team:03d}"
    office = _net(
        rng,
        ips,
        f"office{sfx}",
        "office",
        nw._org("AT&T Enterprises", 7018, "US", "United States", "San Francisco", 37.77, -122.42),
        nw.sub_prefix(rng, "12.160.0.0/12", 29),
        2,
    )
    vpn = _net(
        rng,
        ips,
        f"vpn{sfx}",
        "vpn",
        nw._org("Zscaler Inc.", 22616, "US", "United States", "San Jose", 37.34, -121.89),
        nw.sub_prefix(rng, "165.225.0.0/17", 27),
        6,
    )

    def person(name: str, traveller: bool = False) -> int:
        isp, v4, v6, asn, city, lat, lon = nw.HOME_ISPS[int(rng.integers(0, len(nw.HOME_ISPS)))]
        org = nw._org(isp, asn, "US", "United States", city, lat, lon)
        home = _net(rng, ips, f"home:{name}", "home", org, nw.sub_prefix(rng, v4, 24), 2)
        home_v6 = None
        if v6 and rng.random() < 0.7:
            net6 = _net(rng, ips, f"home6:{name}", "home", org, nw.sub_prefix(rng, v6, 64), days)
            home_v6 = list(range(net6.start, net6.start + net6.count))
        carrier, m4, _m6, masn = nw.MOBILE[int(rng.integers(0, len(nw.MOBILE)))]
        mob = _net(
            rng,
            ips,
            f"mobile:{name}",
            "mobile",
            nw._org(carrier, masn, "US", "United States", city, lat, lon),
            m4,
            days,
        )
        travel: dict[int, int] = {}
        if rng.random() < 0.35 or traveller:
            isp_t, cidr_t, asn_t, country, tcity, tlat, tlon = nw.TRAVEL_ISPS[
                int(rng.integers(0, len(nw.TRAVEL_ISPS)))
            ]
            length = int(rng.integers(2, 5))
            first = int(rng.integers(0, max(1, days - length)))
            hotel = _net(
                rng,
                ips,
                f"travel:{name}",
                "travel",
                nw.make_org(isp_t, asn_t, country, tcity, tlat, tlon),
                cidr_t,
                length,
            )
            travel = {first + k: hotel.start + k for k in range(length)}
        away = {int(d) for d in rng.choice(days, size=int(rng.integers(0, 3)), replace=False)}
        away -= set(travel)
        world.persons.append(
            Person(
                name,
                office,
                vpn,
                [home.start, home.start + 1],
                int(rng.integers(3, days)),
                home_v6,
                list(range(mob.start, mob.start + mob.count)),
                travel,
                away,
            )
        )
        return len(world.persons) - 1

    def user_id(name: str) -> str:
        uid = "AIDA" + rand_ids(rng, 1, 17)[0]
        world.user_ids[name] = uid
        world.access_keys[name] = "AKIA" + rand_ids(rng, 1, 16)[0]
        return uid

    def role_id(name: str) -> str:
        if name not in world.role_ids:
            world.role_ids[name] = "AROA" + rand_ids(rng, 1, 17)[0]
        return world.role_ids[name]

    def cli_uas() -> list[int]:
        picks = rng.choice(len(UA_CLI), size=int(rng.integers(1, 3)), replace=False)
        return [uas(UA_CLI[int(i)]) for i in sorted(picks)]

    sso_role = f"AWSReservedSSO_AdministratorAccess_{rand_hex(rng, 16)}{sfx}"
    names = rng.permutation(len(FIRST) * len(LAST))
    staff = [("developer", 9), ("admin", 2), ("analyst", 1)]
    k = 0
    for kind, count in staff:
        for _ in range(count):
            f, last = divmod(int(names[k]), len(LAST))
            k += 1
            name = f"{FIRST[f]}.{LAST[last]}{sfx}"
            p = person(name, traveller=(kind == "developer" and k == 8))
            rate = {"developer": 12.0, "admin": 7.0, "analyst": 8.0}[kind]
            world.actors.append(
                Actor(
                    kind,
                    "IAMUser",
                    user_id(name),
                    name,
                    person=p,
                    rate=rate * float(rng.uniform(0.6, 1.4)),
                    east_share=float(rng.uniform(0.05, 0.3)),
                    uas=cli_uas(),
                    browser_ua=uas(UA_BROWSER[int(rng.integers(0, len(UA_BROWSER)))]),
                    team=team,
                )
            )
            if kind in ("admin", "analyst"):
                world.actors.append(
                    Actor(
                        "sso",
                        "AssumedRole",
                        role_id(sso_role),
                        sso_role,
                        session=f"{name}@acme.example",
                        person=p,
                        rate=4.0,
                        east_share=0.2,
                        uas=world.actors[-1].uas,
                        browser_ua=world.actors[-1].browser_ua,
                        team=team,
                    )
                )
    admin_person = next(a.person for a in world.actors if a.kind == "admin" and a.team == team)
    if team == 0:
        world.actors.append(
            Actor(
                "root",
                "Root",
                acct,
                "root",
                person=admin_person,
                rate=0.04,
                uas=[uas(UA_CLI[0])],
                browser_ua=uas(UA_BROWSER[0]),
                team=team,
            )
        )

    aws = nw.AWS_ORG
    nat = _net(
        rng,
        ips,
        f"nat{sfx}",
        "aws",
        aws,
        nw.sub_prefix(rng, nw.AWS_NAT_BLOCKS[int(rng.integers(0, 3))], 24),
        2,
    )
    bastion_ip = _net(
        rng,
        ips,
        f"bastion-eip{sfx}",
        "aws",
        aws,
        nw.sub_prefix(rng, nw.AWS_NAT_BLOCKS[int(rng.integers(0, 3))], 24),
        1,
    )
    lam = _net(rng, ips, f"lambda-egress{sfx}", "aws", aws, nw.AWS_LAMBDA_BLOCK, 40)
    ci = ips.add(
        nw.Network(f"ci-runners{sfx}", "ci", nw.AZURE_ORG),
        [ip for block in nw.AZURE_CI_BLOCKS for ip in nw.random_hosts(rng, block, 40)],
    )
    dc = _net(
        rng,
        ips,
        f"datacenter{sfx}",
        "datacenter",
        nw._org("Zayo Bandwidth", 6461, "US", "United States", "Hillsboro", 45.52, -122.99),
        nw.sub_prefix(rng, "64.125.0.0/16", 29),
        2,
    )

    def machine(kind, identity, tprincipal, name, nets, rate, profile, ua, **kw):
        world.actors.append(
            Actor(
                kind,
                identity,
                tprincipal,
                name,
                rate=rate,
                profile=profile,
                uas=[uas(u) for u in ua],
                fixed_nets=nets,
                team=team,
                **kw,
            )
        )

    for role, kind, count, rate, net in (
        (f"web-app-role{sfx}", "ec2-web", 3, 7.0, nat),
        (f"batch-worker-role{sfx}", "ec2-batch", 4, 4.0, nat),
        (f"bastion-role{sfx}", "ec2-bastion", 1, 3.0, bastion_ip),
    ):
        for _ in range(count):
            machine(
                kind,
                "AssumedRole",
                role_id(role),
                role,
                [(net.start, net.count, 1.0)],
                rate,
                "constant",
                [UA_SSM, UA_EC2_APP],
                session="i-0" + rand_hex(rng, 16),
                daily_session=(kind == "ec2-batch"),
            )
    for fn, rate in (("orders-api", 10.0), ("thumbnailer", 6.0), ("nightly-report", 3.0)):
        role = f"{fn}-role{sfx}"
        machine(
            "lambda",
            "AssumedRole",
            role_id(role),
            role,
            [(lam.start, lam.count, 1.0)],
            rate,
            "constant",
            [UA_LAMBDA],
            session=fn + sfx,
        )
    machine(
        "ci",
        "IAMUser",
        user_id(f"ci-deploy{sfx}"),
        f"ci-deploy{sfx}",
        [(ci.start, ci.count, 1.0)],
        30.0,
        "ci",
        [UA_CI],
    )
    machine(
        "backup",
        "IAMUser",
        user_id(f"backup-sync{sfx}"),
        f"backup-sync{sfx}",
        [(dc.start, dc.count, 1.0)],
        50.0,
        "nightly",
        [UA_BACKUP],
    )
    svc = ips.networks
    for host, rate in (("ec2.amazonaws.com", 8.0), ("lambda.amazonaws.com", 7.0)):
        n = svc[f"service:{host}"]
        machine(
            "aws-service",
            "AWSService",
            "",
            host,
            [(n.start, 1, 1.0)],
            rate,
            "constant",
            [host],
            invoked_by=host,
        )
    cfg_role = f"AWSServiceRoleForConfig{sfx}"
    n = svc["service:config.amazonaws.com"]
    machine(
        "service-role",
        "AssumedRole",
        role_id(cfg_role),
        cfg_role,
        [(n.start, 1, 1.0)],
        6.0,
        "constant",
        ["config.amazonaws.com"],
        session="AWSConfig-Describe",
        invoked_by="config.amazonaws.com",
    )
    n = svc["service:AWS Internal"]
    sso_actor = next(a for a in world.actors if a.kind == "sso" and a.team == team)
    machine(
        "aws-internal",
        "AssumedRole",
        sso_actor.tuple_principal,
        sso_role,
        [(n.start, 1, 1.0)],
        3.0,
        "work",
        ["AWS Internal"],
        session=sso_actor.session,
    )


def day_candidates(world: World, actor: Actor, day: int) -> list[tuple[int, int, float]]:
    """Where an actor's calls come from on a given day: (first address, span, weight)."""
    if actor.fixed_nets:
        return actor.fixed_nets
    p = world.persons[actor.person]
    home = p.home_ips[0] if day < p.home_switch_day else p.home_ips[1]
    mobile = p.mobile[day]
    if day in p.away:
        return [(home, 1, 1.0)]
    if day in p.travel:
        return [(p.travel[day], 1, 0.7), (mobile, 1, 0.25), (p.vpn.start, p.vpn.count, 0.05)]
    weekday = (
        int((world.start + np.timedelta64(day, "D")).astype("datetime64[D]").astype(int) + 3) % 7
        < 5
    )
    if weekday:
        cands = [
            (p.office.start, p.office.count, 0.55),
            (home, 1, 0.3),
            (p.vpn.start, p.vpn.count, 0.1),
            (mobile, 1, 0.05),
        ]
    else:
        cands = [(home, 1, 0.85), (mobile, 1, 0.1), (p.vpn.start, p.vpn.count, 0.05)]
    if p.home_v6 is not None:  # dual-stack home: a good share of calls leave over IPv6
        out = []
        for start, span, w in cands:
            if start == home:
                out += [(home, 1, w * 0.55), (p.home_v6[day], 1, w * 0.45)]
            else:
                out.append((start, span, w))
        cands = out
    return cands


def identity_json(world: World, a_idx: int, day: int, variant: str) -> str:
    """userIdentity as CloudTrail writes it. variant: api | console | signin."""
    a = world.actors[a_idx]
    acct = world.account_id
    day_str = str((world.start + np.timedelta64(day, "D")).astype("datetime64[D]"))
    session_key = world.session_keys[a_idx, day]
    if a.identity == "AWSService":
        return f'{{"type":"AWSService","invokedBy":"{a.invoked_by}"}}'
    if a.identity == "IAMUser":
        base = (
            f'{{"type":"IAMUser","principalId":"{a.tuple_principal}",'
            f'"arn":"arn:aws:iam::{acct}:user/{a.name}","accountId":"{acct}"'
        )
        if variant == "signin":
            return base + f',"userName":"{a.name}"}}'
        if variant == "console":
            return (
                base + f',"accessKeyId":"{session_key}","userName":"{a.name}","sessionContext":'
                f'{{"attributes":{{"creationDate":"{day_str}T15:58:12Z","mfaAuthenticated":"true"}}}}}}'
            )
        return base + f',"accessKeyId":"{world.access_keys[a.name]}","userName":"{a.name}"}}'
    if a.identity == "Root":
        base = f'{{"type":"Root","principalId":"{acct}","arn":"arn:aws:iam::{acct}:root","accountId":"{acct}"'
        if variant == "signin":
            return base + "}"
        return (
            base + f',"accessKeyId":"{session_key}","sessionContext":{{"attributes":'
            f'{{"creationDate":"{day_str}T16:40:03Z","mfaAuthenticated":"true"}}}}}}'
        )
    session = world.session_names.get((a_idx, day), a.session)
    extra = ',"ec2RoleDelivery":"2.0"' if a.kind.startswith("ec2") else ""
    invoked = f',"invokedBy":"{a.invoked_by}"' if a.invoked_by else ""
    return (
        f'{{"type":"AssumedRole","principalId":"{a.tuple_principal}:{session}",'
        f'"arn":"arn:aws:sts::{acct}:assumed-role/{a.name}/{session}","accountId":"{acct}",'
        f'"accessKeyId":"{session_key}","sessionContext":{{"sessionIssuer":{{"type":"Role",'
        f'"principalId":"{a.tuple_principal}","arn":"arn:aws:iam::{acct}:role/{a.name}",'
        f'"accountId":"{acct}","userName":"{a.name}"}},"attributes":{{"creationDate":'
        f'"{day_str}T00:12:44Z","mfaAuthenticated":"false"}}{extra}}}{invoked}}}'
    )


def catalog_arrays(world: World) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per catalog kind: template ids and cumulative weights; per actor: its kind's number."""
    ids, cums = [], []
    for kind in world.catalog_kinds:
        entries = CATALOGS[kind]
        ids.append(np.array([TEMPLATE_INDEX[key] for key, _ in entries]))
        w = np.array([wt for _, wt in entries], dtype=float)
        cums.append(np.cumsum(w) / w.sum())
    kind_no = np.array([world.catalog_kinds.index(a.kind) for a in world.actors])
    return ids, cums, kind_no


__all__ = ["TEMPLATES", "World", "Actor", "build_world", "day_candidates", "identity_json"]
