"""The strict-JSON pass's fast path decides exactly as the exact, item-by-item check."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import strict_json, validation
from tests.factories import event

# Few key names, so objects often repeat one; names with a quote or a colon in them,
# and whitespace before the colon, are what counting keys in the text must survive.
KEYS = st.sampled_from(["a", "b", 'q"', 'x":', "\u00e9"])
SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])
SCALARS = st.one_of(
    st.integers(-(2**65), 2**65).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text(max_size=4).map(json.dumps),
    st.sampled_from(["true", "false", "null", '"a\\":b"', '"\\u0022:"']),
)


def objects(values):
    members = st.tuples(KEYS, SPACE, values, SPACE)
    return st.lists(members, max_size=4).map(
        lambda pairs: (
            "{" + ",".join(f"{json.dumps(key)}{before}:{value}{after}" for key, before, value, after in pairs) + "}"
        )
    )


VALUES = st.recursive(
    SCALARS,
    lambda values: st.one_of(st.lists(values, max_size=3).map(",".join).map("[{}]".format), objects(values)),
    max_leaves=10,
)


@st.composite
def items(draw) -> str:
    """An event with a payload of any shape, and sometimes a field repeated or one the service does not know."""
    fields = [
        f"{json.dumps(name)}{draw(SPACE)}:{json.dumps(value)}" for name, value in event().items() if name != "payload"
    ]
    fields.append(f'"payload":{draw(objects(VALUES))}')
    if draw(st.booleans()):
        fields.append(f'"{draw(st.sampled_from(["extra", "source"]))}":{draw(VALUES)}')
    return "{" + ",".join(draw(st.permutations(fields))) + "}"


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(batch=st.booleans(), bodies=st.lists(items(), min_size=1, max_size=3))
def test_the_fast_path_refuses_exactly_what_the_exact_check_refuses(batch, bodies):
    body = (f"[{','.join(bodies)}]" if batch else bodies[0]).encode()
    try:
        decoded = validation._decoder.decode(body)
    except Exception:
        return  # a repeated `source` that is not a string: the typed decode refuses it first
    payloads = [item.payload for item in (decoded if batch else [decoded])]

    def refused(check) -> bool:
        try:
            check()
        except strict_json.NotStrict:
            return True
        return False

    fast = refused(lambda: strict_json.check(body, payloads, batch=batch, fields_per_item=5))
    exact = refused(lambda: strict_json.check_each_item(body, batch=batch))
    assert fast == exact


def test_every_published_field_is_required():
    # The fast path counts each item's own fields: an optional one would make that count wrong.
    assert validation.PublishedEvent.__struct_defaults__ == ()


@pytest.mark.parametrize("separator", ['":', '" :', '"\n:'])
def test_a_duplicate_key_is_found_whatever_the_space_before_its_colon(separator):
    body = f'{{"payload": {{"a": 1, "a{separator} 2}}}}'.encode()
    with pytest.raises(strict_json.NotStrict, match="key `a` twice"):
        strict_json.check(body, [b'{"a": 1, "a' + separator.encode() + b" 2}"], batch=False, fields_per_item=1)
