#!/usr/bin/env bash
# Run every fuzz target for RUNS executions (default 10 million) and keep the corpora.
# Needs cargo-fuzz (cargo install cargo-fuzz); RUSTC_BOOTSTRAP lets the stable toolchain
# accept the flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")"
RUNS="${RUNS:-10000000}"
for t in socks sam_reply hosts_txt keys_http irc_filter http_filter dns udp_header; do
  mkdir -p "corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O "$t" "corpus/$t" -- \
    -runs="$RUNS" -max_len=4096 -print_final_stats=1 2>&1 | tee "/tmp/fuzz-$t.log" | grep -E "Done|stat::number_of_executed_units|panicked|SUMMARY" || true
done
