"""Runs `async def` tests on a fresh event loop each, bounded in time
(pytest-asyncio is not among the packages this runtime builds on)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

#: Bounds one test: a hang fails, never blocks CI.
TEST_TIMEOUT = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT))
    return True
