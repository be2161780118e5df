"""prefect.yaml points at real flows with parameters they accept, on the intended schedules."""

from importlib import import_module
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from flows.deployments import SCHEDULES

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_points_at_a_flow_with_valid_parameters(deployment):
    path, attr = deployment["entrypoint"].split(":")
    assert (ROOT / path).is_file(), path
    flow = getattr(import_module(path.removesuffix(".py").replace("/", ".")), attr)
    assert isinstance(flow, Flow)
    flow.validate_parameters(deployment.get("parameters", {}))
    for key in deployment.get("parameters", {}):
        if key.endswith("_path"):
            assert (ROOT / deployment["parameters"][key]).is_file()


def test_unknown_parameter_is_rejected():
    from flows.score import score_flow

    with pytest.raises(Exception, match="no_such"):
        score_flow.validate_parameters({"no_such": 1})


def test_schedules_match_what_serve_uses():
    by_name = {d["name"]: d for d in DEPLOYMENTS}
    assert set(by_name) == set(SCHEDULES)
    for name, spec in SCHEDULES.items():
        assert by_name[name]["schedules"][0]["cron"] == spec["cron"]
        module, attr = spec["flow"].split(":")
        assert by_name[name]["entrypoint"] == f"{module.replace('.', '/')}.py:{attr}"
    assert by_name["weekly-scoring"]["schedules"][0]["cron"] == "0 6 * * 1"  # Monday 06:00
