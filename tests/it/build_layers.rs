//! What a build's layers hold and how many there are, compared with what
//! BuildKit writes for the same Dockerfile: the mount points a RUN leaves
//! (moby/buildkit `executor/stubs.go`), the entries its overlay differ
//! drops (`util/overlay/overlay_linux.go` `sameDirent`), and the empty
//! layer of a step that changed nothing. Layers are read from
//! `kiln save`, as a user would.

use crate::support;

use std::io::Read;

use support::archive as ar;
use support::kiln::Kiln;

/// The diff ID of an empty tar (two zero blocks): BuildKit's layer for a
/// RUN, COPY or WORKDIR that changed nothing.
const EMPTY_LAYER: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// The image's diff IDs.
#[track_caller]
fn diff_ids(k: &Kiln, image: &str) -> Vec<String> {
    k.config_blob(image)["rootfs"]["diff_ids"]
        .as_array()
        .expect("rootfs.diff_ids")
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// The entries of the image's layer `n` (from `kiln save`), each as
/// `name mode uid:gid` (mode in octal, without the file type).
#[track_caller]
fn layer_entries(k: &Kiln, image: &str, n: usize) -> Vec<String> {
    let ran = k.output(&["save", image]);
    assert!(ran.status.success(), "kiln save {image}: {ran:?}");
    let items = ar::read(&ran.stdout);
    let manifest = ar::json(&items, "manifest.json");
    let name = manifest[0]["Layers"][n].as_str().expect("layer path");
    let tar = &items[ar::position(&items, name)].data;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar.as_slice());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        let line = format!(
            "{} {:o} {}:{}",
            String::from_utf8_lossy(&e.path_bytes()),
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap()
        );
        e.read_to_end(&mut Vec::new()).unwrap();
        out.push(line);
    }
    out
}

#[test]
fn run_on_a_base_without_dev_proc_sys_keeps_them_as_buildkit_does() {
    // BuildKit's stub cleaner hears only of /etc/hosts, /etc/resolv.conf
    // and the RUN's --mount targets; runc makes /dev, /proc and /sys in a
    // rootfs that lacks them, and they stay in the layer.
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox AS bb\nFROM scratch\nCOPY --from=bb /bin/busybox /bin/busybox\n\
         RUN --mount=type=tmpfs,target=/scratch/t [\"/bin/busybox\", \"true\"]\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo x > /etc/new\"]\n",
        "stubs:1",
        &[],
    );
    assert_eq!(diff_ids(&k, "stubs:1").len(), 3);
    assert_eq!(
        layer_entries(&k, "stubs:1", 1),
        ["dev/ 755 0:0", "proc/ 755 0:0", "sys/ 755 0:0"],
        "the mount points runc made stay; /etc (for /etc/hosts) and /scratch/t go"
    );
    // /etc is new here because of the command's file, not the stubs.
    assert_eq!(
        layer_entries(&k, "stubs:1", 2),
        ["etc/ 755 0:0", "etc/new 644 0:0"]
    );
}

#[test]
fn files_copied_up_without_a_change_are_not_in_the_run_layer() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    // First RUN: busybox gets /dev, /proc, /sys. Second: copy-ups only
    // (same mode, same owner, atime, open for append without writing).
    // Third: two of those again, plus real changes.
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN true\n\
         RUN chmod 644 /etc/passwd && chown 0:0 /etc/group && touch -a /etc/hostname \
             && : >> /etc/hostname && cat /etc/passwd > /dev/null\n\
         RUN chmod 644 /etc/passwd && : >> /etc/hostname && echo x >> /etc/group \
             && chmod 700 /mnt\n",
        "copyup:1",
        &[],
    );
    let ids = diff_ids(&k, "copyup:1");
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        ids[2], EMPTY_LAYER,
        "nothing changed: BuildKit's empty layer"
    );
    assert_eq!(
        layer_entries(&k, "copyup:1", 3),
        ["etc/ 755 0:0", "etc/group 644 0:0", "mnt/ 700 0:0"]
    );
    assert_eq!(k.sh("copyup:1", "tail -n 1 /etc/group"), "x\n");
}

#[test]
fn steps_that_change_nothing_add_the_empty_layer() {
    // BuildKit snapshots each RUN, COPY and WORKDIR; its differ writes an
    // empty diff as an empty tar and the exporter keeps it. Only config
    // instructions (and WORKDIR /) have `empty_layer` history entries.
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("keep.txt", "k\n")]);
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN true\nWORKDIR /tmp\nCOPY nomatch* /dst/\nENV A=1\nRUN true\n\
         WORKDIR /\nCOPY keep.txt /\n",
        "quiet:1",
        &[],
    );
    let history = k.history("quiet:1");
    let flags: Vec<bool> = history[1..].iter().map(|(_, layer)| *layer).collect();
    assert_eq!(
        flags,
        [true, true, true, false, true, false, true],
        "{history:?}"
    );
    let ids = diff_ids(&k, "quiet:1");
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(ids[2..5], [EMPTY_LAYER, EMPTY_LAYER, EMPTY_LAYER]);
    assert_eq!(layer_entries(&k, "quiet:1", 3), Vec::<String>::new());
    assert_eq!(
        k.sh("quiet:1", "cat /keep.txt; ls /dst 2>&1; true"),
        "k\nls: /dst: No such file or directory\n"
    );

    // The same layer three times survives save and load into a new store,
    // in either archive format.
    for format in ["docker", "oci"] {
        let archive = k.path(&format!("quiet-{format}.tar"));
        let path = archive.to_str().unwrap();
        k.ok(&["save", "--format", format, "-o", path, "quiet:1"]);
        let other = Kiln::new();
        other.ok(&["load", "-i", path]);
        assert_eq!(diff_ids(&other, "quiet:1"), ids, "{format}");
        assert_eq!(other.sh("quiet:1", "cat /keep.txt"), "k\n");
    }
}

#[test]
fn an_image_with_the_empty_layer_twice_pushes_and_pulls() {
    let reg = support::registry::TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let name = format!("{}/kiln/empties:1", reg.host());
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN true\nRUN true\nWORKDIR /tmp\n",
        &name,
        &[],
    );
    let ids = diff_ids(&k, &name);
    assert_eq!(ids[2..], [EMPTY_LAYER, EMPTY_LAYER], "{ids:?}");
    k.ok(&["push", &name]);
    let fresh = Kiln::new();
    fresh.ok(&["pull", &name]);
    assert_eq!(diff_ids(&fresh, &name), ids);
    assert_eq!(fresh.sh(&name, "pwd"), "/tmp\n");
}

#[test]
fn a_directory_removed_and_made_again_is_written_as_its_diff_not_opaque() {
    // BuildKit walks an opaque directory against the base
    // (util/overlay/overlay_linux.go checkOpaque, then continuity's
    // fs.Changes) and writes deletions, never `.wh..wh..opq`.
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN true\nRUN rm -rf /home && mkdir /home && echo n > /home/new\n",
        "opaque:1",
        &[],
    );
    assert_eq!(
        layer_entries(&k, "opaque:1", 2),
        ["home/ 755 0:0", "home/new 644 0:0", "home/.wh.tester 0 0:0"]
    );
    assert_eq!(k.sh("opaque:1", "ls -A /home"), "new\n");
}
