"""The SIP core's written-out dataclass constructors say what ``@dataclass`` would.

Hot-path dataclasses of ``mobilityd.sip`` define ``__init__`` themselves so that mypyc
compiles it (``mobilityd/sip/__init__.py``, "Constructors written out"); ``@dataclass``
then keeps theirs.  Nothing in Python ties such an ``__init__`` to the fields, so this
reads every source of the package and holds each one to the rule:

* its parameters are the fields with ``init`` left true, in order;
* a parameter has a default exactly where its field has one: the same expression for
  ``= value`` or ``field(default=value)``, ``None`` for ``field(default_factory=...)``;
* its body assigns every field, ``init=False`` ones included, once;
* a frozen class assigns through ``object.__setattr__`` (plain assignment raises
  ``FrozenInstanceError`` when the core runs from its Python sources).

The sources are read with ``ast`` so that the check is the same whether the core runs
compiled or interpreted.  The runtime tests below build each class both ways.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.headers import Headers
from mobilityd.sip.message import Request, Response
from mobilityd.sip.transaction.facts import TopVia
from mobilityd.sip.transaction.outbound import Outgoing, TransportKind
from mobilityd.sip.uri import SipUri

SIP_PACKAGE = Path(__file__).resolve().parents[2] / "mobilityd" / "sip"


def _is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Name) and target.id == "dataclass"


def _is_frozen(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and any(
        k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords)


class _Field:
    def __init__(self, name: str, value: ast.expr | None) -> None:
        self.name = name
        self.init = True
        self.default: str | None = None  # ast.dump of the expected parameter default
        if value is None:
            return
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "field"):
            for keyword in value.keywords:
                if keyword.arg == "init":
                    self.init = not (isinstance(keyword.value, ast.Constant)
                                     and keyword.value.value is False)
                elif keyword.arg == "default":
                    self.default = ast.dump(keyword.value)
                elif keyword.arg == "default_factory":
                    self.default = ast.dump(ast.Constant(None))
        else:
            self.default = ast.dump(value)


def _fields(cls: ast.ClassDef) -> list[_Field]:
    return [_Field(item.target.id, item.value) for item in cls.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            and "ClassVar" not in ast.dump(item.annotation)]


def _assigned(init: ast.FunctionDef) -> tuple[list[str], list[str]]:
    """(names assigned as ``self.x = ...``, names set by ``object.__setattr__``)."""
    plain: list[str] = []
    through_object: list[str] = []
    for node in ast.walk(init):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            plain += [t.attr for t in targets if isinstance(t, ast.Attribute)
                      and isinstance(t.value, ast.Name) and t.value.id == "self"]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "__setattr__" and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "object" and len(node.args) == 3
              and isinstance(node.args[1], ast.Constant)):
            through_object.append(str(node.args[1].value))
    return plain, through_object


def written_constructors() -> list[tuple[str, ast.ClassDef, bool, ast.FunctionDef]]:
    found = []
    for source in sorted(SIP_PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            decorators = [d for d in cls.decorator_list if _is_dataclass_decorator(d)]
            init = next((item for item in cls.body if isinstance(item, ast.FunctionDef)
                         and item.name == "__init__"), None)
            if decorators and init is not None:
                name = f"{source.relative_to(SIP_PACKAGE)}:{cls.name}"
                found.append((name, cls, _is_frozen(decorators[0]), init))
    return found


CONSTRUCTORS = written_constructors()


def test_the_hot_path_classes_are_written_out() -> None:
    names = {name.rsplit(":", 1)[1] for name, *_ in CONSTRUCTORS}
    assert {"Request", "Response", "RequestFacts", "TopVia", "Dialog", "Session",
            "Unacked2xx", "Outgoing", "Upcall", "Flow", "IncomingCallReceived",
            "CallEstablished", "CallEnded"} <= names


@pytest.mark.parametrize(("name", "cls", "frozen", "init"), CONSTRUCTORS,
                         ids=[c[0] for c in CONSTRUCTORS])
def test_written_init_matches_the_fields(name: str, cls: ast.ClassDef, frozen: bool,
                                         init: ast.FunctionDef) -> None:
    fields = _fields(cls)
    parameters = init.args.args[1:]
    init_fields = [f for f in fields if f.init]
    assert [p.arg for p in parameters] == [f.name for f in init_fields], name
    assert not init.args.kwonlyargs and init.args.vararg is None and init.args.kwarg is None
    defaults: list[ast.expr | None] = [None] * (len(parameters) - len(init.args.defaults))
    defaults += init.args.defaults
    for parameter, default, field in zip(parameters, defaults, init_fields, strict=True):
        written = None if default is None else ast.dump(default)
        assert written == field.default, f"{name}: default of {parameter.arg}"
    plain, through_object = _assigned(init)
    assigned = through_object if frozen else plain
    assert sorted(assigned) == sorted(f.name for f in fields), name
    if frozen:
        assert not plain, f"{name}: a frozen class assigns through object.__setattr__"


def test_written_constructors_build_what_the_fields_say() -> None:
    uri = SipUri.parse("sip:bob@example.com")
    request = Request("INVITE", uri)
    assert request.headers == Headers() and request.body == b""
    assert request == Request("INVITE", uri, Headers(), b"")
    assert Response(200).reason == "" and Response(200, "OK", body=b"x").body == b"x"
    assert request.parsed_fields() is None  # _parsed starts empty
    via = TopVia("UDP", "host", 5060, "z9hG4bK1", False)
    assert via == TopVia("UDP", "host", 5060, "z9hG4bK1", False) and via.port == 5060
    out = Outgoing(b"x", ("127.0.0.1", 5060), TransportKind.UDP)
    assert out.destination == ("127.0.0.1", 5060)
    failed = ev.CallFailed("c", 486, "Busy Here")
    assert failed.response is None and failed == ev.CallFailed("c", 486, "Busy Here")
    assert hash(ev.CallEnded("c", True, "BYE")) == hash(ev.CallEnded("c", True, "BYE"))
    assert repr(ev.CallCancelled("c")) == "CallCancelled(call_id='c')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.CallEnded("c", True, "BYE").reason = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        via.host = "other"  # type: ignore[misc]
