"""Constants shared across the engine (reference-compatible defaults live here, not in code)."""

from __future__ import annotations

# Table RKME defaults of the reference package (LEARNWARE_FORMAT.md §3.1).
RKME_DEFAULT_K = 100
RKME_DEFAULT_GAMMA = 0.1
RKME_MAX_REDUCED_SET_SIZE = 1_310_720  # cap on K * d
RKME_MIN_K_WHEN_CAPPED = 20
RKME_TABLE_TYPE = "RKMETableSpecification"
RKME_TEXT_TYPE = "RKMETextSpecification"
RKME_IMAGE_TYPE = "RKMEImageSpecification"
RKME_LEGACY_TYPE = "RKMEStatSpecification"

# Manifest defaults (reference `get_learnware_from_dirpath`).
MANIFEST_FILE = "learnware.yaml"
DEFAULT_MODEL_CLASS = "Model"
DEFAULT_MODEL_MODULE = "__init__.py"
DEFAULT_STAT_FILE = "stat_spec.json"
SEMANTIC_FILE = "semantic_specification.json"

# Safe extraction defaults (overridable through ArchiveLimits).
ARCHIVE_MAX_MEMBERS = 2_000
ARCHIVE_MAX_MEMBER_BYTES = 512 * 1024 * 1024
ARCHIVE_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
ARCHIVE_MAX_RATIO = 200.0

# Reference fuzzy semantic search threshold (rapidfuzz partial_ratio, 0-100).
FUZZY_MIN_SCORE = 75.0
