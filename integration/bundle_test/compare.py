"""Differential mode: the same bundle under two runtimes, compared field by field.

Accepted differences live in a JSON file: {"accepted": [{"bundle": GLOB, "field": GLOB,
"reason": TEXT}]}; a difference whose bundle name and field match an entry is reported as accepted.
"""

import fnmatch
import json
import os

# Fields that must differ between two runs: the pid, the creation time.
IGNORED_STATE_KEYS = {"pid", "created"}


class AcceptedError(Exception):
    pass


def load_accepted(path):
    if path is None or not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f).get("accepted", [])
    except (OSError, ValueError, AttributeError) as e:
        raise AcceptedError(f"{path}: {e}") from e
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("reason") or "field" not in entry:
            raise AcceptedError(f"{path}: entry {n} needs a field and a reason")
    return entries


def _state_view(run):
    """State JSON per step, without what must differ; the container id replaced by <id>."""
    view = {}
    for step, st in run.states.items():
        for key, value in st.items():
            if key in IGNORED_STATE_KEYS:
                continue
            # Right after start a short-lived container may be running or already stopped.
            if step == "state-started" and key == "status":
                continue
            if isinstance(value, str):
                value = value.replace(run.cid, "<id>")
            view[f"state.{step}.{key}"] = value
    return view


def view(run):
    """The comparable facts of one run, as field -> value."""
    facts = {
        "passed": run.passed,
        "stdout": run.stdout.replace("\r\n", "\n"),
        "exit_code": run.exit_code,
        "leftovers": [item.replace(run.cid, "<id>") for item in run.leftovers],
    }
    facts.update(_state_view(run))
    return facts


def differences(name, run_a, run_b, accepted):
    """List of {field, a, b, accepted, reason} for every fact that differs."""
    va, vb = view(run_a), view(run_b)
    out = []
    for key in sorted(set(va) | set(vb)):
        a, b = va.get(key, "<absent>"), vb.get(key, "<absent>")
        if a == b:
            continue
        reason = None
        for entry in accepted:
            if fnmatch.fnmatch(name, entry.get("bundle", "*")) and fnmatch.fnmatch(key, entry["field"]):
                reason = entry["reason"]
                break
        out.append({"field": key, "a": a, "b": b, "accepted": reason is not None, "reason": reason})
    return out
