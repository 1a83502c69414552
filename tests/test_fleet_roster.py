import pytest

from secml.errors import SecmlError
from secml.fleet.roster import parse_roster


def test_roster_with_header_comments_defaults_and_attendees():
    text = (
        "account_id,region,attendee\n"
        "# facilitators first\n"
        "111111111111,eu-west-1,Ada\n"
        "\n"
        "222222222222,,Grace\n"
        "333333333333\n"
        "111111111111,us-gov-west-1\n"
    )
    targets = parse_roster(text, default_region="us-east-1")
    assert [(t.account_id, t.region, t.attendee, t.line) for t in targets] == [
        ("111111111111", "eu-west-1", "Ada", 3),
        ("222222222222", "us-east-1", "Grace", 5),
        ("333333333333", "us-east-1", "", 6),
        ("111111111111", "us-gov-west-1", "", 7),
    ]


def test_every_problem_is_reported_with_its_line_number():
    text = "11111111111\n12345678901a\n111111111111,eu-west\n222222222222\n222222222222\n"
    with pytest.raises(SecmlError) as exc:
        parse_roster(text, default_region="eu-west-1", source="r.csv")
    message = str(exc.value)
    assert "\n" not in message
    assert "line 1: account id '11111111111' is not 12 digits (a spreadsheet" in message
    assert "line 2: account id '12345678901a'" in message
    assert "line 3: 'eu-west' is not a region name" in message
    assert "line 5: 222222222222 in eu-west-1 is already on line 4" in message


def test_no_region_anywhere_is_an_error():
    with pytest.raises(SecmlError, match="line 1: no region"):
        parse_roster("111111111111\n", default_region=None)


def test_empty_roster_is_an_error():
    with pytest.raises(SecmlError, match="no accounts"):
        parse_roster("account_id\n# nobody yet\n", default_region="eu-west-1")
