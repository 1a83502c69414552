"""truth.csv as spreadsheets save it: a BOM, capitalised labels; other problems one line."""

import codecs

import pytest

from secml.analysis import parse_truth
from secml.errors import SecmlError

HEADER = "finding_id,finding_type,label,principal,ip,scenario\n"
ROWS = (
    "f1,Recon:IAMUser/TorIPCaller,malicious,AIDA1,1.2.3.4,tor\n"
    "f2,Policy:X,benign,AIDA2,5.6.7.8,ok\n"
)


@pytest.mark.parametrize(
    "raw",
    [
        (HEADER + ROWS).encode(),
        codecs.BOM_UTF8 + (HEADER + ROWS).encode(),
        (
            HEADER.upper() + ROWS.replace("malicious", "Malicious").replace("benign", "BENIGN")
        ).encode(),
        (HEADER + ROWS).replace("\n", "\r\n").encode(),
        "\ufeff" + HEADER + ROWS,
    ],
)
def test_bom_case_and_line_ends_read_the_same(raw):
    truth = parse_truth(raw, "truth.csv")
    assert {k: v["label"] for k, v in truth.items()} == {"f1": "malicious", "f2": "benign"}
    assert truth["f1"]["scenario"] == "tor"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id,label\nf1,malicious\n", "columns finding_id and label"),
        ("", "columns finding_id and label"),
        (HEADER + ROWS + "f3,X,evil,A,1.1.1.1,s\n", "line 4: label 'evil'"),
        (HEADER + ROWS + "f1,X,benign,A,1.1.1.1,s\n", "line 4: finding 'f1' is listed twice"),
        (HEADER + ",X,benign,A,1.1.1.1,s\n", "line 2: empty finding_id"),
        (HEADER + "f1,X,benign\n", "line 2: 3 fields"),
    ],
)
def test_other_problems_are_one_line_with_the_line_number(text, needle):
    with pytest.raises(SecmlError, match=needle) as caught:
        parse_truth(text, "truth.csv")
    assert str(caught.value).startswith("truth.csv")


def test_not_utf8_names_the_line():
    raw = (HEADER + "f1,X,benign,Zoë,1.1.1.1,s\n").encode("cp1252")
    with pytest.raises(SecmlError, match="line 2: not UTF-8"):
        parse_truth(raw, "truth.csv")


def test_the_committed_dataset_reads():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "workshop" / "truth.csv"
    truth = parse_truth(path.read_bytes(), str(path))
    assert len(truth) == 22
    assert sum(r["label"] == "malicious" for r in truth.values()) == 10


def test_the_demo_reads_a_bom_and_capitals_from_s3(fleet_aws):
    import boto3

    from secml.demo.pipeline import read_truth

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(
        Bucket="truth-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    body = codecs.BOM_UTF8 + (HEADER + ROWS.replace("malicious", "MALICIOUS")).encode()
    s3.put_object(Bucket="truth-test", Key="truth.csv", Body=body)
    assert read_truth(s3, "truth-test", "truth.csv")["f1"]["label"] == "malicious"
    s3.put_object(
        Bucket="truth-test", Key="bad.csv", Body=(HEADER + "f1,X,Evil,A,1.1.1.1,s\n").encode()
    )
    with pytest.raises(SecmlError, match="s3://truth-test/bad.csv line 2: label 'evil'"):
        read_truth(s3, "truth-test", "bad.csv")
