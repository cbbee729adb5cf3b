//! docker's `-v` and `--mount` forms and errors (moby/moby
//! `volume/mounts/linux_parser.go`, docker/cli `opts/mount.go`).

use super::*;

const CWD: &str = "/work/proj";

fn v(raw: &str) -> Result<MountRequest, String> {
    parse_volume(raw, Path::new(CWD)).map_err(|e| e.to_string())
}

fn m(raw: &str) -> Result<MountRequest, String> {
    parse_mount(raw, Path::new(CWD)).map_err(|e| e.to_string())
}

fn bind(source: &str, dest: &str, readonly: bool, create_missing: bool) -> MountRequest {
    MountRequest::Bind {
        source: source.into(),
        destination: dest.into(),
        readonly,
        create_missing,
    }
}

fn volume(name: Option<&str>, dest: &str, readonly: bool, nocopy: bool) -> MountRequest {
    MountRequest::Volume {
        name: name.map(str::to_string),
        destination: dest.into(),
        readonly,
        nocopy,
        labels: BTreeMap::new(),
    }
}

#[test]
fn dash_v_binds_named_and_anonymous_volumes() {
    assert_eq!(v("/tmp:/data"), Ok(bind("/tmp", "/data", false, true)));
    assert_eq!(v("/tmp:/data:ro"), Ok(bind("/tmp", "/data", true, true)));
    assert_eq!(v("/tmp:/data:rw,z"), Ok(bind("/tmp", "/data", false, true)));
    assert_eq!(v("/tmp:/d:ro,z"), Ok(bind("/tmp", "/d", true, true)));
    // docker ≥ 23 resolves `.`-relative sources against the cwd.
    assert_eq!(
        v("./site:/x"),
        Ok(bind("/work/proj/site", "/x", false, true))
    );
    assert_eq!(v("../up:/x:ro"), Ok(bind("/work/up", "/x", true, true)));
    assert_eq!(v(".:/x"), Ok(bind("/work/proj", "/x", false, true)));
    assert_eq!(
        v("data:/data"),
        Ok(volume(Some("data"), "/data", false, false))
    );
    assert_eq!(
        v("data:/data:ro,nocopy"),
        Ok(volume(Some("data"), "/data", true, true))
    );
    assert_eq!(v("/data"), Ok(volume(None, "/data", false, false)));
}

#[test]
fn dash_v_errors_are_dockers() {
    assert_eq!(v("/tmp:/d:ro,rw"), Err("invalid mode: ro,rw".into()));
    assert_eq!(v("/tmp:/d:z,Z"), Err("invalid mode: z,Z".into()));
    assert_eq!(v("/tmp:/d:bogus"), Err("invalid mode: bogus".into()));
    assert_eq!(v("/tmp:/d:nocopy"), Err("invalid mode: nocopy".into()));
    assert_eq!(
        v("/data:ro"),
        Err("invalid volume specification: '/data:ro'".into())
    );
    assert_eq!(
        v("a:b:c:d"),
        Err("invalid volume specification: 'a:b:c:d'".into())
    );
    assert_eq!(v(":/x"), Err("invalid volume specification: ':/x'".into()));
    assert_eq!(
        v("/tmp:data"),
        Err("invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute".into())
    );
    assert_eq!(
        v("data:rel"),
        Err("invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute".into())
    );
    assert_eq!(
        v("/tmp:/"),
        Err("invalid specification: destination can't be '/'".into())
    );
    let e = v("bad$name:/x").unwrap_err();
    assert!(
        e.contains("includes invalid characters for a local volume name"),
        "{e}"
    );
    let e = v("a:/x").unwrap_err();
    assert!(e.contains("volume name is too short"), "{e}");
    let e = v("/tmp:/d:rshared").unwrap_err();
    assert!(e.contains("not supported by kiln"), "{e}");
}

#[test]
fn dash_dash_mount_forms() {
    assert_eq!(
        m("type=volume,src=data,dst=/data,readonly,volume-nocopy"),
        Ok(volume(Some("data"), "/data", true, true))
    );
    // The type defaults to volume; no source is an anonymous volume.
    assert_eq!(m("target=/data"), Ok(volume(None, "/data", false, false)));
    assert_eq!(
        m("type=bind,source=/tmp,destination=/t,ro=true"),
        Ok(bind("/tmp", "/t", true, false))
    );
    assert_eq!(
        m("type=tmpfs,dst=/run,tmpfs-size=1m,tmpfs-mode=1770"),
        Ok(MountRequest::Tmpfs {
            destination: "/run".into(),
            options: "nosuid,nodev,noexec,size=1048576,mode=1770".into()
        })
    );
    let labelled = m("\"volume-label=a=b,c\",src=vv,dst=/v").unwrap();
    let MountRequest::Volume { labels, .. } = labelled else {
        panic!("{labelled:?}")
    };
    assert_eq!(labels.get("a").map(String::as_str), Some("b,c"));
}

#[test]
fn dash_dash_mount_errors_are_dockers() {
    let cases = [
        ("type=bind,dst=/x", "invalid mount config for type \"bind\": field Source must not be empty"),
        ("type=bind,src=/does/not/exist/kiln,dst=/x", "invalid mount config for type \"bind\": bind source path does not exist: /does/not/exist/kiln"),
        ("type=bind,src=rel,dst=/x", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
        ("type=tmpfs,src=x,dst=/x", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
        ("type=nfs,dst=/x", "invalid mount config for type \"nfs\": mount type unknown"),
        ("type=volume,src=v", "target is required"),
        ("type=volume,dst=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("type=volume,dst=/x,color=red", "unexpected key 'color' in 'color=red'"),
        ("type=bind,src=/tmp,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
        ("type=volume,dst=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
        ("type=tmpfs,dst=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
        ("type=tmpfs,dst=/x,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
        ("type=volume,dst=/x,readonly=maybe", "invalid value for readonly: maybe"),
        ("type=volume,dst=/", "invalid specification: destination can't be '/'"),
    ];
    for (raw, want) in cases {
        assert_eq!(m(raw), Err(want.to_string()), "{raw}");
    }
}
