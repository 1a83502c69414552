import subprocess
import sys

import pytest

from secml.cli import main


def test_unknown_command_is_one_clear_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    assert "Traceback" not in err


def test_module_entry_point_prints_version():
    out = subprocess.run(
        [sys.executable, "-m", "secml", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("secml ")
