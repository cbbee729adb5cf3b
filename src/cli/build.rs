//! `kiln build`: flags in docker's spelling, handed to [`crate::build`].

use super::CliError;
use crate::build::contexts::MainContext;
use crate::build::export::ImageOutput;
use crate::build::export_options;
use crate::build::input::{self, StdinInput};
use crate::build::{self, publish, BuildOptions, Export};
use crate::cache::remote;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::exec::git_source::CheckoutLease;
use crate::exec::ssh_agent::SshAgents;
use crate::frontend::dockerfile::lint;
use crate::image::layer::budget::ExpansionBudget;
use crate::image::oci::Platform;
use crate::image::reference::ImageRef;
use crate::solver::ProgressMode;
use crate::source::url::is_git_url;
use clap::Args;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Flags of `kiln build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name (and tag) for the image; may be repeated.
    #[arg(short, long = "tag", value_name = "NAME:TAG")]
    pub tag: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<String>,
    /// A build argument; `K` alone takes its value from the environment.
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_arg: Vec<String>,
    /// An additional build context, NAME=VALUE; VALUE is a directory,
    /// docker-image://REF, a git URL or an http(s) URL (buildx's). It
    /// replaces a stage or image of that name in FROM, COPY --from and
    /// RUN --mount=from; may be repeated.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Do not use cached results (fresh ones are still recorded).
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull base images from their registry (default: only when
    /// the store has none).
    #[arg(long)]
    pub pull: bool,
    /// A label for the image.
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Progress output: auto, tty, plain, quiet or rawjson (BuildKit's
    /// status objects, one JSON object per line).
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub progress: String,
    /// Network of RUN steps: default (a namespace of its own with outbound
    /// access through slirp4netns), none, or host (which grants the
    /// network.host entitlement, as buildx does).
    #[arg(long, value_name = "MODE", default_value = "default")]
    pub network: String,
    /// Grant an entitlement: network.host (RUN --network=host) or
    /// security.insecure (RUN --security=insecure).
    #[arg(long, value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR.
    #[arg(long, value_name = "SPEC")]
    pub secret: Vec<String>,
    /// An SSH agent for RUN --mount=type=ssh: default ($SSH_AUTH_SOCK),
    /// ID=SOCKET, or ID=KEYFILE[,KEYFILE...]; may be repeated.
    #[arg(long, value_name = "ID[=SOCKET|KEYS]")]
    pub ssh: Vec<String>,
    /// Where to put the result: type=image[,name=REF][,push=true] (the
    /// default), type=registry,name=REF, type=local,dest=DIR,
    /// type=tar|oci|docker,dest=FILE (dest=- or no dest: stdout; `-o -`
    /// is a tar on stdout); oci and docker also take compression=
    /// uncompressed|gzip|zstd, compression-level=N, force-compression=true,
    /// oci-mediatypes=true|false and annotation[-manifest|
    /// -manifest-descriptor].KEY=VALUE.
    #[arg(short, long, value_name = "SPEC")]
    pub output: Vec<String>,
    /// An annotation for the image's manifest (stored, pushed and in -o
    /// type=oci|docker archives): KEY=VALUE, manifest:KEY=VALUE or
    /// manifest-descriptor:KEY=VALUE (archives only; buildx's syntax); may
    /// be repeated.
    #[arg(long, value_name = "[TYPE:]KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Push the image to the registries of its names (buildx's shorthand
    /// for `--output type=registry`).
    #[arg(long)]
    pub push: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write buildx's build metadata (JSON: `containerimage.digest`,
    /// `containerimage.config.digest`, `image.name`, ...) to this file.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// The target platform (os/arch[/variant], e.g. linux/arm64); the
    /// host's by default. RUN steps for another architecture run under
    /// qemu (binfmt_misc).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Say why each step that missed the cache missed: the first input
    /// that differs from the step's last cached record (a file, a build
    /// arg, the base image digest, the command).
    #[arg(long)]
    pub explain: bool,
    /// Remote build caches: flags of issue 12, kept together.
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
    /// Attestations: flags of issue 14, kept together.
    #[command(flatten)]
    pub attest: AttestArgs,
    /// `--add-host`, `--shm-size`, `--ulimit`, `--no-cache-filter`.
    #[command(flatten)]
    pub steps: super::build_steps::StepArgs,
    /// Print only the image ID (no progress).
    #[arg(short, long)]
    pub quiet: bool,
    /// Only run the build checks and report them (exit 1 when any warns),
    /// as `docker build --check` does; nothing is built.
    #[arg(long)]
    pub check: bool,
    /// The build context directory, or `-` to read a tar (or a Dockerfile)
    /// from stdin.
    #[arg(value_name = "CONTEXT")]
    pub context: String,
}

/// `--cache-to` / `--cache-from` (buildx's syntax, parsed by
/// [`crate::cache::remote::spec`]).
#[derive(Debug, Args)]
pub struct RemoteCacheArgs {
    /// Export the build cache: type=registry,ref=REF[,mode=min|max]
    /// [,compression=gzip|zstd][,cache-mounts=true][,ignore-error=true],
    /// type=local,dest=DIR[,...], or type=inline; may be repeated.
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Import a build cache: type=registry,ref=REF (a cache or an image
    /// with an inline cache), type=local,src=DIR, or a bare REF; may be
    /// repeated.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
}

/// `--provenance`, `--sbom`, `--attest` (buildx's syntax, parsed by
/// [`crate::attest::spec`]).
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Attach a SLSA provenance attestation: true, false, or
    /// mode=min|max[,builder-id=ID][,version=v0.2|v1] (shorthand for
    /// --attest type=provenance,...). Needs --push or -o type=oci|local|tar.
    #[arg(long, value_name = "VALUE")]
    pub provenance: Option<String>,
    /// Attach an SPDX SBOM of the image's packages (dpkg, apk, Python,
    /// npm): true or false (shorthand for --attest type=sbom).
    #[arg(long, value_name = "VALUE")]
    pub sbom: Option<String>,
    /// An attestation: type=provenance|sbom[,disabled=true][,ATTR=VALUE...];
    /// may be repeated.
    #[arg(long, value_name = "SPEC")]
    pub attest: Vec<String>,
}

impl AttestArgs {
    /// The attestations asked for, or the first bad value's error.
    fn parse(&self) -> Result<crate::attest::AttestOptions, crate::attest::SpecError> {
        crate::attest::AttestOptions::parse(
            &self.attest,
            self.provenance.as_deref(),
            self.sbom.as_deref(),
        )
    }
}

impl RemoteCacheArgs {
    /// The parsed specs, or the first bad one's error.
    fn parse(&self) -> Result<(Vec<remote::CacheTo>, Vec<remote::CacheFrom>), CliError> {
        let mut to = Vec::new();
        for s in &self.cache_to {
            to.extend(remote::spec::parse_cache_to(s).map_err(CliError::from_error)?);
        }
        let mut from = Vec::new();
        for s in &self.cache_from {
            from.extend(remote::spec::parse_cache_from(s).map_err(CliError::from_error)?);
        }
        Ok((to, from))
    }
}

/// Runs `kiln build`; returns the exit code. `debug` (`kiln --debug`)
/// expands the checks' warnings, as buildx's `--debug` does.
pub fn run(
    args: BuildArgs,
    root: &Path,
    registry: &super::RegistryFlags,
    debug: bool,
) -> Result<i32, CliError> {
    let platforms = parse_platforms(args.platform.as_deref())?;
    // A bad attestation or step flag is a usage error (exit 125), found
    // before the store is opened.
    let attest = match args.attest.parse() {
        Ok(a) => a,
        Err(e) => return Ok(super::usage_error(&e.to_string())),
    };
    let step_flags = match args.steps.parse(crate::runtime::slirp::host_address) {
        Ok(f) => f,
        Err(message) => return Ok(super::usage_error(&message)),
    };
    let exports = match exports(&args.output, args.push, &args.annotation) {
        Ok(e) => e,
        Err(message) => return Ok(super::usage_error(&message)),
    };
    check_stdout(&exports, args.quiet)?;
    let store = Arc::new(Store::open(root).map_err(CliError::from_error)?);
    // A git context's checkout is kept from `builder prune` until the
    // build ends.
    let (mut opts, _checkout) = options(&args, &store, registry)?;
    opts.step_flags = step_flags;
    opts.attest = attest;
    opts.exports = exports;
    // `--network host` asks for the host's network for every RUN, so it
    // grants the entitlement itself, as buildx adds `network.host` to the
    // allowed entitlements for it (docker/buildx `build/opt.go`,
    // `toSolveOpt`); a Dockerfile's `RUN --network=host` still needs
    // `--allow network.host`.
    if opts.network == crate::runtime::Network::Host
        && !opts.allow.contains(&build::Entitlement::NetworkHost)
    {
        opts.allow.push(build::Entitlement::NetworkHost);
    }
    if args.check {
        return check(store, &opts);
    }
    if platforms.len() > 1 {
        return build_multi(&args, store, &opts, &platforms);
    }
    let result = build_image(store, &opts)?;
    write_files(&args, &result)?;
    report(&args, &opts, &result, debug);
    Ok(0)
}

/// `--platform`: comma-separated `os/arch[/variant]`s (buildx's
/// syntax), each normalized as containerd does (BuildKit's exporter names
/// the image's platform that way), duplicates refused; the host's when
/// not given.
fn parse_platforms(asked: Option<&str>) -> Result<Vec<Platform>, CliError> {
    let Some(asked) = asked else {
        return Ok(vec![build::host_platform()]);
    };
    let mut platforms: Vec<Platform> = Vec::new();
    for p in asked.split(',') {
        let p = Platform::parse(p.trim())
            .map(|p| p.normalized())
            .map_err(|e| CliError(format!("--platform: {e}")))?;
        if platforms.contains(&p) {
            return Err(CliError(format!("--platform: {p} is given twice")));
        }
        platforms.push(p);
    }
    Ok(platforms)
}

/// A build for several platforms: one image each, and an index named
/// and pushed as the build's image (its digest is what `-q` prints and
/// `--iidfile` gets, as buildx does for an index).
fn build_multi(
    args: &BuildArgs,
    store: Arc<Store>,
    opts: &BuildOptions,
    platforms: &[Platform],
) -> Result<i32, CliError> {
    if args.metadata_file.is_some() {
        return Err(CliError(
            "--metadata-file is not supported for a multi-platform build yet".into(),
        ));
    }
    let built = build::multi::build_platforms(store, opts, platforms).map_err(|e| match e {
        // The progress output already boxed the step's last lines.
        build::BuildError::Step {
            message, excerpt, ..
        } if opts.progress != ProgressMode::Quiet => {
            CliError(format!("{}{message}", excerpt.unwrap_or_default()))
        }
        e => CliError::from_error(e),
    })?;
    let id = built.index.to_string();
    if let Some(f) = &args.iidfile {
        std::fs::write(f, id.as_bytes())
            .map_err(|e| CliError(format!("--iidfile {}: writing: {e}", f.display())))?;
    }
    if args.quiet {
        println!("{id}");
    } else if opts.progress != ProgressMode::Quiet {
        for (platform, result) in &built.platforms {
            eprintln!("writing image {} for {platform}", result.id);
        }
        eprintln!("writing image index {id}");
        for t in &built.names {
            eprintln!("naming to {t}");
        }
    }
    Ok(0)
}

/// The build's options from its flags, its inputs read.
fn options(
    args: &BuildArgs,
    store: &Store,
    registry: &super::RegistryFlags,
) -> Result<(BuildOptions, Option<CheckoutLease>), CliError> {
    let (cache_to, cache_from) = args.remote_cache.parse()?;
    let inputs = read_inputs(args, store)?;
    // A bad --progress is refused even beside -q (which wins otherwise).
    let asked: ProgressMode = args.progress.parse().map_err(CliError::from_error)?;
    let checkout = inputs.checkout.clone();
    let opts = BuildOptions {
        context: inputs.context,
        dockerfile: inputs.dockerfile,
        dockerfile_path: inputs.dockerfile_path,
        tags: parse_tags(&args.tag)?,
        build_args: build_args(&args.build_arg),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        insecure_registries: registry.insecure.clone(),
        tls_verify: registry.tls_verify,
        authfile: registry.authfile.clone(),
        labels: labels(&args.label),
        progress: if args.quiet {
            ProgressMode::Quiet
        } else {
            asked
        },
        network: network(&args.network)?,
        allow: args
            .allow
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()
            .map_err(CliError::from_error)?,
        secrets: args
            .secret
            .iter()
            .map(|s| parse_secret(s))
            .collect::<Result<_, _>>()?,
        ssh: SshAgents::open(
            &args.ssh,
            std::env::var_os("SSH_AUTH_SOCK").as_deref().map(Path::new),
        )
        .map_err(CliError::from_error)?,
        exports: Vec::new(),
        source_date_epoch: match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => Some(build::parse_epoch(&v).map_err(CliError::from_error)?),
            _ => None,
        },
        explain: args.explain,
        platform: parse_platforms(args.platform.as_deref())?.remove(0),
        platform_given: args.platform.is_some(),
        cache_from,
        cache_to,
        attest: Default::default(),
        index_member: false,
        platform_set: None,
        step_flags: Default::default(),
        context_source: inputs.remote.then(|| args.context.clone()),
        named_contexts: args
            .build_context
            .iter()
            .map(|spec| build::contexts::parse(spec))
            .collect::<Result<_, _>>()
            .map_err(CliError::from_error)?,
    };
    Ok((opts, checkout))
}

/// The context and the Dockerfile.
struct Inputs {
    /// Whether the context came from a URL (git or http).
    remote: bool,
    /// A git context's hold on its checkout.
    checkout: Option<CheckoutLease>,
    context: Option<PathBuf>,
    dockerfile: Vec<u8>,
    dockerfile_path: Option<PathBuf>,
}

/// Reads the context (a directory, a tar on stdin, or nothing: a
/// Dockerfile on stdin) and the Dockerfile (`-f`, stdin, or
/// CONTEXT/Dockerfile); stdin serves one of them at most.
fn read_inputs(args: &BuildArgs, store: &Store) -> Result<Inputs, CliError> {
    let mut stdin_dockerfile = None;
    // A remote context's `-f` names a file in it (BuildKit reads the
    // Dockerfile from the context's state, `dockerui` `Config`).
    let mut remote_dir = None;
    let mut remote_dockerfile = false;
    let mut checkout = None;
    let context = if args.context == "-" {
        let dir = store
            .scratch_path("stdin-context")
            .map_err(CliError::from_error)?;
        let mut budget = ExpansionBudget::from_env();
        match input::read_stdin(std::io::stdin(), &dir, &mut budget)
            .map_err(CliError::from_error)?
        {
            StdinInput::Context => Some(dir),
            StdinInput::Dockerfile(data) => {
                stdin_dockerfile = Some(data);
                None
            }
        }
    } else if let Some(remote) = remote_context(&args.context, store)? {
        match remote {
            MainContext::Dir(dir, lease) => {
                checkout = lease;
                remote_dir = Some(dir.clone());
                Some(dir)
            }
            MainContext::Dockerfile(data) => {
                remote_dockerfile = true;
                stdin_dockerfile = Some(data);
                None
            }
        }
    } else {
        let dir = PathBuf::from(&args.context);
        if !dir.is_dir() {
            return Err(CliError(format!(
                "unable to prepare context: path {:?} not found",
                args.context
            )));
        }
        Some(std::fs::canonicalize(&dir).unwrap_or(dir))
    };
    let (dockerfile, dockerfile_path) = match (&args.file, stdin_dockerfile) {
        (_, Some(data)) => (data, None),
        (Some(f), None) if f == "-" => {
            if args.context == "-" {
                return Err(CliError(
                    "cannot read both the context and the Dockerfile from stdin".into(),
                ));
            }
            let data = input::read_bounded(
                std::io::stdin(),
                input::MAX_DOCKERFILE_SIZE,
                "Dockerfile from stdin",
            )
            .map_err(CliError::from_error)?;
            (data, None)
        }
        (file, None) => {
            let path = match (file, &remote_dir) {
                (Some(f), Some(dir)) => crate::fs::path_in_root::resolve_in_root(dir, Path::new(f))
                    .map_err(|e| {
                        CliError(format!("failed to read dockerfile {f}: {}", Chain(&e)))
                    })?,
                (Some(f), None) => PathBuf::from(f),
                (None, _) => context.clone().unwrap_or_default().join("Dockerfile"),
            };
            let data = input::read_dockerfile(&path)
                .map_err(|e| CliError(format!("failed to read dockerfile: {}", Chain(&e))))?;
            (data, Some(path))
        }
    };
    Ok(Inputs {
        remote: remote_dir.is_some() || remote_dockerfile,
        checkout,
        context,
        dockerfile,
        dockerfile_path,
    })
}

/// A Git repository or an HTTP(S) URL as the context (buildx passes both
/// to BuildKit as they are): checked out or fetched into the store.
fn remote_context(context: &str, store: &Store) -> Result<Option<MainContext>, CliError> {
    let remote = if is_git_url(context) {
        build::contexts::git_main_context(store, context)
    } else if context.starts_with("http://") || context.starts_with("https://") {
        build::contexts::url_main_context(store, context)
    } else {
        return Ok(None);
    };
    remote
        .map(Some)
        .map_err(|e| CliError(format!("unable to prepare context: {}", Chain(&e))))
}

/// `-t` names.
fn parse_tags(tags: &[String]) -> Result<Vec<ImageRef>, CliError> {
    tags.iter()
        .map(|t| {
            ImageRef::parse(t)
                .map_err(|e| CliError(format!("invalid tag {t:?}: {e}", e = Chain(&e))))
        })
        .collect()
}

/// `--build-arg K=V`; docker takes a bare `K` from the environment, or
/// skips it.
fn build_args(args: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    out
}

/// `--label K=V` (a bare `K` is an empty label).
fn labels(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--network`.
fn network(mode: &str) -> Result<crate::runtime::Network, CliError> {
    match mode {
        "default" => Ok(crate::runtime::Network::Slirp),
        "host" => Ok(crate::runtime::Network::Host),
        "none" => Ok(crate::runtime::Network::None),
        other => Err(CliError(format!(
            "--network {other}: expected host, none or default"
        ))),
    }
}

/// `--output`s, and `--push`: as in buildx, it sets `push=true` on the
/// image outputs, or adds `type=registry` when there is none (docker/buildx
/// `commands/build.go`, where `exportPush` is turned into outputs); and
/// `--annotation`s, added to every output that writes an image archive
/// (buildx adds them to each image exporter). A bad value is a usage
/// error's message.
fn exports(outputs: &[String], push: bool, annotations: &[String]) -> Result<Vec<Export>, String> {
    let mut exports = outputs
        .iter()
        .map(|o| o.parse::<Export>().map_err(|e| Chain(&e).to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let annotations = annotations
        .iter()
        .map(|a| {
            export_options::parse_annotation_flag(a)
                .map_err(|e| format!("invalid --annotation {a:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if push {
        let mut found = false;
        for e in &mut exports {
            if let Export::Image(out) = e {
                out.push = true;
                found = true;
            }
        }
        if !found {
            exports.push(Export::Image(ImageOutput {
                push: true,
                ..ImageOutput::default()
            }));
        }
    }
    if !annotations.is_empty() {
        // No output is the store's image, which takes them too.
        if exports.is_empty() {
            exports.push(Export::Image(ImageOutput::default()));
        }
        for e in &mut exports {
            for (k, v) in &annotations {
                match e {
                    Export::Oci { options, .. } | Export::Docker { options, .. } => {
                        options.set(k, v)?;
                    }
                    Export::Image(out) => {
                        export_options::set_image_annotation(&mut out.annotations, k, v)
                            .map_err(|e| format!("--annotation: {e}"))?;
                    }
                    Export::Local { .. } | Export::Tar { .. } => {}
                }
            }
        }
    }
    Ok(exports)
}

/// An output on stdout: at most one, never a terminal, and not beside
/// `-q`'s image ID (docker/buildx `build/opt.go`, `CreateExports`).
fn check_stdout(exports: &[Export], quiet: bool) -> Result<(), CliError> {
    let on_stdout: Vec<&Export> = exports.iter().filter(|e| e.to_stdout()).collect();
    let Some(first) = on_stdout.first() else {
        return Ok(());
    };
    if on_stdout.len() > 1 {
        return Err(CliError(
            "--output: multiple outputs configured to write to stdout".into(),
        ));
    }
    if quiet {
        return Err(CliError(
            "--output: -q prints the image ID on stdout, where an output writes".into(),
        ));
    }
    if std::io::stdout().is_terminal() {
        let kind = match first {
            Export::Oci { .. } => "oci",
            Export::Docker { .. } => "docker",
            _ => "tar",
        };
        return Err(CliError(format!(
            "--output: dest file is required for {kind} exporter. refusing to write to console"
        )));
    }
    Ok(())
}

/// Runs the build; a failed step's error reads as buildx prints it.
fn build_image(store: Arc<Store>, opts: &BuildOptions) -> Result<build::BuildResult, CliError> {
    match build::build(store, opts) {
        Ok(r) => Ok(r),
        // The progress output already boxed the step's last lines.
        Err(build::BuildError::Step {
            message, excerpt, ..
        }) if opts.progress.shows_text() => Err(CliError(format!(
            "{}{message}",
            excerpt.unwrap_or_default()
        ))),
        Err(e) => Err(CliError::from_error(e)),
    }
}

/// `--iidfile` and `--metadata-file`.
fn write_files(args: &BuildArgs, result: &build::BuildResult) -> Result<(), CliError> {
    let write = |flag: &str, f: &Path, data: &[u8]| {
        std::fs::write(f, data)
            .map_err(|e| CliError(format!("{flag} {}: writing: {e}", f.display())))
    };
    if let Some(f) = &args.iidfile {
        write("--iidfile", f, result.id.to_string().as_bytes())?;
    }
    if let Some(f) = &args.metadata_file {
        let meta = publish::metadata(&result.id, &result.manifest, &result.names);
        // buildx writes it indented by two spaces.
        let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
        write("--metadata-file", f, text.as_bytes())?;
    }
    Ok(())
}

/// What is printed once the image is written: its ID (`-q`), or the
/// names and the build checks' warnings.
fn report(args: &BuildArgs, opts: &BuildOptions, result: &build::BuildResult, debug: bool) {
    let id = result.id.to_string();
    // Asked for explicitly, so shown even with -q.
    for line in &result.explanations {
        eprintln!("explain: {line}");
    }
    if args.quiet {
        println!("{id}");
    } else if opts.progress.shows_text() {
        if result.image.is_some() {
            eprintln!("writing image {id}");
            for t in &result.names {
                eprintln!("naming to {t}");
            }
        } else {
            // Pushed from the imported cache's blobs (`build::build`).
            eprintln!("image {id} pushed, not stored: its layers were not fetched");
        }
        // buildx prints the checks' warnings last, and not in quiet mode.
        if debug {
            let file = build::dockerfile_name(opts);
            eprint!(
                "{}",
                lint::expanded_list(&file, &opts.dockerfile, &result.warnings)
            );
        } else {
            eprint!("{}", lint::short_list(&result.warnings));
        }
    }
}

/// `--check`: the report on stdout (buildx `printResult`), exit 1 when a
/// check warned, an error when `# check=error=true`.
fn check(store: Arc<Store>, opts: &BuildOptions) -> Result<i32, CliError> {
    let outcome = build::check(store, opts).map_err(CliError::from_error)?;
    print!("{}", outcome.report);
    if let Some(violation) = outcome.violation {
        println!();
        return Err(CliError::from_error(violation));
    }
    Ok(i32::from(!outcome.warnings.is_empty()))
}

/// `id=ID,src=PATH` (or `source=`), `id=ID,env=VAR`; a bare `id=ID`
/// reads the environment variable of that name, as buildx does.
fn parse_secret(spec: &str) -> Result<(String, Vec<u8>), CliError> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(v.to_string()),
            Some(("env", v)) => env = Some(v.to_string()),
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(CliError(format!(
                    "--secret {spec:?}: unexpected field {field:?}"
                )))
            }
        }
    }
    let id = id.ok_or_else(|| CliError(format!("--secret {spec:?}: id= is required")))?;
    let value = match (src, env) {
        (Some(path), _) => std::fs::read(&path)
            .map_err(|e| CliError(format!("--secret {id}: reading {path}: {e}", e = Chain(&e))))?,
        (None, Some(var)) => std::env::var(&var)
            .map_err(|_| {
                CliError(format!(
                    "--secret {id}: environment variable {var} is not set"
                ))
            })?
            .into_bytes(),
        (None, None) => std::env::var(&id)
            .map_err(|_| CliError(format!("--secret {id}: give src=PATH or env=VAR")))?
            .into_bytes(),
    };
    Ok((id, value))
}
