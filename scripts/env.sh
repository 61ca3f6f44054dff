# Shared setup: a virtualenv in $VENV (default .venv) with aneforge built and installed.
# Usage: source scripts/env.sh [extras]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# Build requirements are installed into the venv so that rebuilds reuse build/ incrementally.
python -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.4" "scipy-openblas32>=0.3.27" cmake ninja
EXTRAS="${1:-}"
python -m pip install -q --no-build-isolation ".${EXTRAS:+[$EXTRAS]}"
