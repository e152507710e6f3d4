"""A tiny run of every benchmark scenario, so the scripts keep working. The numbers are not checked here:
benchmarks are run by hand (benchmarks/README.md); only their correctness checks are."""

import pytest

from benchmarks import flash_sale, mixed_load, provider_hang, reminder_fanout, run_all, webhook_burst
from tests.conftest import BACKENDS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("db", BACKENDS)
@pytest.mark.parametrize(
    "scenario",
    [flash_sale, webhook_burst, mixed_load, reminder_fanout, provider_hang],
    ids=lambda m: m.__name__.split(".")[-1],
)
def test_scenario_smoke(scenario, db):
    report = scenario.run(db=db, **run_all.SMOKE[scenario])
    assert report["ok"], report
    assert "|" in scenario.render(report)
