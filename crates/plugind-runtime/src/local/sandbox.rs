//! Uid separation: when the daemon runs as root, each plugin process runs under its own
//! unprivileged uid/gid, so it cannot read the daemon's `/proc/<pid>/environ`, its database or
//! another plugin's files. `docs/SECURITY.md` explains the whole layout; this module holds the
//! parts done per plugin launch:
//!
//! * [`PluginUsers`] picks a stable, dedicated uid for each plugin id (gid = the same number);
//! * [`prepare`] lays out the working directory so that the plugin can write in it but cannot
//!   replace anything the daemon put there, creates its private `HOME`/`TMPDIR`, and checks that
//!   its interpreter is reachable by its uid before the launch is attempted;
//! * [`private_env`] points `HOME`, `TMPDIR` and Python's bytecode cache at the private dirs.
//!
//! Working directory layout (`<wd>` = `PLUGIN_WORKING_PATH/<author>/<name>-<version>@<checksum>`):
//!
//! ```text
//! <wd>                      root:<plugin gid> 1770  the plugin creates files; the sticky bit stops
//!                                                 it from renaming or deleting the daemon's ones
//! <wd>/<package files>      root, 0644/0755        readable, not writable
//! <wd>/.venv/...            root, as uv made them  never chowned: uv hard-links them from the
//!                                                 shared cache, so their inodes are shared
//! <wd>/.plugind-home        <plugin uid>, 0700     HOME, TMPDIR (tmp/), bytecode cache (pycache/)
//! ```
//!
//! The daemon keeps running uv as itself in `<wd>`, so files the plugin may have written there are
//! never fed to uv: [`check_build_inputs`] refuses a rebuild while a file uv reads from the
//! project directory is not the daemon's own.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Default first uid of the range (inside the 65536 uids a container's user namespace maps).
pub const DEFAULT_FIRST_UID: u32 = 40_000;
/// Default number of uids in the range.
pub const DEFAULT_UID_COUNT: u32 = 20_000;

/// Mode of a plugin's working directory: owner (the daemon) and the plugin's group may create
/// entries; the sticky bit keeps the plugin from renaming or removing entries it does not own.
pub(crate) const WORKING_DIR_MODE: u32 = 0o1770;
/// Name of the plugin's private directory inside its working directory.
pub(crate) const PRIVATE_DIR: &str = ".plugind-home";
/// Inside [`PRIVATE_DIR`]: `TMPDIR` and Python's bytecode cache.
const PRIVATE_SUBDIRS: [&str; 2] = ["tmp", "pycache"];
/// Files uv reads from the project directory when it builds or syncs a venv.
const UV_INPUTS: &[&str] = &[
    "pyproject.toml",
    "requirements.txt",
    "uv.lock",
    "uv.toml",
    ".python-version",
    ".python-versions",
];
/// Symlinks followed at most while checking a path, like the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// The uids plugins run under: a range `first .. first + count`, one uid per plugin id.
///
/// A plugin id's preferred uid is `first + hash(plugin id) % count`, so it stays the same across
/// restarts and versions; when two plugin ids meet, the later one takes the next free uid. The
/// uid a working directory was given is recorded as its group and reused when the directory is
/// launched again, so a plugin keeps the uid that owns its files. A uid recorded on any working
/// directory (a removed plugin's leftover one too) is never handed to a plugin without a record,
/// so no plugin inherits access to another one's files.
#[derive(Debug)]
pub struct PluginUsers {
    first: u32,
    count: u32,
    state: Mutex<Assignments>,
}

#[derive(Debug, Default)]
struct Assignments {
    /// Plugin id → uid, for this daemon's life.
    by_plugin: HashMap<String, u32>,
    /// Uids recorded on the working directories found at the first launch.
    recorded: Option<HashSet<u32>>,
}

/// The uid and gid one plugin process runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PluginUser {
    pub uid: u32,
    pub gid: u32,
}

impl PluginUsers {
    /// The range `first .. first + count`. Uid 0 and ranges past `u32::MAX` are refused.
    pub fn new(first: u32, count: u32) -> Result<PluginUsers, String> {
        if first == 0 {
            return Err("the first plugin uid must not be 0 (root)".into());
        }
        if count == 0 {
            return Err("the plugin uid range must hold at least one uid".into());
        }
        if first.checked_add(count - 1).is_none() {
            return Err(format!("plugin uids {first} + {count} overflow 32 bits"));
        }
        Ok(PluginUsers {
            first,
            count,
            state: Mutex::new(Assignments::default()),
        })
    }

    pub fn first(&self) -> u32 {
        self.first
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    fn contains(&self, uid: u32) -> bool {
        uid >= self.first && uid - self.first < self.count
    }

    /// The uid of `plugin_id`: the one it already has in this daemon, else `recorded` (the
    /// group of its working directory) when in range and not another plugin's, else its
    /// preferred uid or the next one after it that no plugin has and no working directory under
    /// `working_path` records.
    pub(crate) fn assign(
        &self,
        plugin_id: &str,
        recorded: Option<u32>,
        working_path: &Path,
    ) -> Result<u32, String> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(uid) = state.by_plugin.get(plugin_id) {
            return Ok(*uid);
        }
        let taken: HashSet<u32> = state.by_plugin.values().copied().collect();
        let on_disk = state
            .recorded
            .get_or_insert_with(|| recorded_uids(working_path));
        let own = recorded.filter(|uid| self.contains(*uid) && !taken.contains(uid));
        let preferred = stable_hash(plugin_id) % u64::from(self.count);
        let free = (0..u64::from(self.count))
            .map(|i| {
                let offset = (preferred + i) % u64::from(self.count);
                // `offset < count <= u32::MAX`, and `first + offset` was checked in `new`.
                self.first + u32::try_from(offset).unwrap_or(0)
            })
            .find(|uid| !taken.contains(uid) && !on_disk.contains(uid));
        let uid = own.or(free).ok_or_else(|| {
            format!(
                "all {} plugin uids from {} are in use by plugins or recorded on their working \
                 directories; raise PLUGIN_UID_COUNT",
                self.count, self.first
            )
        })?;
        on_disk.insert(uid);
        state.by_plugin.insert(plugin_id.to_owned(), uid);
        Ok(uid)
    }
}

/// Groups of the working directories `<working_path>/<author>/<dir>` (each one records the uid
/// its plugin ran under; directories never laid out carry the daemon's group).
fn recorded_uids(working_path: &Path) -> HashSet<u32> {
    let children = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.path())
    };
    children(working_path)
        .flat_map(|author| children(&author).collect::<Vec<_>>())
        .filter_map(|wd| std::fs::symlink_metadata(wd).ok().map(|m| m.gid()))
        .collect()
}

/// FNV-1a: small and stable across Rust releases (std's hasher is not), which keeps a plugin's
/// preferred uid the same after the daemon is rebuilt.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What [`prepare`] set up for one launch.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub user: PluginUser,
    /// `<wd>/.plugind-home`, owned by the plugin.
    pub private_dir: PathBuf,
}

/// Gives `wd` its layout for the plugin's uid and checks that the plugin can reach `wd` and run
/// `python`. `working_path` is `PLUGIN_WORKING_PATH`: directories between it and `wd` become
/// traverse-only. Errors are complete sentences for the launch report.
pub(crate) fn prepare(
    users: &PluginUsers,
    plugin_id: &str,
    working_path: &Path,
    wd: &Path,
    python: &Path,
) -> Result<Prepared, String> {
    let meta = std::fs::symlink_metadata(wd)
        .map_err(|e| format!("cannot read the working directory {}: {e}", wd.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", wd.display()));
    }
    let uid = users.assign(plugin_id, Some(meta.gid()), working_path)?;
    let user = PluginUser { uid, gid: uid };
    lay_out(working_path, wd, user)?;
    let private_dir = wd.join(PRIVATE_DIR);
    check_reachable(wd, user, true).map_err(|e| unreachable_message(wd, user, &e, Reach::Dir))?;
    check_reachable(python, user, false)
        .map_err(|e| unreachable_message(python, user, &e, Reach::Interpreter))?;
    Ok(Prepared { user, private_dir })
}

/// The file-system part of [`prepare`]: modes and owners, and the private directory.
pub(crate) fn lay_out(working_path: &Path, wd: &Path, user: PluginUser) -> Result<(), String> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        format!("cannot {what} {}: {e}", path.display())
    };
    // Directories between PLUGIN_WORKING_PATH and the working directory (the author's): the
    // plugin passes through, and cannot list which other plugins exist.
    let mut between = wd.parent();
    while let Some(dir) = between {
        if dir == working_path || !dir.starts_with(working_path) {
            break;
        }
        set_mode(dir, 0o711).map_err(|e| io("restrict", dir, e))?;
        between = dir.parent();
    }
    // `wd` sits in a directory only the daemon can write, so the plugin cannot swap it.
    std::os::unix::fs::chown(wd, None, Some(user.gid)).map_err(|e| io("chgrp", wd, e))?;
    set_mode(wd, WORKING_DIR_MODE).map_err(|e| io("chmod", wd, e))?;
    let private_dir = wd.join(PRIVATE_DIR);
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    match builder.create(&private_dir) {
        Ok(()) => {
            // Fresh and still ours: nobody else can enter it until it is handed over, so the
            // chowns below cannot be redirected by a planted symlink.
            let subdirs = PRIVATE_SUBDIRS.map(|name| private_dir.join(name));
            for dir in &subdirs {
                builder.create(dir).map_err(|e| io("create", dir, e))?;
            }
            for dir in subdirs.iter().chain([&private_dir]) {
                std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid))
                    .map_err(|e| io("chown", dir, e))?;
            }
        }
        // Made at an earlier launch and the plugin's since; whatever it did with it is its own.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create", &private_dir, e)),
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// `HOME`, `TMPDIR` and `PYTHONPYCACHEPREFIX` inside the plugin's private directory (the
/// daemon's `HOME` is not the plugin's to write, and `__pycache__` beside the root-owned
/// sources could not be written, so every start would compile the SDK again).
pub(crate) fn private_env(env: &mut Vec<(OsString, OsString)>, prepared: &Prepared) {
    let [tmp, pycache] = PRIVATE_SUBDIRS.map(|name| prepared.private_dir.join(name));
    env.retain(|(k, _)| k != "HOME" && k != "TMPDIR" && k != "PYTHONPYCACHEPREFIX");
    env.push(("HOME".into(), prepared.private_dir.clone().into()));
    env.push(("TMPDIR".into(), tmp.into()));
    env.push(("PYTHONPYCACHEPREFIX".into(), pycache.into()));
}

/// ` as uid N`, plus what to do when switching to that uid was refused (`EINVAL`: the uid is not
/// mapped in this user namespace; `EPERM`: the daemon lacks `CAP_SETUID`).
pub(crate) fn spawn_failure(user: PluginUser, error: &std::io::Error) -> String {
    let refused = matches!(
        error.raw_os_error(),
        Some(code) if code == nix::errno::Errno::EINVAL as i32 || code == nix::errno::Errno::EPERM as i32
    );
    if refused {
        format!(
            " as uid {} (switching to it was refused: pick a PLUGIN_UID_BASE/PLUGIN_UID_COUNT range \
             this container's user namespace maps, or set PLUGIN_UID_SEPARATION=false)",
            user.uid
        )
    } else {
        format!(" as uid {}", user.uid)
    }
}

/// Refuses to run uv as the daemon over files the plugin may have written: in a working directory
/// the plugin can write to, every file uv reads from the project directory must belong to the
/// daemon (package files do; a plugin-made `uv.toml` or `requirements.txt` does not).
pub(crate) fn check_build_inputs(wd: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(wd) else {
        return Ok(());
    };
    if meta.mode() & 0o020 == 0 {
        // Not group-writable: not a separated plugin's directory.
        return Ok(());
    }
    let owner = meta.uid();
    for name in UV_INPUTS {
        let path = wd.join(name);
        if let Ok(file) = std::fs::symlink_metadata(&path) {
            if file.uid() != owner || file.file_type().is_symlink() {
                return Err(format!(
                    "{} was not written by the daemon (owner uid {}): the plugin may have made \
                     it, and uv runs as the daemon, so the environment is not rebuilt from it; \
                     remove it or reinstall the plugin",
                    path.display(),
                    file.uid()
                ));
            }
        }
    }
    Ok(())
}

/// The first directory on the way to a path that a user cannot enter, or the path itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Blocked {
    pub path: PathBuf,
    pub mode: u32,
    pub owner: u32,
    pub why: &'static str,
}

/// Walks `path` from `/` as `user` would (following symlinks, no supplementary groups): every
/// directory must be searchable, and the end must be an executable file (`want_dir`: a
/// searchable directory). Uses mode bits only; no ACLs.
pub(crate) fn check_reachable(
    path: &Path,
    user: PluginUser,
    want_dir: bool,
) -> Result<(), Blocked> {
    let blocked = |path: &Path, meta: Option<&std::fs::Metadata>, why| Blocked {
        path: path.to_path_buf(),
        mode: meta.map_or(0, |m| m.mode() & 0o7777),
        owner: meta.map_or(0, MetadataExt::uid),
        why,
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|_| blocked(path, None, "cannot be resolved"))?
            .join(path)
    };
    // Parts still to walk, last one first.
    let mut pending: Vec<Part> = Vec::new();
    queue(&absolute, &mut pending);
    let mut current = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part {
            Part::Root => current = PathBuf::from("/"),
            Part::Parent => {
                current.pop();
            }
            Part::Name(name) => {
                let dir = std::fs::metadata(&current)
                    .map_err(|_| blocked(&current, None, "does not exist"))?;
                if !allows(&dir, user, 0o1) {
                    return Err(blocked(&current, Some(&dir), "is not searchable"));
                }
                let next = current.join(name);
                let meta = std::fs::symlink_metadata(&next)
                    .map_err(|_| blocked(&next, None, "does not exist"))?;
                if meta.file_type().is_symlink() {
                    hops += 1;
                    let target = std::fs::read_link(&next)
                        .ok()
                        .filter(|_| hops <= MAX_SYMLINKS)
                        .ok_or_else(|| {
                            blocked(&next, None, "is a symlink that cannot be followed")
                        })?;
                    queue(&target, &mut pending);
                } else {
                    current = next;
                }
            }
        }
    }
    let meta =
        std::fs::metadata(&current).map_err(|_| blocked(&current, None, "does not exist"))?;
    if want_dir {
        if !meta.is_dir() || !allows(&meta, user, 0o1) {
            return Err(blocked(
                &current,
                Some(&meta),
                "is not a searchable directory",
            ));
        }
    } else if !meta.is_file() || !allows(&meta, user, 0o1) {
        return Err(blocked(&current, Some(&meta), "is not executable"));
    }
    Ok(())
}

/// One step of a path walk.
enum Part {
    Root,
    Parent,
    Name(OsString),
}

/// Queues `path`'s parts onto `pending` so that they pop in order; an absolute path restarts
/// the walk at the root (as a symlink target does).
fn queue(path: &Path, pending: &mut Vec<Part>) {
    let parts = path.components().filter_map(|c| match c {
        Component::RootDir => Some(Part::Root),
        Component::ParentDir => Some(Part::Parent),
        Component::Normal(name) => Some(Part::Name(name.to_os_string())),
        Component::CurDir | Component::Prefix(_) => None,
    });
    let parts: Vec<Part> = parts.collect();
    pending.extend(parts.into_iter().rev());
}

/// Whether `meta`'s mode grants `bits` (1 = x, 2 = w, 4 = r) to `user` without supplementary
/// groups: owner bits if it owns the file, else group bits if its gid matches, else others'.
fn allows(meta: &std::fs::Metadata, user: PluginUser, bits: u32) -> bool {
    let mode = meta.mode();
    let granted = if meta.uid() == user.uid {
        mode >> 6
    } else if meta.gid() == user.gid {
        mode >> 3
    } else {
        mode
    };
    granted & bits == bits
}

enum Reach {
    Dir,
    Interpreter,
}

fn unreachable_message(target: &Path, user: PluginUser, blocked: &Blocked, reach: Reach) -> String {
    let what = match reach {
        Reach::Dir => "the plugin's working directory",
        Reach::Interpreter => "the plugin's Python interpreter",
    };
    let fix = match reach {
        Reach::Dir => format!(
            "make every directory above it searchable (`chmod o+x {}`: enter only, not list), or \
             move PLUGIN_WORKING_PATH / PLUGIND_DATA_DIR out of a private directory",
            blocked.path.display()
        ),
        Reach::Interpreter => format!(
            "install Python outside a private home directory (e.g. /usr/local or /opt, and set \
             PYTHON_INTERPRETER_PATH), or make the directory searchable (`chmod o+x {}`: enter \
             only, not list)",
            blocked.path.display()
        ),
    };
    format!(
        "{what} {} cannot be reached by the plugin's uid {}: {} (mode {:04o}, owner uid {}) {}. \
         Fix: {fix}; or set PLUGIN_UID_SEPARATION=false to run plugins as the daemon's user \
         (they can then read its secrets, see docs/SECURITY.md)",
        target.display(),
        user.uid,
        blocked.path.display(),
        blocked.mode,
        blocked.owner,
        blocked.why,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uid that owns nothing on the test machine.
    const STRANGER: PluginUser = PluginUser {
        uid: 54_321,
        gid: 54_321,
    };

    fn set_mode(path: &Path, mode: u32) {
        super::set_mode(path, mode).expect("chmod");
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    /// The user the layout test hands directories to: a stranger when the test runs as root,
    /// else the test's own user (the only one it may chown to).
    fn layout_user() -> PluginUser {
        if nix::unistd::geteuid().is_root() {
            STRANGER
        } else {
            PluginUser {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            }
        }
    }

    #[test]
    fn uid_ranges_are_checked() {
        assert!(PluginUsers::new(0, 10).is_err());
        assert!(PluginUsers::new(1, 0).is_err());
        assert!(PluginUsers::new(u32::MAX, 2).is_err());
        assert!(PluginUsers::new(u32::MAX, 1).is_ok());
        let users = PluginUsers::new(DEFAULT_FIRST_UID, DEFAULT_UID_COUNT).expect("range");
        assert_eq!((users.first(), users.count()), (40_000, 20_000));
    }

    #[test]
    fn a_plugin_keeps_its_preferred_uid() {
        let empty = tempfile::tempdir().expect("tempdir");
        let wp = empty.path();
        // FNV-1a's published test vector: the preference must not change between builds.
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let users = PluginUsers::new(40_000, 20_000).expect("range");
        let uid = users.assign("langgenius/openai", None, wp).expect("uid");
        assert_eq!(
            u64::from(uid),
            40_000 + stable_hash("langgenius/openai") % 20_000
        );
        assert_eq!(users.assign("langgenius/openai", None, wp), Ok(uid));
        // Another daemon (a restart) computes the same uid.
        let again = PluginUsers::new(40_000, 20_000).expect("range");
        assert_eq!(again.assign("langgenius/openai", None, wp), Ok(uid));
        let other = users.assign("langgenius/anthropic", None, wp).expect("uid");
        assert_ne!(other, uid);
        assert!((40_000..60_000).contains(&other));
    }

    #[test]
    fn plugins_never_share_a_uid() {
        let empty = tempfile::tempdir().expect("tempdir");
        let wp = empty.path();
        // Two uids for three plugins: whatever the hash, the first two differ and the third
        // finds none left.
        let users = PluginUsers::new(100, 2).expect("range");
        let a = users.assign("a/a", None, wp).expect("uid");
        let b = users.assign("b/b", None, wp).expect("uid");
        assert_ne!(a, b);
        let full = users.assign("c/c", None, wp).expect_err("full");
        assert!(full.contains("raise PLUGIN_UID_COUNT"), "{full}");
        // A plugin already known keeps its uid even when the range is full.
        assert_eq!(users.assign("a/a", None, wp), Ok(a));
    }

    #[test]
    fn a_recorded_uid_wins_when_free_and_in_range() {
        let empty = tempfile::tempdir().expect("tempdir");
        let wp = empty.path();
        let users = PluginUsers::new(100, 10).expect("range");
        assert_eq!(users.assign("a/a", Some(107), wp), Ok(107));
        // Taken by a/a: b/b falls back to its preference (not 107).
        assert_ne!(users.assign("b/b", Some(107), wp), Ok(107));
        // Out of range (e.g. root's group 0 of a directory never laid out): ignored.
        let c = users.assign("c/c", Some(0), wp).expect("uid");
        assert!((100..110).contains(&c));
    }

    #[test]
    fn a_uid_recorded_on_a_leftover_directory_is_not_handed_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wp = tmp.path();
        let user = layout_user();
        // A removed plugin's working directory still carries its uid as its group.
        let leftover = wp.join("gone").join("plugin-0.0.1@abc");
        std::fs::create_dir_all(&leftover).expect("mkdir");
        std::os::unix::fs::chown(&leftover, None, Some(user.gid)).expect("chgrp");
        // A one-uid range holding exactly that uid: nobody new may take it.
        let users = PluginUsers::new(user.gid, 1).expect("range");
        let err = users.assign("new/plugin", None, wp).expect_err("reserved");
        assert!(
            err.contains("recorded on their working directories"),
            "{err}"
        );
        // The directory's own plugin (launching it again) gets it back.
        assert_eq!(
            users.assign("gone/plugin", Some(user.gid), wp),
            Ok(user.gid)
        );
    }

    #[test]
    fn reachable_walks_every_directory_and_symlink() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical");
        set_mode(&root, 0o711);
        let open = root.join("open");
        let private = root.join("private");
        for dir in [&open, &private] {
            std::fs::create_dir(dir).expect("mkdir");
        }
        set_mode(&open, 0o711);
        set_mode(&private, 0o700);
        let python = private.join("python");
        std::fs::write(&python, "#!/bin/sh\n").expect("write");
        set_mode(&python, 0o755);
        // A venv-like link from an open directory into the private one.
        let link = open.join("python");
        std::os::unix::fs::symlink("../private/python", &link).expect("symlink");

        let blocked = check_reachable(&link, STRANGER, false).expect_err("blocked");
        assert_eq!(blocked.path, private);
        assert_eq!(blocked.mode, 0o700);
        assert_eq!(blocked.why, "is not searchable");

        set_mode(&private, 0o711);
        check_reachable(&link, STRANGER, false).expect("reachable through o+x");
        check_reachable(&open, STRANGER, true).expect("a searchable directory");

        set_mode(&python, 0o644);
        let blocked = check_reachable(&link, STRANGER, false).expect_err("not executable");
        assert_eq!(
            (blocked.path.as_path(), blocked.why),
            (python.as_path(), "is not executable")
        );

        let blocked = check_reachable(&open.join("missing"), STRANGER, false).expect_err("gone");
        assert_eq!(blocked.why, "does not exist");

        // The owner's and the group's bits count for them, not for others.
        set_mode(&python, 0o750);
        let meta = std::fs::metadata(&python).expect("stat");
        let owner = PluginUser {
            uid: meta.uid(),
            gid: 54_321,
        };
        let group = PluginUser {
            uid: 54_321,
            gid: meta.gid(),
        };
        assert!(check_reachable(&link, owner, false).is_ok());
        assert!(check_reachable(&link, group, false).is_ok());
        assert!(check_reachable(&link, STRANGER, false).is_err());
    }

    #[test]
    fn symlink_loops_end() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        std::os::unix::fs::symlink(tmp.path().join("b"), &a).expect("symlink");
        std::os::unix::fs::symlink(&a, tmp.path().join("b")).expect("symlink");
        let blocked = check_reachable(&a, layout_user(), false).expect_err("loop");
        assert_eq!(blocked.why, "is a symlink that cannot be followed");
    }

    #[test]
    fn the_message_names_the_directory_and_every_fix() {
        let blocked = Blocked {
            path: PathBuf::from("/root"),
            mode: 0o700,
            owner: 0,
            why: "is not searchable",
        };
        let message = unreachable_message(
            Path::new("/w/p/.venv/bin/python"),
            STRANGER,
            &blocked,
            Reach::Interpreter,
        );
        assert_eq!(
            message,
            "the plugin's Python interpreter /w/p/.venv/bin/python cannot be reached by the \
             plugin's uid 54321: /root (mode 0700, owner uid 0) is not searchable. Fix: install \
             Python outside a private home directory (e.g. /usr/local or /opt, and set \
             PYTHON_INTERPRETER_PATH), or make the directory searchable (`chmod o+x /root`: \
             enter only, not list); or set PLUGIN_UID_SEPARATION=false to run plugins as the \
             daemon's user (they can then read its secrets, see docs/SECURITY.md)"
        );
    }

    #[test]
    fn the_working_directory_is_laid_out_for_the_plugin() {
        let user = layout_user();
        let tmp = tempfile::tempdir().expect("tempdir");
        let working_path = tmp.path().canonicalize().expect("canonical");
        let author = working_path.join("author");
        let wd = author.join("plugin-0.0.1@abc");
        std::fs::create_dir_all(wd.join(".venv/bin")).expect("mkdir");
        std::fs::write(wd.join("main.py"), "code").expect("write");
        let daemon_uid = std::fs::metadata(&wd).expect("stat").uid();
        let working_path_mode = mode(&working_path);

        lay_out(&working_path, &wd, user).expect("layout");
        assert_eq!(
            mode(&working_path),
            working_path_mode,
            "PLUGIN_WORKING_PATH is the binary's to set"
        );
        assert_eq!(mode(&author), 0o711);
        let meta = std::fs::metadata(&wd).expect("stat");
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o1770, daemon_uid, user.gid)
        );
        // Package files and the venv are not handed over.
        assert_eq!(
            std::fs::metadata(wd.join("main.py")).expect("stat").uid(),
            daemon_uid
        );
        assert_eq!(
            std::fs::metadata(wd.join(".venv")).expect("stat").uid(),
            daemon_uid
        );
        let private = wd.join(PRIVATE_DIR);
        for dir in [
            private.clone(),
            private.join("tmp"),
            private.join("pycache"),
        ] {
            let meta = std::fs::symlink_metadata(&dir).expect("stat");
            assert!(meta.is_dir(), "{}", dir.display());
            assert_eq!(
                (meta.mode() & 0o7777, meta.uid(), meta.gid()),
                (0o700, user.uid, user.gid),
                "{}",
                dir.display()
            );
        }

        // Laid out again (a restart): same result, nothing the plugin did is followed.
        std::fs::remove_dir_all(&private).expect("remove");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, &private).expect("planted symlink");
        lay_out(&working_path, &wd, user).expect("layout again");
        assert!(std::fs::symlink_metadata(&private)
            .expect("stat")
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::metadata(&elsewhere).expect("stat").uid(),
            daemon_uid
        );
        assert_eq!(mode(&wd), 0o1770);
    }

    #[test]
    fn uv_is_not_run_over_files_a_plugin_wrote() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wd = tmp.path();
        std::fs::write(wd.join("pyproject.toml"), "").expect("write");
        set_mode(wd, 0o755);
        check_build_inputs(wd).expect("not a separated plugin's directory");
        set_mode(wd, 0o1770);
        check_build_inputs(wd).expect("the daemon's own files");
        std::os::unix::fs::symlink("/etc/passwd", wd.join("uv.toml")).expect("symlink");
        let err = check_build_inputs(wd).expect_err("planted");
        assert!(
            err.contains("uv.toml was not written by the daemon"),
            "{err}"
        );
    }

    #[test]
    fn a_refused_uid_switch_says_what_to_change() {
        let einval = std::io::Error::from_raw_os_error(nix::errno::Errno::EINVAL as i32);
        let text = spawn_failure(STRANGER, &einval);
        assert!(
            text.starts_with(" as uid 54321 (switching to it was refused"),
            "{text}"
        );
        assert!(text.contains("PLUGIN_UID_BASE"), "{text}");
        let enoent = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOENT as i32);
        assert_eq!(spawn_failure(STRANGER, &enoent), " as uid 54321");
    }

    #[test]
    fn the_plugin_gets_a_private_home_and_tmp() {
        let prepared = Prepared {
            user: STRANGER,
            private_dir: PathBuf::from("/w/p/.plugind-home"),
        };
        let mut env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), "/bin".into()),
            ("HOME".into(), "/root".into()),
            ("TMPDIR".into(), "/tmp".into()),
        ];
        private_env(&mut env, &prepared);
        let get = |k: &str| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("HOME").as_deref(), Some("/w/p/.plugind-home"));
        assert_eq!(get("TMPDIR").as_deref(), Some("/w/p/.plugind-home/tmp"));
        assert_eq!(
            get("PYTHONPYCACHEPREFIX").as_deref(),
            Some("/w/p/.plugind-home/pycache")
        );
        assert_eq!(get("PATH").as_deref(), Some("/bin"));
        assert_eq!(env.iter().filter(|(k, _)| k == "HOME").count(), 1);
    }
}
