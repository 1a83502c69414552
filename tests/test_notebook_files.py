"""The notebook's two files stay in sync, ship clean, and its pure helpers behave."""

from __future__ import annotations

import json

import jupytext
import nbformat
import pytest

from tests.notebook_cells import (
    NOTEBOOK_IPYNB,
    NOTEBOOK_PY,
    ROOT,
    code_cells,
    load_helpers,
    notebook_boto3_version,
)


def cell_view(notebook) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]


def test_py_and_ipynb_have_the_same_cells():
    py, ipynb = jupytext.read(NOTEBOOK_PY), jupytext.read(NOTEBOOK_IPYNB)
    assert cell_view(py) == cell_view(ipynb), (
        "notebooks/ip_insights_workshop.{py,ipynb} drifted apart: edit the .py, then run "
        "`.venv/bin/jupytext --sync notebooks/ip_insights_workshop.py`"
    )
    assert py.metadata["kernelspec"] == ipynb.metadata["kernelspec"]


def test_ipynb_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source[:60]
            assert cell.execution_count is None, cell.source[:60]


def test_ipynb_opens_in_the_notebook_instance_python3_kernel():
    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "conda_python3"


def test_read_tuples_keeps_the_first_line():
    """The original notebook read the CSV with a header and silently lost the first tuple."""
    nb = load_helpers("helpers")
    frame = nb["read_tuples"](b"AIDAFIRST,192.0.2.1\nAIDASECOND,2001:db8::1\n")
    assert list(frame.columns) == ["principal", "ip"]
    assert frame.values.tolist() == [["AIDAFIRST", "192.0.2.1"], ["AIDASECOND", "2001:db8::1"]]


def test_finding_tuples_reads_principal_and_remote_addresses():
    nb = load_helpers("helpers")
    finding = {
        "Id": "f1",
        "Type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
        "Resource": {"AccessKeyDetails": {"PrincipalId": "AROAEXAMPLE:session-name"}},
        "Service": {
            "Action": {
                "AwsApiCallAction": {
                    "RemoteIpDetails": {"IpAddressV4": "198.51.100.7"},
                },
                "PortProbeAction": {
                    "PortProbeDetails": [{"RemoteIpDetails": {"IpAddressV6": "2001:DB8:0:0::1"}}]
                },
            }
        },
    }
    assert nb["finding_tuples"](finding) == [
        ("AROAEXAMPLE", "198.51.100.7"),
        ("AROAEXAMPLE", "2001:db8::1"),
    ]
    assert nb["finding_tuples"]({"Resource": {}, "Service": {}}) == []
    event_casing = {
        "resource": {"accessKeyDetails": {"principalId": "AIDAEVENT"}},
        "service": {
            "action": {"awsApiCallAction": {"remoteIpDetails": {"ipAddressV4": "::ffff:192.0.2.9"}}}
        },
    }
    assert nb["finding_tuples"](event_casing) == [("AIDAEVENT", "192.0.2.9")]


def test_roc_auc_counts_low_scores_as_anomalous():
    nb = load_helpers("helpers")
    assert nb["roc_auc"]([-3, -2, 1, 2], [True, True, False, False]) == 1.0
    assert nb["roc_auc"]([3, 2, -1, -2], [True, True, False, False]) == 0.0
    assert nb["roc_auc"]([0, 0], [True, False]) == 0.5


def run_first_cell(monkeypatch, tmp_path, **env) -> dict:
    monkeypatch.chdir(tmp_path)
    for key in ("SECML_BACKEND", "SECML_WORKSHOP_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    namespace: dict = {}
    exec(code_cells()[0], namespace)
    return namespace


def test_backend_defaults_to_local_without_a_workshop_config(monkeypatch, tmp_path):
    assert run_first_cell(monkeypatch, tmp_path)["BACKEND"] == "local"


def test_backend_is_sagemaker_next_to_the_workshop_config(monkeypatch, tmp_path):
    config = {"stack_name": "S", "region": "us-west-2", "data_bucket": "d", "tuples_bucket": "t"}
    (tmp_path / "workshop_config.json").write_text(json.dumps(config))
    namespace = run_first_cell(monkeypatch, tmp_path)
    assert namespace["BACKEND"] == "sagemaker"
    assert namespace["CONFIG"] == config
    assert run_first_cell(monkeypatch, tmp_path, SECML_BACKEND="local")["BACKEND"] == "local"


def test_unknown_backend_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="SECML_BACKEND"):
        run_first_cell(monkeypatch, tmp_path, SECML_BACKEND="gpu")


def test_finding_tuples_agree_with_the_guardduty_ingest_lambda():
    """The notebook cannot import lambda_src on the notebook instance; it must agree with it."""
    lambda_index = pytest.importorskip("lambda_src.guardduty_ingest.index")
    nb = load_helpers("helpers")
    findings_file = NOTEBOOK_PY.parents[1] / "data" / "workshop" / "guardduty" / "findings.json"
    if not findings_file.is_file():
        pytest.skip("the workshop dataset is not in this branch yet")
    findings = json.loads(findings_file.read_text())
    assert findings
    for finding in findings:
        expected = [tuple(pair) for pair in lambda_index.tuples_from_finding(finding)]
        assert nb["finding_tuples"](finding) == expected, finding.get("Id")


def test_the_notebook_installs_the_boto3_the_project_pins():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert notebook_boto3_version() == pins["boto3"].strip()


def _notebook_constant(name: str):
    """A constant assigned at the top level of a notebook code cell, as a literal."""
    import ast

    for source in code_cells():
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                return ast.literal_eval(node.value)
    raise AssertionError(f"no top-level {name} = ... in the notebook")


def test_notebook_trains_with_the_same_settings_as_the_offline_demo():
    """The notebook repeats secml.analysis's settings (secml is absent on a notebook
    instance); the attendee and `make demo` must train the same model."""
    from secml import analysis

    assert _notebook_constant("HYPERPARAMETERS") == analysis.WORKSHOP_HYPERPARAMETERS
    assert _notebook_constant("MIN_ENTITY_VECTORS") == analysis.MIN_ENTITY_VECTORS
    assert _notebook_constant("EXCLUDE_SCORED_TUPLES") is True
