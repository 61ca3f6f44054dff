#!/usr/bin/env bash
# Sets up .venv, builds and installs aneforge, and runs the quickstart.
source "$(dirname "$0")/env.sh"
af_step "running examples/quickstart.py"
python examples/quickstart.py
cat <<'NEXT'

Next:
  source .venv/bin/activate
  python examples/flexible_batch.py    # a classifier with a flexible batch, PyTorch spelling
  aneforge --help                      # inspect, export and run programs from the shell
  docs/pytorch.md                      # torch / F calls and their af spelling
  bash scripts/test-all.sh             # every test, C++ and Python
NEXT
