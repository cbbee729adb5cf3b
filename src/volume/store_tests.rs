//! The volume store on a temporary root: docker's rules for names,
//! existing volumes, volumes in use and prune's scope.

use super::*;
use crate::volume::usage::{AttachedVolume, MountSource};

fn store() -> (tempfile::TempDir, VolumeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = VolumeStore::new(dir.path());
    (dir, store)
}

/// Makes container `id` (a state dir) mounting `volumes`.
fn container(root: &Path, id: &str, volumes: &[(&str, bool)]) -> PathBuf {
    let dir = StoreLayout::new(root).containers().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let record = ContainerVolumes {
        mounts: volumes
            .iter()
            .map(|(n, anonymous)| AttachedVolume {
                destination: format!("/{n}"),
                readonly: false,
                source: MountSource::Volume {
                    name: n.to_string(),
                    anonymous: *anonymous,
                },
            })
            .collect(),
    };
    record.write(&dir).unwrap();
    dir
}

#[test]
fn create_is_idempotent_and_lays_out_like_the_local_driver() {
    let (root, s) = store();
    let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let v = s
        .create(Some("data"), labels.clone(), BTreeMap::new())
        .unwrap();
    assert_eq!(v.mountpoint, root.path().join("volumes/data/_data"));
    assert!(v.mountpoint.is_dir());
    assert_eq!((v.driver.as_str(), v.scope.as_str()), ("local", "local"));
    std::fs::write(v.mountpoint.join("f"), "x").unwrap();
    // docker returns the existing volume, data and labels untouched.
    let again = s
        .create(Some("data"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    assert_eq!(again, v);
    assert!(v.mountpoint.join("f").exists());
    assert_eq!(s.list().unwrap(), vec![v]);
}

#[test]
fn anonymous_volumes_get_a_random_name_and_dockers_label() {
    let (_root, s) = store();
    let v = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    assert_eq!(v.name.len(), 64, "{}", v.name);
    assert!(v.is_anonymous());
}

#[test]
fn bad_names_and_options_are_refused_with_dockers_words() {
    let (_root, s) = store();
    let e = s
        .create(Some("../x"), BTreeMap::new(), BTreeMap::new())
        .unwrap_err();
    assert!(e.to_string().contains("includes invalid characters"), "{e}");
    let opts = BTreeMap::from([("color".to_string(), "red".to_string())]);
    let e = s.create(Some("ok"), BTreeMap::new(), opts).unwrap_err();
    assert_eq!(e.to_string(), "invalid option key: \"color\"");
    assert!(matches!(s.get("nope"), Err(VolumeError::NotFound(_))));
}

#[test]
fn a_volume_in_use_is_not_removed_even_with_force() {
    let (root, s) = store();
    s.create(Some("data"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let c = container(root.path(), "abc123", &[("data", false)]);
    let e = s.remove("data", true).unwrap_err();
    assert_eq!(e.to_string(), "remove data: volume is in use - [abc123]");
    std::fs::remove_dir_all(&c).unwrap();
    s.remove("data", false).unwrap();
    assert!(!root.path().join("volumes/data").exists());
    assert!(matches!(
        s.remove("data", false),
        Err(VolumeError::NotFound(_))
    ));
    s.remove("data", true).unwrap();
}

#[test]
fn prune_takes_unused_anonymous_volumes_unless_all() {
    let (root, s) = store();
    s.create(Some("named"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let anon = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    let used = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    std::fs::write(anon.mountpoint.join("f"), "12345").unwrap();
    container(root.path(), "c1", &[(&used.name, true)]);
    let (removed, bytes) = s.prune(false, |_| true).unwrap();
    assert_eq!((removed, bytes), (vec![anon.name.clone()], 5));
    let (removed, _) = s.prune(true, |_| true).unwrap();
    assert_eq!(removed, vec!["named".to_string()]);
    assert_eq!(s.list().unwrap(), vec![s.get(&used.name).unwrap()]);
}

#[test]
fn detach_removes_only_anonymous_volumes_no_one_else_uses() {
    let (root, s) = store();
    let anon = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    let shared = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    s.create(Some("named"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let c = container(
        root.path(),
        "c1",
        &[(&anon.name, true), (&shared.name, true), ("named", false)],
    );
    container(root.path(), "c2", &[(&shared.name, false)]);
    s.detach(&c, true).unwrap();
    let left: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
    let mut want = vec![shared.name.clone(), "named".to_string()];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn leftovers_of_a_killed_create_are_swept_and_never_listed() {
    let (root, s) = store();
    let half = root.path().join("volumes/.creating-xx");
    std::fs::create_dir_all(half.join("_data")).unwrap();
    assert!(s.list().unwrap().is_empty());
    s.create(Some("xx"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    assert!(!half.exists());
}
