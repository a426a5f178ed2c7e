"""Isolated execution of learnware models: environments (uv), sandboxed persistent workers, OCI build contexts."""

from lwlib.errors import (MalformedOutputError, ModelCrashedError, ModelImportError, ModelTimeoutError,
                          RuntimeBuildError)
from lwlib.runtime.api import ModelEntrySpec, Runtime, RuntimeModel, RuntimeTarget
from lwlib.runtime.env import Environment, EnvironmentManager, normalize_requirements, requirements_key
from lwlib.runtime.oci import BuildContext, ImageBuildResult, build_image, write_build_context
from lwlib.runtime.sandbox import RuntimeLimits

__all__ = [
    "Runtime", "RuntimeModel", "RuntimeTarget", "ModelEntrySpec", "RuntimeLimits", "Environment",
    "EnvironmentManager", "normalize_requirements", "requirements_key", "write_build_context", "build_image",
    "BuildContext", "ImageBuildResult", "RuntimeBuildError", "ModelImportError", "ModelTimeoutError",
    "ModelCrashedError", "MalformedOutputError",
]
