"""SDTM domains mapped by a forked child beside the parent (cdisc/sdtm_fork.py): the same build
as the serial one, the same problems in the same order, and the parent maps a domain itself
when the child cannot. Forced for the small shipped study (``MIN_BYTES`` 0, ``cdisc.runtime.can_fork`` yes)."""
from __future__ import annotations

import pytest

from conftest import QUICK_FLAGS, RAW, SPECS, copy_study, run_cli
from test_executor import assert_same_build


@pytest.fixture
def forked(monkeypatch):
    """Fork forced; the domains each child was given."""
    import cdisc.runtime
    import cdisc.sdtm_fork as sf

    monkeypatch.setattr(sf, "MIN_BYTES", 0)
    monkeypatch.setattr(cdisc.runtime, "can_fork", lambda: True)
    given = []
    real = sf.ForkedDomains.__init__

    def spy(self, domains, *args):
        given.append(list(domains))
        real(self, domains, *args)

    monkeypatch.setattr(sf.ForkedDomains, "__init__", spy)
    return given


def _progress(stdout: str) -> list[list[str]]:
    return [ln.split()[:3] for ln in stdout.splitlines() if ln.startswith("  sdtm ") or ln.startswith("  adam ")]


def test_child_share_is_the_largest_domains_up_to_about_half():
    from cdisc.sdtm_fork import child_share

    forms = {d: {d.lower()} for d in ("AE", "LB", "RS", "VS")}
    assert child_share({"AE": 10, "LB": 60, "RS": 20, "VS": 10}, forms) == []        # under MIN_BYTES
    big = {"AE": 10_000_000, "LB": 60_000_000, "RS": 20_000_000, "VS": 10_000_000}
    assert child_share(big, forms) == ["LB"]                    # 60 of 100: nearer half than 0 or 70
    even = {"AE": 30_000_000, "LB": 40_000_000, "RS": 20_000_000, "VS": 10_000_000}
    assert child_share(even, forms) == ["LB", "VS"]             # 40 + 10 = 50 of 100


def test_forked_domains_build_is_identical(forked, built, tmp_path):
    res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", tmp_path / "out", *QUICK_FLAGS)
    assert res.code == 0, f"{res.stderr}\n{res.exception!r}"
    assert forked == [["LB"]]
    assert_same_build(tmp_path / "out", built.out)
    assert _progress(res.stdout) == _progress(built.result.stdout)      # LB reported in its place


def test_a_child_that_dies_leaves_its_domains_to_the_parent(forked, built, tmp_path, monkeypatch):
    import os

    import cdisc.sdtm_fork as sf

    monkeypatch.setattr(sf, "_child", lambda *args: os._exit(1))
    res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", tmp_path / "out", *QUICK_FLAGS)
    assert res.code == 0, f"{res.stderr}\n{res.exception!r}"
    assert forked == [["LB"]]
    assert_same_build(tmp_path / "out", built.out)


def test_problems_come_in_the_serial_order_with_a_forked_child(forked, tmp_path, monkeypatch):
    """Raw values outside allowed_values in forms only the child's LB reads (lb), that LB and the
    parent's RS both read (rs, mrd), and the parent's alone (ae, vs, before and after LB), and
    a date no domain can read: the same list in the same order as the serial build's."""
    import cdisc.runtime
    from cdisc.errors import DataError
    from cdisc.pipeline import build_sdtm

    study = copy_study(tmp_path)
    for form, row in (("lb", 3), ("rs", 4), ("mrd", 2), ("ae", 5), ("vs", 6)):
        study.set_raw(form, row, "RECSTATUS", f"Gone-{form}")
    study.set_raw("lb", 7, "LBDAT", "31-FEB-2024")
    study.set_raw("vs", 3, "VSDAT", "99-XXX-2024")
    found = []
    for fork in (False, True):
        monkeypatch.setattr(cdisc.runtime, "can_fork", lambda fork=fork: fork)
        with pytest.raises(DataError) as exc:
            build_sdtm(study.specs, study.raw)
        found.append([str(p) for p in exc.value.problems])
    assert forked == [["LB"]]
    assert found[0] == found[1]
    gone = [p for p in found[0] if "Gone-" in p]
    assert [p.split("Gone-")[1][:3].rstrip("'\" ,") for p in gone] == ["ae", "lb", "mrd", "rs", "vs"][:len(gone)]
    assert len(gone) == 5
    assert any("31-FEB-2024" in p for p in found[0]) and any("99-XXX-2024" in p for p in found[0])


def test_malloc_keeps_freed_memory_on_glibc():
    """cdisc.runtime.keep_freed_memory: set on glibc (the CLI calls it), refused elsewhere."""
    import platform

    from cdisc.runtime import keep_freed_memory

    assert keep_freed_memory() is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
