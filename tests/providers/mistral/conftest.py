"""The shared self-hosted environments: end to end (tests/support/selfhosted_e2e.py, for test_e2e_mistral) and
the tools round trip (tests/support/selfhosted_tools.py, for test_tools_mistral)."""

from tests.support.selfhosted_e2e import env  # noqa: F401 - a fixture; tests/conftest.py's `e` resets it
from tests.support.selfhosted_tools import tools, tools_env  # noqa: F401 - fixtures
