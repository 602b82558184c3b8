#!/usr/bin/env bash
# Build the browser demo into web/dist/ (generated, not committed): the library compiled to wasm32 as a cdylib,
# then wasm-bindgen-cli (same version as the wasm-bindgen crate in Cargo.lock) for the JS glue.
# Serve web/dist/ with any static server, e.g. `python3 -m http.server 8000 --bind 127.0.0.1 --directory web/dist`.
# Usage: web/build.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
WB_VERSION=0.2.130
PROFILE=release; FLAG=--release
[ "${1:-}" = "--debug" ] && { PROFILE=debug; FLAG=; }
command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version)" != "wasm-bindgen $WB_VERSION" ]; then
    # (--locked fails for this version: its lock file pins a webpki-roots the registry no longer has)
    cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi
# cdylib only here, so native builds do not link a shared library they never use
cargo rustc --locked $FLAG --lib --target wasm32-unknown-unknown --crate-type cdylib
rm -rf web/dist && mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg "target/wasm32-unknown-unknown/$PROFILE/hyperdistill.wasm"
cp web/index.html web/dist/
raw=$(stat -c %s web/dist/pkg/hyperdistill_bg.wasm)
gz=$(gzip -9 -c web/dist/pkg/hyperdistill_bg.wasm | wc -c)
echo "web/dist ready: hyperdistill_bg.wasm $raw bytes raw, $gz bytes gzipped"
