"""Usability check: run a learnware's model in its isolated runtime and probe it.

The reference checker instantiates uploader code in the host process and validates with ``assert``; here the model
only ever runs behind :class:`lwlib.runtime.Runtime`, every probe is explicit, and the outcome is a typed
:class:`CheckReport` whose status is USABLE or NONUSABLE with a reason a developer can act on.

The report is stored in the catalog, MLflow and Prefect and shown to the submitter (who may be the attacker), so it
never holds free text the model could fill with what it read. Reasons are built by the dock from the failure's facts
(the call, the exit status, the limit hit); of the model's own words only its exception's class name is kept, and for
an import error the module's name, both checked to be Python identifiers (at most 80 characters). The
message, traceback and stderr of the model stay out of the report: a model that reads a file and raises its content
leaves nothing of it here. Every reason is one line of at most :data:`REASON_CHARS` characters without control
characters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lwlib.errors import LwdockError, MalformedOutputError, ModelRuntimeError, RuntimeBuildError
from lwlib.runtime.text import exception_name, first_line
from lwlib.status import Status

__all__ = ["CheckReport", "check_learnware", "model_failure_reason", "open_failure_report", "probe_inputs",
           "runtime_unbuilt"]

logger = logging.getLogger(__name__)

N_PROBE = 10
REASON_CHARS = 400


@dataclass(frozen=True)
class CheckReport:
    """What the check found: status + reason (+ a machine code), the probes run, and the protections in force."""

    status: Status
    reason: str
    code: str = "ok"
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    probes: dict[str, Any] = field(default_factory=dict)
    protections: tuple[str, ...] = ()
    duration_s: float = 0.0
    missing_protections: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckReport:
        d = dict(d)
        d["status"] = Status(d["status"])
        for k in ("input_shape", "output_shape"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        d["protections"] = tuple(d.get("protections", ()))
        d["missing_protections"] = tuple(d.get("missing_protections", ()))
        return cls(**d)


def _table_spec(learnware: Any) -> Any | None:
    for spec in getattr(learnware, "stat_specs", {}).values():
        if getattr(spec, "z_", None) is not None:
            return spec
    return None


def probe_inputs(learnware: Any, input_shape: tuple[int, ...] | None, *, random_state: int = 0) -> dict[str, np.ndarray]:
    """Build probe batches: points herded from the learnware's own RKME, Gaussians at its scale, and plain N(0, 1).

    Probing with the spec's own points checks the model on the data it claims to handle; the scaled random batch
    catches models that only survive in-distribution inputs; ``randn`` matches the reference probe.
    """
    rng = np.random.default_rng(random_state)
    semantic = getattr(learnware, "semantic_spec", None)
    if semantic is not None and getattr(semantic, "data_type", None) == "Text":
        words = np.array(["".join(rng.choice(list("abcdefghij klmnop"), size=int(n))) for n in rng.integers(10, 200, N_PROBE)])
        return {"random_text": words}
    spec = _table_spec(learnware)
    shape = tuple(input_shape) if input_shape else ((spec.z_.shape[1],) if spec is not None else None)
    if shape is None:
        return {}
    batches: dict[str, np.ndarray] = {"randn": rng.standard_normal((N_PROBE, *shape))}
    if spec is not None and int(np.prod(shape)) == spec.z_.shape[1]:
        herd = np.asarray(spec.herding(N_PROBE, random_state=random_state), dtype=np.float64)
        batches["rkme_herding"] = herd.reshape(N_PROBE, *shape)
        w = np.clip(spec.beta_, 0, None)
        w = w / w.sum() if w.sum() > 0 else np.full_like(w, 1 / len(w))
        mean = w @ spec.z_
        std = np.sqrt(np.maximum(w @ (spec.z_ - mean) ** 2, 1e-12))
        batches["rkme_scaled_normal"] = (mean + std * rng.standard_normal((N_PROBE, spec.z_.shape[1]))).reshape(N_PROBE, *shape)
    return batches


def _expect_shapes(learnware: Any, input_shape: tuple[int, ...] | None,
                   output_shape: tuple[int, ...] | None) -> str | None:
    """Compare the model's declared shapes with its semantic Input/Output dimensions; return a problem or None."""
    sem = getattr(learnware, "semantic_spec", None)
    if sem is None:
        return None
    if (sem.data_type == "Table" and sem.input is not None and input_shape is not None
            and tuple(input_shape) != (sem.input.dimension,)):
        return (f"model input_shape {tuple(input_shape)} does not match the semantic Input.Dimension "
                f"{sem.input.dimension}; fix the model's input_shape or the semantic spec")
    spec = _table_spec(learnware)
    if (sem.data_type == "Table" and spec is not None and input_shape is not None
            and int(np.prod(input_shape)) != spec.z_.shape[1]):
        return f"model input_shape {tuple(input_shape)} does not match the RKME dimension {spec.z_.shape[1]}"
    if sem.output is not None and output_shape is not None and sem.task_type in ("Classification", "Regression"):
        out = tuple(output_shape)
        if sem.task_type == "Regression" and out[0] != sem.output.dimension:
            return f"model output_shape {out} does not match Output.Dimension {sem.output.dimension}"
        if sem.task_type == "Classification" and out != (1,) and out[0] != sem.output.dimension:
            return (f"classifier output_shape {out} must be (1,) (labels) or ({sem.output.dimension},) "
                    f"(one score per class, Output.Dimension)")
    return None


def _check_output(learnware: Any, name: str, X: np.ndarray, y: np.ndarray,
                  output_shape: tuple[int, ...] | None) -> str | None:
    if y.shape[0] != X.shape[0]:
        return f"probe '{name}': predict returned {y.shape[0]} rows for {X.shape[0]} inputs"
    if not np.issubdtype(y.dtype, np.number) or (y.dtype.kind in "fc" and not np.isfinite(y).all()):
        return f"probe '{name}': predict returned non-finite or non-numeric values"
    sem = getattr(learnware, "semantic_spec", None)
    out = tuple(output_shape) if output_shape else None
    if out and y.ndim > 1 and tuple(y.shape[1:]) != out and not (out == (1,) and y.ndim == 1):
        return f"probe '{name}': output rows have shape {tuple(y.shape[1:])}, the model declares {out}"
    if sem is not None and sem.task_type == "Classification" and sem.output is not None and (out in (None, (1,))):
        labels = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
        c = sem.output.dimension
        if (labels < 0).any() or (labels >= c).any() or not np.allclose(labels, np.round(labels)):
            return (f"probe '{name}': predicted labels must be integers in [0, {c}), got values in "
                    f"[{labels.min()}, {labels.max()}]")
    return None


def _bounded(text: str) -> str:
    return first_line(text, REASON_CHARS)


def model_failure_reason(exc: LwdockError) -> str:
    """A report-safe reason for a runtime failure, built from the error's facts, never from the model's message.

    Parameters
    ----------
    exc : LwdockError
        A :class:`~lwlib.errors.ModelRuntimeError` (import, call, crash, timeout, output) or a build error.
    """
    f = exc.facts
    call = {"startup (model import)": "startup"}.get(str(f.get("call", "")), str(f.get("call", "the call")))
    if isinstance(exc, RuntimeBuildError):  # dock-made text (uv's output follows on later lines)
        return _bounded(f"runtime could not be built: {first_line(exc.message, 300)}")
    if exc.code == "model_timeout":
        return f"model did not answer {call} within {float(f.get('seconds', 0)):g} s (worker stopped)"
    if exc.code == "model_output_too_large":
        return (f"output too large: {call} answered {int(f.get('size', 0))} bytes, the limit is "
                f"{int(f.get('limit', 0))} bytes")
    if exc.code == "model_protocol_violation":
        return f"model wrote to the protocol channel during {call} (worker stopped)"
    if exc.code == "model_out_of_memory":
        return f"model ran out of memory in {call} (address-space limit)"
    if isinstance(exc, MalformedOutputError) and "error_type" in f:  # the runner could not convert the answer
        return f"{call} output rejected: not an int/float array or tensor"
    if "error_type" in f:
        etype = exception_name(f["error_type"])
        if call == "startup":
            module = exception_name(f.get("error_module") or "")
            extra = f" (module {module})" if f.get("error_module") and module != "Exception" else ""
            return f"importing or constructing the model failed: {etype}{extra}"
        return f"{call} raised {etype} (the model's message is not stored)"
    if exc.code in ("model_crashed",) or "status" in f:
        return f"model worker died during {call} ({first_line(f.get('status', 'unknown status'), 80)})"
    if isinstance(exc, ModelRuntimeError):  # dock-made output checks (length, dtype, shape declarations)
        return _bounded(exc.message)
    return _bounded(f"{type(exc).__name__} ({exc.code})")


def runtime_unbuilt(exc: LwdockError) -> CheckReport:
    """The NONUSABLE report for a learnware whose environment could not be built (bounded, one line)."""
    return CheckReport(Status.NONUSABLE, model_failure_reason(exc), exc.code)


def open_failure_report(exc: LwdockError, *, duration_s: float = 0.0) -> CheckReport:
    """The NONUSABLE report for a model whose runtime failed to start (import error, startup timeout, crash, bad
    shape declaration), for callers that open the runtime themselves; protections come from the exception
    (``Runtime.open`` attaches them)."""
    return CheckReport(Status.NONUSABLE, model_failure_reason(exc), exc.code, duration_s=duration_s,
                       protections=tuple(getattr(exc, "sandbox_protections", ())),
                       missing_protections=tuple(getattr(exc, "sandbox_missing", ())))


def check_learnware(learnware: Any, open_runtime: Callable[[Any], Any], *, random_state: int = 0) -> CheckReport:
    """Run the model through ``open_runtime(learnware)`` (a context manager yielding a RuntimeModel) and probe it.

    Parameters
    ----------
    learnware : Learnware
        The validated package (semantic spec and stat specs are used to build probes and expectations).
    open_runtime : callable
        ``lambda lw: Runtime.open(lw, ...)``; injected so callers pick mode and limits.

    Returns
    -------
    CheckReport
        USABLE when every probe passes; NONUSABLE with the first problem otherwise. Never raises for model faults.
        ``protections`` and ``missing_protections`` say how the model was contained.
    """
    t0 = time.perf_counter()
    probes: dict[str, Any] = {}
    protections: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    in_shape = out_shape = None

    def report(status: Status, reason: str, code: str) -> CheckReport:
        reason = _bounded(reason)
        logger.info("check %s: %s (%s)", str(getattr(learnware, "id", "?"))[:12], status.value, reason)
        return CheckReport(status, reason, code, in_shape, out_shape, probes, protections, time.perf_counter() - t0,
                           missing)

    try:
        with open_runtime(learnware) as model:
            protections = tuple(getattr(model, "protections", ()))
            missing = tuple(getattr(model, "missing_protections", ()))
            in_shape = tuple(model.input_shape) if model.input_shape is not None else None
            out_shape = tuple(model.output_shape) if model.output_shape is not None else None
            problem = _expect_shapes(learnware, in_shape, out_shape)
            if problem:
                return report(Status.NONUSABLE, problem, "shape_mismatch")
            batches = probe_inputs(learnware, in_shape, random_state=random_state)
            if not batches:
                return report(Status.NONUSABLE, "no probe could be built: the model declares no input_shape and "
                              "the learnware has no table RKME", "no_probe")
            for name, X in batches.items():
                y = np.asarray(model.predict(X))
                problem = _check_output(learnware, name, X, y, out_shape)
                probes[name] = {"n": int(X.shape[0]), "ok": problem is None, "output_shape": list(y.shape)[:8]}
                if problem:
                    return report(Status.NONUSABLE, problem, "bad_output")
    except LwdockError as exc:  # a failure while opening carries the sandbox facts on the exception
        protections = protections or tuple(getattr(exc, "sandbox_protections", ()))
        missing = missing or tuple(getattr(exc, "sandbox_missing", ()))
        return report(Status.NONUSABLE, model_failure_reason(exc), exc.code)
    return report(Status.USABLE, f"{len(probes)} probes passed", "ok")
