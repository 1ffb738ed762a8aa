"""The `<View>` parts the span, box and number tasks share (`data_engine.tasks.review_views`): each
task's config carries the same discard choice and partner lines, with its own control name."""

from __future__ import annotations

from data_engine.tasks import ner_review, regression_review
from data_engine.tasks.detection import Detection
from data_engine.tasks.review_views import discard_and_partner

KW = {"from_name": "label", "to_name": "item", "discard": "not a valid example", "partner_prefix": "partner_"}


def test_the_tail_is_the_discard_choice_then_the_partner():
    assert discard_and_partner("label_x", "item", "a & 'b'", "p_", "<P/>", ' choice="single"') == (
        '<Choices name="label_x" toName="item" choice="single">\n'
        '    <Choice value="a &amp; \'b\'"/>\n'
        '  </Choices>\n'
        '  <Header value="$p_note" size="5"/>\n'
        '  <P/>')


def test_every_region_and_number_config_ends_with_the_same_tail():
    ner = ner_review.labeling_config("<Text/>", "<P/>", ["PER"], **KW)
    boxes = Detection().labeling_config("<Image/>", "<P/>", ["cat"], **KW)
    number = regression_review.labeling_config("<Text/>", "<P/>", label_range=None, **KW)
    assert ner.endswith(discard_and_partner("label_discard", "item", "not a valid example", "partner_", "<P/>")
                        + "\n</View>")
    assert boxes.endswith(discard_and_partner("label_discard", "item", "not a valid example", "partner_", "<P/>")
                          + "\n</View>")
    assert number.endswith(discard_and_partner("label_invalid", "item", "not a valid example", "partner_", "<P/>",
                                               ' choice="single" showInLine="true"') + "\n</View>")
    assert '<Labels name="label" toName="item">\n    <Label value="PER"/>\n  </Labels>\n  <Text/>' in ner
    assert '<RectangleLabels name="label" toName="item">\n    <Label value="cat"/>\n  </RectangleLabels>' in boxes
