//! `RUN`: an exec op over the stage's root filesystem.
//!
//! BuildKit's rules: the shell form runs with the stage's SHELL (default
//! `/bin/sh -c`), the exec form as is; a command that is a single heredoc
//! runs its body with the shell, or, when the body starts with `#!`, is
//! written to a file mounted at `/dev/pipes/` and executed (the shell is
//! handed the file's path); other heredocs are appended to the command
//! line for the shell to read. The process sees the stage's environment
//! (ENV and declared ARGs), user, working directory, `--mount`s and
//! `--network`; proxy build args reach it without entering the cache key.

use super::mount::{parse_mount, MountType};
use super::names::{display, summarize_heredoc, StepCounter};
use super::stage::{normalize_workdir, StageState};
use super::{args, LowerError, Lowerer};
use crate::error_chain::Chain;
use crate::parser::{CommandLine, NetworkMode, Run, SecurityMode, Span};
use crate::shell::{Env, EnvMap, Lexer};
use crate::solver::{
    Exec, ExecMount, FileAction, FileOp, InputList, MountKind, Network, Op, Security, VertexInfo,
};

impl Lowerer<'_> {
    /// Lowers a RUN: an exec op over the stage's root with its mounts; the
    /// stage's root becomes the op's result.
    pub(super) fn dispatch_run(
        &mut self,
        st: &mut StageState,
        counter: &mut StepCounter,
        run: &Run,
        span: &Span,
        onbuild: bool,
        stage_index: usize,
    ) -> Result<(), LowerError> {
        self.refuse_unsupported_run_flags(run, span)?;
        let mut inputs = InputList::new();
        let root = st.root.map(|r| inputs.add(r));
        let mut mounts = vec![ExecMount {
            input: root,
            dest: "/".into(),
            selector: "/".into(),
            readonly: false,
            kind: MountKind::Layer,
        }];
        let mut custom_name = span.original.clone();
        let args = match &run.command {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => {
                let line =
                    self.shell_line(text, run, &mut mounts, &mut inputs, &mut custom_name)?;
                let mut args = st.shell();
                args.push(line);
                args
            }
        };
        for raw in &run.mounts {
            let mount = self.run_mount(st, raw, &mut inputs, span, stage_index)?;
            mounts.push(mount);
        }
        mounts.extend(self.opts.step_flags.shm_mount());
        let network = match run.network {
            NetworkMode::Default => self.opts.network,
            NetworkMode::None => Network::None,
            NetworkMode::Host => Network::Host,
        };
        let user = st
            .config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty());
        let history = format!(
            "RUN {} # buildkit",
            run_command_string(&args, &st.args, &st.env)
        );
        let mut env = st.env_list();
        ssh_targets(&mut mounts, &mut env);
        let exec = Exec {
            args,
            env,
            cwd: st.workdir.clone(),
            user,
            hostname: None,
            network,
            security: match run.security {
                SecurityMode::Insecure => Security::Insecure,
                SecurityMode::Sandbox => Security::Sandbox,
            },
            mounts,
            extra_hosts: self.opts.step_flags.extra_hosts.clone(),
            ulimits: self.opts.step_flags.ulimits.clone(),
            source_date_epoch: self.opts.source_date_epoch,
            proxy_env: args::proxy_env(self.opts),
            platform: (st.platform != self.opts.build_platform).then(|| st.platform.clone()),
        };
        let name = counter.next(&self.run_step_name(st, &exec, &custom_name), onbuild);
        let mut info = VertexInfo::at(name, self.location(span));
        info.ignore_cache = self.stage_ignores_cache(stage_index);
        let v = self.graph.add(Op::Exec(exec), inputs, info)?;
        let parent = st.root;
        st.root = Some(v);
        st.commit(history, Some((v, parent)), &self.opts.created);
        Ok(())
    }

    /// RUN flags kiln parses but does not run: `--device`.
    /// (`--security=insecure` is lowered; whether it may run is the
    /// `security.insecure` entitlement's business, checked before the
    /// build runs anything.)
    fn refuse_unsupported_run_flags(&self, run: &Run, span: &Span) -> Result<(), LowerError> {
        if !run.devices.is_empty() {
            return Err(self.err(span, "RUN --device is not supported"));
        }
        Ok(())
    }

    /// What one `--mount` of a RUN becomes: its values expanded with the
    /// stage's environment, its target made absolute against WORKDIR, and
    /// the filesystem it shows (the context, a stage or image by `from`,
    /// or nothing) added to `inputs`.
    fn run_mount(
        &mut self,
        st: &StageState,
        raw: &str,
        inputs: &mut InputList,
        span: &Span,
        stage_index: usize,
    ) -> Result<ExecMount, LowerError> {
        let env = st.env.clone();
        let lexer = self.lexer;
        let expand = move |v: &str| -> Result<String, String> {
            lexer
                .process_word(v, &env)
                .map(|e| e.value)
                .map_err(|e| Chain(&e).to_string())
        };
        let spec = parse_mount(raw, &expand).map_err(|m| self.err(span, m))?;
        // A secret given only as a variable has no file (and no dest).
        let dest = match spec.target.as_str() {
            "" => String::new(),
            target => normalize_workdir(&st.workdir, target),
        };
        let selector = spec.source.clone().unwrap_or_else(|| "/".into());
        let mount = match spec.kind {
            MountType::Bind => {
                let input = match &spec.from {
                    None => Some(self.context_vertex()?),
                    Some(from) => self.source_state(from, stage_index, span)?,
                };
                ExecMount {
                    input: input.map(|v| inputs.add(v)),
                    dest,
                    selector,
                    readonly: spec.readonly,
                    kind: MountKind::Bind,
                }
            }
            MountType::Cache => {
                let input = match &spec.from {
                    None => None,
                    Some(from) => self.source_state(from, stage_index, span)?,
                };
                ExecMount {
                    input: input.map(|v| inputs.add(v)),
                    dest,
                    selector,
                    readonly: spec.readonly,
                    kind: MountKind::Cache {
                        id: spec.id.clone().unwrap_or_default(),
                        sharing: spec.sharing,
                        uid: spec.uid,
                        gid: spec.gid,
                        mode: spec.mode,
                    },
                }
            }
            MountType::Tmpfs => ExecMount {
                input: None,
                dest,
                selector: "/".into(),
                readonly: spec.readonly,
                kind: MountKind::Tmpfs { size: spec.size },
            },
            MountType::Secret => ExecMount {
                input: None,
                dest,
                selector: "/".into(),
                readonly: true,
                kind: MountKind::Secret {
                    id: spec.id.clone().unwrap_or_default(),
                    env: spec.env.clone(),
                    required: spec.required,
                    uid: spec.uid,
                    gid: spec.gid,
                    mode: spec.mode,
                },
            },
            MountType::Ssh => ExecMount {
                input: None,
                // Empty when no target was given: `ssh_targets` fills it in.
                dest,
                selector: "/".into(),
                readonly: true,
                kind: MountKind::Ssh {
                    id: spec.id.clone().unwrap_or_default(),
                    required: spec.required,
                    uid: spec.uid,
                    gid: spec.gid,
                    mode: spec.mode,
                },
            },
        };
        Ok(mount)
    }

    /// The step's name in progress output: the instruction as written,
    /// variables expanded but quotes kept. Secret variables show as `****`,
    /// as in BuildKit (`withSecretEnvMask`): the value is never known here,
    /// the mask only says where it comes from.
    fn run_step_name(&self, st: &StageState, exec: &Exec, custom_name: &str) -> String {
        let shown = Lexer {
            raw_quotes: true,
            skip_unset_env: true,
            ..self.lexer
        };
        let mut shown_env = st.env.clone();
        for mount in &exec.mounts {
            if let MountKind::Secret { env: Some(var), .. } = &mount.kind {
                shown_env.set(var.clone(), "****");
            }
        }
        display(&shown, custom_name, &shown_env)
    }

    /// The command line a shell-form RUN hands its shell, heredocs applied.
    fn shell_line(
        &mut self,
        text: &str,
        run: &Run,
        mounts: &mut Vec<ExecMount>,
        inputs: &mut InputList,
        custom_name: &mut String,
    ) -> Result<String, LowerError> {
        if run.heredocs.is_empty() {
            return Ok(text.to_string());
        }
        let single =
            crate::parser::heredoc_marker(text.trim()).is_some() && run.heredocs.len() == 1;
        if !single {
            // The shell reads the heredocs itself (with its own quoting rules).
            let mut full = text.to_string();
            for doc in &run.heredocs {
                full.push('\n');
                full.push_str(&String::from_utf8_lossy(&doc.content));
                full.push_str(&doc.name);
            }
            return Ok(full);
        }
        let doc = &run.heredocs[0];
        let data = String::from_utf8_lossy(&doc.chomped_content()).into_owned();
        custom_name.push_str(&format!(" ({})", summarize_heredoc(&data)));
        if !data.starts_with("#!") {
            return Ok(data);
        }
        // A script with a shebang: a file the shell runs by path.
        let op = Op::File(FileOp {
            base: None,
            actions: vec![FileAction::Mkfile {
                path: format!("/{}", doc.name),
                mode: 0o755,
                data: data.into_bytes(),
                chown: None,
            }],
            source_date_epoch: self.opts.source_date_epoch,
        });
        let file = self.graph.add(
            op,
            vec![],
            VertexInfo::named("[internal] preparing inline document"),
        )?;
        mounts.push(ExecMount {
            input: Some(inputs.add(file)),
            dest: "/dev/pipes/".into(),
            selector: "/".into(),
            readonly: true,
            kind: MountKind::Bind,
        });
        Ok(format!("/dev/pipes/{}", doc.name))
    }
}

/// What the history says a RUN ran: `|N K=V ... args` with the declared
/// ARGs' values (later declarations of a name replace earlier ones in
/// place), as BuildKit's `runCommandString`.
pub(super) fn run_command_string(
    args: &[String],
    declared: &[(String, Option<String>)],
    env: &EnvMap,
) -> String {
    let mut build_env: Vec<(String, String)> = Vec::new();
    for (key, value) in declared {
        let v = env
            .get(key)
            .map(str::to_string)
            .unwrap_or_else(|| value.clone().unwrap_or_default());
        match build_env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => build_env.push((key.clone(), v)),
        }
    }
    let mut parts = Vec::new();
    if !build_env.is_empty() {
        parts.push(format!("|{}", build_env.len()));
        parts.extend(build_env.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(args.iter().cloned());
    parts.join(" ")
}

/// BuildKit's defaults for a RUN's SSH mounts (moby/buildkit
/// `client/llb/exec.go`, `ExecOp.Marshal`): the N-th one (from 0) without
/// a target gets `/run/buildkit/ssh_agent.N`, and unless the step's
/// environment already has `SSH_AUTH_SOCK` it is set to the first one's
/// target, even when that agent turns out not to be forwarded.
fn ssh_targets(mounts: &mut [ExecMount], env: &mut Vec<String>) {
    let mut first = None;
    let ssh = mounts
        .iter_mut()
        .filter(|m| matches!(m.kind, MountKind::Ssh { .. }));
    for (n, m) in ssh.enumerate() {
        if m.dest.is_empty() {
            m.dest = format!("/run/buildkit/ssh_agent.{n}");
        }
        first.get_or_insert_with(|| m.dest.clone());
    }
    let has_sock = env
        .iter()
        .any(|e| e.split('=').next() == Some("SSH_AUTH_SOCK"));
    if let (Some(target), false) = (first, has_sock) {
        env.push(format!("SSH_AUTH_SOCK={target}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lists_declared_args_first() {
        let mut env = EnvMap::new();
        env.set("A", "1");
        env.set("B", "two");
        let declared = vec![
            ("A".to_string(), Some("0".to_string())),
            ("B".to_string(), None),
            ("A".to_string(), Some("1".to_string())),
            ("C".to_string(), None),
        ];
        let args = vec!["/bin/sh".to_string(), "-c".into(), "echo hi".into()];
        assert_eq!(
            run_command_string(&args, &declared, &env),
            "|3 A=1 B=two C= /bin/sh -c echo hi"
        );
        assert_eq!(run_command_string(&args, &[], &env), "/bin/sh -c echo hi");
    }
}
