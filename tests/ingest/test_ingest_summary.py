"""What `ingest` and `status` print about a file's column types."""

from data_engine.ingest.summary import TYPES_LISTED, types_text


def test_a_narrow_file_lists_every_type():
    assert types_text({"age": "numeric", "plan": "categorical"}) == "age=numeric, plan=categorical"


def test_a_wide_file_counts_its_types_and_says_where_the_list_is():
    # A 3,000-column file printed 3,000 name=kind pairs on one line in ingest and in status.
    types = {f"f{i}": "categorical" if i % 7 == 0 else "numeric" for i in range(3000)} | {"note": "text"}
    text = types_text(types)
    assert text == ("3001 columns: 2571 numeric, 429 categorical, 1 text (note); "
                    "each column's type in `status --json` (column_types)")
    assert len(types_text({f"c{i}": "numeric" for i in range(TYPES_LISTED)}).split(", ")) == TYPES_LISTED
