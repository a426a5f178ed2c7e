"""Session fixtures for the reuser tests: small markets of in-process learnwares (see reuse_markets.py)."""

from __future__ import annotations

import pytest
from reuse_markets import Market, build_digits_market, build_regression_market


@pytest.fixture(scope="session")
def regression_market() -> Market:
    return build_regression_market()


@pytest.fixture(scope="session")
def digits_market() -> Market:
    return build_digits_market()
