#!/bin/bash
# secml workshop notebook instance, on-create: runs once, as root, when the instance is created.
# Copies the workshop notebook and a config file describing this stack into the Jupyter home.
set -euo pipefail

# SECML_SAGEMAKER_HOME and SECML_PYTHON exist for the test suite only.
SAGEMAKER_HOME="${SECML_SAGEMAKER_HOME:-/home/ec2-user/SageMaker}"
NOTEBOOK_BUCKET='@@NOTEBOOK_BUCKET@@'
NOTEBOOK_KEY='@@NOTEBOOK_KEY@@'
NOTEBOOK_FILE='@@NOTEBOOK_FILE@@'
export SECML_REGION='@@REGION@@'
export SECML_STACK_NAME='@@STACK_NAME@@'
export SECML_DATA_BUCKET='@@DATA_BUCKET@@'
export SECML_TUPLES_BUCKET='@@TUPLES_BUCKET@@'
export SECML_TRAIN_KEY='@@TRAIN_KEY@@'
export SECML_INFER_KEY='@@INFER_KEY@@'
export SECML_TRUTH_KEY='@@TRUTH_KEY@@'

@@PICK_PYTHON@@
PYTHON="$(pick_python)" || { echo "secml on-create: no python3 with boto3" >&2; exit 1; }

mkdir -p "$SAGEMAKER_HOME"
"$PYTHON" - "$NOTEBOOK_BUCKET" "$NOTEBOOK_KEY" "$SAGEMAKER_HOME/$NOTEBOOK_FILE" <<'PY'
import os
import sys

import boto3

bucket, key, target = sys.argv[1:4]
boto3.client("s3", region_name=os.environ["SECML_REGION"]).download_file(bucket, key, target)
PY

"$PYTHON" - "$SAGEMAKER_HOME/workshop_config.json" <<'PY'
import json
import os
import sys

config = {
    "stack_name": os.environ["SECML_STACK_NAME"],
    "region": os.environ["SECML_REGION"],
    "data_bucket": os.environ["SECML_DATA_BUCKET"],
    "tuples_bucket": os.environ["SECML_TUPLES_BUCKET"],
    "train_key": os.environ["SECML_TRAIN_KEY"],
    "infer_key": os.environ["SECML_INFER_KEY"],
    "truth_key": os.environ["SECML_TRUTH_KEY"],
}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump(config, handle, indent=2)
    handle.write("\n")
PY

chown ec2-user:ec2-user "$SAGEMAKER_HOME/$NOTEBOOK_FILE" "$SAGEMAKER_HOME/workshop_config.json"
echo "secml on-create: $NOTEBOOK_FILE and workshop_config.json are in $SAGEMAKER_HOME"
