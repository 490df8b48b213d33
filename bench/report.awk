# Tables of BENCHMARKS.md from the samples of bench/measure.sh (see there for the line format).
# Input: the host file, then the cgroup2-hidden file. -v runtimes="minirunc runc crun".
BEGIN {
    FS = "\t"
    n = split(runtimes, rts, " ")
    order = "true floor"
    for (i = 1; i <= n; i++) {
        order = order " " rts[i]
        real[rts[i]] = 1
        if (rts[i] == "minirunc") { order = order " minirunc-premounted"; real["minirunc-premounted"] = 1 }
    }
    nord = split(order, ord, " ")
    label["true"] = "harness baseline: /bin/true on the host"
    label["floor"] = "floor (bench/floor.c)"
    label["minirunc"] = "minirunc (copy-on-write rootfs)"
    label["minirunc-premounted"] = "minirunc (pre-mounted rootfs)"
    label["gnu-tar"] = "GNU tar"
    title[1] = "Table 1: the host as it is (hybrid cgroups)"
    title[2] = "Table 2: cgroup2 hidden (all runtimes, as crun needs)"
}
FNR == 1 { f++ }
$1 == "T" || $1 == "M" { samp[f, $1, $2, $3] = $4; seen[f, $3] = 1 }
$1 == "F" { fails[f, $2, $3] += $4 }
$1 == "N" { nm[f, $2, $3] = $4 }
$1 == "I" { info[f, $2] = $3 }

function name(rt) { return (rt in label) ? label[rt] : rt }
function reason(t, wl, rt) {
    if ((t, wl, rt) in nm) return nm[t, wl, rt]
    if ((t, "*", rt) in nm) return nm[t, "*", rt]
    if ((t, "*", "*") in nm) return nm[t, "*", "*"]
    return ""
}
# stats(values): sets MED, MIN, MAX, CNT (CNT 0 when there is nothing).
function stats(s,    a, i, j, v) {
    CNT = split(s, a, " ")
    if (CNT == 0) return
    for (i = 2; i <= CNT; i++) {
        v = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]
        a[j + 1] = v
    }
    MED = (CNT % 2) ? a[(CNT + 1) / 2] : (a[CNT / 2] + a[CNT / 2 + 1]) / 2
    MIN = a[1]; MAX = a[CNT]
}
function med(t, kind, wl, rt) {
    if (!((t, kind, wl, rt) in samp)) return ""
    stats(samp[t, kind, wl, rt])
    return MED
}
function ms(us) { if (us == "") return "–"; us /= 1000; return us < 100 ? sprintf("%.2f", us) : us < 1000 ? sprintf("%.1f", us) : sprintf("%.0f", us) }
function mib(kib) { if (kib == "") return "–"; return sprintf("%.1f", kib / 1024) }
function ratio(v, base) { return (base == "" || base == 0 || v == "") ? "–" : sprintf("%.2fx", v / base) }
function fmt(kind, v) { return kind == "M" ? mib(v) : ms(v) }

# One row per runtime that has samples or a reason not to; columns: median min max n failed vs-runc.
function rows(t, kind, wl, wlname, list,    k, rt, base, r) {
    base = med(t, kind, wl, "runc")
    for (k = 1; k <= nord; k++) {
        rt = ord[k]
        if (list != "" && index(" " list " ", " " rt " ") == 0) continue
        if ((t, kind, wl, rt) in samp) {
            stats(samp[t, kind, wl, rt])
            printf "| %s | %s | %s | %s | %s | %d | %d | %s |\n", wlname, name(rt), fmt(kind, MED), fmt(kind, MIN),
                fmt(kind, MAX), CNT, (kind == "M" ? fails[t, "rss-" wl, rt] : fails[t, wl, rt]) + 0, ratio(MED, base)
        } else if (rt in real && (t, wl, rt) in nm) {
            r = nm[t, wl, rt]
            printf "| %s | %s | not measured: %s | | | | | |\n", wlname, name(rt), r
        }
    }
}

function table(t,    k, rt, b, nb, line, first, last, r) {
    printf "## %s\n\n", title[t]
    if (t == 2) {
        print "Measured inside `unshare -m sh -c 'umount /sys/fs/cgroup/unified; ...'`: a private mount namespace"
        print "where the cgroup2 mount is gone (an empty private tmpfs takes its place, to catch the plain"
        print "directories crun creates there), so every runtime sees cgroup v1 only. Debian's crun 1.8 refuses the"
        print "hybrid layout of Table 1 (\"cgroups in hybrid mode not supported\"); this table measures all runtimes"
        print "under the same conditions. The targets below are judged on this table.\n"
    }
    if ((r = reason(t, "*", "*")) != "") { printf "Not measured: %s\n\n", r; return }
    for (k = 1; k <= n; k++)
        if ((t, "*", rts[k]) in nm) printf "**%s not measured**: %s\n\n", rts[k], nm[t, "*", rts[k]]
    print "### Time per operation (ms)\n"
    print "| Workload | Runtime | Median | Min | Max | Runs | Failed | vs runc |"
    print "|---|---|---:|---:|---:|---:|---:|---:|"
    rows(t, "T", "lifecycle", "lifecycle (`run` /bin/true)", "")
    split("create start state kill delete exec", verbs, " ")
    for (k = 1; k <= 6; k++) rows(t, "T", verbs[k], verbs[k] (verbs[k] == "exec" ? " /bin/true" : ""), runtimes)
    print "\n### Peak RSS of the runtime process (MiB)\n"
    print "| Phase | Runtime | Median | Min | Max | Runs | Failed | vs runc |"
    print "|---|---|---:|---:|---:|---:|---:|---:|"
    rows(t, "M", "create", "create", runtimes)
    rows(t, "M", "run", "run", "floor " runtimes)
    rows(t, "M", "init", "container init, created, before exec", runtimes)
    print "\n### 50 lifecycles at once: wall time until the last ends (ms)\n"
    print "| Workload | Runtime | Median | Min | Max | Rounds | Failed lifecycles | vs runc |"
    print "|---|---|---:|---:|---:|---:|---:|---:|"
    for (k = 1; k <= nord; k++) fails[t, "concurrent", ord[k]] += fails[t, "concurrent-round", ord[k]]
    rows(t, "T", "concurrent", "50 concurrent", "floor " runtimes)
    for (nb = 0; (t, "T", "batch-" (nb + 1), "floor") in samp; nb++) ;
    printf "\n### Sequential lifecycles: ms per lifecycle in each batch of %s\n\n", info[t, "seq-batch"]
    line = "| Runtime |"; for (b = 1; b <= nb; b++) line = line " batch " b " |"
    print line " last / first | Failed |"
    line = "|---|"; for (b = 1; b <= nb; b++) line = line "---:|"
    print line "---:|---:|"
    for (k = 1; k <= nord; k++) {
        rt = ord[k]
        if (!((t, "T", "batch-1", rt) in samp)) continue
        line = "| " name(rt) " |"
        for (b = 1; b <= nb; b++) line = line " " ms(samp[t, "T", "batch-" b, rt]) " |"
        first = samp[t, "T", "batch-1", rt]; last = samp[t, "T", "batch-" nb, rt]
        print line " " ratio(last, first) " | " fails[t, "sequential", rt] + 0 " |"
    }
    print "\n### Cross-check: the lifecycle under hyperfine -N (not interleaved; ms)\n"
    print "| Runtime | Median | Min | Max |"
    print "|---|---:|---:|---:|"
    for (k = 1; k <= nord; k++) {
        rt = ord[k]
        if ((t, "hf-" rt "-median") in info)
            printf "| %s | %s | %s | %s |\n", name(rt), ms(info[t, "hf-" rt "-median"]), ms(info[t, "hf-" rt "-min"]),
                ms(info[t, "hf-" rt "-max"])
    }
    if ((r = reason(t, "hyperfine", "*")) != "") printf "\nNot measured: %s\n", r
    print ""
}

function commit_table(    wl, k, tool, base, r, mb) {
    print "## Commit: a container's root filesystem to a tar (s)\n"
    if ((r = reason(1, "commit", "*")) != "") { printf "Not measured: %s\n\n", r; return }
    mb = info[1, "commit-tree-bytes"] / 1048576
    printf "Rootfs: Debian minbase from debootstrap, %.0f MiB in %d files, page cache warm. GNU tar archives the\n", mb, info[1, "commit-tree-files"]
    print "bundle's tree (the same content the container sees: it has not written anything).\n"
    print "| Operation | Tool | Median | Min | Max | Runs | vs GNU tar |"
    print "|---|---|---:|---:|---:|---:|---:|"
    split("commit-tar commit-gz", wls, " ")
    for (k = 1; k <= 2; k++) {
        wl = wls[k]
        base = med(1, "T", wl, "gnu-tar")
        split("gnu-tar minirunc", tools, " ")
        for (j = 1; j <= 2; j++) {
            tool = tools[j]
            if ((1, "T", wl, tool) in samp) {
                stats(samp[1, "T", wl, tool])
                printf "| %s | %s | %.2f | %.2f | %.2f | %d | %s |\n", (wl == "commit-tar" ? "tar" : "tar + gzip"),
                    (tool == "gnu-tar" ? (wl == "commit-tar" ? "`tar -cf`" : "`tar -czf`") : "`minirunc commit`"),
                    MED / 1e6, MIN / 1e6, MAX / 1e6, CNT, ratio(MED, base)
            } else if (tool == "minirunc" && (r = reason(1, wl == "commit-gz" ? "commit-gz" : "commit", "minirunc")) != "") {
                printf "| %s | `minirunc commit` | not measured: %s | | | | |\n", (wl == "commit-tar" ? "tar" : "tar + gzip"), r
            }
        }
    }
    printf "\nSizes: GNU tar %.1f MiB, gzip %.1f MiB", info[1, "commit-gnu-tar-bytes"] / 1048576, info[1, "commit-gnu-gz-bytes"] / 1048576
    if ((1, "commit-minirunc-tar-bytes") in info)
        printf "; minirunc tar %.1f MiB", info[1, "commit-minirunc-tar-bytes"] / 1048576
    if ((1, "commit-minirunc-gz-bytes") in info)
        printf ", compressed %.1f MiB", info[1, "commit-minirunc-gz-bytes"] / 1048576
    print ".\n"
}

function target(what, v, base, limit, vname, bname,    r) {
    if (v == "" || base == "") {
        r = v == "" ? reason(T, "lifecycle", "minirunc") : ""
        if (v == "" && !("minirunc" in real)) r = "minirunc is not in RUNTIMES"
        printf "| %s | not measured%s | – |\n", what, r == "" ? "" : ": " r
        return
    }
    printf "| %s | %s / %s = %.2fx | %s |\n", what, vname, bname, v / base, (v / base <= limit) ? "met" : "**missed**"
}

END {
    table(1)
    table(2)
    commit_table()
    T = ((2, "runc") in seen) ? 2 : 1
    printf "## Targets (issue 16), judged on Table %d unless named\n\n", T
    print "| Target | This run | Met |"
    print "|---|---|---|"
    m = med(T, "T", "lifecycle", "minirunc"); cr = med(T, "T", "lifecycle", "crun")
    target("lifecycle at most 0.75x crun", m, cr, 0.75, "minirunc " ms(m) " ms", "crun " ms(cr) " ms")
    m = med(T, "T", "exec", "minirunc"); cr = med(T, "T", "exec", "crun")
    target("exec at most 0.75x crun", m, cr, 0.75, "minirunc " ms(m) " ms", "crun " ms(cr) " ms")
    split("create start state kill delete", verbs, " ")
    for (k = 1; k <= 5; k++) {
        m = med(T, "T", verbs[k], "minirunc"); cr = med(T, "T", verbs[k], "crun")
        target(verbs[k] " at most crun's", m, cr, 1, "minirunc " ms(m) " ms", "crun " ms(cr) " ms")
    }
    split("create run init", ph, " ")
    split("during create|during run|of init before exec", phname, "|")
    for (k = 1; k <= 3; k++) {
        m = med(T, "M", ph[k], "minirunc"); cr = med(T, "M", ph[k], "crun")
        target("peak RSS " phname[k] " at most crun's", m, cr, 1, "minirunc " mib(m) " MiB", "crun " mib(cr) " MiB")
    }
    m = med(1, "T", "lifecycle", "minirunc"); rc = med(1, "T", "lifecycle", "runc")
    target("lifecycle at most 0.35x runc (Table 1)", m, rc, 0.35, "minirunc " ms(m) " ms", "runc " ms(rc) " ms")
    m = med(1, "T", "commit-tar", "minirunc"); g = med(1, "T", "commit-tar", "gnu-tar")
    target("commit tar at most 1.1x GNU `tar -cf` (Table 1)", m, g, 1.1, "minirunc " ms(m) " ms", "tar " ms(g) " ms")
    print ""
    print "The issue's reference run (cgroup2 hidden, one interleaved run) against this one:\n"
    print "| | Issue | This run |"
    print "|---|---|---|"
    printf "| lifecycle | crun 8.7, minirunc 9.9, floor 2.3 ms | crun %s, minirunc %s, floor %s ms |\n", ms(med(T, "T", "lifecycle", "crun")),
        ms(med(T, "T", "lifecycle", "minirunc")), ms(med(T, "T", "lifecycle", "floor"))
    printf "| peak RSS of run | crun 3.2, minirunc 5.1 MB | crun %s, minirunc %s MiB |\n", mib(med(T, "M", "run", "crun")), mib(med(T, "M", "run", "minirunc"))
}
