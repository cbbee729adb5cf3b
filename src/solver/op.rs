//! The operations a build graph is made of, modelled on BuildKit's LLB.
//!
//! An [`Op`] is a pure definition: it names its inputs by position
//! ([`Input`]) in the owning vertex's input list, never by graph-local ids,
//! so the same step always has the same [definition digest](Op::definition_digest)
//! whichever graph it sits in. Nothing here is host-specific: no mtimes, no
//! absolute host paths, no compression settings.
//!
//! Image configuration steps (ENV, WORKDIR, USER, LABEL, CMD, ...) are
//! deliberately not ops. As in BuildKit they live in the lowering's stage
//! state: their effect on later steps already reaches the graph through the
//! `env`/`cwd`/`user` of each [`Exec`] (so cache keys see them), and the final
//! image config is assembled from that state next to the solved root
//! filesystem. A vertex for them would only add cache lookups and noise.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::canonical;
/// An image source's platform is the image-spec's, shared with the
/// registry client (`linux/amd64`, `linux/arm64/v8`).
pub use crate::image::oci::Platform;
use crate::image::{Digest, ImageRef};

/// An input of a vertex, by position in its input list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Input(pub u32);

impl Input {
    /// The position in the vertex's input list.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One build step: a source, a process run, or a filesystem edit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A base image (`FROM`): resolves to layers and a config.
    Image(ImageSource),
    /// Files from a local directory (the build context or a named context).
    Context(ContextSource),
    /// A file downloaded over HTTP(S) (`ADD <url>`).
    Http(HttpSource),
    /// A Git repository checked out at the commit its ref names now
    /// (`ADD <git url>`).
    Git(GitSource),
    /// A process run over a root filesystem plus extra mounts (`RUN`).
    Exec(Exec),
    /// A sequence of filesystem edits on a base (`COPY`, `ADD`, `WORKDIR`'s mkdir).
    File(FileOp),
    /// Layer stacks put on top of one another (`COPY --link`).
    Merge(MergeOp),
}

/// A base image source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// The image; the lowering may already pin it (`name@sha256:...`).
    #[serde(with = "image_ref_string")]
    pub reference: ImageRef,
    /// The platform to pick from a multi-platform index.
    pub platform: Platform,
}

/// A local directory source; which files exist is decided when it is read,
/// so its dependents key on the content they select (see `solver::key`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextSource {
    /// Which local directory: `context`, `dockerfile`, or a named context.
    pub name: String,
    /// Only these patterns are read (empty: everything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// `.dockerignore` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Paths whose symlinks are followed when read (e.g. the Dockerfile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_paths: Vec<String>,
}

/// A remote file. Like a local context its content is only known once
/// fetched, so it is fetched (conditionally, when a copy of it is stored)
/// on every build and dependents key on the digest of what came back:
/// a server that starts serving other bytes makes a new key, never a
/// stale cache hit (BuildKit's HTTP source).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSource {
    /// The `http://` or `https://` URL.
    pub url: String,
    /// `ADD --checksum=`: the digest the content must have; it then stands
    /// for the content in keys, so a stored copy with that digest is used
    /// without asking the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A Git checkout. Like an HTTP source its content is only known once
/// fetched (the ref is resolved to a commit on every build), so it is a
/// content source: dependents key on the digests of what they read from
/// the checkout (moby/buildkit `source/git/source.go` keys the source by
/// commit; a copy from it keys on the content it selects).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    /// The repository URL with its `#ref:subdir` fragment, as written.
    pub url: String,
    /// Keep `.git` in the checkout (`ADD --keep-git-dir=true`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub keep_git_dir: bool,
    /// `ADD --checksum=`: a prefix of the commit the ref must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A process run. `mounts[0]` is the root filesystem, mounted at `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    pub args: Vec<String>,
    /// `KEY=value`, in order.
    pub env: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub network: Network,
    #[serde(default, skip_serializing_if = "is_default")]
    pub security: Security,
    pub mounts: Vec<ExecMount>,
    /// `kiln build --add-host`: names added to the step's `/etc/hosts`.
    /// Part of the definition, as BuildKit keeps them in the ExecOp's meta
    /// (moby/buildkit `solver/pb/ops.proto`, `Meta.extraHosts`), so a
    /// changed address reruns the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<ExtraHost>,
    /// `kiln build --ulimit`: the process's rlimits in docker's syntax
    /// (`nofile=1024:2048`), in the ExecOp's meta like BuildKit's
    /// (`Meta.ulimit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// `SOURCE_DATE_EPOCH`: mtimes in the resulting layer are clamped to
    /// it, so it is part of the definition (a clamped and an unclamped
    /// layer are different results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
    /// Proxy variables (`HTTP_PROXY`, ...) given as build args without an
    /// `ARG`: the process sees them, but like BuildKit's `ProxyEnv` they are
    /// left out of the definition, so changing a proxy keeps the cache.
    #[serde(skip)]
    pub proxy_env: Vec<String>,
    /// The platform the process's binaries are for when it is not the
    /// build host's (`None`): the executor runs it under emulation, and
    /// it is part of the definition, so a step for arm64 never takes an
    /// amd64 result (BuildKit's `pb.Op.Platform`, in every op's digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[cfg(test)]
impl Exec {
    /// `args` with `env` in `/` on input 0 as the root filesystem, every
    /// other field at its default: the exec op tests build.
    pub(crate) fn on_rootfs(args: &[&str], env: &[&str]) -> Exec {
        Exec {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            user: None,
            hostname: None,
            network: Network::Sandbox,
            security: Security::Sandbox,
            mounts: vec![ExecMount {
                input: Some(Input(0)),
                dest: "/".into(),
                selector: "/".into(),
                readonly: false,
                kind: MountKind::Layer,
            }],
            extra_hosts: Vec::new(),
            ulimits: Vec::new(),
            source_date_epoch: None,
            proxy_env: Vec::new(),
            platform: None,
        }
    }
}

/// One `--add-host` line: `host` resolves to `ip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub host: String,
    /// An IPv4 or IPv6 address as Go prints it (no brackets); docker's
    /// `host-gateway` is resolved before the build, as buildx does, so
    /// the address is in the key.
    pub ip: String,
}

/// The network a process sees (`RUN --network=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Its own network namespace with outbound access.
    #[default]
    Sandbox,
    Host,
    None,
}

/// `RUN --security=`: insecure drops the sandbox (needs an entitlement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

/// One mount of an [`Exec`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMount {
    /// The input providing the content; `None` for an empty layer, a
    /// tmpfs, a fresh cache, a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// Where it appears in the container.
    pub dest: String,
    /// The path inside the input that is mounted (`source=` in Dockerfile).
    #[serde(default = "root_path", skip_serializing_if = "is_root_path")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub readonly: bool,
    pub kind: MountKind,
}

/// What kind of mount an [`ExecMount`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    /// A writable layer over the input; its result is the vertex's output
    /// (this is what the root filesystem mount is).
    Layer,
    /// The input's content, bind-mounted; writes (if not readonly) are discarded.
    Bind,
    /// A persistent cache directory shared across builds by `id`.
    Cache {
        id: String,
        sharing: CacheSharing,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// An empty tmpfs.
    Tmpfs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// A secret as a file at the mount's `dest` and/or (`env`) as that
    /// environment variable; an empty `dest` means no file. Only its id
    /// and the variable's name reach the cache key, never its value.
    Secret {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<String>,
        #[serde(default, skip_serializing_if = "is_default")]
        required: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// An SSH agent socket at the mount's `dest`, forwarding the build's
    /// `--ssh` agent `id`; owned by `uid:gid` (default root) with `mode`
    /// (default 0600). Only these reach the cache key: which key or agent
    /// serves it does not (BuildKit's `SSHOpt` the same).
    Ssh {
        id: String,
        #[serde(default, skip_serializing_if = "is_default")]
        required: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
}

/// How concurrent builds share a cache mount (`sharing=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// Filesystem edits applied in order on top of `base` (or an empty tree).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Input>,
    pub actions: Vec<FileAction>,
    /// `SOURCE_DATE_EPOCH`: mtimes in the resulting layer are clamped to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
}

/// The root filesystems of `inputs` stacked in order, each input's layers
/// reused as they are on top of the ones before (BuildKit's `MergeOp`).
///
/// This is what makes `COPY --link` independent of its base: the copy is a
/// file op on an empty tree, so its key and its layer never depend on the
/// base, and only this cheap merge is redone when the base changes. The
/// result shows the inputs as overlayfs shows stacked layers: an upper
/// entry hides a lower one of another type (a linked directory replaces a
/// base's symlink, it is not resolved through it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOp {
    /// Bottom first; every input must be a root filesystem.
    pub inputs: Vec<Input>,
}

/// One filesystem edit: the ones the Dockerfile lowering makes (COPY/ADD,
/// WORKDIR's mkdir, RUN heredoc scripts). Add one with its executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileAction {
    /// A COPY/ADD source list copied to one destination (see [`CopyFiles`]).
    CopyFiles(CopyFiles),
    Mkdir {
        path: String,
        mode: u32,
        #[serde(default, skip_serializing_if = "is_default")]
        make_parents: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chown: Option<Chown>,
    },
    Mkfile {
        path: String,
        mode: u32,
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chown: Option<Chown>,
    },
}

/// Copies a list of sources to one destination as one COPY or ADD does.
///
/// The destination rules apply to the list as a whole (several sources
/// need a directory destination), and sources may be inline files
/// (heredocs) or URLs besides paths in the source input. Values are already expanded; `--chown` names are
/// resolved in the destination when the op runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFiles {
    /// The input holding the path sources (`None`: only inline files and
    /// URLs). A local context input makes copied files owned by 0:0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Input>,
    pub sources: Vec<CopySource>,
    /// As written: absolute, or relative to `workdir`; a trailing `/`
    /// makes it a directory.
    pub dest: String,
    pub workdir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chmod: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub link: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub parents: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// ADD's rules: local archives are unpacked, URLs downloaded.
    #[serde(default, skip_serializing_if = "is_default")]
    pub add: bool,
    /// `ADD --checksum=`: the digest a downloaded source must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `ADD --unpack=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpack: Option<bool>,
    /// `ADD --keep-git-dir=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_git_dir: Option<bool>,
}

impl CopyFiles {
    /// A plain `COPY src dest` from `source`, relative to `/`, with
    /// BuildKit's Dockerfile defaults.
    pub fn new(source: Input, src: impl Into<String>, dest: impl Into<String>) -> CopyFiles {
        CopyFiles {
            source: Some(source),
            sources: vec![CopySource::Path { path: src.into() }],
            dest: dest.into(),
            workdir: "/".into(),
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            exclude: Vec::new(),
            add: false,
            checksum: None,
            unpack: None,
            keep_git_dir: None,
        }
    }
}

/// One source of a [`CopyFiles`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CopySource {
    /// A path or wildcard in the source input.
    Path { path: String },
    /// An `http(s)://` URL (ADD): the file `input` (an [`Op::Http`]
    /// vertex) downloaded; `url` names it in messages.
    Url { url: String, input: Input },
    /// A file given inline: `name` is its file name.
    Inline {
        name: String,
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
}

/// `--chown=user[:group]`, as written; names are resolved in the destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chown {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Which part of an input a vertex reads; for a context input the cache key
/// uses the content digest of exactly this selection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentSelector {
    /// Path inside the input (`/` for all of it).
    pub path: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub wildcard: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub follow_links: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl ContentSelector {
    /// The whole input.
    pub fn all() -> ContentSelector {
        ContentSelector::path("/")
    }

    /// One path, followed if it is a symlink.
    pub fn path(path: impl Into<String>) -> ContentSelector {
        ContentSelector {
            path: path.into(),
            wildcard: false,
            follow_links: true,
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl Op {
    /// The sha256 of the op's canonical encoding: equal ops have equal
    /// digests whatever graph or host they come from.
    pub fn definition_digest(&self) -> Result<Digest, serde_json::Error> {
        canonical::digest(self)
    }

    /// Whether the op is a source whose content is only known once read
    /// (a local context, a download): its own key is never looked up nor
    /// its output recorded, and each dependent keys on the content digests
    /// of what it reads from it ([`Op::content_selectors`]).
    pub fn is_content_source(&self) -> bool {
        matches!(self, Op::Context(_) | Op::Http(_) | Op::Git(_))
    }

    /// Every input position the op refers to, in order of appearance.
    pub fn referenced_inputs(&self) -> Vec<Input> {
        match self {
            Op::Image(_) | Op::Context(_) | Op::Http(_) | Op::Git(_) => Vec::new(),
            Op::Exec(exec) => exec.mounts.iter().filter_map(|m| m.input).collect(),
            Op::Merge(merge) => merge.inputs.clone(),
            Op::File(file) => {
                let mut inputs: Vec<Input> = file.base.into_iter().collect();
                for action in &file.actions {
                    if let FileAction::CopyFiles(copy) = action {
                        inputs.extend(copy.source);
                        inputs.extend(copy.sources.iter().filter_map(|s| match s {
                            CopySource::Url { input, .. } => Some(*input),
                            _ => None,
                        }));
                    }
                }
                inputs
            }
        }
    }

    /// What the op reads from `input`: the selectors whose content digests
    /// stand in for the input's key when the input is a local context.
    /// An input used whole (a root filesystem, a copy base) reads `/`.
    pub fn content_selectors(&self, input: Input) -> Vec<ContentSelector> {
        let mut selectors = Vec::new();
        let mut whole = false;
        match self {
            Op::Image(_) | Op::Context(_) | Op::Http(_) | Op::Git(_) => {}
            Op::Merge(merge) => whole = merge.inputs.contains(&input),
            Op::Exec(exec) => {
                for (i, mount) in exec.mounts.iter().enumerate() {
                    if mount.input != Some(input) {
                        continue;
                    }
                    // The root filesystem and writable layers take everything.
                    if i == 0 || mount.kind == MountKind::Layer {
                        whole = true;
                    } else {
                        selectors.push(ContentSelector::path(mount.selector.clone()));
                    }
                }
            }
            Op::File(file) => {
                whole = file.base == Some(input);
                for action in &file.actions {
                    match action {
                        // A download is copied whole.
                        FileAction::CopyFiles(copy)
                            if copy.sources.iter().any(
                                |s| matches!(s, CopySource::Url { input: i, .. } if *i == input),
                            ) =>
                        {
                            whole = true;
                        }
                        FileAction::CopyFiles(copy) if copy.source == Some(input) => {
                            for source in &copy.sources {
                                if let CopySource::Path { path } = source {
                                    selectors.push(ContentSelector {
                                        // `--parents` pivots (`a/./b`) select the same files.
                                        path: path.replace("/./", "/"),
                                        wildcard: true,
                                        follow_links: true,
                                        include: Vec::new(),
                                        exclude: copy.exclude.clone(),
                                    });
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        if whole {
            return vec![ContentSelector::all()];
        }
        // Two COPYs of the same path read the same content: hash it once.
        let mut seen = std::collections::HashSet::new();
        selectors.retain(|s| seen.insert(s.clone()));
        selectors
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn root_path() -> String {
    "/".to_string()
}

fn is_root_path(path: &str) -> bool {
    path == "/"
}

/// `ImageRef` travels as its normalized string form.
mod image_ref_string {
    use super::*;

    pub fn serialize<S: Serializer>(r: &ImageRef, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(r)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ImageRef, D::Error> {
        let s = String::deserialize(d)?;
        ImageRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// File data travels as lowercase hex so the encoding stays plain JSON text.
mod hex_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[&str]) -> Op {
        Op::Exec(Exec::on_rootfs(args, env))
    }

    #[test]
    fn equal_ops_have_equal_digests_and_any_field_changes_it() {
        let a = run(&["sh", "-c", "make"], &["PATH=/bin"]);
        let b = run(&["sh", "-c", "make"], &["PATH=/bin"]);
        assert_eq!(
            a.definition_digest().unwrap(),
            b.definition_digest().unwrap()
        );
        let c = run(&["sh", "-c", "make"], &["PATH=/usr/bin"]);
        assert_ne!(
            a.definition_digest().unwrap(),
            c.definition_digest().unwrap()
        );
    }

    #[test]
    fn default_fields_are_left_out_of_the_encoding() {
        // Keeps old digests valid when a new defaulted field is added.
        let encoded = canonical::encode(&run(&["true"], &[])).unwrap();
        let text = String::from_utf8(encoded).unwrap();
        assert_eq!(
            text,
            r#"{"args":["true"],"cwd":"/","env":[],"mounts":[{"dest":"/","input":0,"kind":{"type":"layer"}}],"op":"exec"}"#
        );
    }

    #[test]
    fn ops_round_trip_through_json() {
        let op = Op::File(FileOp {
            base: Some(Input(0)),
            actions: vec![
                FileAction::CopyFiles(CopyFiles::new(Input(1), "src/", "/app/")),
                FileAction::Mkfile {
                    path: "/x".into(),
                    mode: 0o644,
                    data: b"\x00hi".to_vec(),
                    chown: None,
                },
            ],
            source_date_epoch: None,
        });
        let json = serde_json::to_string(&op).unwrap();
        let back: Op = serde_json::from_str(&json).unwrap();
        assert_eq!(back, op);
        let image = Op::Image(ImageSource {
            reference: ImageRef::parse("alpine:3.19").unwrap(),
            platform: Platform::linux_amd64(),
        });
        let json = serde_json::to_string(&image).unwrap();
        assert!(json.contains("docker.io/library/alpine:3.19"), "{json}");
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), image);
    }

    #[test]
    fn copy_sources_are_read_by_selection_and_bases_whole() {
        let op = Op::File(FileOp {
            base: Some(Input(0)),
            actions: vec![
                FileAction::CopyFiles(CopyFiles::new(Input(1), "a.txt", "/")),
                FileAction::CopyFiles(CopyFiles::new(Input(1), "src/*.rs", "/src/")),
                FileAction::CopyFiles(CopyFiles::new(Input(1), "a.txt", "/again/")),
            ],
            source_date_epoch: None,
        });
        let paths: Vec<String> = op
            .content_selectors(Input(1))
            .into_iter()
            .map(|s| s.path)
            .collect();
        assert_eq!(paths, ["a.txt", "src/*.rs"]);
        assert_eq!(op.content_selectors(Input(0)), vec![ContentSelector::all()]);
        assert_eq!(
            op.referenced_inputs(),
            [Input(0), Input(1), Input(1), Input(1)]
        );
    }

    #[test]
    fn downloads_are_inputs_read_whole() {
        let mut copy = CopyFiles::new(Input(1), "a.txt", "/");
        copy.sources.push(CopySource::Url {
            url: "http://h/f".into(),
            input: Input(2),
        });
        let op = Op::File(FileOp {
            base: Some(Input(0)),
            actions: vec![FileAction::CopyFiles(copy)],
            source_date_epoch: None,
        });
        assert_eq!(op.referenced_inputs(), [Input(0), Input(1), Input(2)]);
        assert_eq!(op.content_selectors(Input(2)), vec![ContentSelector::all()]);
        assert_eq!(
            op.content_selectors(Input(1)),
            vec![ContentSelector {
                wildcard: true,
                ..ContentSelector::path("a.txt")
            }]
        );
        let http = Op::Http(HttpSource {
            url: "http://h/f".into(),
            checksum: None,
        });
        assert!(http.is_content_source() && !op.is_content_source());
        assert!(http.referenced_inputs().is_empty());
    }

    #[test]
    fn exec_bind_mounts_are_read_by_their_source_path() {
        let Op::Exec(mut exec) = run(&["true"], &[]) else {
            unreachable!()
        };
        exec.mounts.push(ExecMount {
            input: Some(Input(1)),
            dest: "/src".into(),
            selector: "pkg".into(),
            readonly: true,
            kind: MountKind::Bind,
        });
        let op = Op::Exec(exec);
        assert_eq!(
            op.content_selectors(Input(1)),
            vec![ContentSelector::path("pkg")]
        );
        assert_eq!(op.content_selectors(Input(0)), vec![ContentSelector::all()]);
    }
}
