"""Which task failures are retried (tasks._common.transient_only): transient ones only, never invalid input."""

from __future__ import annotations

import pytest

from lwlib.errors import (CatalogError, InvalidPackageError, LwdockError, RegistryError, RuntimeBuildError,
                          SpecFormatError)
from tasks._common import transient_only


class _Failed:
    """The one thing the policy reads from a Prefect state: ``result()`` re-raising the task's exception."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self) -> None:
        raise self.exc


@pytest.mark.parametrize("exc, retried", [
    (CatalogError("locked", code="catalog_write_failed"), True),
    (RegistryError("sqlite busy", code="registry_write_failed"), True),
    (RuntimeBuildError("too slow", code="runtime_build_timeout"), True),
    (RuntimeBuildError("torch pin", code="requirement_disallowed"), False),
    (RuntimeBuildError("bad line", code="requirement_invalid"), False),
    (InvalidPackageError("zip slip", code="archive_path_traversal"), False),
    (SpecFormatError("NaN", code="spec_nonfinite"), False),
    (LwdockError("fault", code="fault_injected"), False),
    (OSError("disk hiccup"), True),
])
def test_transient_only(exc: BaseException, retried: bool) -> None:
    assert transient_only(None, None, _Failed(exc)) is retried
