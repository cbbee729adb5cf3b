//! One instruction at a time: config-only instructions edit the stage's
//! config and history here; RUN, COPY/ADD (and WORKDIR's mkdir) add ops.
//!
//! Which words are expanded is BuildKit's list: ENV (keys and values),
//! LABEL, ARG defaults, EXPOSE (split into words), USER, VOLUME, WORKDIR,
//! STOPSIGNAL, COPY/ADD sources, destination and flags, `RUN --mount`
//! values. Commands (RUN, CMD, ENTRYPOINT, HEALTHCHECK) and SHELL are
//! left to the shell. All words of one instruction are expanded with the
//! environment from before it (`ENV a=1 b=$a` gives `b` the old `a`).

use crate::error_chain::Chain;
use std::collections::BTreeMap;

use super::names::{display, go_list, go_quoted_list, StepCounter};
use super::stage::{resolve_workdir, StageState};
use super::{LowerError, Lowerer};
use crate::parser::{
    CommandLine, Healthcheck, HealthcheckConfig, Instruction, InstructionKind, Span,
};
use crate::solver::{Chown, FileAction, FileOp, InputList, Op, VertexInfo};

impl Lowerer<'_> {
    /// Lowers one instruction of stage `stage_index` into `st`: RUN, COPY,
    /// ADD and WORKDIR add ops; the others only edit the stage's image
    /// config, each with the history entry BuildKit writes for it.
    pub(super) fn dispatch(
        &mut self,
        st: &mut StageState,
        counter: &mut StepCounter,
        inst: &Instruction,
        onbuild: bool,
        stage_index: usize,
    ) -> Result<(), LowerError> {
        let span = &inst.span;
        let created = self.opts.created.clone();
        if let Some(platform) = &counter.platform {
            counter.target = super::names::target_suffix(platform, &st.env);
        }
        match &inst.kind {
            InstructionKind::Run(run) => {
                self.dispatch_run(st, counter, run, span, onbuild, stage_index)
            }
            InstructionKind::Copy(c) => {
                let input = super::copy::CopyInput::from_copy(c);
                self.dispatch_copy(st, counter, &input, span, onbuild, stage_index)
            }
            InstructionKind::Add(a) => {
                let input = super::copy::CopyInput::from_add(a);
                self.dispatch_copy(st, counter, &input, span, onbuild, stage_index)
            }
            InstructionKind::Workdir(w) => {
                let path = self.expand(st, &w.path, span)?;
                self.dispatch_workdir(st, counter, &path, span, onbuild)
            }
            InstructionKind::Env(env) => self.dispatch_env(st, env, span),
            InstructionKind::Arg(arg) => self.dispatch_arg(st, arg, span),
            InstructionKind::Label(label) => self.dispatch_label(st, label, span),
            InstructionKind::Expose(expose) => self.dispatch_expose(st, expose, span),
            InstructionKind::User(user) => {
                let user = self.expand(st, &user.user, span)?;
                st.cc().user = Some(user.clone());
                st.commit(format!("USER {user}"), None, &created);
                Ok(())
            }
            InstructionKind::Volume(volume) => self.dispatch_volume(st, volume, span),
            InstructionKind::StopSignal(s) => {
                let signal = self.expand(st, &s.signal, span)?;
                if !valid_signal(&signal) {
                    return Err(self.err(span, format!("invalid signal: {signal}")));
                }
                st.cc().stop_signal = Some(signal.clone());
                st.commit(format!("STOPSIGNAL {signal}"), None, &created);
                Ok(())
            }
            InstructionKind::Shell(shell) => {
                st.cc()
                    .extra
                    .insert("Shell".into(), serde_json::json!(shell.shell));
                st.commit(format!("SHELL {}", go_list(&shell.shell)), None, &created);
                Ok(())
            }
            InstructionKind::Cmd(cmd) => {
                self.dispatch_cmd(st, &cmd.command);
                Ok(())
            }
            InstructionKind::Entrypoint(ep) => {
                self.dispatch_entrypoint(st, &ep.command);
                Ok(())
            }
            InstructionKind::Healthcheck(hc) => {
                let (value, shown) = healthcheck_config(hc);
                st.cc().extra.insert("Healthcheck".into(), value);
                st.commit(format!("HEALTHCHECK {shown}"), None, &created);
                Ok(())
            }
            InstructionKind::Onbuild(ob) => {
                let mut triggers = st.extra_list("OnBuild");
                triggers.push(ob.expression.clone());
                st.cc()
                    .extra
                    .insert("OnBuild".into(), serde_json::json!(triggers));
                Ok(())
            }
            InstructionKind::Maintainer(m) => {
                st.config.author = Some(m.name.clone());
                st.commit(format!("MAINTAINER {}", m.name), None, &created);
                Ok(())
            }
        }
    }

    /// ENV: every key and value is expanded with the environment from
    /// before the instruction (`ENV a=1 b=$a` gives `b` the old `a`), then
    /// all are set at once.
    fn dispatch_env(
        &self,
        st: &mut StageState,
        env: &crate::parser::Env,
        span: &Span,
    ) -> Result<(), LowerError> {
        let pairs = self.expand_pairs(st, &env.vars, span)?;
        let mut msg = String::from("ENV");
        for (k, v) in &pairs {
            msg.push_str(&format!(" {k}={v}"));
            st.set_env(k, v);
        }
        st.commit(msg, None, &self.opts.created);
        Ok(())
    }

    /// ARG: which value each declared name takes: a `--build-arg` first,
    /// then the default (expanded), then a global ARG of the same name
    /// (redeclared without a default), else none (declared but unset).
    fn dispatch_arg(
        &mut self,
        st: &mut StageState,
        arg: &crate::parser::Arg,
        span: &Span,
    ) -> Result<(), LowerError> {
        let mut parts = Vec::new();
        for def in &arg.definitions {
            self.declared.insert(def.name.clone());
            let value = if let Some(v) = self.opts.build_args.get(&def.name) {
                Some(v.clone())
            } else if let Some(default) = &def.default {
                Some(self.expand(st, default, span)?)
            } else {
                // Redeclaring a global ARG without a default takes
                // its global value.
                crate::shell::Env::get(&self.globals, &def.name).map(str::to_string)
            };
            if let Some(v) = &value {
                st.env.set(def.name.clone(), v.clone());
            }
            parts.push(match &value {
                Some(v) => format!("{}={v}", def.name),
                None => def.name.clone(),
            });
            st.args.push((def.name.clone(), value));
        }
        st.commit(format!("ARG {}", parts.join(" ")), None, &self.opts.created);
        Ok(())
    }

    /// LABEL: keys and values expanded like ENV's, added to the config's
    /// labels (a repeated key keeps its last value).
    fn dispatch_label(
        &self,
        st: &mut StageState,
        label: &crate::parser::Label,
        span: &Span,
    ) -> Result<(), LowerError> {
        let pairs = self.expand_pairs(st, &label.labels, span)?;
        let mut msg = String::from("LABEL");
        let labels = st.cc().labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in pairs {
            msg.push_str(&format!(" {k}={v}"));
            labels.insert(k, v);
        }
        st.commit(msg, None, &self.opts.created);
        Ok(())
    }

    /// Expands the keys and values of ENV or LABEL pairs, all with the
    /// environment from before the instruction.
    fn expand_pairs(
        &self,
        st: &StageState,
        pairs: &[crate::parser::KeyValue],
        span: &Span,
    ) -> Result<Vec<(String, String)>, LowerError> {
        pairs
            .iter()
            .map(|kv| {
                Ok((
                    self.expand(st, &kv.key, span)?,
                    self.expand(st, &kv.value, span)?,
                ))
            })
            .collect()
    }

    /// EXPOSE: each argument is split into words (the one place a config
    /// instruction splits), and each word is a port or a port range, with
    /// an optional protocol.
    fn dispatch_expose(
        &self,
        st: &mut StageState,
        expose: &crate::parser::Expose,
        span: &Span,
    ) -> Result<(), LowerError> {
        let mut words = Vec::new();
        for port in &expose.ports {
            let split = self
                .lexer
                .process_words(port, &st.env)
                .map_err(|e| self.err(span, Chain(&e).to_string()))?;
            words.extend(split);
        }
        let mut ports = Vec::new();
        for w in &words {
            ports.extend(parse_port_spec(w).map_err(|m| self.err(span, m))?);
        }
        let exposed = st.cc().exposed_ports.get_or_insert_with(BTreeMap::new);
        for p in &ports {
            exposed.insert(p.clone(), serde_json::json!({}));
        }
        // BuildKit prints the port list as parsed (the words in
        // the order the parser sorted them, repeats kept) with Go's
        // `%v`: `EXPOSE [53/udp 80/tcp]`
        // (moby/buildkit frontend/dockerfile/dockerfile2llb/
        // convert_expose.go, `dispatchExpose`).
        st.commit(
            format!("EXPOSE {}", go_list(&ports)),
            None,
            &self.opts.created,
        );
        Ok(())
    }

    /// VOLUME: every path expanded, and refused when it expands to
    /// nothing (BuildKit's error), before any is recorded.
    fn dispatch_volume(
        &self,
        st: &mut StageState,
        volume: &crate::parser::Volume,
        span: &Span,
    ) -> Result<(), LowerError> {
        let mut paths = Vec::new();
        for p in &volume.paths {
            let p = self.expand(st, p, span)?;
            if p.is_empty() {
                return Err(self.err(span, "VOLUME specified can not be an empty string"));
            }
            paths.push(p);
        }
        let volumes = st.cc().volumes.get_or_insert_with(BTreeMap::new);
        for p in &paths {
            volumes.insert(p.clone(), serde_json::json!({}));
        }
        st.commit(
            format!("VOLUME {}", go_list(&paths)),
            None,
            &self.opts.created,
        );
        Ok(())
    }

    /// CMD: the command (never expanded), and a mark that this stage set
    /// it, which a later ENTRYPOINT then keeps.
    fn dispatch_cmd(&self, st: &mut StageState, command: &CommandLine) {
        let args = self.command_args(st, command);
        let cc = st.cc();
        cc.cmd = Some(args.clone());
        cc.extra
            .insert("ArgsEscaped".into(), serde_json::Value::Bool(true));
        st.cmd_set = true;
        st.commit(
            format!("CMD {}", go_quoted_list(&args)),
            None,
            &self.opts.created,
        );
    }

    /// ENTRYPOINT: the entrypoint (never expanded); it resets a CMD the
    /// stage inherited from its base, not one set in this stage.
    fn dispatch_entrypoint(&self, st: &mut StageState, command: &CommandLine) {
        let args = self.command_args(st, command);
        let cmd_set = st.cmd_set;
        let cc = st.cc();
        cc.entrypoint = Some(args.clone());
        if !cmd_set {
            cc.cmd = None;
        }
        st.commit(
            format!("ENTRYPOINT {}", go_quoted_list(&args)),
            None,
            &self.opts.created,
        );
    }

    /// Expands one word with the stage's environment, noting variables
    /// that are not defined (the UndefinedVar check).
    pub(super) fn expand(
        &self,
        st: &StageState,
        word: &str,
        span: &Span,
    ) -> Result<String, LowerError> {
        let expanded = self
            .lexer
            .process_word(word, &st.env)
            .map_err(|e| self.err(span, Chain(&e).to_string()))?;
        if !expanded.unmatched.is_empty() {
            let declared: Vec<&str> = st.args.iter().map(|(name, _)| name.as_str()).collect();
            let known: Vec<String> = st.env.iter().map(|(k, _)| k.to_string()).collect();
            let found = super::lint::undefined_vars(
                &expanded.unmatched,
                &declared,
                &known,
                (span.line, span.end_line),
            );
            self.checks.borrow_mut().extend(found);
        }
        Ok(expanded.value)
    }

    /// CMD/ENTRYPOINT arguments: exec form as is, shell form run by the
    /// stage's shell (`withShell`).
    fn command_args(&self, st: &StageState, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => {
                let mut args = st.shell();
                args.push(text.clone());
                args
            }
        }
    }

    /// WORKDIR: sets the directory and, unless it is `/`, creates it (owned
    /// by the stage's USER) in a file op, as BuildKit does.
    fn dispatch_workdir(
        &mut self,
        st: &mut StageState,
        counter: &mut StepCounter,
        path: &str,
        span: &Span,
        onbuild: bool,
    ) -> Result<(), LowerError> {
        let current = st
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default();
        let wd = resolve_workdir(&current, path);
        st.cc().working_dir = Some(wd.clone());
        st.workdir = wd.clone();
        if wd == "/" {
            st.commit(format!("WORKDIR {wd}"), None, &self.opts.created);
            return Ok(());
        }
        let user = st
            .config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty());
        let chown = user.map(|u| match u.split_once(':') {
            Some((user, group)) => Chown {
                user: user.to_string(),
                group: Some(group.to_string()),
            },
            None => Chown {
                user: u,
                group: None,
            },
        });
        let mut inputs = InputList::new();
        let base = st.root.map(|r| inputs.add(r));
        let op = Op::File(FileOp {
            base,
            actions: vec![FileAction::Mkdir {
                path: wd.clone(),
                mode: 0o755,
                make_parents: true,
                chown,
            }],
            source_date_epoch: self.opts.source_date_epoch,
        });
        let name = counter.next(&display(&self.lexer, &span.original, &st.env), onbuild);
        let info = VertexInfo::at(name, self.location(span));
        let v = self.graph.add(op, inputs, info)?;
        let parent = st.root;
        st.root = Some(v);
        st.commit(
            format!("WORKDIR {wd}"),
            Some((v, parent)),
            &self.opts.created,
        );
        Ok(())
    }
}

/// One `EXPOSE` word as BuildKit's `parsePortSpec` reads it
/// (moby/buildkit frontend/dockerfile/dockerfile2llb/convert_expose.go):
/// `[ip:][hostPort:]port[-end][/proto]`, proto `tcp` (also when empty),
/// `udp` or `sctp` in any case; one `port/proto` per port of a range. The
/// IP and host port are checked, then ignored.
fn parse_port_spec(raw: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(format!("no port specified: {container}<empty>"));
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        p => return Err(format!("invalid proto: {p}")),
    };
    if !ip.is_empty() {
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(&ip);
        if bare.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address: {ip}"));
        }
    }
    let (start, end) = port_range(port).ok_or_else(|| format!("invalid containerPort: {port}"))?;
    if !host_port.is_empty() {
        let (hs, he) =
            port_range(host_port).ok_or_else(|| format!("invalid hostPort: {host_port}"))?;
        // A host range is allowed only for a single container port.
        if end - start != he - hs && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {port} and {host_port}"
            ));
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// BuildKit's `parsePortRange`: `80` or `8000-8002` (start <= end).
fn port_range(ports: &str) -> Option<(u16, u16)> {
    // Go's `ParseUint` takes digits only (Rust's would take `+80`).
    let port = |s: &str| -> Option<u16> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    match ports.split_once('-') {
        None => port(ports).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// `STOPSIGNAL` values docker accepts: a positive number or a signal name
/// with or without `SIG`.
fn valid_signal(signal: &str) -> bool {
    if let Ok(n) = signal.parse::<i64>() {
        return n > 0;
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if NAMES.contains(&name) {
        return true;
    }
    // RTMIN+n / RTMAX-n
    name.strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
        .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 15))
        || name == "RTMIN"
        || name == "RTMAX"
}

/// The config's `Healthcheck` object and its history spelling: Go's `%+v`
/// of the config struct, `{Test:[CMD-SHELL true] Interval:30s Timeout:0s
/// StartPeriod:0s StartInterval:0s Retries:0}` (moby/buildkit
/// frontend/dockerfile/dockerfile2llb/convert.go, `dispatchHealthcheck`;
/// field order from moby/docker-image-spec specs-go/v1/image.go,
/// `HealthcheckConfig`). `NONE` is the test `[NONE]` with zero durations.
fn healthcheck_config(hc: &Healthcheck) -> (serde_json::Value, String) {
    let none = HealthcheckConfig {
        test: vec!["NONE".to_string()],
        interval_ns: 0,
        timeout_ns: 0,
        start_period_ns: 0,
        start_interval_ns: 0,
        retries: 0,
    };
    let c = match hc {
        Healthcheck::None => &none,
        Healthcheck::Check(c) => c,
    };
    let mut obj = serde_json::Map::new();
    obj.insert("Test".into(), serde_json::json!(c.test));
    for (key, ns) in [
        ("Interval", c.interval_ns),
        ("Timeout", c.timeout_ns),
        ("StartPeriod", c.start_period_ns),
        ("StartInterval", c.start_interval_ns),
    ] {
        if ns != 0 {
            obj.insert(key.into(), serde_json::json!(ns));
        }
    }
    if c.retries != 0 {
        obj.insert("Retries".into(), serde_json::json!(c.retries));
    }
    let shown = format!(
        "{{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        go_list(&c.test),
        go_duration(c.interval_ns),
        go_duration(c.timeout_ns),
        go_duration(c.start_period_ns),
        go_duration(c.start_interval_ns),
        c.retries
    );
    (serde_json::Value::Object(obj), shown)
}

/// Go's `time.Duration.String()` for whole-unit values: `1m30s`, `500ms`.
fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return if ns.is_multiple_of(1_000_000) {
            format!("{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!("{}µs", ns / 1_000)
        } else {
            format!("{ns}ns")
        };
    }
    let total_secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, total_secs % 3600 / 60, total_secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let frac = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_like_buildkit() {
        assert_eq!(parse_port_spec("80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(parse_port_spec("80/").unwrap(), ["80/tcp"]);
        assert_eq!(
            parse_port_spec("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(parse_port_spec("127.0.0.1:8080:80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("[::1]:8080:80/udp").unwrap(), ["80/udp"]);
        assert_eq!(parse_port_spec("9000-9001:80").unwrap(), ["80/tcp"]);
        for (bad, msg) in [
            ("http", "invalid containerPort: http"),
            ("+80", "invalid containerPort: +80"),
            ("80/xyz", "invalid proto: xyz"),
            ("9-8", "invalid containerPort: 9-8"),
            ("/tcp", "no port specified: /tcp<empty>"),
            ("nope:80:80", "invalid IP address: nope"),
            (
                "9000-9002:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 9000-9002",
            ),
        ] {
            assert_eq!(parse_port_spec(bad).unwrap_err(), msg, "{bad}");
        }
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "USR1"] {
            assert!(valid_signal(ok), "{ok}");
        }
        for bad in ["SIGFOO", "0", "-1", ""] {
            assert!(!valid_signal(bad), "{bad}");
        }
    }

    #[test]
    fn durations_print_like_go() {
        for (ns, s) in [
            (0, "0s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
        ] {
            assert_eq!(go_duration(ns), s);
        }
    }
}
