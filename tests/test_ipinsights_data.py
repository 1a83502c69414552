import pytest

from secml.errors import SecmlError
from secml.ipinsights import read_pairs_csv
from secml.ipinsights.data import load_pairs


def write(tmp_path, text, name="pairs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_pairs_and_strips_spaces_like_the_builtin_example(tmp_path):
    frame = read_pairs_csv(write(tmp_path, "entity_id_1, 192.168.1.2\nentity_id_2, 2001:db8::1\n"))
    assert frame.values.tolist() == [["entity_id_1", "192.168.1.2"], ["entity_id_2", "2001:db8::1"]]
    assert frame.attrs["skipped"] == 0


@pytest.mark.parametrize(
    "text,message",
    [
        ("a,1.2.3.4\nb,1.2.3.999\n", r"line 2: '1\.2\.3\.999' is not an IPv4 or IPv6 address"),
        ("a,1.2.3.4\n\nb,1.2.3.4,x\n", "line 3: expected 2 fields"),
        ("a,1.2.3.4\n,1.2.3.4\n", "line 2: empty entity"),
        ("entity,ip\na,1.2.3.4\n", r"line 1: 'ip' is not .* \(the input is headerless\)"),
        ('a,1.2.3.4\n"b,1.2.3.4\n', "line 2: malformed CSV"),
    ],
)
def test_bad_rows_are_reported_with_their_line_number(tmp_path, text, message):
    with pytest.raises(SecmlError, match=message):
        load_pairs(write(tmp_path, text))


def test_skip_invalid_skips_and_counts(tmp_path):
    text = "a,1.2.3.4\nb,nope\nc,1.2.3.4,extra\n\nd,10.0.0.1\n,1.1.1.1\n"
    pairs = load_pairs(write(tmp_path, text), skip_invalid=True)
    assert pairs.entities.tolist() == ["a", "d"]
    assert pairs.line_numbers.tolist() == [1, 5]
    assert pairs.skipped == 3
    with pytest.raises(SecmlError, match=r"line 2: .*\(2 more invalid rows\)"):
        load_pairs(write(tmp_path, text))


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file_is_an_error(tmp_path, text):
    with pytest.raises(SecmlError, match="no entity,ip pairs"):
        load_pairs(write(tmp_path, text))


def test_missing_file_and_all_invalid(tmp_path):
    with pytest.raises(SecmlError, match="no such file"):
        load_pairs(tmp_path / "nope.csv")
    with pytest.raises(SecmlError, match="no valid rows"):
        load_pairs(write(tmp_path, "a,x\n"), skip_invalid=True)


def test_in_memory_rows_are_numbered(tmp_path):
    with pytest.raises(SecmlError, match="input row 2: 'x' is not"):
        load_pairs([("a", "1.2.3.4"), ("b", "x")])
