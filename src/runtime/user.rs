//! Resolving `USER` / `--user` and `COPY --chown` against the image's own
//! `/etc/passwd` and `/etc/group`, with Docker's and runc's rules
//! (moby/sys/user `GetExecUser`):
//!
//! | spec          | uid                   | gid                      | extra gids          |
//! |---------------|-----------------------|--------------------------|---------------------|
//! | `""`          | 0                     | root's passwd gid, or 0  | groups listing root |
//! | `name`        | passwd                | passwd                   | groups listing name |
//! | `1000`        | 1000                  | passwd gid, or 0         | if in passwd        |
//! | `name:group`  | passwd                | group file               | none                |
//! | `1000:50`     | 1000                  | 50 (group file or as is) | none                |
//!
//! A numeric uid or gid that is not in the files is used as is; a name that
//! is not there fails ("unable to find user NAME: no matching entries in
//! passwd file"), also when the file is missing. Home is the passwd entry's
//! home, else `/`. The files are read with symlinks resolved inside the
//! rootfs ([`crate::fs::path_in_root`]).
//!
//! `COPY --chown` is resolved by BuildKit's file op, not by runc, and its
//! rules differ (empty parts are id 0, unknown names are not errors): see
//! [`resolve_chown`].

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::path_in_root::resolve_in_root;

/// Largest uid/gid Docker accepts (moby/sys/user `maxID`, 2^31 - 1).
const MAX_ID: i64 = i32::MAX as i64;

/// Errors from resolving a user or group spec.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name that is not in the image's passwd file.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// A group name that is not in the image's group file.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// A numeric id outside 0..=2^31-1.
    #[error("uids and gids must be in range 0-{MAX_ID} (got {0})")]
    Range(String),
    /// The passwd or group file exists but cannot be read.
    #[error("failed to read {path}")]
    Read {
        /// Host path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id for `setuid`.
    pub uid: u32,
    /// Primary group id for `setgid`.
    pub gid: u32,
    /// Supplementary groups for `setgroups`, from `/etc/group` membership.
    pub additional_gids: Vec<u32>,
    /// Home directory, for `HOME` when the image does not set it.
    pub home: String,
}

/// One `/etc/passwd` entry (the fields kiln uses).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// The colon-separated fields of each non-blank line of a passwd-style
/// file, with `parse` turning them into an entry (`None` skips the line).
fn parse_records<T>(text: &str, parse: impl Fn(&[&str]) -> Option<T>) -> Vec<T> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .filter_map(|line| parse(&line.split(':').collect::<Vec<_>>()))
        .collect()
}

/// Parses passwd text (`name:password:uid:gid:gecos:home:shell`). Lines
/// whose uid or gid is not a number are skipped: moby reads them as id 0,
/// which would turn a broken line into root.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    parse_records(text, |f| {
        Some(PasswdEntry {
            name: f[0].to_string(),
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or("").to_string(),
        })
    })
}

/// Parses group text (`name:password:gid:member,member`).
fn parse_group(text: &str) -> Vec<GroupEntry> {
    parse_records(text, |f| {
        Some(GroupEntry {
            name: f[0].to_string(),
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

/// Reads a file of the rootfs; `None` if it does not exist.
fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<String>, UserError> {
    let host = resolve_in_root(rootfs, Path::new(path)).map_err(|source| UserError::Read {
        path: rootfs.join(path.trim_start_matches('/')),
        source,
    })?;
    match std::fs::read(&host) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UserError::Read { path: host, source }),
    }
}

/// A numeric id as Go's `strconv.Atoi` reads it (sign allowed), range
/// checked; `None` if the text is not a number (then it is a name).
fn numeric_id(text: &str) -> Result<Option<u32>, UserError> {
    match text.parse::<i64>() {
        Ok(n) if (0..=MAX_ID).contains(&n) => Ok(Some(n as u32)),
        Ok(_) => Err(UserError::Range(text.to_string())),
        Err(_) => Ok(None),
    }
}

/// Resolves a `USER`/`--user` spec (`user[:group]`, names or ids) against
/// the rootfs's passwd and group files with runc's rules (see the module
/// docs).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let passwd = read_in_root(rootfs, "/etc/passwd")?;
    let group = read_in_root(rootfs, "/etc/group")?;
    resolve_user_in(passwd.as_deref(), group.as_deref(), spec)
}

fn resolve_user_in(
    passwd: Option<&str>,
    group: Option<&str>,
    spec: &str,
) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g.split(':').next().unwrap_or("")),
        None => (spec, ""),
    };
    let mut user = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_string(),
    };
    let uid_arg = numeric_id(user_arg)?;
    let users = passwd.map(parse_passwd).unwrap_or_default();
    // First match wins, as in moby.
    let matched = users.iter().find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(uid)) => u.uid == i64::from(uid),
        (name, None) => u.name == name,
    });
    let matched_name = match matched {
        Some(entry) => {
            user.uid = to_id(entry.uid)?;
            user.gid = to_id(entry.gid)?;
            if !entry.home.is_empty() {
                user.home = entry.home.clone();
            }
            Some(entry.name.as_str())
        }
        None if user_arg.is_empty() => None,
        None => match uid_arg {
            Some(uid) => {
                user.uid = uid;
                None
            }
            None => return Err(UserError::NoSuchUser(user_arg.to_string())),
        },
    };
    if group_arg.is_empty() && matched_name.is_none() {
        return Ok(user);
    }
    let groups = group.map(parse_group).unwrap_or_default();
    if group_arg.is_empty() {
        // Implicit form: supplementary groups are the ones listing the user.
        let name = matched_name.unwrap_or_default();
        user.additional_gids = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .filter_map(|g| u32::try_from(g.gid).ok())
            .collect();
    } else {
        user.gid = lookup_group(&groups, group_arg)?;
    }
    Ok(user)
}

fn lookup_group(groups: &[GroupEntry], spec: &str) -> Result<u32, UserError> {
    let gid_arg = numeric_id(spec)?;
    let found = groups.iter().find(|g| match gid_arg {
        Some(gid) => g.gid == i64::from(gid),
        None => g.name == spec,
    });
    match (found, gid_arg) {
        (Some(g), _) => to_id(g.gid),
        (None, Some(gid)) => Ok(gid),
        (None, None) => Err(UserError::NoSuchGroup(spec.to_string())),
    }
}

/// Resolves a group name or id against the rootfs's `/etc/group` (numeric
/// ids need no entry): the group half of `COPY --chown=user:group`.
pub fn resolve_group(rootfs: &Path, spec: &str) -> Result<u32, UserError> {
    let group = read_in_root(rootfs, "/etc/group")?;
    let groups = group.as_deref().map(parse_group).unwrap_or_default();
    lookup_group(&groups, spec)
}

/// Resolves `COPY --chown=user[:group]` (and the owner of directories a
/// file op makes) to (uid, gid) exactly as BuildKit does, which is not
/// `USER`'s rule:
///
/// - moby/buildkit `client/llb/fileop.go` `WithUser` splits at the first
///   `:`; `parseUID` takes `root` and numbers as ids, anything else as a
///   name, and `UserOpt.marshal` sends an empty name as id 0. So `:grp`
///   is uid 0 and `user:` is gid 0 (moby/buildkit#3555; #7002 to change it
///   was not merged).
/// - moby/buildkit `solver/llbsolver/ops/user_linux.go` `readUser`: a user
///   id is also the gid; a user name takes uid and gid from the
///   destination's passwd file; a group, when given, replaces the gid. A
///   name that is not there (or no file at all) is not an error: an
///   unknown user leaves uid 0 and gid 0, an unknown group leaves the gid
///   as the user part set it. kiln follows that to the byte, and logs a
///   warning naming the missing entry.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match chown_id(user_part)? {
        Some(uid) => (uid, uid),
        None => {
            let passwd = read_in_root(rootfs, "/etc/passwd")?;
            let users = passwd.as_deref().map(parse_passwd).unwrap_or_default();
            match users.iter().find(|u| u.name == user_part) {
                Some(entry) => (to_id(entry.uid)?, to_id(entry.gid)?),
                None => {
                    tracing::warn!(
                        user = user_part,
                        "--chown: user not in /etc/passwd, using 0:0 as BuildKit does"
                    );
                    (0, 0)
                }
            }
        }
    };
    if let Some(group_part) = group_part {
        match chown_id(group_part)? {
            Some(id) => gid = id,
            None => {
                let group = read_in_root(rootfs, "/etc/group")?;
                let groups = group.as_deref().map(parse_group).unwrap_or_default();
                match groups.iter().find(|g| g.name == group_part) {
                    Some(entry) => gid = to_id(entry.gid)?,
                    None => tracing::warn!(
                        group = group_part,
                        gid,
                        "--chown: group not in /etc/group, keeping the user's gid as BuildKit does"
                    ),
                }
            }
        }
    }
    Ok((uid, gid))
}

/// A `--chown` part that BuildKit's `parseUID` takes as an id: `root`, a
/// number, or the empty string (marshalled as id 0).
fn chown_id(part: &str) -> Result<Option<u32>, UserError> {
    match part {
        "" | "root" => Ok(Some(0)),
        _ => numeric_id(part),
    }
}

fn to_id(n: i64) -> Result<u32, UserError> {
    if (0..=MAX_ID).contains(&n) {
        Ok(n as u32)
    } else {
        Err(UserError::Range(n.to_string()))
    }
}

#[cfg(test)]
mod tests;
