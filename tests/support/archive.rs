//! Tars taken apart and put back together entry by entry, names kept
//! verbatim: hostile layers written from scratch, and foreign layouts or
//! broken archives made from good ones.

use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// One tar entry, name kept verbatim.
#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<String>,
}

/// A regular file entry.
pub fn file(name: &str, data: &[u8]) -> Item {
    Item {
        name: name.into(),
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        link: None,
    }
}

/// A symlink entry.
pub fn symlink(name: &str, target: &str) -> Item {
    Item {
        name: name.into(),
        kind: tar::EntryType::Symlink,
        data: Vec::new(),
        link: Some(target.into()),
    }
}

/// The entries of a tar.
pub fn read(bytes: &[u8]) -> Vec<Item> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push(Item {
            name: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: e.header().entry_type(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            data,
        });
    }
    out
}

/// A tar of `items`, names copied verbatim (no sanitizing). Directories
/// are 0755, links 0777, files 0644; every mtime is the same fixed time.
pub fn write(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(it.kind);
        h.set_mtime(1_700_000_000);
        h.set_mode(match it.kind {
            k if k.is_dir() => 0o755,
            tar::EntryType::Symlink | tar::EntryType::Link => 0o777,
            _ => 0o644,
        });
        h.set_size(it.data.len() as u64);
        if let Some(l) = &it.link {
            h.set_link_name_literal(l).unwrap();
        }
        h.as_old_mut().name[..it.name.len()].copy_from_slice(it.name.as_bytes());
        h.set_cksum();
        b.append(&h, &it.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes to `out` a tar of regular files (name, size, content read as it
/// is written, for archives too big to hold in memory): GNU headers, mode
/// 0644, owner 0:0, mtime 0, as a plain image layer has them. Returns
/// `out`.
pub fn write_files<W: Write>(out: W, files: &mut [(&str, u64, &mut dyn Read)]) -> W {
    let mut b = tar::Builder::new(out);
    for (name, size, data) in files.iter_mut() {
        let mut h = tar::Header::new_gnu();
        h.set_size(*size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, *name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `blobs/sha256/<hex>` for a `sha256:<hex>` digest.
pub fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// Index of the entry called `name`.
pub fn position(items: &[Item], name: &str) -> usize {
    items
        .iter()
        .position(|i| i.name == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

/// An entry's content parsed as JSON.
pub fn json(items: &[Item], name: &str) -> serde_json::Value {
    serde_json::from_slice(&items[position(items, name)].data).unwrap()
}

/// Replaces an entry's content with `v` serialized.
pub fn set_json(items: &mut [Item], name: &str, v: &serde_json::Value) {
    let i = position(items, name);
    items[i].data = serde_json::to_vec(v).unwrap();
}

/// Adds `data` as an OCI layout blob; returns its digest and size.
pub fn put_blob(items: &mut Vec<Item>, data: &[u8]) -> (String, u64) {
    let d = digest_of(data);
    let name = blob_name(&d);
    if !items.iter().any(|i| i.name == name) {
        items.push(file(&name, data));
    }
    (d, data.len() as u64)
}

/// One entry of a hand-made (possibly hostile) tar, for [`raw_tar`].
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

impl From<&Entry<'_>> for Item {
    fn from(e: &Entry<'_>) -> Item {
        let (name, kind, data, link) = match *e {
            Entry::File(n, d) => (n, tar::EntryType::Regular, d, None),
            Entry::Dir(n) => (n, tar::EntryType::Directory, &[][..], None),
            Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, &[][..], Some(t)),
            Entry::Hardlink(n, t) => (n, tar::EntryType::Link, &[][..], Some(t)),
        };
        Item {
            name: name.into(),
            kind,
            data: data.to_vec(),
            link: link.map(str::to_string),
        }
    }
}

/// A tar of `entries`, names and link targets copied verbatim (no
/// sanitizing): what an attacker would hand kiln.
pub fn raw_tar(entries: &[Entry]) -> Vec<u8> {
    write(&entries.iter().map(Item::from).collect::<Vec<_>>())
}

/// `tar -C dir -cf out .` with GNU tar: a well-formed tar of a real tree,
/// made by the tool users make theirs with.
pub fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(
        st.success(),
        "tar -C {} -cf {} . failed",
        dir.display(),
        out.display()
    );
}
