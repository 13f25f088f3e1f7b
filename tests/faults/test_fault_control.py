"""The sandbox reports how often each injected fault fired, so a fault test can prove its fault happened."""

from __future__ import annotations

import httpx
import pytest

from tests.faults.conftest import Faults
from tests.flows.conftest import World


def test_each_fault_reports_its_hits_and_an_unfired_fault_fails_the_check(world: World) -> None:
    faults = Faults(world.info["control_url"])
    api = world.info["github_api_url"] + "/repos/acme/ops/issues/1/labels"
    twice = faults.add(method="GET", path=r"/issues/1/labels$", status=503, count=2)
    never = faults.add(method="GET", path=r"/no/such/path$", status=500, count=1)
    statuses = [httpx.get(api, headers={"Authorization": "token oncall-write"}).status_code for _ in range(3)]
    assert statuses[:2] == [503, 503] and statuses[2] != 503

    listed = {f["id"]: f for f in httpx.get(world.info["control_url"] + "/faults").json()}
    assert (listed[twice]["hits"], listed[twice]["count"]) == (2, 2)
    assert listed[never]["hits"] == 0
    assert faults.fired(twice) == 2
    with pytest.raises(AssertionError, match="did not fire"):
        faults.fired(never)
    with pytest.raises(AssertionError, match="did not fire"):
        faults.fired()  # every fault this test added

    faults.clear()  # the hits survive the clear: read back before the DELETE
    assert httpx.get(world.info["control_url"] + "/faults").json() == []
    assert faults.fired(twice) == 2
    again = faults.add(method="GET", path=r"/x$", count=None)
    assert again > never  # ids stay unique across clears
