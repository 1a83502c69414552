"""The notebook's two files stay in sync, ship clean and short, and its pure helpers behave."""

from __future__ import annotations

import json

import jupytext
import nbformat
import pytest

from tests.notebook_cells import NOTEBOOK_IPYNB, NOTEBOOK_PY, code_cells, load_helpers


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


def test_ipynb_opens_in_the_kernel_the_lifecycle_scripts_register():
    from stacks.notebook import LIFECYCLE_DIR

    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    name = notebook.metadata["kernelspec"]["name"]
    assert f"KERNEL_NAME={name}\n" in (LIFECYCLE_DIR / "sdk_kernel.sh").read_text()


def test_the_notebook_shows_steps_not_plumbing():
    """Issue 13: no code cell over about 25 lines, at most about 200 lines of code in all."""
    sizes = [len([line for line in cell.splitlines() if line.strip()]) for cell in code_cells()]
    assert max(sizes) <= 25, sizes
    assert sum(sizes) <= 200, sizes
    for cell in code_cells():  # attendees are not asked to set environment variables
        assert "os.environ" not in cell and "SECML_" not in cell


def test_read_tuples_keeps_the_first_line():
    """The original notebook read the CSV with a header and silently lost the first tuple."""
    nb = load_helpers()
    frame = nb.read_tuples(b"AIDAFIRST,192.0.2.1\nAIDASECOND,2001:db8::1\n")
    assert list(frame.columns) == ["principal", "ip"]
    assert frame.values.tolist() == [["AIDAFIRST", "192.0.2.1"], ["AIDASECOND", "2001:db8::1"]]


def test_finding_tuples_reads_principal_and_remote_addresses():
    nb = load_helpers()
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
    assert nb.finding_tuples(finding) == [
        ("AROAEXAMPLE", "198.51.100.7"),
        ("AROAEXAMPLE", "2001:db8::1"),
    ]
    assert nb.finding_tuples({"Resource": {}, "Service": {}}) == []
    event_casing = {
        "resource": {"accessKeyDetails": {"principalId": "AIDAEVENT"}},
        "service": {
            "action": {"awsApiCallAction": {"remoteIpDetails": {"ipAddressV4": "::ffff:192.0.2.9"}}}
        },
    }
    assert nb.finding_tuples(event_casing) == [("AIDAEVENT", "192.0.2.9")]


def test_roc_auc_counts_low_scores_as_anomalous():
    nb = load_helpers()
    assert nb.roc_auc([-3, -2, 1, 2], [True, True, False, False]) == 1.0
    assert nb.roc_auc([3, 2, -1, -2], [True, True, False, False]) == 0.0
    assert nb.roc_auc([0, 0], [True, False]) == 0.5


def run_first_cell(monkeypatch, tmp_path, **env) -> dict:
    monkeypatch.chdir(tmp_path)
    for key in ("SECML_BACKEND", "SECML_WORKSHOP_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_helpers()  # importable as `workshop_helpers`, as next to the notebook
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
    from lambda_src.guardduty_ingest import index as lambda_index

    nb = load_helpers()
    findings_file = NOTEBOOK_PY.parents[1] / "data" / "workshop" / "guardduty" / "findings.json"
    findings = json.loads(findings_file.read_text())
    assert findings
    for finding in findings:
        expected = [tuple(pair) for pair in lambda_index.tuples_from_finding(finding)]
        assert nb.finding_tuples(finding) == expected, finding.get("Id")


def test_the_notebook_kernel_installs_the_sdk_and_boto3_the_project_pins():
    """What runs on the notebook instance is what the tests ran with (requirements.in)."""
    from stacks.notebook import sdk_requirements

    pins = dict(
        line.split("==", 1)
        for line in (NOTEBOOK_PY.parents[1] / "requirements.in").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert sdk_requirements() == f"sagemaker=={pins['sagemaker']} boto3=={pins['boto3']}"
    assert pins["sagemaker"].startswith("3.")  # the maintained major line


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
    from secml.demo.pipeline import DemoOptions

    assert _notebook_constant("HOLDOUT_FRACTION") == DemoOptions.holdout_fraction
    assert _notebook_constant("THRESHOLD_PERCENTILE") == DemoOptions.threshold_percentile


def frame(rows: list[tuple[str, str]]):
    import pandas as pd

    return pd.DataFrame(rows, columns=["principal", "ip"])


def test_held_out_tuples_are_normal_activity_never_trained_on():
    wh = load_helpers()
    cloudtrail = frame([(f"AIDA{i % 5}", f"198.51.100.{i % 50}") for i in range(1000)])
    guardduty = frame([("AIDA1", "198.51.100.1"), ("AIDA9", "203.0.113.9")])
    training, holdout, excluded = wh.split_training_data(
        cloudtrail, guardduty, holdout_fraction=0.1
    )
    scored = {("AIDA1", "198.51.100.1")}
    assert excluded == 20  # the scored pair's tuples: neither trained on nor held out
    assert len(holdout) == 98 and len(training) == 1000 - 20 - 98
    as_set = lambda f: set(f.itertuples(index=False, name=None))  # noqa: E731
    assert not as_set(holdout) & scored and not as_set(training) & scored
    # a random slice, not the first rows, and the same one every run
    again, holdout_again, _ = wh.split_training_data(cloudtrail, guardduty, holdout_fraction=0.1)
    assert holdout.equals(holdout_again)
    assert holdout["principal"].nunique() == 5
    with pytest.raises(ValueError, match="holdout_fraction"):
        wh.split_training_data(cloudtrail, guardduty, holdout_fraction=0)


def test_threshold_is_the_percentile_of_the_scored_held_out_tuples():
    import numpy as np

    wh = load_helpers()
    scores = np.concatenate([np.arange(100, dtype=float), [np.nan] * 50])  # IPv6: no score
    assert wh.threshold_from_holdout(scores, 1.0) == pytest.approx(0.99)
    with pytest.raises(ValueError, match="no held-out tuple"):
        wh.threshold_from_holdout(np.array([np.nan]), 1.0)


def ranked_example():
    import pandas as pd

    wh = load_helpers()
    finding = {
        "Id": "f-mal",
        "Type": "UnauthorizedAccess:IAMUser/TorIPCaller",
        "Resource": {"AccessKeyDetails": {"PrincipalId": "AIDAVICTIM", "UserName": "alice"}},
        "Service": {
            "Action": {"AwsApiCallAction": {"RemoteIpDetails": {"IpAddressV4": "192.0.2.66"}}}
        },
    }
    benign = json.loads(
        json.dumps(finding).replace("f-mal", "f-ben").replace("192.0.2.66", "198.51.100.2")
    )
    unlabelled = json.loads(
        json.dumps(finding).replace("f-mal", "f-new").replace("192.0.2.66", "198.51.100.3")
    )
    findings = wh.findings_frame([[finding, benign], unlabelled])
    scored = frame(
        [
            ("AIDAVICTIM", "192.0.2.66"),
            ("AIDAVICTIM", "198.51.100.2"),
            ("AIDAVICTIM", "198.51.100.3"),
        ]
    )
    scored["score"] = [-5.0, 2.0, 0.5]
    truth = pd.DataFrame({"finding_id": ["f-mal", "f-ben"], "label": ["malicious", "benign"]})
    return wh, wh.rank_findings(findings, scored, threshold=1.0, truth=truth)


def test_ranked_findings_read_as_an_analyst_needs_them():
    wh, ranked = ranked_example()
    table = ranked[wh.RANKED_COLUMNS]
    assert list(table.columns) == [
        "finding_type",
        "user_name",
        "ip",
        "score",
        "label",
        "below_threshold",
    ]
    assert table.values.tolist() == [
        ["UnauthorizedAccess:IAMUser/TorIPCaller", "alice", "192.0.2.66", -5.0, "malicious", True],
        ["UnauthorizedAccess:IAMUser/TorIPCaller", "alice", "198.51.100.3", 0.5, "", True],
        ["UnauthorizedAccess:IAMUser/TorIPCaller", "alice", "198.51.100.2", 2.0, "benign", False],
    ]
    assert list(table.index) == [1, 2, 3]  # rank 1 is the most unusual
    evaluation = wh.evaluate(ranked)  # over the labelled findings only
    assert evaluation["findings"] == 2 and evaluation["auc"] == 1.0
    assert evaluation["precision"] == 1.0 and evaluation["recall"] == 1.0


def test_the_histogram_draws_the_threshold_and_each_finding_by_label():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    wh, ranked = ranked_example()
    ax = wh.plot_scores(np.linspace(-1, 4, 200), ranked, threshold=1.0)
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1.0, 1.0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "held-out normal CloudTrail",
        "threshold 1.00",
        "finding: malicious (1)",
        "finding: benign (1)",
        "finding: no label (1)",
    ]
    markers = {c.get_label(): c.get_offsets()[:, 0].tolist() for c in ax.collections}
    assert markers["finding: malicious (1)"] == [-5.0]
