"""cdisc/gcpause.py: the collector is paused and what exists before is frozen for the block;
the host's own state (enabled, its own gc.freeze) is what it was afterwards."""
import gc

from cdisc.gcpause import gc_paused


def test_the_block_freezes_what_exists_and_gives_it_back():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with gc_paused():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        with gc_paused():                            # nested: the outer block's state is kept
            assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_host_freeze_is_never_undone():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            pass
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    finally:
        gc.unfreeze()
