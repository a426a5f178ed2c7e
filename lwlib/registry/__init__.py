"""The MLflow registry adapter (the only package that imports mlflow): runs, versions, aliases, pyfuncs."""

from lwlib.registry.pyfunc import LearnwarePyfunc, SolutionPyfunc
from lwlib.registry.store import USABLE_ALIAS, RegisteredVersion, Registry, SubmissionRun, model_name_for

__all__ = [
    "Registry",
    "SubmissionRun",
    "RegisteredVersion",
    "LearnwarePyfunc",
    "SolutionPyfunc",
    "USABLE_ALIAS",
    "model_name_for",
]
