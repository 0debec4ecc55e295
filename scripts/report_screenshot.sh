#!/usr/bin/env bash
# Renders a report.html in headless Chromium (Debian's `chromium` package) and writes a PNG
# screenshot next to it, to look at before trusting a change to the report's layout:
#   scripts/report_screenshot.sh WORKDIR/report/report.html [OUT.png] [HEIGHT]
# Not part of the test suite (CI has no browser); tests/cli/test_report.sh checks the HTML's
# structure instead.
set -euo pipefail
html=$(readlink -f "$1")
out=${2:-${html%.html}.png}
height=${3:-4000}
command -v chromium >/dev/null || { echo "no chromium (apt-get install chromium)" >&2; exit 1; }
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1000,"$height" --screenshot="$out" "file://$html" 2>/dev/null
[ -s "$out" ] || { echo "no screenshot written" >&2; exit 1; }
echo "$out"
