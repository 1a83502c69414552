#!/bin/bash
# secml workshop notebook instance, on-create: runs once, as root, when the instance is created.
# Copies the workshop notebook, its helper module and a config file describing this stack into
# the Jupyter home, and starts installing the notebook's kernel in the background.
set -euo pipefail

# SECML_SAGEMAKER_HOME exists for the test suite only.
SAGEMAKER_HOME="${SECML_SAGEMAKER_HOME:-/home/ec2-user/SageMaker}"
NOTEBOOK_BUCKET='@@NOTEBOOK_BUCKET@@'
NOTEBOOK_KEY='@@NOTEBOOK_KEY@@'
NOTEBOOK_FILE='@@NOTEBOOK_FILE@@'
HELPERS_BUCKET='@@HELPERS_BUCKET@@'
HELPERS_KEY='@@HELPERS_KEY@@'
HELPERS_FILE='@@HELPERS_FILE@@'
SDK_REQUIREMENTS='@@SDK_REQUIREMENTS@@'
REGION='@@REGION@@'

@@PICK_PYTHON@@
@@SDK_KERNEL@@

# Python with boto3 if there is one, else the AWS CLI: a missing tool must not fail the instance.
if PYTHON="$(pick_python)"; then
    fetch() {
        "$PYTHON" -c 'import sys, boto3
boto3.client("s3", region_name=sys.argv[1]).download_file(*sys.argv[2:5])' "$REGION" "$@"
    }
elif command -v aws >/dev/null 2>&1; then
    echo "secml on-create: no python3 with boto3, fetching with the AWS CLI"
    fetch() { aws s3 cp --only-show-errors --region "$REGION" "s3://$1/$2" "$3"; }
else
    echo "secml on-create: neither a python3 with boto3 nor the AWS CLI: cannot fetch the notebook" >&2
    exit 1
fi

mkdir -p "$SAGEMAKER_HOME"
fetch "$NOTEBOOK_BUCKET" "$NOTEBOOK_KEY" "$SAGEMAKER_HOME/$NOTEBOOK_FILE"
fetch "$HELPERS_BUCKET" "$HELPERS_KEY" "$SAGEMAKER_HOME/$HELPERS_FILE"

# Plain text, no tool needed: every value is a name CloudFormation and S3 restrict to safe
# characters (letters, digits, '-', '.', '/', '_').
cat > "$SAGEMAKER_HOME/workshop_config.json" <<JSON
{
  "stack_name": "@@STACK_NAME@@",
  "region": "$REGION",
  "data_bucket": "@@DATA_BUCKET@@",
  "tuples_bucket": "@@TUPLES_BUCKET@@",
  "train_key": "@@TRAIN_KEY@@",
  "infer_key": "@@INFER_KEY@@",
  "truth_key": "@@TRUTH_KEY@@"
}
JSON

chown ec2-user:ec2-user "$SAGEMAKER_HOME/$NOTEBOOK_FILE" "$SAGEMAKER_HOME/$HELPERS_FILE" \
    "$SAGEMAKER_HOME/workshop_config.json"
echo "secml on-create: $NOTEBOOK_FILE, $HELPERS_FILE and workshop_config.json are in $SAGEMAKER_HOME"

# The SDK takes minutes to install (docs/notebook.md has the figures): in the background, so
# that this script stays far inside its 5-minute limit. It registers the kernel when done.
if [ -x "$KERNEL_BASE_PYTHON" ]; then
    nohup bash -c "$(declare -f register_sdk_kernel)
        SDK_VENV='$SDK_VENV' KERNELS_DIR='$KERNELS_DIR' KERNEL_NAME='$KERNEL_NAME'
        set -e
        sudo -u ec2-user '$KERNEL_BASE_PYTHON' -m venv --system-site-packages '$SDK_VENV'
        sudo -u ec2-user '$SDK_VENV/bin/pip' install --quiet --disable-pip-version-check \
            $SDK_REQUIREMENTS
        register_sdk_kernel
        echo 'secml on-create: kernel secml (SageMaker SDK v3) installed'" \
        >"$SDK_LOG" 2>&1 </dev/null &
    echo "secml on-create: installing $SDK_REQUIREMENTS in the background, log: $SDK_LOG"
else
    echo "secml on-create: no $KERNEL_BASE_PYTHON: the SageMaker SDK kernel is not installed" >&2
fi
