#!/usr/bin/env bash
# Screenshot of the demo report in headless Chromium, to check how it renders (not needed to run
# anything; `apt-get install chromium` provides the browser).
set -euo pipefail
report="${1:-demo-output/report.html}"
png="${2:-/tmp/report.png}"
size="${3:-1280,2400}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$browser" ]]; then
  echo "screenshot_report.sh: no chromium found (apt-get install chromium)" >&2
  exit 2
fi
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --hide-scrollbars \
  --screenshot="$png" --window-size="$size" "file://$(realpath "$report")" 2>/dev/null
echo "$png"
