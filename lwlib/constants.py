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

# ---------------------------------------------------------------------------------------------------------------
# Input bounds (issue 10). Every untrusted input is checked against these *before* anything is allocated from it,
# and a value outside them ends INVALID (or a UserDataError) with a reason naming the field. The catalog's column
# types are sized for them: tests/lwlib/test_validation.py writes the maximum of each into a real catalog.

# Zip member names: one path component at most NAME_MAX (255 bytes on ext4/xfs/btrfs/tmpfs), the whole relative
# path well under PATH_MAX (4096) so it still fits below the dock's own extraction prefix, and no deeper than any
# real package needs.
ARCHIVE_MAX_COMPONENT_BYTES = 255
ARCHIVE_MAX_NAME_BYTES = 1_024
ARCHIVE_MAX_DEPTH = 32

# learnware.yaml: the file is capped at 64 KiB (manifest.MAX_MANIFEST_BYTES); inside it, nesting depth, node count
# and scalar length are bounded before PyYAML's recursive composer runs (deep nesting was a RecursionError).
MANIFEST_MAX_DEPTH = 16
MANIFEST_MAX_NODES = 5_000
MANIFEST_MAX_SCALAR_CHARS = 1_024
MANIFEST_MAX_NAME_CHARS = 200

# Semantic specification: the whole spec travels as a Prefect flow-run parameter (the server refuses parameters
# above 512 KiB with a 422) and its name as an MLflow tag (≤ 5000 chars), so the serialised spec is kept to half
# the Prefect limit and every text field is bounded on its own.
SEMANTIC_MAX_BYTES = 256 * 1024
SEMANTIC_MAX_DEPTH = 6  # reference layout needs 3: {"Input": {"Description": {"0": "text"}}}
SEMANTIC_MAX_NODES = 20_000
SEMANTIC_MAX_NAME_CHARS = 200
SEMANTIC_MAX_DESCRIPTION_CHARS = 10_000
SEMANTIC_MAX_IO_DESCRIPTION_CHARS = 1_000
SEMANTIC_MAX_TAGS = 32
SEMANTIC_MAX_DIMENSION = 1 << 24  # 16 777 216 (a 3×1024×1024 image fits); catalog columns are INTEGER (2^31 - 1)
SEMANTIC_MAX_QUERY_CHARS = 1_000  # search-query name/description (fuzzy matching is O(len · market))

# RKME JSON. K is capped by what the dock can afford for one spec: verify (specify step) and search build the
# K × K Gram matrix in float64 with ~3 temporaries, so K = 4096 peaks at ~400 MB, inside the 1.5 GB RSS budget of a
# hostile submission (K = 100 000 asked for 80 GB). K·d is twice the reference's own cap (1 310 720), so every spec
# the reference or our fit writes (K = max(20, 1 310 720 // d) for wide tables) loads; d ≤ 131 072 keeps 20·d in it.
RKME_MAX_K = 4_096
RKME_MAX_DIM = 131_072
RKME_MAX_VALUES = 2 * RKME_MAX_REDUCED_SET_SIZE  # K·d
RKME_MAX_ABS_POINT = 1e100  # squared distances over RKME_MAX_DIM features stay finite in float64
RKME_MAX_ABS_WEIGHT = 1e6  # β sums to 1; unconstrained reference weights stay far below this
RKME_MAX_NUM_POINTS = (1 << 53) - 1  # exact in JSON doubles; catalog column is BIGINT
RKME_MAX_LANGUAGES = 64

# User data files (lwdock search --data, the deploy flow): the float64 array a file would become, checked from the
# NPY header / CSV size before loading; configurable per call (load_table(max_bytes=...)).
USER_DATA_MAX_BYTES = 512 * 1024 * 1024
USER_DATA_NPZ_MAX_MEMBERS = 64
