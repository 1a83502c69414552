#!/usr/bin/env python3
"""CDK entry point: reads context, builds the app, applies cdk-nag. Nothing else."""

from stacks.app import build_app

build_app().synth()
