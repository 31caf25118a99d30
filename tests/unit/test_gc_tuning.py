"""How auditbook runs CPython's cyclic garbage collector (auditbook.gc_tuning): what a command builds to
keep — its modules, the catalog — is built with no collection and then frozen out of later ones."""
import gc

import pytest

from auditbook.gc_tuning import (
    YOUNG_GENERATION_THRESHOLD,
    collect_less,
    collector_paused,
)


@pytest.fixture
def collector():
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_nothing_is_collected_while_paused_and_what_was_built_is_frozen(collector):
    collect_less()
    seen = []
    gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
    try:
        frozen_before = gc.get_freeze_count()
        with collector_paused():
            assert not gc.isenabled()
            kept = [[i] for i in range(3 * YOUNG_GENERATION_THRESHOLD)]  # three young collections' worth
        assert seen == [] and gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(kept)
    finally:
        gc.callbacks.pop()


def test_the_collector_is_restored_as_it_was_even_after_an_error(collector):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a bad catalog")
    assert gc.isenabled()
