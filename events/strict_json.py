"""The strict-JSON pass of a publish body: what a typed decode lets through.

events.validation decodes the body into typed events, keeping each payload as
raw JSON text. JSON itself allows more than the service stores: the same key
twice in one object, integers of any size, numbers beyond double range, deep
nesting. check() refuses those, with the item and field where they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain, compress, repeat
from operator import is_

import msgspec

# Deeper payloads are refused: reading one back (json.loads, the renderers)
# recurses once per level and must stay far from Python's recursion limit.
MAX_PAYLOAD_DEPTH = 64
# Integers must fit a signed or an unsigned 64-bit integer, as most readers
# (PostgreSQL's bigint, JavaScript's BigInt64, Go, Java) can hold them.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1

_value_decoder = msgspec.json.Decoder()
_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])


class NotStrict(ValueError):
    """The body is valid JSON the service refuses: says what, and in which item and field."""

    def __init__(self, message: str, *, item: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.item = item
        self.field = field


def check(body: bytes, payloads: Sequence[msgspec.Raw], *, batch: bool, fields_per_item: int) -> None:
    r"""Refuse what the typed decode lets through.

    That is: duplicate keys, integers beyond 64 bits, floats beyond double
    range, invalid UTF-8 in payload strings, too deep nesting.

    The typed decode has read each item's own fields and kept its `payloads`
    as raw JSON; every item holds exactly `fields_per_item` fields it knows.
    Fast path: decode the payloads again, as one array, and walk them for depth
    and integer range while counting the keys they kept; then count the keys in
    the whole body's text. If the body holds the items' own fields and the
    payloads' keys and no more, no object had a duplicate key and no item a
    field the typed decode skipped unchecked. Bodies that fail any of this
    are checked item by item with the exact (slower) parser, which names the
    item and field.
    """
    try:
        decoded = _value_decoder.decode(b"[" + b",".join(payloads) + b"]")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass  # located below
    else:
        # The array adds a level above the payloads.
        problem, keys = _value_problem(decoded, MAX_PAYLOAD_DEPTH + 1)
        if problem is None and _key_count(body) == keys + fields_per_item * len(payloads):
            return
    check_each_item(body, batch=batch)


def check_each_item(body: bytes, *, batch: bool) -> None:
    """The exact check: each item decoded on its own, duplicate keys found by the parser itself."""
    items = _items_decoder.decode(body) if batch else [body]
    for index, item in enumerate(items):
        try:
            _check_item(bytes(item))
        except NotStrict as exc:
            exc.item = index if batch else None
            raise


def _key_count(body: bytes) -> int | None:
    r"""How many object keys the JSON text `body` holds, or None if this cannot count them.

    With whitespace removed, every `":` ends a key unless the text has a `\"`
    followed by `:` (a quote inside a string), which a body without a single
    backslash cannot have. (Searching for a quote followed by whitespace, to skip
    removing it, cost more than removing it: quotes are everywhere in JSON.)
    """
    text = msgspec.json.format(body, indent=-1)
    if b"\\" in body and b'\\":' in text:
        return None
    return text.count(b'":')


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return value


def _check_item(item: bytes) -> None:
    try:
        value = _value_decoder.decode(item)
    except msgspec.ValidationError:  # "Number out of range": only the payload holds free-form numbers
        raise NotStrict("has a number beyond the range of a 64-bit float", field="payload") from None
    except (UnicodeDecodeError, msgspec.DecodeError):
        raise NotStrict("has a string that is not valid UTF-8", field="payload") from None
    except RecursionError:
        raise NotStrict(f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep", field="payload") from None
    if problem := _value_problem(value["payload"], MAX_PAYLOAD_DEPTH)[0]:
        raise NotStrict(problem, field="payload")
    if problem := _value_problem(value, 1 + MAX_PAYLOAD_DEPTH)[0]:
        raise NotStrict(f"The event {problem}")
    try:
        json.loads(item, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        key = exc.args[0]
        try:
            json.loads(_payload_of(item), object_pairs_hook=_refuse_duplicates)
        except _DuplicateKey:
            raise NotStrict(f"has the key `{key}` twice in one object", field="payload") from None
        raise NotStrict(f"The event has the key `{key}` twice", field=key) from None


def _payload_of(item: bytes) -> bytes:
    return bytes(msgspec.json.decode(item, type=_PayloadOnly).payload)


class _PayloadOnly(msgspec.Struct):
    payload: msgspec.Raw


def _value_problem(value, max_depth: int) -> tuple[str | None, int]:
    """Why a decoded JSON value is refused, or None; and how many object keys it holds.

    Refused: too deep, or an integer beyond 64 bits.
    """
    # A level of the tree at a time: chain, map, compress and set run in C,
    # so a whole batch costs a few passes per level, not a few per container.
    level, depth, keys = [value], 1, 0
    while level:
        if depth > max_depth:
            return f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep", keys
        objects = [container.values() for container in level if type(container) is dict]
        keys += sum(map(len, objects))
        arrays = [container for container in level if type(container) is list]
        values = list(chain.from_iterable(objects + arrays))
        kinds = list(map(type, values))
        present = set(kinds)
        if int in present:
            numbers = list(compress(values, map(is_, kinds, repeat(int))))
            if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
                big = next(item for item in numbers if not INT_MIN <= item <= INT_MAX)
                return f"has the integer {big} beyond the signed and unsigned 64-bit range", keys
        if present.isdisjoint(_CONTAINERS):
            break
        level, depth = list(compress(values, map(_CONTAINERS.__contains__, kinds))), depth + 1
    return None, keys


_CONTAINERS = frozenset({dict, list})
