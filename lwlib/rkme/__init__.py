"""Statistical specifications: reduced kernel mean embeddings (RKME) of tables and texts, and their algebra."""

from __future__ import annotations

from lwlib.rkme.base import BaseStatSpec
from lwlib.rkme.kernels import mmd2_batch, median_heuristic_gamma, rbf_kernel, self_inner_products, stack_specs
from lwlib.rkme.types import SPEC_TYPES, load_spec_file, spec_from_dict
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.rkme.text import RKMETextSpec, embed_texts

__all__ = [
    "BaseStatSpec",
    "RKMETableSpec",
    "RKMETextSpec",
    "embed_texts",
    "rbf_kernel",
    "mmd2_batch",
    "self_inner_products",
    "stack_specs",
    "median_heuristic_gamma",
    "SPEC_TYPES",
    "spec_from_dict",
    "load_spec_file",
]
