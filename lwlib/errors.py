"""One error family for the whole engine.

Every failure a user can hit is an :class:`LwdockError` carrying a machine-readable ``code`` (stable, snake_case,
used by flows to record a reason) and a sentence that says what failed and what to do. Extra facts are kept as
attributes (``err.facts``) so callers never parse messages.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LwdockError",
    "InvalidPackageError",
    "UnsafeArchiveError",
    "SemanticSpecError",
    "SpecFormatError",
    "NotFittedError",
    "CatalogError",
    "CatalogMigrationError",
    "RuntimeBuildError",
    "ModelRuntimeError",
    "ModelImportError",
    "ModelTimeoutError",
    "ModelCrashedError",
    "MalformedOutputError",
    "RegistryError",
    "SearchError",
    "ReuseError",
    "UserDataError",
]


class LwdockError(Exception):
    """Root of every error the dock raises on purpose.

    Parameters
    ----------
    message : str
        What failed, where, what was expected, what came in, and the fix.
    code : str, optional
        Stable machine-readable code; defaults to the class's ``default_code``.
    **facts
        Structured details (paths, sizes, names) kept on ``self.facts``.
    """

    default_code = "lwdock_error"

    def __init__(self, message: str, *, code: str | None = None, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.facts = facts

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "code": self.code, "message": self.message,
                "facts": {k: str(v) for k, v in self.facts.items()}}


class InvalidPackageError(LwdockError):
    """The learnware zip or its manifest is not a valid learnware package."""

    default_code = "invalid_package"


class UnsafeArchiveError(InvalidPackageError):
    """The zip is hostile or too large to extract (zip slip, links, bombs)."""

    default_code = "unsafe_archive"


class SemanticSpecError(InvalidPackageError):
    """The semantic specification breaks the schema or its rules."""

    default_code = "invalid_semantic_spec"


class SpecFormatError(InvalidPackageError):
    """A statistical specification file is malformed (bad JSON, shapes, NaN, unknown type)."""

    default_code = "invalid_stat_spec"


class NotFittedError(LwdockError, AttributeError):
    """An estimator-like object was used before ``fit``."""

    default_code = "not_fitted"


class CatalogError(LwdockError):
    """The DuckDB market catalog could not be read or written."""

    default_code = "catalog_error"


class CatalogMigrationError(CatalogError):
    """A catalog migration is missing, altered, or failed to apply."""

    default_code = "catalog_migration"


class RuntimeBuildError(LwdockError):
    """The isolated environment for a learnware could not be built."""

    default_code = "runtime_build_failed"


class ModelRuntimeError(LwdockError):
    """A learnware model failed while running in its isolated runtime."""

    default_code = "model_runtime_error"


class ModelImportError(ModelRuntimeError):
    """The learnware's model module or class could not be loaded in its runtime."""

    default_code = "model_import_failed"


class ModelTimeoutError(ModelRuntimeError):
    """The model did not answer within its time limit and was killed."""

    default_code = "model_timeout"


class ModelCrashedError(ModelRuntimeError):
    """The model's worker process died (signal, memory limit, exit)."""

    default_code = "model_crashed"


class MalformedOutputError(ModelRuntimeError):
    """The model answered, but its output is wrong (length, dtype, non-finite)."""

    default_code = "model_output_malformed"


class RegistryError(LwdockError):
    """The MLflow registry call failed."""

    default_code = "registry_error"


class SearchError(LwdockError):
    """A search request is malformed (not: a search with no match, which returns an empty result)."""

    default_code = "search_error"


class ReuseError(LwdockError):
    """A reuser cannot be built from the given learnwares or data."""

    default_code = "reuse_error"


class UserDataError(LwdockError, ValueError):
    """A user's data file (search/deploy input) is unreadable, too large, non-numeric, non-finite or the wrong width.

    The message names the file (base name only) and the cause, so the CLI prints it as one ``error:`` line.
    """

    default_code = "user_data_invalid"
