"""What an alert says: the SNS message and the Security Hub finding (ASFF) for one finding."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

SUBJECT_LIMIT = 100  # SNS: subjects are at most 100 characters
DESCRIPTION_LIMIT = 1024  # ASFF Description
GENERATOR_ID = "secml-detection/ip-insights"


@dataclass(frozen=True)
class Alert:
    """One GuardDuty finding with a (principal, IP) pair that scores below the threshold."""

    finding_id: str
    finding_type: str
    account: str
    region: str
    principal: str
    ip: str
    score: float
    threshold: float
    why: str
    access_key_id: str = ""
    also_below: tuple[tuple[str, float], ...] = field(default_factory=tuple)  # (ip, score)
    model: str = ""

    def subject(self) -> str:
        text = f"Anomalous access: {self.principal} from {self.ip} ({self.finding_type})"
        return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."

    def message(self) -> str:
        lines = [
            f"GuardDuty finding {self.finding_id} ({self.finding_type}), account "
            f"{self.account}, region {self.region}",
            f"principal: {self.principal}",
            f"address:   {self.ip}",
            f"score:     {self.score:.4f}",
            f"threshold: {self.threshold:.4f} (pairs scoring below it alert; lower = more "
            "unusual for this principal)",
            f"why:       {self.why}",
        ]
        for ip, score in self.also_below:
            lines.append(f"also below the threshold: {ip} (score {score:.4f})")
        if self.model:
            lines.append(f"model:     {self.model}")
        return "\n".join(lines) + "\n"

    def asff(self, product_arn: str, aws_account_id: str, now: datetime | None = None) -> dict:
        """The Security Hub finding, in the account that imports it (a finding imported under
        the account's default product must name that account). Its Id is derived from the
        GuardDuty finding's, so a retry updates the same finding instead of adding a second."""
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        digest = hashlib.sha256(f"{self.region}/{self.finding_id}".encode()).hexdigest()[:32]
        partition = product_arn.split(":")[1] if product_arn.count(":") >= 5 else "aws"
        description = (
            f"{self.principal} from {self.ip}: IP Insights score {self.score:.4f} is below the "
            f"threshold {self.threshold:.4f}. Why: {self.why}. GuardDuty finding "
            f"{self.finding_id} ({self.finding_type})."
        )
        network = {"SourceIpV6" if ":" in self.ip else "SourceIpV4": self.ip}
        resource_id = self.access_key_id or self.principal
        return {
            "SchemaVersion": "2018-10-08",
            "Id": f"secml-detection/{digest}",
            "ProductArn": product_arn,
            "GeneratorId": GENERATOR_ID,
            "AwsAccountId": aws_account_id,
            "Types": ["Unusual Behaviors/User"],
            "CreatedAt": stamp,
            "UpdatedAt": stamp,
            "Severity": {"Label": "MEDIUM"},
            "Title": self.subject(),
            "Description": description[:DESCRIPTION_LIMIT],
            "Network": {"Direction": "IN", **network},
            "Resources": [
                {
                    "Type": "AwsIamAccessKey",
                    "Id": resource_id,
                    "Partition": partition,
                    "Region": self.region,
                    "Details": {"AwsIamAccessKey": {"PrincipalId": self.principal}},
                }
            ],
            "ProductFields": {
                "secml/GuardDutyFindingId": self.finding_id,
                "secml/GuardDutyFindingType": self.finding_type,
                "secml/Principal": self.principal,
                "secml/Address": self.ip,
                "secml/Score": f"{self.score:.6f}",
                "secml/Threshold": f"{self.threshold:.6f}",
                "secml/Why": self.why,
            },
        }
