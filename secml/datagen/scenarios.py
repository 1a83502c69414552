"""Ground truth: the attacks and the benign-but-flagged activity, as CloudTrail events planted
into the stream and the GuardDuty findings GuardDuty would raise about them.

Attacks come from networks their victim never used (hosting, Tor, a known-bad network, a
foreign ISP); the benign findings come from an address the principal used that same day. That
is what makes the IP Insights ranking learnable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from secml.datagen import model as m
from secml.datagen.catalog import TEMPLATE_INDEX
from secml.datagen.model import World


@dataclass
class Planted:
    """Events to add to the stream: parallel arrays like the generator's."""

    t: list[int] = field(default_factory=list)
    actor: list[int] = field(default_factory=list)
    tpl: list[int] = field(default_factory=list)
    ip: list[int] = field(default_factory=list)
    ua: list[int] = field(default_factory=list)

    def add(self, t: int, actor: int, key: str, ip: int, ua: int) -> None:
        self.t.append(t)
        self.actor.append(actor)
        self.tpl.append(TEMPLATE_INDEX[key])
        self.ip.append(ip)
        self.ua.append(ua)


@dataclass
class FindingSpec:
    scenario: str
    label: str  # malicious | benign
    finding_type: str
    severity: float
    title: str
    actor: int  # -1: an EC2 finding without an access key
    ips: list[int]
    times: list[int]
    api: str = ""
    service_name: str = ""
    console: bool = False
    extra: dict = field(default_factory=dict)


SEVERITY = {
    "Recon:IAMUser/MaliciousIPCaller": 5.0,
    "Recon:IAMUser/MaliciousIPCaller.Custom": 5.0,
    "UnauthorizedAccess:IAMUser/TorIPCaller": 5.0,
    "Recon:IAMUser/TorIPCaller": 2.0,
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": 8.0,
    "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B": 5.0,
    "Discovery:S3/MaliciousIPCaller": 8.0,
    "PenTest:IAMUser/KaliLinux": 5.0,
    "Discovery:IAMUser/AnomalousBehavior": 2.0,
    "Policy:IAMUser/RootCredentialUsage": 2.0,
    "Stealth:IAMUser/PasswordPolicyChange": 2.0,
    "Persistence:IAMUser/AnomalousBehavior": 5.0,
    "Discovery:S3/AnomalousBehavior": 2.0,
    "Impact:IAMUser/AnomalousBehavior": 5.0,
    "Recon:EC2/PortProbeUnprotectedPort": 2.0,
    "UnauthorizedAccess:EC2/SSHBruteForce": 2.0,
    "Backdoor:EC2/C&CActivity.B!DNS": 8.0,
}

TITLES = {
    "Recon:IAMUser/MaliciousIPCaller": "Reconnaissance API {api} was invoked from a known malicious IP address.",
    "Recon:IAMUser/MaliciousIPCaller.Custom": "Reconnaissance API {api} was invoked from an IP address on a custom threat list.",
    "UnauthorizedAccess:IAMUser/TorIPCaller": "API {api} was invoked from a Tor exit node IP address.",
    "Recon:IAMUser/TorIPCaller": "Reconnaissance API {api} was invoked from a Tor exit node IP address.",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": "Credentials for instance role {name} used from external IP address.",
    "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B": "Unusual console login was seen for principal {name}.",
    "Discovery:S3/MaliciousIPCaller": "The S3 discovery API {api} was invoked from a known malicious IP address.",
    "PenTest:IAMUser/KaliLinux": "API {api} was invoked from a Kali Linux computer.",
    "Discovery:IAMUser/AnomalousBehavior": "The API {api} was used to gain information about resources in an unusual way.",
    "Policy:IAMUser/RootCredentialUsage": "API {api} was invoked using root credentials.",
    "Stealth:IAMUser/PasswordPolicyChange": "The password policy of the account was weakened or changed.",
    "Persistence:IAMUser/AnomalousBehavior": "The API {api} was used to establish persistence in an unusual way.",
    "Discovery:S3/AnomalousBehavior": "The S3 API {api} was invoked in an unusual way.",
    "Impact:IAMUser/AnomalousBehavior": "The API {api} was used to tamper with resources in an unusual way.",
    "Recon:EC2/PortProbeUnprotectedPort": "Unprotected port on EC2 instance {instance} is being probed.",
    "UnauthorizedAccess:EC2/SSHBruteForce": "{instance} is the target of SSH brute force attacks.",
    "Backdoor:EC2/C&CActivity.B!DNS": "Command and Control server domain name queried by EC2 instance {instance}.",
}


def _t(world: World, day: int, hour_utc: float) -> int:
    return int(world.start.astype("int64")) + day * 86400 + int(hour_utc * 3600)


def plant(world: World, rng: np.random.Generator) -> tuple[Planted, list[FindingSpec]]:
    ips = world.ips
    uas = {ua: i for i, ua in enumerate(world.uas)}

    def ua(s: str) -> int:
        if s not in uas:
            uas[s] = len(world.uas)
            world.uas.append(s)
        return uas[s]

    planted = Planted()
    specs: list[FindingSpec] = []
    days = world.days
    actors = world.actors
    team0 = [i for i, a in enumerate(actors) if a.team == 0]
    devs = [i for i in team0 if actors[i].kind == "developer"]
    admins = [i for i in team0 if actors[i].kind == "admin"]
    analyst = next(i for i in team0 if actors[i].kind == "analyst")
    root = next(i for i in team0 if actors[i].kind == "root")
    web = next(i for i in team0 if actors[i].kind == "ec2-web")
    ci = next(i for i in team0 if actors[i].kind == "ci")
    backup = next(i for i in team0 if actors[i].kind == "backup")
    sso = next(i for i in team0 if actors[i].kind == "sso")

    def attacker_ip(network: str, k: int) -> int:
        return ips.index(ips.networks[network], k)

    def burst(actor, day, hour, keys, ip, ua_idx, spacing_s=90.0):
        day = min(day, days - 1)
        times = []
        t0 = _t(world, day, hour)
        for j, key in enumerate(keys):
            t = t0 + int(j * spacing_s + rng.integers(0, int(spacing_s)))
            planted.add(t, actor, key, ip, ua_idx)
            times.append(t)
        return times

    def spec(scenario, label, ftype, actor, ip, times, api, service, console=False, **extra):
        specs.append(
            FindingSpec(
                scenario,
                label,
                ftype,
                SEVERITY[ftype],
                TITLES[ftype],
                actor,
                [ip],
                times,
                api,
                service,
                console,
                extra,
            )
        )

    # ---- attacks: networks the victim never used -------------------------------------------
    late = max(1, days - 5)
    recon = [
        "sts.GetCallerIdentity",
        "iam.ListUsers",
        "iam.ListRoles",
        "iam.ListAttachedUserPolicies",
        "iam.GetAccountAuthorizationDetails",
        "s3.ListBuckets",
        "ec2.DescribeInstances",
        "iam.ListPolicies",
        "ec2.DescribeRegions",
        "ec2.DescribeSecurityGroups",
    ] * 2
    ip = attacker_ip("hosting-digitalocean", 0)
    times = burst(devs[0], late, 9.2, recon, ip, ua(m.UA_ATTACK["pacu"]))
    spec(
        "leaked-key-recon",
        "malicious",
        "Recon:IAMUser/MaliciousIPCaller",
        devs[0],
        ip,
        times,
        "ListUsers",
        "iam.amazonaws.com",
        threat_list="ProofPoint",
    )

    tor_calls = [
        "sts.GetCallerIdentity",
        "s3.ListBuckets",
        "s3.GetBucketAcl",
        "s3.GetBucketPolicy",
        "secretsmanager.GetSecretValue",
        "iam.GetUser",
    ] * 2
    ip_a = attacker_ip("tor-exit-a", 0)
    times = burst(devs[1], min(days - 1, late + 1), 4.5, tor_calls, ip_a, ua(m.UA_ATTACK["python"]))
    spec(
        "tor-access",
        "malicious",
        "UnauthorizedAccess:IAMUser/TorIPCaller",
        devs[1],
        ip_a,
        times,
        "GetSecretValue",
        "secretsmanager.amazonaws.com",
        threat_list="TorExitNodes",
    )
    ip_b = attacker_ip("tor-exit-b", 1)
    times = burst(
        devs[1],
        min(days - 1, late + 1),
        5.1,
        ["iam.ListRoles", "iam.ListUsers", "ec2.DescribeInstances"] * 3,
        ip_b,
        ua(m.UA_ATTACK["python"]),
    )
    spec(
        "tor-access",
        "malicious",
        "Recon:IAMUser/TorIPCaller",
        devs[1],
        ip_b,
        times,
        "ListRoles",
        "iam.amazonaws.com",
        threat_list="TorExitNodes",
    )

    ip = attacker_ip("hosting-hetzner", 0)
    exfil = [
        "sts.GetCallerIdentity",
        "s3.ListBuckets",
        "s3.GetBucketAcl",
        "ec2.DescribeInstances",
        "secretsmanager.GetSecretValue",
        "iam.ListRoles",
        "kms.Decrypt",
    ] * 2
    times = burst(web, min(days - 1, late + 2), 13.4, exfil, ip, ua(m.UA_ATTACK["python"]))
    spec(
        "instance-credential-exfiltration",
        "malicious",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        web,
        ip,
        times,
        "ListBuckets",
        "s3.amazonaws.com",
    )

    ip = attacker_ip("foreign-isp-vnpt", 0)
    b = ua(m.UA_ATTACK["browser"])
    times = burst(
        admins[0],
        min(days - 1, late + 3),
        19.7,
        [
            "signin.ConsoleLogin",
            "console.ListUsers",
            "console.DescribeInstances",
            "console.ListBuckets",
            "iam.CreateAccessKey",
        ],
        ip,
        b,
        spacing_s=40,
    )
    spec(
        "unusual-console-login",
        "malicious",
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        admins[0],
        ip,
        times[:1],
        "ConsoleLogin",
        "signin.amazonaws.com",
        console=True,
    )

    ip = attacker_ip("malicious-bulletproof", 0)
    s3_disc = [
        "s3.ListBuckets",
        "s3.GetBucketAcl",
        "s3.GetBucketPolicy",
        "s3.GetBucketLocation",
        "s3.GetBucketVersioning",
    ] * 3
    times = burst(ci, min(days - 1, late + 3), 2.3, s3_disc, ip, ua(m.UA_ATTACK["python"]))
    spec(
        "s3-discovery",
        "malicious",
        "Discovery:S3/MaliciousIPCaller",
        ci,
        ip,
        times,
        "GetBucketAcl",
        "s3.amazonaws.com",
        threat_list="Emerging Threats",
        s3=True,
    )

    ip = attacker_ip("hosting-ovh", 2)
    times = burst(devs[2], min(days - 1, late + 4), 6.8, recon[:8], ip, ua(m.UA_ATTACK["kali"]))
    spec(
        "leaked-key-kali",
        "malicious",
        "PenTest:IAMUser/KaliLinux",
        devs[2],
        ip,
        times,
        "GetAccountAuthorizationDetails",
        "iam.amazonaws.com",
    )

    # ---- benign findings: an address the principal used that same day ----------------------
    def usual(actor: int, day: int, kind: str) -> int:
        day = min(day, days - 1)
        a = actors[actor]
        if a.fixed_nets:
            start, span, _ = a.fixed_nets[0]
            return start + int(rng.integers(0, span))
        p = world.persons[a.person]
        if kind == "home":
            return p.home_ips[0] if day < p.home_switch_day else p.home_ips[1]
        if kind == "home6":
            return p.home_v6[day]
        if kind == "office":
            return p.office.start + int(rng.integers(0, p.office.count))
        if kind == "vpn":
            return p.vpn.start + int(rng.integers(0, p.vpn.count))
        if kind == "travel":
            return p.travel[day]
        raise ValueError(kind)

    def workday(after: int = 0) -> int:
        after = min(after, days - 1)
        for d in range(after, days):
            if (
                int((world.start + np.timedelta64(d, "D")).astype("datetime64[D]").astype(int) + 3)
                % 7
                < 5
            ):
                return d
        return after

    def benign(
        scenario, ftype, actor, day, kind, keys, api, service, hour=18.5, console=False, ua_idx=None
    ):
        a = actors[actor]
        if day in world.persons[a.person].away if a.person >= 0 else False:
            day = (day + 1) % days
        ip = usual(actor, day, kind)
        u = ua_idx if ua_idx is not None else (a.browser_ua if console else a.uas[0])
        times = burst(actor, day, hour, keys, ip, u, spacing_s=60)
        spec(
            scenario,
            "benign",
            ftype,
            actor,
            ip,
            times[:1] if console else times,
            api,
            service,
            console,
        )

    d1 = workday(2)
    benign(
        "login-from-home",
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        devs[3],
        d1 + 1,
        "home",
        ["signin.ConsoleLogin", "console.DescribeInstances"],
        "ConsoleLogin",
        "signin.amazonaws.com",
        hour=4.5,
        console=True,
    )
    traveller = next((i for i in devs + admins if world.persons[actors[i].person].travel), None)
    if traveller is not None:
        tday = sorted(world.persons[actors[traveller].person].travel)[-1]
        benign(
            "login-while-travelling",
            "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
            traveller,
            tday,
            "travel",
            ["signin.ConsoleLogin", "console.GetFunction"],
            "ConsoleLogin",
            "signin.amazonaws.com",
            hour=16.0,
            console=True,
        )
    benign(
        "iam-review-from-office",
        "Discovery:IAMUser/AnomalousBehavior",
        devs[4],
        workday(4),
        "office",
        ["iam.ListRoles", "iam.ListPolicies", "iam.GetAccountAuthorizationDetails"],
        "ListRoles",
        "iam.amazonaws.com",
        hour=20.0,
    )
    benign(
        "root-login-from-office",
        "Policy:IAMUser/RootCredentialUsage",
        root,
        workday(5),
        "office",
        ["signin.ConsoleLogin", "iam.GetAccountSummary"],
        "GetAccountSummary",
        "iam.amazonaws.com",
        hour=17.5,
        ua_idx=actors[root].browser_ua,
    )
    benign(
        "password-policy-update",
        "Stealth:IAMUser/PasswordPolicyChange",
        admins[1],
        workday(6),
        "office",
        ["iam.UpdateAccountPasswordPolicy"],
        "UpdateAccountPasswordPolicy",
        "iam.amazonaws.com",
        hour=21.0,
    )
    benign(
        "sanctioned-pentest",
        "PenTest:IAMUser/KaliLinux",
        analyst,
        workday(3),
        "vpn",
        ["iam.ListRoles", "iam.ListUsers", "ec2.DescribeInstances"],
        "ListUsers",
        "iam.amazonaws.com",
        hour=22.0,
        ua_idx=ua(m.UA_ATTACK["kali"]),
    )
    benign(
        "ci-key-rotation",
        "Persistence:IAMUser/AnomalousBehavior",
        ci,
        workday(7),
        "ci",
        ["iam.CreateAccessKey"],
        "CreateAccessKey",
        "iam.amazonaws.com",
        hour=19.0,
    )
    benign(
        "backup-bucket-audit",
        "Discovery:S3/AnomalousBehavior",
        backup,
        8 % days,
        "dc",
        ["s3.ListBuckets", "s3.GetBucketVersioning"],
        "ListBuckets",
        "s3.amazonaws.com",
        hour=9.5,
    )
    benign(
        "vpn-on-custom-threat-list",
        "Recon:IAMUser/MaliciousIPCaller.Custom",
        devs[5],
        workday(8),
        "vpn",
        ["iam.ListRoles", "ec2.DescribeInstances"],
        "ListRoles",
        "iam.amazonaws.com",
        hour=23.0,
    )
    v6dev = next((i for i in devs + admins if world.persons[actors[i].person].home_v6), None)
    if v6dev is not None:
        benign(
            "login-from-home-ipv6",
            "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
            v6dev,
            workday(9),
            "home6",
            ["signin.ConsoleLogin", "console.ListBuckets"],
            "ConsoleLogin",
            "signin.amazonaws.com",
            hour=3.0,
            console=True,
        )
    benign(
        "admin-console-from-home",
        "Discovery:IAMUser/AnomalousBehavior",
        sso,
        workday(10),
        "home",
        ["iam.ListRoles", "iam.GetAccountSummary"],
        "ListRoles",
        "iam.amazonaws.com",
        hour=2.5,
    )
    benign(
        "hotfix-deploy-from-home",
        "Impact:IAMUser/AnomalousBehavior",
        devs[6],
        workday(11),
        "home",
        ["lambda.UpdateFunctionCode"],
        "UpdateFunctionCode20150331v2",
        "lambda.amazonaws.com",
        hour=5.0,
    )

    # ---- EC2 findings: no access key, nothing for IP Insights to score -----------------------
    probe_ips = [
        attacker_ip("scanner-a", 1),
        attacker_ip("scanner-b", 2),
        attacker_ip("scanner-b", 3),
    ]
    t = _t(world, 3 % days, 7.3)
    specs.append(
        FindingSpec(
            "ec2-port-probe",
            "malicious",
            "Recon:EC2/PortProbeUnprotectedPort",
            2.0,
            TITLES["Recon:EC2/PortProbeUnprotectedPort"],
            -1,
            probe_ips,
            [t, t + 5400],
        )
    )
    t = _t(world, 6 % days, 11.1)
    specs.append(
        FindingSpec(
            "ec2-ssh-bruteforce",
            "malicious",
            "UnauthorizedAccess:EC2/SSHBruteForce",
            2.0,
            TITLES["UnauthorizedAccess:EC2/SSHBruteForce"],
            -1,
            [attacker_ip("scanner-a", 4)],
            [t, t + 2700],
        )
    )
    t = _t(world, 10 % days, 3.9)
    specs.append(
        FindingSpec(
            "ec2-c2-dns",
            "malicious",
            "Backdoor:EC2/C&CActivity.B!DNS",
            8.0,
            TITLES["Backdoor:EC2/C&CActivity.B!DNS"],
            -1,
            [],
            [t, t + 60],
        )
    )
    return planted, specs


# ---- rendering findings (GetFindings response shape, as the workshop's JSON array) ----------


def _iso(t: int, ms: int | None = None) -> str:
    s = str(np.datetime64(t, "s"))
    return f"{s}.{ms:03d}Z" if ms is not None else f"{s}Z"


def _remote_ip(world: World, ip_idx: int) -> dict:
    value = world.ips.values[ip_idx]
    org = world.ips.networks[world.ips.network_of[ip_idx]].org
    details = {
        "City": {"CityName": org.city},
        "Country": {"CountryCode": org.country_code, "CountryName": org.country},
        "GeoLocation": {"Lat": org.lat, "Lon": org.lon},
        "Organization": {"Asn": org.asn, "AsnOrg": org.asn_org, "Isp": org.isp, "Org": org.org},
    }
    details["IpAddressV6" if ":" in value else "IpAddressV4"] = value
    return dict(sorted(details.items()))


def render_findings(world: World, specs: list[FindingSpec], rng: np.random.Generator) -> list[dict]:
    acct, region, det = world.account_id, "us-west-2", world.detector_id
    web = next(a for a in world.actors if a.kind == "ec2-web" and a.team == 0)
    findings = []
    for s in specs:
        fid = m.rand_hex(rng, 32)
        first, last = min(s.times), max(s.times)
        created = last + int(rng.integers(300, 900))
        updated = created + int(rng.integers(0, 3600))
        service = {
            "Archived": False,
            "Count": max(1, len(s.times)),
            "DetectorId": det,
            "EventFirstSeen": _iso(first),
            "EventLastSeen": _iso(last),
            "ResourceRole": "TARGET",
            "ServiceName": "guardduty",
            "AdditionalInfo": {"Value": "{}", "Type": "default"},
        }
        if s.actor >= 0:
            a = world.actors[s.actor]
            day = (first - int(world.start.astype("int64"))) // 86400
            a_idx = s.actor
            if a.identity == "IAMUser" and not s.console:
                key = world.access_keys[a.name]
            else:
                key = str(world.session_keys[a_idx, day])
            principal = a.tuple_principal
            user_name = a.name
            if a.identity == "AssumedRole":
                principal = (
                    f"{a.tuple_principal}:{world.session_names.get((a_idx, day), a.session)}"
                )
            if a.identity == "Root":
                user_name = "Root"
            resource = {
                "AccessKeyDetails": {
                    "AccessKeyId": key,
                    "PrincipalId": principal,
                    "UserName": user_name,
                    "UserType": a.identity,
                },
                "ResourceType": "AccessKey",
            }
            if s.extra.get("s3"):
                resource["ResourceType"] = "S3Bucket"
                resource["S3BucketDetails"] = [
                    {
                        "Arn": "arn:aws:s3:::acme-customer-exports",
                        "Name": "acme-customer-exports",
                        "Type": "Destination",
                        "CreatedAt": _iso(int(world.start.astype("int64")) - 86400 * 200),
                        "DefaultServerSideEncryption": {"EncryptionType": "AES256"},
                        "PublicAccess": {"EffectivePermission": "NOT_PUBLIC"},
                    }
                ]
            service["Action"] = {
                "ActionType": "AWS_API_CALL",
                "AwsApiCallAction": {
                    "Api": s.api,
                    "CallerType": "Remote IP",
                    "RemoteIpDetails": _remote_ip(world, s.ips[0]),
                    "ServiceName": s.service_name,
                    "AffectedResources": {},
                },
            }
            if "threat_list" in s.extra:
                service["AdditionalInfo"] = {
                    "Value": json.dumps({"threatListName": s.extra["threat_list"]}),
                    "Type": "default",
                }
                service["Evidence"] = {
                    "ThreatIntelligenceDetails": [
                        {"ThreatListName": s.extra["threat_list"], "ThreatNames": []}
                    ]
                }
            title = s.title.format(api=s.api, name=a.name)
            description = (
                f"{s.api} was invoked by {a.identity} {a.name} from "
                f"{world.ips.values[s.ips[0]]}. This activity is associated with "
                f"{s.finding_type.split(':')[0].lower()} behaviour."
            )
        else:
            instance = web.session
            resource = {
                "InstanceDetails": {
                    "AvailabilityZone": "us-west-2a",
                    "ImageId": "ami-0c2ab3b8efb09f272",
                    "InstanceId": instance,
                    "InstanceState": "running",
                    "InstanceType": "t3.large",
                    "LaunchTime": _iso(int(world.start.astype("int64")) - 86400 * 30),
                    "Platform": None,
                    "Tags": [{"Key": "Name", "Value": "web-1"}],
                },
                "ResourceType": "Instance",
            }
            if s.finding_type.startswith("Recon:EC2/PortProbe"):
                service["Action"] = {
                    "ActionType": "PORT_PROBE",
                    "PortProbeAction": {
                        "Blocked": False,
                        "PortProbeDetails": [
                            {
                                "LocalPortDetails": {"Port": port, "PortName": name},
                                "RemoteIpDetails": _remote_ip(world, ip),
                            }
                            for ip, (port, name) in zip(
                                s.ips,
                                [(22, "SSH"), (3389, "RDP"), (5432, "POSTGRESQL")],
                                strict=False,
                            )
                        ],
                    },
                }
            elif s.finding_type.startswith("UnauthorizedAccess:EC2/SSH"):
                service["Action"] = {
                    "ActionType": "NETWORK_CONNECTION",
                    "NetworkConnectionAction": {
                        "Blocked": False,
                        "ConnectionDirection": "INBOUND",
                        "LocalPortDetails": {"Port": 22, "PortName": "SSH"},
                        "Protocol": "TCP",
                        "RemoteIpDetails": _remote_ip(world, s.ips[0]),
                        "RemotePortDetails": {
                            "Port": int(rng.integers(32768, 61000)),
                            "PortName": "Unknown",
                        },
                    },
                }
            else:
                service["Action"] = {
                    "ActionType": "DNS_REQUEST",
                    "DnsRequestAction": {
                        "Domain": "update-checker.xyz-c2.example",
                        "Protocol": "UDP",
                        "Blocked": False,
                    },
                }
            title = s.title.format(instance=instance)
            description = (
                f"EC2 instance {instance} is involved in {s.finding_type.split('/')[1]} activity."
            )
        findings.append(
            {
                "AccountId": acct,
                "Arn": f"arn:aws:guardduty:{region}:{acct}:detector/{det}/finding/{fid}",
                "CreatedAt": _iso(created, int(rng.integers(0, 1000))),
                "Description": description,
                "Id": fid,
                "Partition": "aws",
                "Region": region,
                "Resource": resource,
                "SchemaVersion": "2.0",
                "Service": service,
                "Severity": s.severity,
                "Title": title,
                "Type": s.finding_type,
                "UpdatedAt": _iso(updated, int(rng.integers(0, 1000))),
            }
        )
    return findings


def truth_rows(world: World, specs: list[FindingSpec], findings: list[dict]) -> list[list[str]]:
    rows = []
    for s, f in zip(specs, findings, strict=True):
        principal = world.actors[s.actor].tuple_principal if s.actor >= 0 else ""
        ip = world.ips.values[s.ips[0]] if s.ips else ""
        rows.append([f["Id"], s.finding_type, s.label, principal, ip, s.scenario])
    return rows
