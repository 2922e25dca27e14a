"""The recorded inputs are real arguments of the installed provider SDKs with the annotated scalar
types: the mock runtime accepts any scalar, a cloud API would not."""
from __future__ import annotations

import collections.abc
import importlib
import inspect
import re
import typing

import pulumi_alicloud
import pulumi_openstack
import pytest

SDKS = {"alicloud": pulumi_alicloud, "openstack": pulumi_openstack}
SCALARS = (bool, int, float, str)


def _scalar(annotation):
    """The one scalar type an `Optional[Input[T]]` annotation admits, or None for other shapes."""
    found = set()
    stack = [annotation]
    while stack:
        item = stack.pop()
        if item in SCALARS:
            found.add(item)
        elif typing.get_origin(item) in (typing.Union, collections.abc.Awaitable) or \
                getattr(typing.get_origin(item), "__name__", "") == "Output":
            stack.extend(typing.get_args(item))
        elif typing.get_origin(item) is not None:
            return None  # a list or a mapping
        # NoneType and forward references (Output[T], input classes) admit no scalar themselves
    return found.pop() if len(found) == 1 else None


def _args_class(token: str):
    package, module, name = token.split(":")
    root = SDKS[package]
    where = root if module.split("/")[0] == "index" else importlib.import_module(f"{root.__name__}.{module.split('/')[0]}")
    resource = getattr(where, name)
    return getattr(importlib.import_module(resource.__module__), f"{name}Args")


def _snake(wire: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), wire)


@pytest.mark.parametrize("backend", ["alicloud", "openstack"])
def test_inputs_are_arguments_of_the_right_scalar_type(plans, backend):
    checked, problems = 0, []
    for r in plans[(backend, "default")]["resources"]:
        if not r["custom"] or r["type"].startswith("pulumi:"):
            continue
        params = inspect.signature(_args_class(r["type"]).__init__).parameters
        for wire, value in r["inputs"].items():
            param = params.get(_snake(wire))
            if param is None:
                problems.append(f"{r['type']}: no argument {wire}")
                continue
            want = _scalar(param.annotation)
            if want is None or value in ("<computed>", "[secret]"):
                continue
            checked += 1
            # the wire has one number type: an int argument arrives as an integral float
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = (number and float(value).is_integer()) if want is int else number if want is float \
                else isinstance(value, want)
            if not ok:
                problems.append(f"{r['type']}.{wire}: {param.annotation} but {value!r}")
    assert checked > 200 and problems == []
