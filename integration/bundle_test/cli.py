"""Command line of bundle-test."""

import argparse
import fnmatch
import os
import shutil
import signal
import sys
import tempfile

from . import compare, reaper, report, rootless, runner

DESCRIPTION = """Run OCI bundles through a runc-compatible runtime (create, state, start, state, [kill],
wait, state, delete, state) and check stdout, exit code and host state against each bundle's
expect.json. With --compare, run each bundle under a second runtime too and report differences."""


def default_runtime():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    built = os.path.join(repo, "target", "x86_64-unknown-linux-gnu", "release", "minirunc")
    return built if os.path.exists(built) else (shutil.which("minirunc") or "minirunc")


def find_runtime(name):
    path = name if os.sep in name else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"bundle-test: runtime {name!r} not found or not executable")
    return os.path.abspath(path)


def discover(paths):
    """Each argument is a bundle (has config.json) or a directory of bundles."""
    bundles = []
    for p in paths:
        if os.path.exists(os.path.join(p, "config.json")):
            bundles.append(p)
        elif os.path.isdir(p):
            subs = sorted(os.path.join(p, d) for d in os.listdir(p))
            bundles += [d for d in subs if os.path.exists(os.path.join(d, "config.json"))]
        else:
            raise SystemExit(f"bundle-test: {p}: not a bundle nor a directory of bundles")
    return [os.path.abspath(b) for b in bundles]


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bundle-test", description=DESCRIPTION)
    ap.add_argument("--runtime", default=None, help="runtime binary (default: target/x86_64-unknown-linux-gnu/release/minirunc)")
    ap.add_argument("--root", default=None, help="--root for the runtime (default: a private temp dir)")
    ap.add_argument("--compare", metavar="RUNTIME2", help="also run under RUNTIME2 and compare")
    ap.add_argument("--format", choices=("table", "json", "junit"), default="table")
    ap.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per container (default 10)")
    ap.add_argument("--accepted", metavar="FILE", help="accepted differences (default: "
                    "integration/accepted-differences.json beside this program)")
    ap.add_argument("--only", metavar="GLOB", help="run only bundles whose name matches GLOB")
    ap.add_argument("--as-user", metavar="USER", help="run the runtimes as USER on each bundle's "
                    "rootless form (runc's spec --rootless conversion); bundles that need root "
                    "are left out, each with its reason")
    ap.add_argument("bundles", nargs="+", metavar="BUNDLE_DIR")
    return ap.parse_args(argv)


def _test_bundle(n, bundle, runtimes, args, accepted, reap):
    name = os.path.basename(bundle)
    # One rootless form of the bundle for both runtimes, so that their states name the same one.
    as_user = args.user and (args.user, rootless.write_bundle(bundle, args.rootless_dir, args.user))
    runs = []
    for k, rt in enumerate(runtimes):
        cid = f"mrt-{os.getpid()}-{n}-{k}-{name}"[:64]
        runs.append(runner.run_bundle(rt, bundle, cid, args.root, args.timeout, reap, as_user))
    diffs = compare.differences(name, runs[0], runs[1], accepted) if len(runs) > 1 else []
    # The runtime under test must pass; the reference may fail only where that is an accepted
    # difference (a known bug of the reference, e.g. runc's leftovers without a mount namespace).
    passed = runs[0].passed and all(d["accepted"] for d in diffs)
    return {"name": name, "bundle": bundle, "runs": runs, "differences": diffs, "passed": passed}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        raise SystemExit("bundle-test: must run as root (containers need it)")
    runtimes = [find_runtime(args.runtime or default_runtime())]
    if args.compare:
        runtimes.append(find_runtime(args.compare))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        accepted = compare.load_accepted(args.accepted or os.path.join(here, "accepted-differences.json"))
    except compare.AcceptedError as e:
        raise SystemExit(f"bundle-test: {e}") from e
    bundles = discover(args.bundles)
    if args.only:
        bundles = [b for b in bundles if fnmatch.fnmatch(os.path.basename(b), args.only)]
    args.user = None
    if args.as_user:
        args.user = rootless.User(args.as_user)
        for b in [b for b in bundles if os.path.basename(b) in rootless.NOT_ROOTLESS]:
            print(f"bundle-test: {os.path.basename(b)} left out as a user: "
                  f"{rootless.NOT_ROOTLESS[os.path.basename(b)]}", file=sys.stderr)
            bundles.remove(b)
        if args.compare:
            accepted += compare.load_accepted(os.path.join(here, "accepted-differences-rootless.json"))
    if not bundles:
        raise SystemExit("bundle-test: no bundles found")

    signal.signal(signal.SIGTERM, _interrupt)
    reaper.become_subreaper()
    reap = reaper.Reaper()
    results = []
    args.rootless_dir = None
    if args.user:
        args.rootless_dir = tempfile.mkdtemp(prefix="minirunc-test-rootless-")
        os.chmod(args.rootless_dir, 0o755)  # the user reads the bundles' rootless forms
    try:
        for n, bundle in enumerate(bundles):
            results.append(_test_bundle(n, bundle, runtimes, args, accepted, reap))
    except KeyboardInterrupt:
        print("bundle-test: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.rootless_dir:
            shutil.rmtree(args.rootless_dir)

    failed = sum(1 for r in results if not r["passed"])
    summary = {"passed": len(results) - failed, "failed": failed}
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "table":
            report.table(results, out)
        elif args.format == "json":
            report.as_json(results, summary, out)
        else:
            report.junit(results, summary, out)
    finally:
        if args.output:
            out.close()
    line = f"{summary['passed']} passed, {summary['failed']} failed"
    # The summary is always the last line a person sees; machine formats keep stdout clean.
    print(line, file=sys.stdout if args.format == "table" and not args.output else sys.stderr)
    return 1 if failed else 0
