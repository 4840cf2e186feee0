#!/usr/bin/env bash
# Schema-driven fuzzing of the whole HTTP API: schemathesis (from PyPI, in a virtual environment
# made here) against a server started here (SQLite, the demo feed, an admin token), with the
# checks not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance. Bounded in time; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
venv="${GOLDJOBS_ST_VENV:-$target_dir/schemathesis-venv}"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi

cargo build -q -p goldjobs-server
work="$(mktemp -d)"
token="schemathesis-admin-token"
out="$work/server.out"
bin="$target_dir/debug/goldjobs-server"
DATABASE_URL="sqlite://$work/st.db?mode=rwc" "$bin" seed-demo >/dev/null
GOLDJOBS_LISTEN=127.0.0.1:0 \
DATABASE_URL="sqlite://$work/st.db?mode=rwc" \
GOLDJOBS_ADMIN_TOKEN="$token" \
GOLDJOBS_NEWS_FEEDS="gold|Local|http://127.0.0.1:9/rss" \
GOLDJOBS_NEWS_INTERVAL=1h \
RUST_LOG=error \
  "$bin" >"$out" 2>"$work/server.err" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q '^listening on' "$out" && break; sleep 0.1; done
addr="$(sed -n 's/^listening on //p' "$out" | head -n1)"
[ -n "$addr" ] || { echo "the server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

timeout 300 "$venv/bin/st" run "http://$addr/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${GOLDJOBS_ST_EXAMPLES:-40}" \
  --header "Authorization: Bearer $token" \
  --request-timeout 10 \
  --exclude-path /ws
