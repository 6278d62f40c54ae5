import numpy as np

import helpers


def verdict(capsys, answer, expected, **kwargs) -> str:
    assert helpers.check_answer(answer, expected, **kwargs) is None  # prints, returns nothing to display
    return capsys.readouterr().out.strip()


def test_check_answer_verdicts(capsys):
    assert "not answered yet" in verdict(capsys, None, 1.0)
    assert verdict(capsys, 2.5, 2.5004) == "answer: correct"
    assert verdict(capsys, 2.4, 2.5) == "answer: not yet, try again"
    assert verdict(capsys, np.eye(2), np.eye(2), name="matrix") == "matrix: correct"
    shape = verdict(capsys, np.eye(3), np.eye(2))
    assert "expected shape (2, 2)" in shape and shape.endswith("not yet, try again")
    assert verdict(capsys, " Mean ", "mean") == "answer: correct"
