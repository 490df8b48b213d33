"""Output formats: a human table, JSON, JUnit XML."""

import json
import os
import xml.etree.ElementTree as ET

STEPS = ("create", "start", "wait", "delete", "total")


def _short(runtime):
    return os.path.basename(runtime)


def _first_problem(result):
    for run in result["runs"]:
        if run.failures:
            return run.failures[0]
    for d in result["differences"]:
        if not d["accepted"]:
            return f"{d['field']}: {d['a']!r} != {d['b']!r}"
    return ""


def _ms(value):
    return f"{value:>7.1f}" if value is not None else f"{'-':>7}"


def table(results, out):
    width = max([len(r["name"]) for r in results] + [6])
    head = f"{'BUNDLE':<{width}}  {'RUNTIME':<10} {'RESULT':<6} " + " ".join(f"{s:>7}" for s in STEPS)
    print(head + "  FIRST DIFFERENCE (times in ms)", file=out)
    for res in results:
        for run in res["runs"]:
            times = " ".join(_ms(run.timings_ms.get(s)) for s in STEPS)
            verdict = "pass" if run.passed else "FAIL"
            first = run.failures[0] if run.failures else ""
            print(f"{res['name']:<{width}}  {_short(run.runtime):<10} {verdict:<6} {times}  {first}",
                  file=out)
            for more in run.failures[1:]:
                print(f"{'':<{width}}    {more}", file=out)
        if len(res["runs"]) > 1:
            diffs = res["differences"]
            unexplained = [d for d in diffs if not d["accepted"]]
            verdict = "same" if not diffs else ("differ" if unexplained else "ok")
            note = f"{len(diffs)} differences, {len(diffs) - len(unexplained)} accepted" if diffs else ""
            print(f"{res['name']:<{width}}  {'compare':<10} {verdict:<6} {note}", file=out)
            for d in diffs:
                tag = f"accepted: {d['reason']}" if d["accepted"] else "NOT ACCEPTED"
                print(f"{'':<{width}}    {d['field']}: {d['a']!r} vs {d['b']!r} ({tag})", file=out)
    for res in results:
        for run in res["runs"]:
            if run.failures and run.stderr.strip():
                print(f"\n--- {res['name']} under {_short(run.runtime)}: stderr ---", file=out)
                print(run.stderr.strip()[-2000:], file=out)


def as_json(results, summary, out):
    doc = {
        "results": [{
            "name": r["name"], "bundle": r["bundle"], "passed": r["passed"],
            "runs": [run.as_dict() for run in r["runs"]],
            "differences": r["differences"],
        } for r in results],
        **summary,
    }
    json.dump(doc, out, indent=2, default=str)
    out.write("\n")


def junit(results, summary, out):
    suite = ET.Element("testsuite", name="bundle-test", tests=str(len(results)),
                       failures=str(summary["failed"]), errors="0")
    for res in results:
        total = sum(run.timings_ms.get("total", 0) for run in res["runs"]) / 1000
        case = ET.SubElement(suite, "testcase", classname="bundle-test", name=res["name"],
                             time=f"{total:.3f}")
        if not res["passed"]:
            fail = ET.SubElement(case, "failure", message=_first_problem(res))
            lines = []
            for run in res["runs"]:
                lines += [f"{_short(run.runtime)}: {f}" for f in run.failures]
            lines += [f"difference {d['field']}: {d['a']!r} vs {d['b']!r}"
                      for d in res["differences"] if not d["accepted"]]
            fail.text = "\n".join(lines)
        out_text = "\n".join(f"{_short(run.runtime)} stdout:\n{run.stdout}" for run in res["runs"])
        ET.SubElement(case, "system-out").text = out_text
    ET.ElementTree(suite).write(out, encoding="unicode", xml_declaration=True)
    out.write("\n")
