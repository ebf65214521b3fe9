#!/usr/bin/env bash
# Crawl measurement: a 15,000-node sim network in three sim-net processes (5,000
# addresses each, inside the 20,000-descriptor budget), one peerwire-seeder crawling it.
# Prints the seeder's status lines (every second) and, at the end, the time until every
# node that can handshake had been probed successfully, and memory per known node.
# Usage: seeder/scripts/crawl-15k.sh [NODES] [SHARDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
NODES=${1:-15000}
SHARDS=${2:-3}
SECONDS_MAX=${3:-60}
BIN=target/release
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -p seeder --bins >/dev/null 2>&1
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
for ((s = 0; s < SHARDS; s++)); do
  "$BIN/sim-net" --nodes "$NODES" --shard "$s" --shards "$SHARDS" >"$DIR/sim$s.out" &
  PIDS+=($!)
done
for ((s = 0; s < SHARDS; s++)); do
  until grep -q ready "$DIR/sim$s.out" 2>/dev/null; do sleep 0.1; done
done
# Nodes that complete a handshake: good, old version, no NODE_NETWORK, poisoner.
"$BIN/sim-net" --nodes "$NODES" --print-layout >"$DIR/layout"
HANDSHAKING=$(grep -cE ' (Good|OldVersion|NoNetwork|Poisoner)$' "$DIR/layout")
SEED=$(awk '$2 == "Good" { print $1; exit }' "$DIR/layout")
echo "sim: $NODES nodes in $SHARDS processes; $HANDSHAKING of them handshake"
PORT=$((20000 + RANDOM % 20000))
MPORT=$((PORT + 1))
START=$(date +%s.%N)
RUST_LOG=info "$BIN/peerwire-seeder" --network regtest --seed "$SEED:18444" --zone seed.test --ns ns.test \
  --dns-listen "127.0.0.1:$PORT" --db "$DIR/db.sqlite" --allow-local-addresses --revisit 3600 \
  --concurrency "${CONCURRENCY:-2000}" --status-interval 1 --metrics-listen "127.0.0.1:$MPORT" 2>"$DIR/seeder.log" &
SPID=$!
PIDS+=($SPID)
DONE=""
while :; do
  sleep 0.2
  NOW=$(date +%s.%N)
  M=$(curl -s "127.0.0.1:$MPORT/metrics" 2>/dev/null || true)
  OK=$(echo "$M" | awk '/^peerwire_seeder_probe_successes_total/ { print $2 }')
  if [ -n "$OK" ] && [ "$OK" -ge "$HANDSHAKING" ] && [ -z "$DONE" ]; then
    DONE=$(echo "$NOW - $START" | bc)
    echo "every handshaking node probed after ${DONE} s"
    break
  fi
  if [ "$(echo "$NOW - $START > $SECONDS_MAX" | bc)" = 1 ]; then echo "not done in ${SECONDS_MAX} s"; break; fi
done
grep -o 'known=.*' "$DIR/seeder.log" | tail -n 5
echo "$M" | grep -E '^peerwire_seeder_(known|tried|probes_total|probe_successes)'
RSS=$(awk '/VmRSS/ { print $2 }' /proc/$SPID/status)
KNOWN=$(echo "$M" | awk '/^peerwire_seeder_known_nodes/ { print $2 }')
kill -TERM "$SPID"; wait "$SPID" || true
DBSIZE=$(du -cb "$DIR"/db.sqlite* | tail -1 | cut -f1)
ROWS=$(echo "select count(*) from nodes;" | (command -v sqlite3 >/dev/null && sqlite3 "$DIR/db.sqlite" || echo "$KNOWN"))
echo "rss=${RSS} KiB known=$KNOWN -> $(echo "$RSS * 1024 / $KNOWN" | bc) B/known node (process total, includes runtime and buffers)"
echo "db=${DBSIZE} B rows=$ROWS -> $(echo "$DBSIZE / $ROWS" | bc) B/row"
