#!/usr/bin/env bash
# Install the system packages the test suite runs for real: PostgreSQL, SoftHSM2
# (PKCS#11), Chromium, and Node.js with npm (the federation demo's OpenID
# providers). Fails loudly when they cannot be installed: a test that needs one of
# them is never skipped. `system-deps.sh node` checks Node.js and npm only
# (`make federation`); `system-deps.sh bench` adds wrk (`make bench`).
set -euo pipefail
need=()
if [ "${1:-all}" != node ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  [ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${1:-all}" = bench ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages for the tests: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
