import pytest

from secml.errors import SecmlError
from secml.ipinsights import read_pairs_csv
from secml.ipinsights.data import CsvBytes, load_pairs


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


@pytest.mark.parametrize(
    "raw",
    [
        b"u1,10.0.0.1\nu2,10.0.0.2\n",
        b"u1,10.0.0.1\nu2,10.0.0.2",  # no newline at the end
        b"\xef\xbb\xbfu1,10.0.0.1\r\nu2,2001:db8::1\r\n",  # byte-order mark, CRLF
        b"u1,10.0.0.1\n,10.0.0.2\nu3,nope\nu4,\n",  # empty entity, bad and empty address
        b"u1,10.0.0.1\n\nu2, 10.0.0.2\n",  # not plain: a blank line, a space
    ],
)
def test_a_file_reads_as_the_same_bytes_given_in_memory(tmp_path, raw):
    path = tmp_path / "train.csv"
    path.write_bytes(raw)
    got = load_pairs(path, skip_invalid=True)
    want = load_pairs(CsvBytes(raw, str(path)), skip_invalid=True)
    assert got.entities.tolist() == want.entities.tolist()
    assert got.ip_texts.tolist() == want.ip_texts.tolist()
    assert got.line_numbers.tolist() == want.line_numbers.tolist()
    assert (got.skipped, got.problems) == (want.skipped, want.problems)
    if want.skipped:  # the same first complaint without --skip-invalid
        with pytest.raises(SecmlError) as bad:
            load_pairs(path)
        with pytest.raises(SecmlError) as same:
            load_pairs(CsvBytes(raw, str(path)))
        assert str(bad.value) == str(same.value)


def test_a_plain_file_is_split_by_arrow_not_line_by_line(tmp_path, monkeypatch):
    import secml.ipinsights.data as data

    path = tmp_path / "train.csv"
    path.write_bytes(b"u1,10.0.0.1\nu2,10.0.0.2\n")

    def per_line(*args):
        raise AssertionError("the per-line reader ran on a plain file")

    monkeypatch.setattr(data, "_read_csv_rows", per_line)
    assert load_pairs(path).entities.tolist() == ["u1", "u2"]
