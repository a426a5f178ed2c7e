"""Fast, offline: no deployment's form offers `home` (issue 12 §2), staging pins its home by job variables, and
`prefect.yaml` deploys what the cluster needs. Runs in `make test` (not marked `cluster`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())


def _load(entrypoint: str):  # type: ignore[no-untyped-def]
    path, name = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(f"_form_{name}", REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_no_deployment_form_offers_home() -> None:
    from deployments.serve import build_deployments, refresh_deployment

    for dep in [*build_deployments(), refresh_deployment()]:
        assert "home" not in dep._parameter_openapi_schema.properties, dep.name
    for dep in SPEC["deployments"]:
        flow = _load(dep["entrypoint"])
        assert "home" not in flow.parameters.properties, dep["name"]
        assert "home" not in (dep.get("parameters") or {}), dep["name"]


def test_staging_pins_its_home_by_job_variables_and_cluster_deployments_exist() -> None:
    from deployments.cluster import DEPLOYMENTS

    by_name = {d["name"]: d for d in SPEC["deployments"]}
    staging = [d for d in SPEC["deployments"] if "staging" in d["tags"]]
    assert staging and all(d["work_pool"]["work_queue_name"] == "staging"
                           and d["work_pool"]["job_variables"]["env"]["LWDOCK_HOME"] for d in staging)
    assert set(DEPLOYMENTS) <= set(by_name)
    refresh = by_name["catalog-refresh"]
    assert refresh["work_pool"]["work_queue_name"] == "search" and refresh["schedules"][0]["interval"] > 0
