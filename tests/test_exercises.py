import numpy as np

import helpers


def verdict(capsys, answer, expected, **kwargs) -> str:
    assert helpers.check_answer(answer, expected, **kwargs) is None  # prints, returns nothing to display
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one verdict line per check"
    return out.strip()


def test_check_answer_verdicts(capsys):
    assert "not answered yet" in verdict(capsys, None, 1.0)
    assert verdict(capsys, 2.5, 2.5004) == "answer: correct"
    assert verdict(capsys, np.eye(2), np.eye(2), name="matrix") == "matrix: correct"
    assert verdict(capsys, " Mean ", "mean") == "answer: correct"


def test_a_wrong_answer_says_what_is_wrong_without_giving_the_answer(capsys):
    low = verdict(capsys, 2.4, 2.5, hint_low="the triangle is too narrow")
    assert low == "answer: not yet: too low: the triangle is too narrow"
    assert verdict(capsys, 2.6, 2.5, hint_low="x") == "answer: not yet: too high"
    assert "2.5" not in low
    shape = verdict(capsys, np.eye(3), np.eye(2))
    assert shape == "answer: not yet: expected an array of shape (2, 2), got shape (3, 3)"
    assert "a single number" in verdict(capsys, [1.0, 2.0], 1.0)
    array = verdict(capsys, np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 1.0]))
    assert (
        array == "answer: not yet: 1 of 3 entries differ; the first at index (2,) is too high"
    )  # never the value
    assert "NaN" in verdict(capsys, float("nan"), 1.0)
    assert "got a string" in verdict(capsys, "0.5", 0.5)
    assert "expected a word" in verdict(capsys, 3, "mean")
    assert verdict(capsys, "max", "mean") == "answer: not yet: 'max' is not it"
    assert "got a function" in verdict(capsys, lambda x: x, 1.0)
