#!/bin/sh
# Validates every valid vector against its schema with xmllint. Exit status 0 when all pass.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
schemas="$here/../../schemas/platform"
command -v xmllint >/dev/null || { echo "xmllint missing: apt-get install -y libxml2-utils" >&2; exit 2; }
xmllint --noout --nonet --schema "$schemas/messages.xsd" "$here"/[0-9]*.xml
xmllint --noout --nonet --schema "$schemas/payloads.xsd" "$here"/p*.xml
