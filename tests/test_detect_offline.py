"""`secml detect` on the workshop dataset, end to end; `secml export-model`; bad input."""

from __future__ import annotations

import json

import pytest

from secml import detect
from secml.cli import main

WORKSHOP = detect.WORKSHOP_DATASET


@pytest.fixture(scope="module")
def workshop_run(tmp_path_factory):
    artifact = detect.train_artifact(WORKSHOP)
    (tmp_path_factory.mktemp("model") / "model.zip").write_bytes(artifact)
    events = detect.read_events(sorted((WORKSHOP / "guardduty").glob("*.json")))
    return detect.run_offline(artifact, events), detect.read_truth(WORKSHOP), artifact


def test_every_attacker_finding_with_a_principal_alerts(workshop_run):
    run, truth, _ = workshop_run
    malicious = [o for o in run.outcomes if truth[o.finding_id]["label"] == "malicious"]
    with_principal = [o for o in malicious if truth[o.finding_id]["principal"]]
    assert len(with_principal) == 7
    assert all(o.alerted for o in with_principal), [
        (o.finding_type, o.result) for o in with_principal if not o.alerted
    ]
    # The EC2 findings name no principal: the rule does not even invoke the function.
    assert all(not o.matched for o in malicious if not truth[o.finding_id]["principal"])


def test_benign_findings_below_the_threshold_are_counted_and_explained(workshop_run):
    run, truth, _ = workshop_run
    benign = [o for o in run.outcomes if truth[o.finding_id]["label"] == "benign"]
    flagged = [o for o in benign if o.alerted]
    quiet = [o for o in benign if o.matched and o.result and not o.result["skipped"]]
    # Not every benign finding alerts (how many do depends on the engine's training: none with
    # entity smoothing, 5 of 11 before it); each one that does is explained.
    assert quiet and len(flagged) < len(quiet)
    for o in flagged:
        assert o.result["pairs"][0]["score"] < run.threshold
        assert o.result["alert"]["why"].startswith("principal ")
    skipped = [o for o in benign if o.result and o.result["skipped"]]
    assert [o.result["skipped"] for o in skipped] == ["ipv6-address-model-trained-on-ipv4-only"]


def test_what_alerts_is_what_sns_and_security_hub_received(workshop_run):
    run, _, _ = workshop_run
    alerted = {o.finding_id for o in run.outcomes if o.alerted}
    assert len(run.messages) == len(alerted) == len(run.securityhub_findings)
    delivered = {m["Message"].split()[2] for m in run.messages}  # "GuardDuty finding <id> ..."
    assert delivered == alerted
    for message in run.messages:
        for field in ("principal:", "address:", "score:", "threshold:", "why:"):
            assert field in message["Message"]


def test_detect_cli_with_a_model_and_one_event_file(workshop_run, tmp_path, capsys):
    _, _, artifact = workshop_run
    model = tmp_path / "model.zip"
    model.write_bytes(artifact)
    findings = json.loads((WORKSHOP / "guardduty" / "findings.json").read_text())
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(detect.eventbridge_event(findings[0])))
    assert main(["detect", "--model", str(model), "--event", str(event_file)]) == 0
    out = capsys.readouterr().out
    assert "ALERT  Recon:IAMUser/MaliciousIPCaller [malicious]: AIDAGB2MN5UOZXUKZSF6X" in out
    assert "SNS delivered 1 messages; Security Hub holds 1 findings" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--event", "no-such-file.json"], "no such file"),
        (["--model", "no-such-model.zip"], "no such file"),
        (["--dataset", "/nonexistent"], "no guardduty/ folder"),
    ],
)
def test_detect_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["detect", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("secml detect: error: ") and message in err[0]


def test_detect_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"not a zip")
    event = tmp_path / "e.json"
    event.write_text(json.dumps({"Id": "x", "Type": "t"}))
    assert main(["detect", "--model", str(bad), "--event", str(event)]) == 2
    assert "cannot read the model artifact" in capsys.readouterr().err


def test_export_model_from_secml_train(tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("".join(f"user{i % 3},10.{i % 3}.0.{i}\n" for i in range(90)))
    model_dir = tmp_path / "model"
    assert main(["train", "--train", str(train), "--model-dir", str(model_dir), "--hp", "epochs=1",
                 "--hp", "vector_dim=8", "--device", "cpu"]) == 0  # fmt: skip
    out = tmp_path / "artifact.zip"
    code = main(
        ["export-model", "--model-dir", str(model_dir), "--train", str(train), "--out", str(out),
         "--threshold", "-0.5"]
    )  # fmt: skip
    assert code == 0
    assert "threshold -0.5000" in capsys.readouterr().out
    from lambda_src.detection_scoring.compact_model import CompactModel

    assert CompactModel.from_bytes(out.read_bytes()).threshold == -0.5
