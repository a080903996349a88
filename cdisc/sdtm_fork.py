"""SDTM domains mapped by a forked child beside the parent (``build_sdtm`` on a POSIX machine).

While a build maps its SDTM domains, the second core has nothing to do: every later stage
needs them. After DM and SE (which every other domain reads), a forked child maps the largest
domains (by the bytes of the raw forms their specs name: LB in a typical study) while the
parent maps the rest. The child sees the study, CT, specs, DM and SE in the memory it shares
with the parent (no loading, no pickling of inputs) and maps each domain as a parallel
executor's task does (``cdisc.tasks.map_loaded_domain``: a fresh ``Context`` given DM and
SE, the forms it read and their problems returned with the domain), so the parent merges its
outcome exactly as it merges a task's (``pipeline._merge_domain_task``). Only the outcomes
travel back, pickled through a pipe (LB at 10,000 subjects: 283 MB, about 1.3 s to pickle in
the child and 0.7 s to load here, against its 17 s of mapping).

If the child fails in any way (killed, out of memory, an exception), ``outcome`` is None and
the parent maps that domain itself the same way: the build never depends on where a domain
was mapped.
"""
from __future__ import annotations


#: below this many bytes of raw forms for the child, the fork costs more than it gives
MIN_BYTES = 8_000_000


def child_share(costs: dict[str, int], forms: dict[str, set[str]]) -> list[str]:
    """The domains the child maps, in name order: largest first, each one that brings the
    child's bytes closer to half of all (a form two domains name counts for both: each reads
    it); none when the share is below ``MIN_BYTES``."""
    total = sum(costs.values())
    mine: list[str] = []
    theirs = 0
    for dom in sorted(costs, key=lambda d: (-costs[d], d)):
        if abs(2 * (theirs + costs[dom]) - total) >= abs(2 * theirs - total) or not forms[dom]:
            continue
        mine.append(dom)
        theirs += costs[dom]
    return sorted(mine) if theirs >= MIN_BYTES else []


class ForkedDomains:
    """Start with the domains and what mapping them needs; ``outcome(domain)`` is its
    ``cdisc.tasks.DomainTask`` once the child sent it, or None when the child could not."""

    def __init__(self, domains: list[str], study, ct, specs: dict, raw_dir, dm, se):
        from .runtime import fork_child

        self.names = list(domains)
        self._got: dict[str, object] = {}
        self._proc, self._conn = fork_child(_child, self.names, study, ct, specs, raw_dir, dm, se)
        if self._proc is None:
            self.names = []

    def outcome(self, domain: str):
        while domain not in self._got and self._conn is not None:
            try:
                name, task = self._conn.recv()
            except (EOFError, OSError):              # the child is gone: what it did not send, here
                self.finish()
                break
            self._got[name] = task
        return self._got.pop(domain, None)               # not held here once merged

    def finish(self) -> None:
        """Stop the child (whatever it has not sent is not needed any more) and wait for it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join()
            self._proc = None


def _child(domains: list[str], study, ct, specs: dict, raw_dir, dm, se, conn) -> None:
    from .tasks import map_loaded_domain

    tasks = []
    for dom in domains:                              # all mapped first: the parent reads only later
        try:
            tasks.append((dom, map_loaded_domain(study, ct, specs, raw_dir, dom, dm, se)))
        except Exception:                            # the parent maps this one (and raises) itself
            tasks.append((dom, None))
            break
    for dom, task in tasks:                          # what is not sent, the parent maps itself
        conn.send((dom, task))
