#!/usr/bin/env bash
# Install the system packages the test suite runs for real: PostgreSQL, SoftHSM2
# (PKCS#11) and Chromium. Fails loudly when they cannot be installed: a test that
# needs one of them is never skipped.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages for the tests: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
