#!/usr/bin/env bash
# Installs what tonemask needs on a fresh Debian 12 machine with rustup's Rust toolchain.
#
#   scripts/setup.sh          what building and running needs: the wasm32 standard library
#   scripts/setup.sh --test   also what the tests need: libspandsp-dev (independent reference
#                             detector), sip-tester (SIPp: the real SIP peers of the relay's
#                             end-to-end test), kamailio (the SIP proxy that drives
#                             `tonemask serve` in its end-to-end test), clippy and rustfmt
#
# The wasm32 std comes from `rustup target add wasm32-unknown-unknown`; where rustup cannot
# download it, from Debian's rustc-web (std built from source by `cargo xtask plugin`).
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $apt_updated = 0 ]; then
        echo "setup: apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    echo "setup: apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

has_wasm_std() {
    local dir
    dir=$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
    ls "$dir"/libstd-*.rlib >/dev/null 2>&1
}

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust with rustup first" >&2; exit 1; }
command -v cc >/dev/null || apt_install gcc libc6-dev

if has_wasm_std; then
    echo "setup: wasm32-unknown-unknown std present"
elif rustup target add wasm32-unknown-unknown; then
    echo "setup: installed the wasm32-unknown-unknown target with rustup"
else
    echo "setup: rustup could not install the wasm32 target; using Debian's rustc-web instead"
    apt_install rustc-web rust-web-src rust-web-llvm lld-22
fi

if [ $want_test = 1 ]; then
    apt_install libspandsp-dev sip-tester kamailio systemd
    for c in clippy rustfmt; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi
echo "setup: done"
