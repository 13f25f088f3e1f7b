"""What a merged rollback pull request may deploy: only the pins it changed, and only those the plan agrees with.

Merging is the approval, but the merge approves a diff, not "whatever the ledger on main says". Anyone who can
push may add a commit to the bot's branch, and a ledger change may reach main by another pull request. So the
apply step deploys a service only when the merged change touched its pin AND the pin equals the target the bot
plans again at merge time (against the ledger as it was just before the merge), unless the person merging holds
the override role, which is recorded. Every other difference between the ledger and what is live is drift:
reported, never deployed as a side effect. Pure: the flow gathers the ledgers, the plan and the roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from incidentops.core.rollback import Pin, Plan


@dataclass(frozen=True)
class Verdict:
    service: str
    pin: Pin
    approved: bool
    reason: str
    override: bool = False  # deployed only because the merger holds the override role


def changed_pins(before: Mapping[str, Pin], after: Mapping[str, Pin]) -> dict[str, Pin]:
    """The services whose pin (version or `force`) the merged change set or altered."""
    return {
        name: pin
        for name, pin in after.items()
        if name not in before or (before[name].version, before[name].force) != (pin.version, pin.force)
    }


def judge(changed: Mapping[str, Pin], plan: Plan, merger: str, may_override: bool) -> list[Verdict]:
    """One verdict per changed pin: deploy it only when it is the planned target (or an override is allowed)."""
    planned = {s.service: s for s in plan.services}
    verdicts = []
    for name, pin in changed.items():
        item = planned.get(name)
        # `force: true` waives the secrets-changed check only, and only because the merger holds the apply role.
        waived = item is not None and pin.force and all(c.ok or c.name == "secrets" for c in item.checks)
        if item is not None and item.target == pin.version and (item.ok or waived):
            why = "matches the plan recomputed at merge time" + (
                ", force: true set in the merged change" if waived else ""
            )
            verdicts.append(Verdict(name, pin, True, why))
            continue
        expected = f"the plan says {item.target[:8]}" if item is not None and item.target else "the plan has no target"
        if item is not None and item.target == pin.version:
            expected = f"the plan refuses it ({item.preflight})"
        problem = f"pin {pin.version[:8]} differs from what the bot plans: {expected}"
        if may_override:
            verdicts.append(Verdict(name, pin, True, f"{problem}; deployed on @{merger}'s override", override=True))
        else:
            verdicts.append(Verdict(name, pin, False, f"{problem}; not deployed"))
    return verdicts


def foreign(commits: list[tuple[str, str, str, str]], bot_email: str) -> list[tuple[str, str, str, str]]:
    """Commits on the bot's branch that the bot did not both author and commit."""
    return [c for c in commits if c[1] != bot_email or c[2] != bot_email]
