#!/usr/bin/env bash
# Installs what the VS Code extension's build and tests need; idempotent (skips what is already there).
#   - Debian packages: chromium, ripgrep, libkrb5-dev, fonts-liberation (for code-server + headless tests)
#   - vscode-extension/: npm ci, compile, unit tests' build, .vsix package
#   - tests/vscode/: npm ci (playwright-core)
#   - code-server 4.100.3 (offline-friendly install, see /work/shared/EDITOR-TEST-HARNESSES.md)
#     into $HOTLINE_CODE_SERVER_DIR (default ~/.cache/hotline-code-server/4.100.3)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CS_VERSION=4.100.3
CS_DIR=${HOTLINE_CODE_SERVER_DIR:-$HOME/.cache/hotline-code-server/$CS_VERSION}

# -- Debian packages --------------------------------------------------------------------------------
missing=()
for pkg in chromium ripgrep libkrb5-dev fonts-liberation; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# -- the extension: dependencies, build, .vsix --------------------------------------------------------
(
  cd vscode-extension
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm run -s package   # compile (esbuild) + vsce package -> hotline.vsix
)

# -- the e2e driver (playwright-core) -------------------------------------------------------------------
(
  cd tests/vscode
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
)

# -- code-server ------------------------------------------------------------------------------------------
if [ ! -f "$CS_DIR/.complete" ]; then
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  (
    cd "$CS_DIR"
    echo '{"name":"hotline-code-server","private":true}' > package.json
    npm install --ignore-scripts --no-audit --no-fund "code-server@$CS_VERSION"
    npm rebuild argon2
    cd node_modules/code-server/lib/vscode
    npm install --omit=dev --ignore-scripts --no-audit --no-fund
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm_config_yes=true npm rebuild
    ln -sfn node_modules node_modules.asar
    (cd bin/remote-cli && ln -sfn code-linux.sh code-server)
    (cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
    cd extensions
    npm install --omit=dev --no-audit --no-fund
  )
  touch "$CS_DIR/.complete"
fi
echo "setup-vscode: code-server in $CS_DIR; vsix at $REPO/vscode-extension/hotline.vsix"
