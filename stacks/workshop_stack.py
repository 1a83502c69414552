"""WorkshopStack: one stack, one construct per concern."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct


class WorkshopStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
