"""Isolated execution of learnware models: environments (uv), sandboxed persistent workers, OCI build contexts."""

from lwlib.errors import MalformedOutputError, ModelCrashedError, ModelImportError, ModelTimeoutError, RuntimeBuildError
from lwlib.runtime.api import ModelEntrySpec, Runtime, RuntimeModel, RuntimeTarget
from lwlib.runtime.env import Environment, EnvironmentManager, requirements_key
from lwlib.runtime.limits import RuntimeLimits
from lwlib.runtime.oci import BuildContext, ImageBuildResult, build_image, write_build_context
from lwlib.runtime.sandbox import ALL_PROTECTIONS, PROTECTIONS

__all__ = [
                          "ALL_PROTECTIONS",
                          "PROTECTIONS",
                          "BuildContext",
                          "Environment",
                          "EnvironmentManager",
                          "ImageBuildResult",
                          "MalformedOutputError",
                          "ModelCrashedError",
                          "ModelEntrySpec",
                          "ModelImportError",
                          "ModelTimeoutError",
                          "Runtime",
                          "RuntimeBuildError",
                          "RuntimeLimits",
                          "RuntimeModel",
                          "RuntimeTarget",
                          "build_image",
                          "requirements_key",
                          "write_build_context",
]
