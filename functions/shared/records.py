"""Data classes that cost a cold start almost nothing to declare.

`@dataclass` writes each method it generates as source and compiles it: about 0.2 ms a class for `__init__`,
`__repr__` and `__eq__`, twice that for a frozen one (`__setattr__`, `__delattr__`, `__hash__`), and a handler's
import declares dozens of classes. A subclass of `Record` is a dataclass of its fields only; `Record` holds those
methods once, for every class, with the same behaviour (`__post_init__` included).
"""

import dataclasses
import functools
from typing import Any, dataclass_transform


@dataclass_transform(field_specifiers=(dataclasses.field,))
class Record:
    """A mutable data class: `class Point(Record): x: int; y: int = 0`, built as `Point(1, y=2)`."""

    _KW_ONLY = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=cls._KW_ONLY)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        positional, keyword_only = _init_fields(cls)
        if len(args) > len(positional):
            raise TypeError(f"{cls.__name__}() takes {len(positional)} positional arguments, {len(args)} given")
        values = dict(zip((field.name for field in positional), args))
        for name in kwargs:
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        values.update(kwargs)
        fields = positional + keyword_only
        unknown = sorted(values.keys() - {field.name for field in fields})
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        missing = [field.name for field in fields if field.name not in values
                   and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
        if missing:
            raise TypeError(f"{cls.__name__}() missing required arguments: {', '.join(missing)}")
        for field in fields:
            if field.name in values:
                value = values[field.name]
            elif field.default_factory is not dataclasses.MISSING:
                value = field.default_factory()
            else:
                value = field.default
            object.__setattr__(self, field.name, value)
        if hasattr(self, "__post_init__"):
            self.__post_init__()

    def __repr__(self) -> str:
        shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in dataclasses.fields(self)
                          if field.repr)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _compared(self) == _compared(other)

    __hash__ = None  # mutable: unhashable, as a dataclass with eq


class FrozenRecord(Record):
    """A data class whose fields cannot change after `__init__`: hashable by them, as `@dataclass(frozen=True)`."""

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(tuple(_compared(self)))


def _compared(record: Record) -> list[Any]:
    return [getattr(record, field.name) for field in dataclasses.fields(record) if field.compare]


@functools.cache
def _init_fields(cls: type) -> tuple[tuple[dataclasses.Field, ...], tuple[dataclasses.Field, ...]]:
    """The fields `__init__` takes: those it takes by position too, then the keyword-only ones."""
    fields = [field for field in dataclasses.fields(cls) if field.init]
    return (tuple(field for field in fields if not field.kw_only),
            tuple(field for field in fields if field.kw_only))
