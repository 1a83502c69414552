"""WorkshopStack: one stack, one construct per concern."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.participant import Participant


class WorkshopStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, participant_role: bool = False, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if participant_role:
            Participant(self, "Participant")
