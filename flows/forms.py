"""Typed flow parameters, so the Prefect UI renders forms with choices instead of raw JSON."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lwlib.semantic import DataType, LibraryType, LicenseType, ScenarioType, TaskType, make_semantic_spec


class SemanticForm(BaseModel):
    """The semantic specification as a form: each vocabulary is a drop-down in the Prefect UI."""

    name: str = Field(..., min_length=1, description="Short name shown in search results")
    description: str = Field(..., min_length=1, description="What the model does, on which data")
    data_type: DataType = "Table"
    task_type: TaskType = "Classification"
    library_type: LibraryType = "Scikit-learn"
    scenarios: list[ScenarioType] = Field(default_factory=lambda: ["Others"])
    license: LicenseType = "Apache-2.0"
    input_dimension: int | None = Field(None, ge=1, description="Number of input features (Table data)")
    output_dimension: int | None = Field(None, ge=1, description="Classes (classification) or outputs (regression)")

    def to_reference(self) -> dict:
        return make_semantic_spec(**self.model_dump()).to_reference()


class SubmitRequest(BaseModel):
    """A submission from the UI: a zip already on the dock's storage plus (optionally) its semantic spec."""

    zip_location: str = Field(..., description="Path of the learnware zip on the dock's storage")
    semantic: SemanticForm | None = Field(None, description="Leave empty if the zip ships semantic_specification.json")
