"""What MLflow records about a submission: params, metrics, tags and artifacts, shaped from one typed value.

Why here: the registry adapter owns the MLflow vocabulary (strings only, 6,000-char params, tag names), so the
stage code hands over a :class:`~lwlib.submission.Submission` and never builds MLflow dicts itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from lwlib.status import Status
from lwlib.text import escape_markdown

if TYPE_CHECKING:
    from lwlib.submission import Submission

__all__ = ["RunPayload", "submission_payload", "model_name_for", "model_description"]

SLUG_CHARS = 40


def model_name_for(learnware_id: str, name: str | None = None) -> str:
    """The registered-model name of a learnware: a slug of its semantic name plus 8 hex of its content id.

    Readable in the MLflow UI and unique per content (two learnwares with one name differ in the suffix);
    ``lw-<12 hex>`` when there is no name.
    """
    if not name:
        return f"lw-{learnware_id[:12]}"
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{slug[:SLUG_CHARS].strip('-') or 'learnware'}-{learnware_id[:8]}"


def model_description(sub: Submission) -> str:
    """A one-paragraph description for the registered model (what it does, on what, how it was checked)."""
    sem = sub.semantic
    dims = ""
    if sem.input is not None:
        dims += f" Input: {sem.input.dimension} features."
    if sem.output is not None:
        dims += f" Output: {sem.output.dimension}."
    status = sub.check.status.value if sub.check is not None else "unchecked"
    text = f"{escape_markdown(sem.name)}: {escape_markdown(sem.description, max_chars=2000)}"  # MLflow renders Markdown
    return (text + f"\n\n{sem.data_type} {sem.task_type} ({sem.library_type}), licence {sem.license}.{dims} "
            f"Check: {status}.")


@dataclass(frozen=True)
class RunPayload:
    """One submission's MLflow record: run params and metrics, model tags, JSON/YAML artifacts by path."""

    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    artifacts: Mapping[str, Any]


def submission_payload(sub: Submission) -> RunPayload:
    """Shape what MLflow stores for ``sub`` (which must have passed check)."""
    sem, check, spec, runtime = sub.semantic, sub.check, sub.spec, sub.runtime
    assert check is not None
    mode = runtime.mode if runtime is not None else "unbuilt"
    key = runtime.env_key if runtime is not None else "unbuilt"
    params = {"data_type": sem.data_type, "task_type": sem.task_type, "library_type": sem.library_type,
              "scenarios": ",".join(sem.scenarios), "license": sem.license, "name": sem.name,
              "spec_type": spec.spec_type, "runtime_mode": mode, "runtime_key": key[:16],
              "label_spec": type(sub.label_spec).__name__ if sub.label_spec is not None else "none"}
    metrics = {f"time_{k}_s": float(v) for k, v in sub.timings.items()}
    metrics.update({"check_usable": float(check.status is Status.USABLE), "check_duration_s": check.duration_s,
                    "probes_passed": float(sum(bool(p.get("ok", False)) for p in check.probes.values())),
                    "spec_self_inner": spec.self_mmd2, "spec_k": float(spec.reduced_set_size)})
    tags = {"lwdock.name": sem.name, "lwdock.data_type": sem.data_type, "lwdock.task_type": sem.task_type,
            "lwdock.library_type": sem.library_type, "lwdock.scenarios": ",".join(sem.scenarios),
            "lwdock.license": sem.license, "lwdock.status": check.status.value, "lwdock.source": sub.source_name}
    artifacts: dict[str, Any] = {
        "manifest/learnware.yaml": sub.learnware.manifest.to_dict(),
        **{f"spec/{t}.json": stat.to_dict() for t, stat in sub.learnware.stat_specs.items()},
        "check/check_report.json": check.to_dict(), "check/spec_report.json": spec.to_dict(),
        "semantic/semantic_specification.json": sem.to_reference()}
    if sub.label_spec is not None:
        artifacts[f"spec/{sub.label_spec.type_name}.json"] = sub.label_spec.to_dict()
    return RunPayload(params, metrics, tags, artifacts)
