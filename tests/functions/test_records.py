"""Records behave as the dataclasses they replace: same constructor, equality, hashing, freezing and repr."""

import dataclasses
from dataclasses import field

import pytest

from functions.shared.documents import Document
from functions.shared.records import FrozenRecord, Record


class Point(FrozenRecord):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


class Basket(Record):
    owner: str
    items: list[str] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


class Checked(Document):
    name: str
    size: int = 0

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must not be negative")


def test_takes_fields_by_position_and_by_keyword_with_defaults():
    assert (Point(1).x, Point(1).y, Point(1, 2).y, Point(x=3, y=4).y) == (1, 0, 2, 4)
    assert dataclasses.asdict(Point(1, tags=("a",))) == {"x": 1, "y": 0, "tags": ("a",)}


def test_each_instance_gets_its_own_default_from_a_factory():
    first, second = Basket("ann"), Basket("bob")
    first.items.append("apple")
    assert second.items == []


@pytest.mark.parametrize("build, message", [
    (lambda: Point(), "missing required arguments: x"),
    (lambda: Point(1, 2, (), 4), "takes 3 positional arguments, 4 given"),
    (lambda: Point(1, x=2), "multiple values for argument 'x'"),
    (lambda: Point(1, z=2), "unexpected keyword arguments: z"),
    (lambda: Checked("positional"), "takes 0 positional arguments, 1 given"),
])
def test_refuses_what_a_dataclass_constructor_refuses(build, message):
    with pytest.raises(TypeError, match=message):
        build()


def test_equality_and_hashing_follow_the_compared_fields():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert len({Point(1, 2), Point(1, 2), Point(3)}) == 2
    assert Basket("ann", note="a") == Basket("ann", note="b")
    assert Point(1) != (1, 0, ())
    with pytest.raises(TypeError):
        hash(Basket("ann"))


def test_a_frozen_record_cannot_change():
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y


def test_repr_shows_the_fields_a_dataclass_shows():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=())"
    assert repr(Basket("ann", note="hidden")) == "Basket(owner='ann', items=[])"


def test_documents_run_post_init_and_replace_works():
    with pytest.raises(ValueError, match="negative"):
        Checked(name="a", size=-1)
    assert dataclasses.replace(Checked(name="a"), size=2) == Checked(name="a", size=2)
