"""The context's optional services: a hub built without one refuses plainly."""

import pytest

from hub.errors import Internal
from schema.context import available


def test_a_service_the_hub_was_built_without_is_refused_as_internal_with_the_given_reason() -> None:
    with pytest.raises(Internal) as refused:
        available(None, "policy administration is not available on this hub")
    assert refused.value.code == "INTERNAL"
    assert str(refused.value) == "policy administration is not available on this hub"


def test_a_service_the_hub_has_is_handed_to_the_resolver_itself() -> None:
    service = object()
    assert available(service, "unused") is service
