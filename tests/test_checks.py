"""dmkeras.checks: the shared num_classes and class-label checks, and their one-line wording."""

import numpy as np
import pytest

from dmkeras import checks
from dmkeras.errors import DmkerasError


def test_count_values_names_each_value_with_its_count_most_frequent_first():
    assert checks.count_values(np.array([12, -1, 12, 12, -1, 30])) == "12 (3 samples), -1 (2 samples), 30 (1 sample)"
    assert checks.count_values(np.arange(7)).endswith("4 (1 sample), and 2 other value(s)")


def test_labels_come_back_as_a_new_int64_array():
    given = np.array([0, 2, 1], np.int32)
    out = checks.check_class_labels(given, 3)
    assert out.dtype == np.int64 and out.tolist() == [0, 2, 1] and not np.shares_memory(out, given)
    assert checks.check_class_labels([0.0, 2.0], 3).tolist() == [0, 2]  # integral floats are class indices


@pytest.mark.parametrize(
    "labels, num_classes, kwargs, message",
    [
        ([0, 12, 3, 12], 10, {}, r"^labels must lie in \[0, 10\), got 12 \(2 samples\)$"),
        ([0, -1], None, {}, r"^labels must lie in \[0, num_classes\), got -1 \(1 sample\)$"),
        ([[0, 1]], 2, {}, r"^labels must be 1-D \(got shape \(1, 2\)\)$"),
        ([0.5, 1.0], 2, {}, r"^labels must be integer class indices \(got non-integer values\)$"),
        ([True, False], 2, {}, r"^labels must be integer class indices \(got dtype bool\)$"),
        ([0, 1], 2, {"count": 3, "count_what": "x has 3 images", "what": "y"}, r"^x has 3 images but y has 2 labels$"),
    ],
)
def test_bad_labels_get_one_line_naming_the_problem(labels, num_classes, kwargs, message):
    with pytest.raises(DmkerasError, match=message):
        checks.check_class_labels(labels, num_classes, **kwargs)


@pytest.mark.parametrize("value, minimum, message", [
    (0, 1, r"^num_classes must be a positive integer, got 0$"),
    (1, 2, r"^num_classes must be an int >= 2, got 1$"),
    (True, 1, r"^num_classes must be a positive integer, got True$"),
    (2.0, 1, r"^num_classes must be a positive integer, got 2.0$"),
])
def test_num_classes_must_be_an_integer_of_at_least_the_minimum(value, minimum, message):
    with pytest.raises(DmkerasError, match=message):
        checks.check_num_classes(value, minimum=minimum)
    assert checks.check_num_classes(np.int64(3)) == 3
