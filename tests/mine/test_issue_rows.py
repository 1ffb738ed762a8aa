"""issues_frame's columns: the reasons taken as the frame's own string column, the same dtypes
with no rows, and the label detector letting its check's reasons go before the frame is built."""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np
import pandas as pd

import data_engine.mine.detectors.label as label_module
from data_engine.mine.detectors import LabelDetector, OutlierDetector
from data_engine.mine.detectors.base import issues_frame
from tests.mine.test_detectors import confident, make_data, points_with_neighbours

STR_COLUMNS = ("example_id", "reason", "detail")


def test_no_rows_give_the_same_dtypes_as_rows():
    rows = issues_frame(np.array(["e0"], object), np.array([True]), np.array([0.5]), np.array(["far"], object),
                        pd.DataFrame({"d": [1.0]}))
    empty = issues_frame(np.array([], object), np.array([], bool), np.array([]), np.array([], object),
                         pd.DataFrame({"d": []}))
    assert empty.dtypes.to_dict() == rows.dtypes.to_dict()
    assert all(rows[c].dtype == "str" for c in STR_COLUMNS)


def test_the_outlier_check_with_none_flagged_has_the_full_frame_s_dtypes():
    grid = np.c_[np.arange(20, dtype=float) * 0.1, np.zeros(20)]
    labels = np.zeros(20, int)
    data = make_data(labels, confident(labels), neighbours=points_with_neighbours(grid))
    flagged, full = OutlierDetector().find_flagged(data).issues, OutlierDetector().find_issues(data).issues
    assert len(flagged) == 0 and len(full) == 20
    assert flagged.dtypes.to_dict() == full.dtypes.to_dict()


def test_a_reason_column_is_the_frame_s_column_as_it_is():
    from data_engine.mine.detectors.base import reason_column

    reasons = reason_column(["given 'a' (p=0.10)", "label agrees with the model"])
    frame = issues_frame(np.array(["e0", "e1"], object), np.array([True, False]), np.array([0.1, 0.9]), reasons)
    assert frame["reason"].tolist() == ["given 'a' (p=0.10)", "label agrees with the model"]
    assert frame["reason"].array._pa_array.chunks[0].buffers()[2].address == \
        reasons._pa_array.chunks[0].buffers()[2].address


class _Reasons(list):
    """A list of reasons that can be watched going (a plain list takes no weak reference)."""


def test_the_label_detector_hands_a_string_column_and_its_check_s_list_is_gone(monkeypatch):
    labels = np.array([0, 0, 1, 1, 0, 1] * 5)
    probs = confident(labels)
    probs[0] = [0.05, 0.95]  # one plain contradiction
    data = make_data(labels, probs)
    task = data.task
    watched = {}

    def check(*args, **kwargs):
        found = type(task).label_issues(task, *args, **kwargs)
        found = dataclasses.replace(found, detail=_Reasons(found.detail))
        watched["list"] = weakref.ref(found.detail)
        return found

    seen = {}

    def frame(ids, flags, scores, reasons, detail=None):
        seen["reasons"], seen["list alive"] = reasons, watched["list"]() is not None
        return issues_frame(ids, flags, scores, reasons, detail)

    expected = LabelDetector().find_issues(data).issues
    monkeypatch.setattr(task, "label_issues", check)
    monkeypatch.setattr(label_module, "issues_frame", frame)
    got = LabelDetector().find_issues(data).issues
    pd.testing.assert_frame_equal(got, expected)
    assert isinstance(seen["reasons"], pd.api.extensions.ExtensionArray) and seen["reasons"].dtype == "str"
    assert not seen["list alive"]
