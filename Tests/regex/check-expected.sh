#!/usr/bin/env bash
# Regenerates, with node, the files the regex engine's tests and tables are built from, and
# fails when they differ from the committed ones (an engine answer or a Unicode table that no
# longer agrees with node's ECMA-262 engine). node is required (`make test` runs this): the
# Swift tests compare against the committed answers, this proves they are still node's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! command -v node >/dev/null 2>&1; then
    echo "check-expected: node not found: install nodejs (the expected answers come from node's engine)"
    exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
node "$here/gen-expected.js" "$tmp/expected.json"
if ! diff -q "$here/expected.json" "$tmp/expected.json" >/dev/null; then
    echo "check-expected: Tests/regex/expected.json differs from node's answers:"
    diff "$here/expected.json" "$tmp/expected.json" | head -40
    status=1
fi
node "$here/gen-unicode-tables.js" "$tmp/RegexUnicodeData.swift"
if ! diff -q "$root/Sources/Schema/RegexUnicodeData.swift" "$tmp/RegexUnicodeData.swift" >/dev/null; then
    echo "check-expected: Sources/Schema/RegexUnicodeData.swift differs from node's Unicode data" \
         "($(node -p 'process.versions.unicode')); regenerate with Tests/regex/gen-unicode-tables.js"
    status=1
fi
[ "$status" = 0 ] && echo "check-expected: regex answers and Unicode tables agree with node $(node --version)"
exit "$status"
