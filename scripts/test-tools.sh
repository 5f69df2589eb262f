#!/bin/sh
# Test tools that npm does not provide, installed by `npm test` itself (the
# `pretest` script), outside the private network namespace the tests run in.
#   promtool (Prometheus's linter, test/integration/observe.test.ts): taken
#   from Debian's `prometheus` package. The .deb is downloaded and only its
#   promtool is unpacked into node_modules/.cache/ (no package is installed,
#   so no Prometheus service is set up or started). Skipped when `promtool`
#   is on the PATH or already unpacked. Needs apt (Debian/Ubuntu); apt's
#   package lists are refreshed once if the first download fails.
#   ip (iproute2) and unshare (util-linux), which scripts/isolated.sh and the
#   LAN tests need: installed from Debian's packages when missing.
set -eu
cd "$(dirname "$0")/.."
for pair in ip:iproute2 unshare:util-linux; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 && continue
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-tools: '$cmd' is missing and this machine has no apt-get: install $pkg" >&2
    exit 1
  fi
  echo "test-tools: installing $pkg (for '$cmd')" >&2
  apt-get install -y -qq "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null; }
done
dest=node_modules/.cache/taskmesh-tools
if command -v promtool >/dev/null 2>&1 || [ -x "$dest/promtool" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: promtool is missing and this machine has no apt-get: install Prometheus's promtool on the PATH" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "test-tools: fetching promtool from Debian's prometheus package" >&2
(cd "$work" && { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; })
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
mkdir -p "$dest"
cp "$work/x/usr/bin/promtool" "$dest/promtool.partial"
mv "$dest/promtool.partial" "$dest/promtool"
"$dest/promtool" --version | head -1 >&2
