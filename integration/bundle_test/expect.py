"""The expectation file (expect.json) of a bundle: loading, preparing host dirs, checking results.

Format (every key optional):
  stdout        list of lines; each a string (exact) or {"re": PATTERN} (re.search on the line)
  stdout_match  "exact" (default: exactly these lines, in order) or "contains" (these lines in order,
                others allowed between them)
  exit_code     expected exit status of the container init (128+N when killed by signal N); default 0
  kill          {"signal": "TERM", "after_stdout": LINE}: once the container is running (and has
                printed LINE, if given) the harness runs `kill ID SIGNAL`
  timeout_s     seconds the container may run before it is killed and reported (default --timeout)
  prepare       {"dirs": {PATH: {FILE: CONTENT}}}: host directories (re)created before the run
  host_checks   [{"path": P, "content": S | "re": PATTERN | "absent": true, "remove": bool}]
                checked after delete; "remove" deletes the file afterwards
Relative paths are relative to the bundle directory; "{id}" in a path or pattern is the container id.
"""

import json
import os
import re
import shutil

KEYS = {"stdout", "stdout_match", "exit_code", "kill", "timeout_s", "prepare", "host_checks"}


class ExpectError(Exception):
    pass


def load(bundle):
    """Read BUNDLE/expect.json; a bundle without one is expected to exit 0."""
    path = os.path.join(bundle, "expect.json")
    if not os.path.exists(path):
        return {"exit_code": 0}
    try:
        with open(path, encoding="utf-8") as f:
            exp = json.load(f)
    except (OSError, ValueError) as e:
        raise ExpectError(f"{path}: {e}") from e
    if not isinstance(exp, dict):
        raise ExpectError(f"{path}: top level must be an object")
    unknown = set(exp) - KEYS
    if unknown:
        raise ExpectError(f"{path}: unknown keys {sorted(unknown)}")
    if exp.get("stdout_match", "exact") not in ("exact", "contains"):
        raise ExpectError(f"{path}: stdout_match must be exact or contains")
    return exp


def resolve(bundle, path, cid):
    path = path.replace("{id}", cid)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(bundle, path))


def prepare(bundle, exp):
    """Create the host directories the bundle mounts, with fresh content."""
    for d, files in exp.get("prepare", {}).get("dirs", {}).items():
        path = resolve(bundle, d, "")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        for name, content in files.items():
            with open(os.path.join(path, name), "w", encoding="utf-8") as f:
                f.write(content)


def _line_matches(want, got):
    if isinstance(want, dict):
        return re.search(want["re"], got) is not None
    return want == got


def _show(want):
    return f"/{want['re']}/" if isinstance(want, dict) else repr(want)


def check_stdout(exp, text):
    """Return the first difference between the expected and the actual stdout, or None."""
    if "stdout" not in exp:
        return None
    lines = text.replace("\r\n", "\n").splitlines()
    wants = exp["stdout"]
    if exp.get("stdout_match", "exact") == "contains":
        i = 0
        for line in lines:
            if i < len(wants) and _line_matches(wants[i], line):
                i += 1
        if i < len(wants):
            return f"stdout: no line matching {_show(wants[i])} (after {i} matched lines)"
        return None
    for n, want in enumerate(wants):
        if n >= len(lines):
            return f"stdout line {n + 1}: expected {_show(want)}, got end of output"
        if not _line_matches(want, lines[n]):
            return f"stdout line {n + 1}: expected {_show(want)}, got {lines[n]!r}"
    if len(lines) > len(wants):
        return f"stdout line {len(wants) + 1}: unexpected {lines[len(wants)]!r}"
    return None


def check_host(bundle, exp, cid):
    """Run the host checks after delete; return the list of failures."""
    failures = []
    for chk in exp.get("host_checks", []):
        path = resolve(bundle, chk["path"], cid)
        exists = os.path.exists(path)
        if chk.get("absent"):
            if exists:
                failures.append(f"host check: {path} exists, expected absent")
            continue
        if not exists:
            failures.append(f"host check: {path} does not exist")
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            content = f.read()
        if "content" in chk and content != chk["content"]:
            failures.append(f"host check: {path} holds {content!r}, expected {chk['content']!r}")
        if "re" in chk:
            pattern = chk["re"].replace("{id}", re.escape(cid))
            if re.search(pattern, content) is None:
                failures.append(f"host check: {path} does not match /{pattern}/: {content[:200]!r}")
        if chk.get("remove"):
            os.unlink(path)
    return failures


def cleanup_host(bundle, exp, cid):
    """Remove files that host checks asked to remove, even when the run failed early."""
    for chk in exp.get("host_checks", []):
        if chk.get("remove"):
            path = resolve(bundle, chk["path"], cid)
            if os.path.exists(path):
                os.unlink(path)
