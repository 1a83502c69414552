"""secml/outputs.py: the shared guard against outputs that destroy inputs or land half-written."""

import os

import pytest

from secml import outputs
from secml.errors import SecmlError
from secml.outputs import atomic_directory, atomic_file, check_output


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("input\n")
    return tmp_path


@pytest.mark.parametrize(
    "make",
    [
        lambda: "in.csv",
        lambda: "./in.csv",
        lambda: (os.symlink("in.csv", "link.csv"), "link.csv")[1],
        lambda: (os.link("in.csv", "hard.csv"), "hard.csv")[1],
    ],
)
def test_a_file_output_that_is_an_input_is_refused(here, make):
    with pytest.raises(SecmlError, match="also an input"):
        check_output(make(), ["in.csv"])


def test_an_input_reached_through_a_symlinked_folder(here):
    os.symlink(".", "alias")
    with pytest.raises(SecmlError, match="also an input"):
        check_output("alias/in.csv", ["in.csv"])


def test_a_folder_output_holding_an_input_is_refused(here):
    (here / "data").mkdir()
    (here / "data" / "train.csv").write_text("x")
    with pytest.raises(SecmlError, match="also an input"):
        check_output("data", ["data/train.csv"], option="--model-dir", kind="folder")
    with pytest.raises(SecmlError, match="also an input"):
        check_output(".", ["data/train.csv"], kind="folder")
    assert check_output("other", ["data/train.csv"], kind="folder").name == "other"


def test_other_outputs_pass_and_urls_are_not_paths(here):
    assert check_output("out.csv", ["in.csv", None, "s3://bucket/in.csv", "missing.csv"])
    with pytest.raises(SecmlError, match="only local paths"):
        check_output("s3://bucket/out.csv")
    with pytest.raises(SecmlError, match="in.csv is a file"):
        check_output("in.csv/out.csv")
    with pytest.raises(SecmlError, match="exists and is not a folder"):
        check_output("in.csv", kind="folder")


def test_atomic_file_appears_whole_or_not_at_all(here):
    with pytest.raises(KeyboardInterrupt), atomic_file("in.csv") as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert (here / "in.csv").read_text() == "input\n"
    assert sorted(os.listdir(here)) == ["in.csv"]
    with atomic_file("in.csv") as fh:
        fh.write("new\n")
    assert (here / "in.csv").read_text() == "new\n"
    assert oct((here / "in.csv").stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's mode


def test_atomic_directory_keeps_the_old_folder_when_the_swap_fails(here, monkeypatch):
    (here / "model").mkdir()
    (here / "model" / "old.txt").write_text("old")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new folder moving into place
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", flaky)
    with pytest.raises(OSError), atomic_directory("model") as staging:
        (staging / "new.txt").write_text("new")
    monkeypatch.setattr(outputs.os, "replace", real)
    assert os.listdir(here / "model") == ["old.txt"]
    assert sorted(os.listdir(here)) == ["in.csv", "model"]
    with atomic_directory("model") as staging:
        (staging / "new.txt").write_text("new")
    assert os.listdir(here / "model") == ["new.txt"]
    assert sorted(os.listdir(here)) == ["in.csv", "model"]
