#!/usr/bin/env bash
# Packs what a GPU run of bench/gpu-run.sh needs beside the project's own files into .device/
# (git-ignored): this machine's node (the GPU machine has none), node_modules and npm (for the
# jest step), and the shared unpacker enter.sh (../shared/device/enter.sh). The same pack as
# `../shared/device/prepare.sh --node-modules`, which this follows, except that it
#   - works in a git worktree (where .git is a file: .device/ is ignored by .gitignore instead),
#   - packs node_modules where it is a link to a shared install (tar follows the link),
#   - leaves out the lint tools (@biomejs, clang-format: about 100 MB, no part of a test run), so
#     that the pack with node, the CUDA addon and dist stays well inside a device call's 64 MiB.
#
#   bash bench/device-pack.sh        then carry [".device", "build/Release", "dist"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# ../shared beside the checkout; for a worktree, beside the main checkout
main=$(dirname "$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo "$root/.git")")
for d in "${NABLA_DEVICE_DIR:-}" "$root/../shared/device" "$main/../shared/device"; do
  [ -n "$d" ] && [ -f "$d/enter.sh" ] && break
done
enter="$d/enter.sh"
[ -f "$enter" ] || { echo "device-pack: no $enter (set NABLA_DEVICE_DIR to the folder with enter.sh)" >&2; exit 1; }
[ -d "$root/node_modules" ] || { echo "device-pack: no node_modules: run npm install first" >&2; exit 1; }
LEAVE_OUT=(node_modules/.cache node_modules/@biomejs node_modules/clang-format node_modules/.bin/biome
  node_modules/.bin/clang-format node_modules/.bin/check-clang-format node_modules/.bin/git-clang-format)

mkdir -p "$root/.device"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nabla-device" # shared with prepare.sh: node is compressed once
mkdir -p "$cache"
version=$(node --version)
if [ ! -s "$cache/node-$version.xz" ]; then
  echo "compressing node $version once (about 2 minutes on 2 cores)..." >&2
  xz -T2 -6 -c "$(command -v node)" >"$cache/node-$version.xz.part.$$"
  mv "$cache/node-$version.xz.part.$$" "$cache/node-$version.xz"
fi
cp "$cache/node-$version.xz" "$root/.device/node.xz"
cp "$enter" "$root/.device/enter.sh"

modules=$(readlink -f "$root/node_modules")
echo "packing node_modules (from $modules) and npm..." >&2
tar -C "$(dirname "$modules")" "${LEAVE_OUT[@]/#/--exclude=}" --transform "s,^$(basename "$modules"),node_modules," \
  -cf - "$(basename "$modules")" | xz -T2 -6 >"$root/.device/node_modules.tar.xz"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
tar -C "$(dirname "$npm_dir")" -cf - "$(basename "$npm_dir")" | xz -T2 -6 >"$root/.device/npm.tar.xz"
du -sh "$root/.device" >&2
echo "ready: carry [\".device\", \"build/Release\", \"dist\"] and run: bash .device/enter.sh bash bench/gpu-run.sh" >&2
