"""The workshop notebook, top to bottom, in `local` mode under nbclient, on the workshop preset.

This is what `make test` knows about exercise 3: the committed .ipynb runs in the venv's
python3 kernel with no AWS account, builds its tuples from data/workshop/ with the project's
own tuple code, trains the local IP Insights engine, and its ranking puts malicious findings
above benign ones. A last cell is injected to read the notebook's variables.
"""

from __future__ import annotations

import importlib.util
import json
import time

import nbformat
import pytest
from nbclient import NotebookClient

from lambda_src.detection_scoring.compact_model import CompactModel
from tests.notebook_cells import NOTEBOOK_IPYNB, ROOT

REQUIRED = {
    "secml.ipinsights": "the local IP Insights engine",
    "secml.tuples": "`python -m secml tuples`",
}

REPORT_CELL = """
import json as _json
import numpy as np
_report = {
    "train_rows": len(data.cloudtrail),
    "train_csv_lines": len(wh.read_object(data.tuples_location, data.train_key).splitlines()),
    "guardduty_rows": len(data.guardduty),
    "training_set_rows": len(training_set),
    "holdout_rows": len(holdout),
    "threshold": threshold,
    "holdout_percentile_1": float(np.nanpercentile(holdout_scores, 1.0)),
    "ranked": len(ranked),
    "ranked_columns": list(ranked[wh.RANKED_COLUMNS].columns),
    "user_names": ranked["user_name"].head(5).tolist(),
    "labels": sorted(set(ranked["label"])),
    "evaluation": EVALUATION,
    "top_types": ranked["finding_type"].head(5).tolist(),
    "sent_to": sent_to,
    "scored": data.guardduty[["principal", "ip", "score"]].head(40).values.tolist(),
}
print("REPORT " + _json.dumps(_report))
"""


def missing_parts() -> list[str]:
    return [what for module, what in REQUIRED.items() if importlib.util.find_spec(module) is None]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    assert not missing_parts()
    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    mp = pytest.MonkeyPatch()
    mp.setenv("SECML_BACKEND", "local")
    for key in ("SECML_TUPLES_BUCKET", "SECML_TUPLES_DIR", "SECML_DATA_BUCKET", "SECML_DATA_DIR"):
        mp.delenv(key, raising=False)
    # As if the facilitator had deployed detection: the optional cell writes the model here.
    model_file = tmp_path_factory.mktemp("detection") / "ipinsights-detection.zip"
    mp.setenv("SECML_DETECTION_MODEL_URI", str(model_file))
    started = time.monotonic()
    try:
        NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=600,
            resources={"metadata": {"path": str(ROOT / "notebooks")}},
        ).execute()
    finally:
        mp.undo()
    elapsed = time.monotonic() - started
    text = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    report = json.loads(text.split("REPORT ", 1)[1])
    print(f"notebook executed in {elapsed:.1f} s: {report}")
    return notebook, report


def test_every_tuple_is_read_including_the_first_line(executed):
    _, report = executed
    assert report["train_rows"] == report["train_csv_lines"] > 10_000
    assert report["guardduty_rows"] > 0
    # the pairs under investigation are kept out of training, 10 % of the rest is held out
    assert 0.5 * report["train_rows"] < report["training_set_rows"] < report["train_rows"]
    assert report["holdout_rows"] == round(
        0.1 * (report["training_set_rows"] + report["holdout_rows"])
    )


def test_threshold_comes_from_the_held_out_normal_tuples(executed):
    _, report = executed
    assert report["threshold"] == report["holdout_percentile_1"]


def test_the_ranked_table_names_users_and_labels(executed):
    _, report = executed
    assert report["ranked_columns"] == [
        "finding_type",
        "user_name",
        "ip",
        "score",
        "label",
        "below_threshold",
    ]
    assert all(name and not name.startswith(("AIDA", "AROA")) for name in report["user_names"])
    assert report["labels"] == ["benign", "malicious"]


def test_histogram_is_drawn(executed):
    notebook, _ = executed
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert images, "the score histogram produced no image"


def test_findings_are_ranked_with_malicious_ones_first(executed):
    _, report = executed
    evaluation = report["evaluation"]
    assert report["ranked"] == evaluation["findings"] >= 10
    assert evaluation["malicious"] >= 3
    # A real ranking, not a lucky order: most malicious findings above most benign ones,
    # and the top of the list mostly malicious.
    assert evaluation["auc"] >= 0.75, evaluation
    assert evaluation["precision_at_k"] >= 0.5, evaluation


def test_the_model_sent_to_detection_scores_as_the_notebook_with_its_threshold(executed):
    _, report = executed
    with open(report["sent_to"], "rb") as handle:
        compact = CompactModel.from_bytes(handle.read())
    assert compact.threshold == pytest.approx(report["threshold"], abs=1e-12)
    assert compact.meta["threshold_rule"].startswith("percentile 1 of ")
    assert compact.meta["threshold_rule"].endswith(f" {report['holdout_rows']:,} held-out scores")
    assert compact.meta["training_pairs"] == report["training_set_rows"]
    for principal, ip, score in report["scored"]:
        assert compact.score(principal, ip).score == pytest.approx(score, abs=1e-5), (principal, ip)
