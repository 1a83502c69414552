"""Facilitator tooling: one workshop environment per attendee account (issue 8)."""
