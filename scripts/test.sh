#!/usr/bin/env bash
# The test command: installs the outside judges and servers the tests use (xmllint, openssl,
# strace, PostgreSQL, chromium and chromedriver, Python's cryptography), then checks
# formatting and lints, builds once in release and runs every test of the workspace — the
# store's suite on sled and on real PostgreSQL servers the tests start themselves, and the
# end-to-end tests that spawn the release binary (and drive the web console in chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# The web console is tested in Debian's chromium, headless, with certificates in an NSS database.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v pk12util >/dev/null 2>&1 || need_apt+=(libnss3-tools)
# A Japanese font, so the console's screenshots show its labels.
[ -d /usr/share/fonts/opentype/ipafont-gothic ] || need_apt+=(fonts-ipafont-gothic)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing ${need_apt[*]}: install them (apt-get install ${need_apt[*]}) or run as root" >&2
    exit 1
  fi
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
# schemathesis drives the OpenAPI document against a live gateway (tests/openapi.rs); offline,
# that test says so and skips.
command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis || true

# The PostgreSQL backend is compiled and tested too (it is optional in the embedded build).
features=(--features renkei-store/postgres)
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets "${features[@]}" -- -D warnings
cargo build --release --workspace "${features[@]}"
cargo test --release --workspace "${features[@]}"
# The same promises on PostgreSQL: the spine, registry, records, provision and sign-in suites
# again, each deployment on a PostgreSQL server of its own (tests/common: RENKEI_TEST_STORE).
pg_suites=(spine_happy spine_idempotency spine_bad_input spine_crash spine_platform_faults
  registry_import registry_link records_audit hostile_records provision provision_import
  provision_manual
  ops_status_index staff_signin)
pg_tests=()
for t in "${pg_suites[@]}"; do pg_tests+=(--test "$t"); done
RENKEI_TEST_STORE=postgres cargo test --release --workspace "${features[@]}" "${pg_tests[@]}"
