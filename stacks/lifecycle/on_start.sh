#!/bin/bash
# secml workshop notebook instance, on-start: runs as root at every start (the root volume is
# fresh each time). Registers the notebook's kernel, and installs a job that stops the instance
# after a stretch without Jupyter activity, so a forgotten notebook does not bill all night.
# A missing tool never fails the start: it is said in this script's log, and the start goes on.
set -euo pipefail

IDLE_MINUTES='@@IDLE_MINUTES@@'
REGION='@@REGION@@'
# SECML_AUTOSTOP_DIR, SECML_SYSTEMD_DIR and SECML_SYSTEMD_RUNTIME exist for the
# test suite only.
AUTOSTOP_DIR="${SECML_AUTOSTOP_DIR:-/usr/local/bin}"
AUTOSTOP="$AUTOSTOP_DIR/secml-autostop.py"
SYSTEMD_DIR="${SECML_SYSTEMD_DIR:-/etc/systemd/system}"
SYSTEMD_RUNTIME="${SECML_SYSTEMD_RUNTIME:-/run/systemd/system}"
LOG=/var/log/secml-autostop.log

@@PICK_PYTHON@@
@@SDK_KERNEL@@

if register_sdk_kernel; then
    echo "secml on-start: kernel secml (SageMaker SDK v3) registered"
else
    echo "secml on-start: kernel secml (SageMaker SDK v3) not installed (yet); see $SDK_LOG" >&2
fi

# autostop.py stops the instance with boto3, or with the AWS CLI when that python has no boto3.
if ! PYTHON="$(pick_python)"; then
    PYTHON="$(command -v python3 || true)"
    if [ -z "$PYTHON" ] || ! command -v aws >/dev/null 2>&1; then
        echo "secml on-start: no python3 with boto3 (nor python3 and the AWS CLI): auto-stop NOT installed" >&2
        exit 0
    fi
fi

mkdir -p "$AUTOSTOP_DIR"
cat > "$AUTOSTOP" <<'AUTOSTOP_PY'
@@AUTOSTOP_PY@@
AUTOSTOP_PY
chmod 0755 "$AUTOSTOP"
COMMAND="$PYTHON $AUTOSTOP --idle-minutes $IDLE_MINUTES --region $REGION"

# Amazon Linux 2023 (the notebook platform) runs systemd and may come without cron: a timer.
install_timer() {
    [ -d "$SYSTEMD_RUNTIME" ] && command -v systemctl >/dev/null 2>&1 || return 1
    cat > "$SYSTEMD_DIR/secml-autostop.service" <<UNIT || return 1
[Unit]
Description=secml workshop: stop this notebook instance after $IDLE_MINUTES idle minutes

[Service]
Type=oneshot
ExecStart=$COMMAND
StandardOutput=append:$LOG
StandardError=append:$LOG
UNIT
    cat > "$SYSTEMD_DIR/secml-autostop.timer" <<UNIT || return 1
[Unit]
Description=secml workshop: check Jupyter activity every 5 minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
UNIT
    systemctl daemon-reload && systemctl enable --now secml-autostop.timer
}

install_cron() {
    if ! command -v crontab >/dev/null 2>&1; then
        timeout 180 dnf install -y -q cronie >/dev/null 2>&1 || true
    fi
    command -v crontab >/dev/null 2>&1 || return 1
    systemctl enable --now crond >/dev/null 2>&1 || true
    local line="*/5 * * * * $COMMAND >> $LOG 2>&1"
    { crontab -l 2>/dev/null | grep -v 'secml-autostop' || true; echo "$line"; } | crontab -
}

if install_timer; then
    echo "secml on-start: auto-stop after $IDLE_MINUTES idle minutes installed (systemd timer)"
elif install_cron; then
    echo "secml on-start: auto-stop after $IDLE_MINUTES idle minutes installed (cron)"
else
    echo "secml on-start: neither a systemd timer nor cron could be set up: auto-stop NOT installed" >&2
fi
