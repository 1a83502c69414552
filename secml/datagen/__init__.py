"""Deterministic synthetic CloudTrail + GuardDuty data for the workshop (stdlib + numpy only).

The dataset is synthetic: every address, name and ID is made up. The behaviour model is what
makes IP Insights meaningful on it: principals act from a small, stable set of networks, and
the attacks come from networks their victims never used.
"""
