"""A second mitmdump script for tests: makes the Anthropic translation raise for requests whose `user` is
"explode", to prove that an exception inside the addon fails closed."""

from addon.providers.anthropic import Anthropic

_original = Anthropic.build_request


def _build_request(self, call):
    if call.body.get("user") == "explode":
        raise RuntimeError("forced failure inside translation (test)")
    return _original(self, call)


Anthropic.build_request = _build_request
addons: list = []
