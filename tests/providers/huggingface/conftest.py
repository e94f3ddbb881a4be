"""The shared self-hosted tools environment (tests/support/selfhosted_tools.py), for test_tools_huggingface."""

from tests.support.selfhosted_tools import tools, tools_env  # noqa: F401 - fixtures
