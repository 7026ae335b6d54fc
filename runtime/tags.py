"""``tags.add()``: tag the running run from inside it (Trigger.dev v4's ``tags.add``), for
filtering in the dashboard and ``runs.list(tag=...)`` by what the run found out (the
customer a webhook named, the table it failed on).

The tags are written at once (the run row and the tag index, one transaction), within the
run's limit of ``BUSTER_MAX_TAGS`` (10) tags of up to 128 characters, as at the trigger.
Tags are a set: adding one the run has changes nothing, so a replaying run may add again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .context import current
from .trigger import check_tags

log = logging.getLogger("buster.tags")


class _Tags:
    def add(self, tags: str | Sequence[str]) -> list[str]:
        """Add ``tags`` to the running run; returns all its tags. Outside a run it does
        nothing (a warning is logged), as in Trigger.dev. Over the limit, or a tag that is
        not 1-128 characters: ``InvalidTriggerOptionsError``, and nothing is added."""
        rc = current()
        if rc is None:
            log.warning("tags.add() outside a run does nothing", extra={"action": "tags_add"})
            return []
        rc.check_interrupts()
        rt = rc.executor.runtime
        wanted = check_tags(rt, [*rc.ctx.run.tags, *([tags] if isinstance(tags, str) else tags)])
        added = [tag for tag in wanted if tag not in rc.ctx.run.tags]
        if added:
            rc.executor.store.add_tags(rc.run_id, wanted, added)
            rc.ctx.run.tags = wanted
        return list(wanted)


tags = _Tags()
