"""JSON documents as dataclasses, built with their fields' types checked.

The steps pass each other small documents. pydantic would cost every cold start about 100 ms to import; these
need only what `Document.from_json` does: take the known keys, check each value against its field's type (str,
int, float, bool, Literal, optional, list, dict, nested documents), and let `__post_init__` check the rest.
"""

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, Self, Union, dataclass_transform

from functions.shared.records import Record


class InvalidDocument(ValueError):
    """A document does not have the shape its model says."""


@dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
class Document(Record):
    """A JSON document: a data class of keyword-only fields."""

    _KW_ONLY = True

    @classmethod
    def from_json(cls, data: object) -> Self:
        """The document in `data` (a JSON object); keys the model does not have are ignored."""
        if not isinstance(data, dict):
            raise InvalidDocument(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in data:
                values[field.name] = _converted(data[field.name], _field_types(cls)[field.name],
                                                f"{cls.__name__}.{field.name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise InvalidDocument(f"{cls.__name__}.{field.name}: missing")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise InvalidDocument(f"{cls.__name__}: {error}") from None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _converted(value: object, annotation: Any, where: str) -> Any:
    if annotation in (Any, object):
        return value
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        problems = []
        for option in (argument for argument in arguments if argument is not type(None)):
            try:
                return _converted(value, option, where)
            except InvalidDocument as problem:
                problems.append(str(problem))
        raise InvalidDocument("; ".join(problems))
    if origin is Literal:
        if value not in arguments:
            raise InvalidDocument(f"{where}: expected one of {', '.join(map(repr, arguments))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise InvalidDocument(f"{where}: expected a list, got {type(value).__name__}")
        return [_converted(item, arguments[0], f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(annotation, type) and issubclass(annotation, Document):
        return annotation.from_json(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = origin or annotation
    # bool is an int to Python, never to a document.
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise InvalidDocument(f"{where}: expected {expected.__name__}, got {type(value).__name__}")
    return value


def read_leniently(annotation: Any, value: object) -> Any:
    """`value` as `annotation` when it fits, else None: for readers that must go on whatever they are given."""
    try:
        return _converted(value, annotation, "")
    except InvalidDocument:
        return None
