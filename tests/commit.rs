//! Commit tests, run as root: real trees (owners, devices, xattrs, hard links), a real overlay,
//! GNU tar and umoci as independent readers.

mod commit_util;
mod common;

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use commit_util::{
    apply_layer, assert_same, gnu_extract, have, listing, run, set_mtime, set_xattr, Compare,
};
use common::{Mount, TempDir};
use minirunc::commit::{
    write_diff, write_oci_archive, write_tree, CommitOptions, Compression, ImageConfig,
};
use sha2::{Digest, Sha256};

const EXACT: Compare = Compare {
    dir_mtime: true,
    nsec: true,
};

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated path.
    let r = unsafe { libc::mknod(p.as_ptr(), kind | 0o644, libc::makedev(major, minor)) };
    assert_eq!(
        r,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A tree with every kind of entry and attribute a tar must keep.
fn build_rich_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
    write_file(&root.join("plain.txt"), b"hello\n", 0o644);
    write_file(&root.join("owned"), b"owned by 1234:5678", 0o640);
    std::os::unix::fs::lchown(root.join("owned"), Some(1234), Some(5678)).unwrap();
    write_file(&root.join("setuid"), b"#!/bin/sh\n", 0o4755);
    write_file(&root.join("sub/exec"), b"\x7fELF not really", 0o755);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write_file(&root.join("sub/big.bin"), &big, 0o600);
    fs::write(root.join("hard1"), b"linked content").unwrap();
    fs::hard_link(root.join("hard1"), root.join("sub/hard2")).unwrap();
    symlink("plain.txt", root.join("link")).unwrap();
    symlink("/nowhere/at/all", root.join("sub/dangling")).unwrap();
    mknod(&root.join("null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("fifo"), libc::S_IFIFO, 0, 0);
    fs::hard_link(root.join("null"), root.join("sub/null-link")).unwrap();
    let long = "d".repeat(90);
    fs::create_dir_all(root.join(&long)).unwrap();
    write_file(
        &root.join(format!("{long}/{}", "f".repeat(60))),
        b"long name",
        0o644,
    );
    set_xattr(&root.join("plain.txt"), "user.foo", b"bar").unwrap();
    // vfs_cap_data v2 with CAP_NET_BIND_SERVICE permitted and effective.
    let cap = [1u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    set_xattr(&root.join("sub/exec"), "security.capability", &cap).unwrap();
    let mut stamp = 1_600_000_000;
    for p in [
        "plain.txt",
        "owned",
        "setuid",
        "sub/exec",
        "hard1",
        "link",
        "null",
        "fifo",
    ] {
        stamp += 1000;
        set_mtime(&root.join(p), stamp, 123_456_789);
    }
    for d in ["sub/deeper", "sub", "empty", &long] {
        stamp += 1000;
        set_mtime(&root.join(d), stamp, 987_654_321);
    }
}

/// `write_tree` of `src` into the file `out`.
fn tar_of(src: &Path, out: &Path, c: Compression) -> minirunc::commit::Summary {
    write_tree(src, &[], File::create(out).unwrap(), &opts(c)).unwrap()
}

fn opts(compression: Compression) -> CommitOptions {
    CommitOptions {
        compression,
        ..CommitOptions::default()
    }
}

#[test]
fn tree_round_trips_through_gnu_tar() {
    let tmp = TempDir::new();
    let src = tmp.join("src");
    build_rich_tree(&src);
    let archive = tmp.join("out.tar");
    let summary = tar_of(&src, &archive, Compression::None);
    assert_eq!(summary.tar_bytes, fs::metadata(&archive).unwrap().len());
    let dest = tmp.join("dest");
    gnu_extract(&archive, &dest);
    let want = listing(&src, EXACT);
    assert!(
        want["sub/exec"].contains("xattr:security.capability"),
        "{}",
        want["sub/exec"]
    );
    assert!(want["plain.txt"].contains("xattr:user.foo"));
    assert!(want["sub/hard2"].contains("linkgroup=hard1"));
    assert!(want["sub/null-link"].contains("linkgroup=null"));
    assert_same(&want, &listing(&dest, EXACT));
    // Sorted walk: the same tree gives the same bytes.
    let again = tmp.join("again.tar");
    tar_of(&src, &again, Compression::None);
    assert!(
        fs::read(&archive).unwrap() == fs::read(&again).unwrap(),
        "archive not reproducible"
    );
}

fn names_in(archive: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(File::open(archive).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn mounts_and_skipped_paths_are_cut() {
    let tmp = TempDir::new();
    let src = tmp.join("src");
    for d in ["src/mnt", "src/proc/self", "src/keep"] {
        fs::create_dir_all(tmp.join(d)).unwrap();
    }
    fs::write(src.join("proc/self/x"), b"x").unwrap();
    fs::write(src.join("resolv.conf"), b"bind me").unwrap();
    fs::write(src.join("keep/file"), b"kept").unwrap();
    let Some(_mnt) = Mount::new("tmpfs", "tmpfs", &src.join("mnt"), "size=1m") else {
        println!("SKIP: cannot mount tmpfs");
        return;
    };
    fs::write(src.join("mnt/hidden"), b"on another mount").unwrap();
    let archive = tmp.join("out.tar");
    let skip = [PathBuf::from("/proc"), PathBuf::from("/resolv.conf")];
    write_tree(
        &src,
        &skip,
        File::create(&archive).unwrap(),
        &opts(Compression::None),
    )
    .unwrap();
    let names = names_in(&archive);
    assert_eq!(names, ["./", "keep/", "keep/file", "mnt/", "proc/"]);
}

fn decompress(data: &[u8], c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
    }
    out
}

#[test]
fn compressed_output_round_trips() {
    let tmp = TempDir::new();
    let src = tmp.join("src");
    build_rich_tree(&src);
    let plain = tmp.join("plain.tar");
    tar_of(&src, &plain, Compression::None);
    let plain = fs::read(&plain).unwrap();
    for (c, tool) in [(Compression::Gzip, "gzip"), (Compression::Zstd, "zstd")] {
        let out = tmp.join(format!("out.{tool}"));
        tar_of(&src, &out, c);
        let packed = fs::read(&out).unwrap();
        assert!(
            packed.len() < plain.len() / 2,
            "{tool}: {} bytes",
            packed.len()
        );
        assert!(decompress(&packed, c) == plain, "{tool}: content differs");
        if have(tool) {
            run(tool, &["-t", out.to_str().unwrap()]);
        } else {
            println!("SKIP: {tool} command not installed, only the crate decoder checked");
        }
    }
}

/// Overlay test fixture: lower, upper, work, merged under one temp dir.
struct Overlay {
    tmp: TempDir,
}

impl Overlay {
    fn dir(&self, d: &str) -> PathBuf {
        self.tmp.join(d)
    }

    fn mount(&self) -> Option<Mount> {
        let data = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            self.dir("lower").display(),
            self.dir("upper").display(),
            self.dir("work").display()
        );
        Mount::new("overlay", "overlay", &self.dir("merged"), &data)
    }
}

/// Changes through a real overlay: delete, create, modify, rename a dir, recreate a dir.
fn change_through_overlay(m: &Path) {
    fs::remove_file(m.join("gone")).unwrap();
    fs::write(m.join("new"), b"created").unwrap();
    set_xattr(&m.join("new"), "user.tag", b"v1").unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(m.join("modified"))
        .unwrap();
    fs::write(m.join("modified"), b"changed content").unwrap();
    fs::set_permissions(m.join("chmodded"), fs::Permissions::from_mode(0o600)).unwrap();
    run(
        "mv",
        &[
            m.join("olddir").to_str().unwrap(),
            m.join("newdir").to_str().unwrap(),
        ],
    );
    fs::remove_dir_all(m.join("recreated")).unwrap();
    fs::create_dir(m.join("recreated")).unwrap();
    fs::write(m.join("recreated/only"), b"only me").unwrap();
    fs::remove_dir_all(m.join("removeddir")).unwrap();
    fs::hard_link(m.join("new"), m.join("new-link")).unwrap();
    symlink("new", m.join("new-sym")).unwrap();
}

fn build_lower(lower: &Path) {
    for d in ["olddir/inner", "recreated", "removeddir", "keep"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    for f in [
        "gone",
        "modified",
        "chmodded",
        "olddir/a",
        "olddir/inner/b",
        "recreated/x",
    ] {
        fs::write(lower.join(f), f.as_bytes()).unwrap();
    }
    fs::write(lower.join("recreated/y"), b"y").unwrap();
    fs::write(lower.join("removeddir/z"), b"z").unwrap();
    fs::write(lower.join("keep/k"), b"k").unwrap();
    std::os::unix::fs::lchown(lower.join("keep/k"), Some(1234), Some(5678)).unwrap();
}

/// Builds lower, changes it through an overlay; gives the fixture and the merged listing.
fn overlay_session() -> Option<(Overlay, std::collections::BTreeMap<String, String>)> {
    let ov = Overlay {
        tmp: TempDir::new(),
    };
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(ov.dir(d)).unwrap();
    }
    build_lower(&ov.dir("lower"));
    let Some(mount) = ov.mount() else {
        println!("SKIP: overlay mount with redirect_dir=off,metacopy=off refused");
        return None;
    };
    change_through_overlay(&ov.dir("merged"));
    let merged = listing(
        &ov.dir("merged"),
        Compare {
            dir_mtime: false,
            nsec: false,
        },
    );
    drop(mount);
    Some((ov, merged))
}

#[test]
fn diff_layer_applied_over_lower_gives_merged_view() {
    let Some((ov, merged)) = overlay_session() else {
        return;
    };
    assert!(!merged.contains_key("gone") && merged.contains_key("recreated/only"));
    let layer = ov.dir("layer.tar");
    write_diff(
        &ov.dir("upper"),
        File::create(&layer).unwrap(),
        &opts(Compression::None),
    )
    .unwrap();
    let names = names_in(&layer);
    for want in [
        ".wh.gone",
        ".wh.olddir",
        ".wh.removeddir",
        "recreated/.wh..wh..opq",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let applied = ov.dir("applied");
    run(
        "cp",
        &[
            "-a",
            ov.dir("lower").to_str().unwrap(),
            applied.to_str().unwrap(),
        ],
    );
    apply_layer(&layer, &applied);
    assert_same(
        &merged,
        &listing(
            &applied,
            Compare {
                dir_mtime: false,
                nsec: false,
            },
        ),
    );
}

fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn sha256_file(path: &Path) -> String {
    sha256(&fs::read(path).unwrap())
}

fn blob(root: &Path, digest: &str) -> PathBuf {
    root.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn oci_archive_is_valid_and_unpacks_with_umoci() {
    let Some((ov, merged)) = overlay_session() else {
        return;
    };
    let image = ImageConfig {
        name: "localhost/minirunc-test".into(),
        tag: "v1".into(),
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/keep".into(),
        user: "1234:5678".into(),
    };
    let archive = ov.dir("image.tar");
    let lowers = [ov.dir("lower")];
    let out = File::create(&archive).unwrap();
    write_oci_archive(
        &lowers,
        &ov.dir("upper"),
        &image,
        out,
        &opts(Compression::Gzip),
    )
    .unwrap();
    let layout = ov.dir("layout");
    fs::create_dir(&layout).unwrap();
    run(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ],
    );
    assert_eq!(
        json(&layout.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = json(&layout.join("index.json"));
    let desc = &index["manifests"][0];
    let full_name = "localhost/minirunc-test:v1";
    let annotations = &desc["annotations"];
    assert_eq!(annotations["org.opencontainers.image.ref.name"], full_name);
    assert_eq!(annotations["io.containerd.image.name"], full_name);
    let digest = desc["digest"].as_str().unwrap();
    assert_eq!(sha256_file(&blob(&layout, digest)), digest);
    let manifest = json(&blob(&layout, digest));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(sha256_file(&blob(&layout, config_digest)), config_digest);
    let config = json(&blob(&layout, config_digest));
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(config["config"]["WorkingDir"], "/keep");
    assert_eq!(config["os"], "linux");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let d = layer["digest"].as_str().unwrap();
        let path = blob(&layout, d);
        assert_eq!(sha256_file(&path), d);
        assert_eq!(layer["size"], fs::metadata(&path).unwrap().len());
        let raw = decompress(&fs::read(&path).unwrap(), Compression::Gzip);
        let diff_id = sha256(&raw);
        assert_eq!(config["rootfs"]["diff_ids"][i], diff_id.as_str());
    }
    if !have("umoci") {
        println!("SKIP: umoci not installed (apt-get install umoci), unpack not checked");
        return;
    }
    let bundle = ov.dir("bundle");
    let image_ref = format!("{}:{full_name}", layout.display());
    run(
        "umoci",
        &["unpack", "--image", &image_ref, bundle.to_str().unwrap()],
    );
    let rootfs = listing(
        &bundle.join("rootfs"),
        Compare {
            dir_mtime: false,
            nsec: false,
        },
    );
    assert_same(&merged, &rootfs);
    let cfg: serde_json::Value = json(&bundle.join("config.json"));
    assert_eq!(cfg["process"]["cwd"], "/keep");
}

#[test]
fn diff_refuses_redirected_directories() {
    let tmp = TempDir::new();
    let upper = tmp.join("upper");
    fs::create_dir_all(upper.join("moved")).unwrap();
    set_xattr(&upper.join("moved"), "trusted.overlay.redirect", b"/orig").unwrap();
    let out = File::create(tmp.join("layer.tar")).unwrap();
    let err = write_diff(&upper, out, &opts(Compression::None)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("redirect_dir=off") && msg.contains("moved"),
        "{msg}"
    );
}
