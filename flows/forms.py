"""Typed flow parameters, so the Prefect UI renders forms with choices instead of raw JSON.

The bounds are the engine's own (lwlib.constants): the form refuses what validation would refuse, before a run
exists, and anything that still gets through ends INVALID with its reason, never a crashed run.
"""

from pydantic import BaseModel, Field

from lwlib.constants import (SEMANTIC_MAX_DESCRIPTION_CHARS, SEMANTIC_MAX_DIMENSION, SEMANTIC_MAX_NAME_CHARS,
                             SEMANTIC_MAX_TAGS)
from lwlib.semantic import DataType, LibraryType, LicenseType, ScenarioType, TaskType, make_semantic_spec


class SemanticForm(BaseModel):
    """The semantic specification as a form: each vocabulary is a drop-down in the Prefect UI."""

    name: str = Field(..., min_length=1, max_length=SEMANTIC_MAX_NAME_CHARS,
                      description="Short name shown in search results")
    description: str = Field(..., min_length=1, max_length=SEMANTIC_MAX_DESCRIPTION_CHARS,
                             description="What the model does, on which data")
    data_type: DataType = "Table"
    task_type: TaskType = "Classification"
    library_type: LibraryType = "Scikit-learn"
    scenarios: list[ScenarioType] = Field(default_factory=lambda: ["Others"], max_length=SEMANTIC_MAX_TAGS)
    license: LicenseType = "Apache-2.0"
    input_dimension: int | None = Field(None, ge=1, le=SEMANTIC_MAX_DIMENSION,
                                        description="Number of input features (required for Table data)")
    output_dimension: int | None = Field(None, ge=1, le=SEMANTIC_MAX_DIMENSION,
                                         description="Classes (classification) or outputs (regression)")

    def to_reference(self) -> dict:
        return make_semantic_spec(**self.model_dump()).to_reference()


class SubmitRequest(BaseModel):
    """A submission from the UI: a zip on the dock's storage (uploaded with the web page) plus its semantic spec."""

    zip_location: str = Field(..., min_length=1, max_length=4096,
                              description="Path of the learnware zip on the dock's storage; the upload page "
                                          "(`lwdock api`, /upload) puts it there and fills this in")
    semantic: SemanticForm | None = Field(None, description="Leave empty if the zip ships semantic_specification.json")
