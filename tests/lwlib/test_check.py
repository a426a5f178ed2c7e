"""Check-report policy: reasons are built from failure facts, bounded, one line, and never carry the model's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwlib.check import REASON_CHARS, CheckReport, model_failure_reason, open_failure_report, runtime_unbuilt
from lwlib.errors import (
    LwdockError,
    MalformedOutputError,
    ModelCrashedError,
    ModelImportError,
    ModelRuntimeError,
    ModelTimeoutError,
    RuntimeBuildError,
)
from lwlib.runtime.sandbox import ALL_PROTECTIONS
from lwlib.status import Status

SECRET = "root:$y$j9T$secret-hash:19000:0:99999:7:::"


@pytest.mark.parametrize("exc, expected", [
    (ModelRuntimeError(f"predict raised ValueError: {SECRET}", error_type="ValueError", error_line=SECRET,
                       traceback=SECRET, call="predict"),
     "predict raised ValueError (the model's message is not stored)"),
    (ModelImportError(f"failed: {SECRET}", error_type="ModuleNotFoundError", error_module="xgboost",
                      error_line=SECRET, call="startup"),
     "importing or constructing the model failed: ModuleNotFoundError (module xgboost)"),
    (ModelImportError("failed", error_type="evil\x1b[31mName", error_module="not a module!", call="startup"),
     "importing or constructing the model failed: Exception"),
    (ModelTimeoutError(SECRET, seconds=4.0, call="predict"), "model did not answer predict within 4 s (worker stopped)"),
    (ModelCrashedError(f"died {SECRET}", status="killed by signal SIGSEGV", stderr_tail=SECRET, call="predict"),
     "model worker died during predict (killed by signal SIGSEGV)"),
    (ModelCrashedError(SECRET, code="model_out_of_memory", error_type="MemoryError", call="fit"),
     "model ran out of memory in fit (address-space limit)"),
    (MalformedOutputError(SECRET, code="model_output_too_large", size=300, limit=200, call="predict"),
     "output too large: predict answered 300 bytes, the limit is 200 bytes"),
    (MalformedOutputError(SECRET, code="model_protocol_violation", call="predict"),
     "model wrote to the protocol channel during predict (worker stopped)"),
    (MalformedOutputError(SECRET, error_type="TypeError", call="predict"),
     "predict output rejected: not an int/float array or tensor"),
])
def test_reasons_come_from_facts_not_from_the_model(exc: LwdockError, expected: str) -> None:
    assert model_failure_reason(exc) == expected


def test_build_errors_keep_one_bounded_line_without_control_characters() -> None:
    exc = RuntimeBuildError("uv could not resolve \x1b[31m" + "x" * 5000 + "\nline two\nline three",
                            code="runtime_build_failed")
    report = runtime_unbuilt(exc)
    assert report.status is Status.NONUSABLE and report.code == "runtime_build_failed"
    assert report.reason.startswith("runtime could not be built: uv could not resolve [31m")
    assert len(report.reason) <= REASON_CHARS and "\n" not in report.reason and "\x1b" not in report.reason
    assert "line two" not in report.reason


def test_report_round_trips_with_missing_protections() -> None:
    report = CheckReport(Status.NONUSABLE, "r", "model_timeout", (2,), None, {"randn": {"n": 10}},
                         ("rlimits",), 1.5, ("no-network", "unprivileged-uid"))
    again = CheckReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    legacy = report.to_dict()
    del legacy["missing_protections"]  # reports stored before the field existed
    assert CheckReport.from_dict(legacy).missing_protections == ()


def test_a_runtime_that_fails_to_open_gives_a_report_with_its_protections(tmp_path: Path) -> None:
    from lwlib.runtime import EnvironmentManager, ModelEntrySpec, Runtime, RuntimeTarget

    (tmp_path / "lw").mkdir()
    (tmp_path / "lw" / "__init__.py").write_text(f"raise ValueError({SECRET!r})\n")
    envs = EnvironmentManager(tmp_path / "envs", tmp_path / "uv")
    with pytest.raises(ModelImportError) as info:
        Runtime.open(RuntimeTarget(tmp_path / "lw", ModelEntrySpec(), ["numpy"]), envs=envs, hide=(tmp_path,))
    report = open_failure_report(info.value)
    assert report.status is Status.NONUSABLE and report.code == "model_import_failed"
    assert report.reason == "importing or constructing the model failed: ValueError"
    assert set(report.protections) | set(report.missing_protections) == set(ALL_PROTECTIONS)
    assert "rlimits" in report.protections and SECRET not in json.dumps(report.to_dict())
