"""The dock's own memory stays bounded whatever a model sends back (issue 10: worst case <= 1.5 GB peak RSS).

Each scenario runs the real check in a fresh Python process (its ``VmHWM`` is that scenario's peak, not the test
session's: ``ru_maxrss`` survives exec and would report the parent's peak)
with the default :class:`RuntimeLimits` (256 MiB answers): an answer just under the limit, one over it,
and a gigabyte of stderr with and without newlines. Run this file directly to print the figures:
``python tests/hostile/runtime/test_dock_memory.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lwlib.runtime.sandbox import bwrap_available

LIMIT_MB = 1536
ANSWER_MB = 250
SCENARIOS = {
    "baseline": "return X.sum(axis=1)",
    "answer-250MB": f"return np.ones((len(X), {ANSWER_MB} * 1024 ** 2 // 8 // len(X)))",
    "answer-300MB-refused": "return np.ones((len(X), 300 * 1024 ** 2 // 8 // len(X)))",
    "stderr-1GB-no-newline": "chunk = b'x' * (1 << 20)\nfor _ in range(1024):\n    os.write(2, chunk)\n"
                             "return X.sum(axis=1)",
    "stderr-1GB-long-lines": "chunk = b'y' * ((1 << 20) - 1) + b'\\n'\nfor _ in range(1024):\n    os.write(2, chunk)\n"
                             "return X.sum(axis=1)",
}
DRIVER = textwrap.dedent('''
    import json, os, sys, tempfile, textwrap
    from pathlib import Path

    def hwm_kib():  # this address space's peak RSS; ru_maxrss would carry the parent's peak over fork+exec
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    if os.environ.get("LWDOCK_MEMORY_HEAVY"):  # the dock process as a flow run has these loaded
        import mlflow, prefect, torch  # noqa: F401
    from types import SimpleNamespace
    from lwlib.check import check_learnware
    from lwlib.learnware.requirements import Requirements
    from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeLimits

    body = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lw"
        root.mkdir()
        (root / "__init__.py").write_text(
            "import os\\nimport numpy as np\\nfrom learnware.model import BaseModel\\n"
            "class Model(BaseModel):\\n    def __init__(self):\\n"
            "        super().__init__(input_shape=(2,), output_shape=None)\\n"
            "    def predict(self, X):\\n" + textwrap.indent(body, " " * 8) + "\\n")
        lw = SimpleNamespace(id="memory", root=root, requirements=Requirements.from_lines(["numpy"]),
                             semantic_spec=None, stat_specs={}, manifest=SimpleNamespace(model=ModelEntrySpec()))
        envs = EnvironmentManager(Path(tmp) / "envs", Path(tmp) / "uv")
        limits = RuntimeLimits(call_timeout=300, startup_timeout=120)
        before = hwm_kib()
        report = check_learnware(lw, lambda lw: Runtime.open(lw, envs=envs, hide=(Path(tmp),), limits=limits))
        peak = hwm_kib()
    print(json.dumps({"status": report.status.value, "code": report.code, "reason": report.reason,
                      "rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024}))
''')


def measure(name: str, heavy: bool = False) -> dict[str, object]:
    """Peak RSS (MiB) of a fresh dock process checking the scenario's model (``heavy``: with Prefect, MLflow and
    torch imported first, as in a flow run)."""
    env = {**os.environ, **({"LWDOCK_MEMORY_HEAVY": "1"} if heavy else {})}
    res = subprocess.run([sys.executable, "-c", DRIVER, SCENARIOS[name]], capture_output=True, text=True,
                         timeout=900, cwd=Path(__file__).resolve().parents[3], check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not bwrap_available(), reason="needs bubblewrap")
@pytest.mark.parametrize("name, status, code, growth_mb", [
    ("answer-250MB", "USABLE", "ok", 1.5 * ANSWER_MB),  # one copy of the answer plus small temporaries
    ("answer-300MB-refused", "NONUSABLE", "model_output_too_large", 64),  # refused from its header
    ("stderr-1GB-no-newline", "USABLE", "ok", 64),
    ("stderr-1GB-long-lines", "USABLE", "ok", 64),
])
def test_dock_peak_rss_is_bounded(name: str, status: str, code: str, growth_mb: float) -> None:
    out = measure(name)
    assert (out["status"], out["code"]) == (status, code), out
    peak, before = float(out["peak_rss_mb"]), float(out["rss_before_mb"])  # type: ignore[arg-type]
    assert peak <= LIMIT_MB and peak - before <= growth_mb, out


if __name__ == "__main__":
    for heavy in (False, True):
        for scenario in SCENARIOS:
            print("heavy" if heavy else "light", scenario, measure(scenario, heavy))
