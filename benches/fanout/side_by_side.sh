#!/bin/bash
# Side by side: goldjobs, the seed stack, the plain send loop (both ways), at N clients.
# usage: bash benches/fanout/side_by_side.sh 2000 10000   (figures in BENCHMARKS.md, issue #16)
set -u
ulimit -n 20000
# wsload: copy ../shared/bench/wsload out and `cargo build --release` in the copy.
W=${WSLOAD:-/tmp/wsload/target/release/wsload}
B=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$B/../.." && pwd)
S=${SHARED_BENCH:-$ROOT/../shared/bench}
# The server: `cargo build --release -p goldjobs-server` first (or SERVER=path).
SERVER=${SERVER:-${CARGO_TARGET_DIR:-$ROOT/target}/release/goldjobs-server}
# The seed stack needs `websockets` (a venv: python3 -m venv /tmp/wsvenv; /tmp/wsvenv/bin/pip install websockets).
for N in "$@"; do
  echo "=== $N clients"
  dir=$(mktemp -d)
  GOLDJOBS_LISTEN=127.0.0.1:18080 DATABASE_URL="sqlite://$dir/f.db?mode=rwc" GOLDJOBS_PRICE_INTERVAL=1s \
    GOLDJOBS_NEWS_INTERVAL=24h RUST_LOG=warn "$SERVER" > /dev/null 2>&1 & pid=$!
  sleep 3
  echo "--- goldjobs"; $W --url ws://127.0.0.1:18080/ws --clients $N --seconds 20 --pid $pid 2>&1 | tail -6
  kill $pid; wait $pid 2>/dev/null
  (cd $S && ${PYTHON_WS:-/tmp/wsvenv/bin/python} anchor_ws.py > /dev/null 2>&1) & apid=$!; sleep 3
  apy=$(pgrep -f "anchor_ws.py" | head -1)
  echo "--- seed stack"; $W --url ws://127.0.0.1:8765/ --clients $N --seconds 20 --pid $apy 2>&1 | tail -6
  kill $apy 2>/dev/null; kill $apid 2>/dev/null; wait 2>/dev/null
  echo "--- plain send loop"; python3 $S/limit_fanout.py $((N - N / 100)) 20
  echo "--- send loop, readers in epoll"; python3 $B/limit_fanout_readers.py $((N - N / 100)) 20 | tail -1
done
