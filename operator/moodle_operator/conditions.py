"""Status conditions, merged so lastTransitionTime only moves when the status does."""

from __future__ import annotations

import datetime as _dt


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, status: bool | str, reason: str, message: str = "", generation: int | None = None) -> dict:
    text = status if isinstance(status, str) else ("True" if status else "False")
    cond = {"type": ctype, "status": text, "reason": reason, "message": message}
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def merge_conditions(old: list[dict] | None, new: list[dict], now: str | None = None) -> list[dict]:
    """New conditions replace old ones of the same type; the transition time is kept when unchanged."""
    now = now or now_iso()
    previous = {c.get("type"): c for c in (old or [])}
    merged = []
    for cond in new:
        before = previous.pop(cond["type"], None)
        stamped = dict(cond)
        if before and before.get("status") == cond["status"] and before.get("lastTransitionTime"):
            stamped["lastTransitionTime"] = before["lastTransitionTime"]
        else:
            stamped["lastTransitionTime"] = now
        merged.append(stamped)
    merged.extend(previous.values())
    return sorted(merged, key=lambda c: c["type"])


def get_condition(conditions: list[dict] | None, ctype: str) -> dict | None:
    return next((c for c in conditions or [] if c.get("type") == ctype), None)
