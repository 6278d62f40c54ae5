import numpy as np

import helpers


def test_check_answer_verdicts(capsys):
    assert helpers.check_answer(None, 1.0) is False
    assert "not answered yet" in capsys.readouterr().out
    assert helpers.check_answer(2.5, 2.5004) is True
    assert helpers.check_answer(2.4, 2.5) is False
    assert helpers.check_answer(np.eye(2), np.eye(2), name="matrix") is True
    assert "matrix: correct" in capsys.readouterr().out.splitlines()[-1]
    assert helpers.check_answer(np.eye(3), np.eye(2)) is False
    assert "expected shape (2, 2)" in capsys.readouterr().out
    assert helpers.check_answer(" Mean ", "mean") is True
