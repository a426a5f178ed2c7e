#!/usr/bin/env bash
# Build .venv-reference/ with the reference `learnware` package (PyPI 0.4.0.post1), idempotently.
#
# Why a separate venv: the reference needs numpy<2 and an older scikit-learn, which clash with our stack.
# torch is installed first at exactly 2.13.0 (the CPU wheel) and every later install runs under a constraints file
# pinning it, because any other torch resolution downloads GBs of CUDA wheels.
# Re-running is cheap: a stamp holding the hash of the pins skips the install when nothing changed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${REFERENCE_VENV:-$ROOT/.venv-reference}"
PY="${PY:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
REQ="$HERE/requirements-reference.txt"
STAMP="$VENV/.reference-installed"
# Only torch is constrained: the project's constraints.txt may pin things (numpy>=2, ...) the reference cannot use.
TORCH_PIN="torch==2.13.0"

want="$( (cat "$REQ"; echo "$TORCH_PIN") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "reference venv up to date: $VENV"
  exit 0
fi

start=$(date +%s)
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
CONSTRAINTS="$VENV/constraints-reference.txt"
echo "$TORCH_PIN" > "$CONSTRAINTS"
"$VENV/bin/python" -m pip install -q -U pip
"$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" "$TORCH_PIN"
"$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" -r "$REQ"
# Smoke check: the import path the runner uses.
"$VENV/bin/python" - <<'PY'
import learnware
from learnware.market import instantiate_learnware_market, BaseUserInfo  # noqa: F401
from learnware.specification import generate_rkme_table_spec  # noqa: F401
from learnware.reuse import AveragingReuser, JobSelectorReuser  # noqa: F401
import fast_pytorch_kmeans, lightgbm, torch  # noqa: F401,E401
assert torch.__version__.startswith("2.13.0"), torch.__version__
print("learnware", learnware.__version__, "torch", torch.__version__)
PY
echo "$want" > "$STAMP"
echo "reference venv built in $(( $(date +%s) - start )) s: $VENV"
