#!/bin/bash
# secml workshop notebook instance, on-start: runs as root at every start (the root volume is
# fresh each time). Installs a cron job that stops the instance after a stretch without
# Jupyter activity, so a forgotten notebook does not bill all night.
set -euo pipefail

IDLE_MINUTES='@@IDLE_MINUTES@@'
REGION='@@REGION@@'
# SECML_AUTOSTOP_DIR and SECML_PYTHON exist for the test suite only.
AUTOSTOP_DIR="${SECML_AUTOSTOP_DIR:-/usr/local/bin}"
AUTOSTOP="$AUTOSTOP_DIR/secml-autostop.py"

@@PICK_PYTHON@@
PYTHON="$(pick_python)" || { echo "secml on-start: no python3 with boto3, no auto-stop" >&2; exit 0; }

mkdir -p "$AUTOSTOP_DIR"
cat > "$AUTOSTOP" <<'AUTOSTOP_PY'
@@AUTOSTOP_PY@@
AUTOSTOP_PY
chmod 0755 "$AUTOSTOP"

# Amazon Linux 2023 images may come without cron.
if ! command -v crontab >/dev/null 2>&1; then
    timeout 180 dnf install -y -q cronie >/dev/null 2>&1 || true
fi
if ! command -v crontab >/dev/null 2>&1; then
    echo "secml on-start: cron is not available, auto-stop not installed" >&2
    exit 0
fi
systemctl enable --now crond >/dev/null 2>&1 || true

LINE="*/5 * * * * $PYTHON $AUTOSTOP --idle-minutes $IDLE_MINUTES --region $REGION"
LINE="$LINE >> /var/log/secml-autostop.log 2>&1"
{ crontab -l 2>/dev/null | grep -v 'secml-autostop' || true; echo "$LINE"; } | crontab -
echo "secml on-start: auto-stop after $IDLE_MINUTES idle minutes installed"
