//! Start-up hardening: the daemon process itself and the modes of its files
//! (`docs/SECURITY.md` explains what each protects against).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Marks the daemon not dumpable and sets no-new-privs.
///
/// Not dumpable: `/proc/<pid>/environ`, `mem`, `maps`, … become root's and refuse even processes
/// of the daemon's own uid, and no core dump spills its memory. No-new-privs: no child (uv, a
/// plugin) can gain privileges by executing a set-uid binary. No-new-privs is per thread and
/// inherited by threads created later, so this runs before the async runtime starts any.
pub fn harden_process() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("cannot mark the daemon not dumpable (PR_SET_DUMPABLE): {e}"))?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| format!("cannot set no-new-privs (PR_SET_NO_NEW_PRIVS): {e}"))?;
    Ok(())
}

/// Makes `dir` private except for the way down to each of `keep`:
///
/// * a directory on the way to (or equal to) a kept path becomes `0711`: others may pass through
///   it, not list it; what a kept directory holds is left alone;
/// * every other entry directly inside such a directory becomes `0700` (directory) or `0600`
///   (file); symlinks are left alone;
/// * a `dir` that leads to no kept path becomes `0700` itself.
///
/// All paths must be canonical (`keep` is compared by prefix).
pub fn lock_down(dir: &Path, keep: &[PathBuf]) -> io::Result<()> {
    if keep.iter().any(|k| k == dir) {
        return set_mode(dir, 0o711);
    }
    if !keep.iter().any(|k| k.starts_with(dir)) {
        return set_mode(dir, 0o700);
    }
    set_mode(dir, 0o711)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            lock_down(&path, keep)?;
        } else if meta.is_file() {
            set_mode(&path, 0o600)?;
        }
    }
    Ok(())
}

/// Makes `dir` traverse-only (`0711`) when `target` lies inside it, with every directory between
/// them, and private (`0700`) otherwise. Nothing else inside `dir` is touched, so this suits a
/// directory the operator may share with other files (`PLUGIND_DATA_DIR`). Canonical paths.
pub fn open_way(dir: &Path, target: &Path) -> io::Result<()> {
    if !target.starts_with(dir) {
        return set_mode(dir, 0o700);
    }
    for between in target.ancestors().skip(1) {
        if !between.starts_with(dir) {
            break;
        }
        set_mode(between, 0o711)?;
    }
    Ok(())
}

/// `0600` on an SQLite database and its journal files (SQLite gives new journal files the
/// database file's mode, so later ones stay private too).
pub fn private_database(db: &Path) -> io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => set_mode(&path, 0o600)?,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `0711`: others may pass through `dir`, not list it.
pub fn traverse_only(dir: &Path) -> io::Result<()> {
    set_mode(dir, 0o711)
}

/// Creates `dir` (and parents) if missing and makes it `0700`.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    /// The embedded default: `plugind.db`, `storage/…` and `cwd/<plugins>` in the data dir.
    #[test]
    fn data_dir_is_private_except_the_way_to_the_working_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().canonicalize().expect("canonical").join("data");
        let cwd = data.join("cwd");
        let plugin = cwd.join("author").join("plugin-0.0.1@x");
        std::fs::create_dir_all(&plugin).expect("mkdir");
        std::fs::create_dir_all(data.join("storage/plugin_packages")).expect("mkdir");
        std::fs::write(data.join("storage/plugin_packages/p"), "pkg").expect("write");
        std::fs::write(data.join("plugind.db"), "db").expect("write");
        std::fs::write(data.join("plugind.db-wal"), "wal").expect("write");
        std::fs::write(plugin.join("main.py"), "code").expect("write");
        std::os::unix::fs::symlink("/etc/hostname", data.join("link")).expect("symlink");

        lock_down(&data, std::slice::from_ref(&cwd)).expect("lock down");

        assert_eq!(mode(&data), 0o711);
        assert_eq!(mode(&cwd), 0o711);
        assert_eq!(mode(&data.join("storage")), 0o700);
        assert_eq!(mode(&data.join("plugind.db")), 0o600);
        assert_eq!(mode(&data.join("plugind.db-wal")), 0o600);
        // Inside the kept directory nothing changes (plugin directories are laid out at launch).
        assert_eq!(mode(&plugin), 0o755);
        assert_eq!(mode(&plugin.join("main.py")), 0o644);
        assert!(std::fs::symlink_metadata(data.join("link"))
            .expect("link")
            .file_type()
            .is_symlink());
        assert_eq!(
            mode(Path::new("/etc/hostname")) & 0o044,
            std::fs::metadata("/etc/hostname").expect("stat").mode() & 0o044,
            "a symlink's target is not touched"
        );
    }

    /// Upstream's docker layout: the working path inside the storage root.
    #[test]
    fn storage_root_holding_the_working_path_stays_traversable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = tmp
            .path()
            .canonicalize()
            .expect("canonical")
            .join("storage");
        let cwd = storage.join("cwd");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        std::fs::create_dir_all(storage.join("assets")).expect("mkdir");
        lock_down(&storage, std::slice::from_ref(&cwd)).expect("lock down");
        assert_eq!(mode(&storage), 0o711);
        assert_eq!(mode(&storage.join("assets")), 0o700);
        assert_eq!(mode(&cwd), 0o711);

        let elsewhere = tmp.path().canonicalize().expect("canonical").join("other");
        std::fs::create_dir_all(elsewhere.join("x")).expect("mkdir");
        lock_down(&elsewhere, std::slice::from_ref(&cwd)).expect("lock down");
        assert_eq!(mode(&elsewhere), 0o700);
        assert_eq!(mode(&elsewhere.join("x")), 0o755, "unreachable anyway");
    }

    #[test]
    fn open_way_touches_only_the_way() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().canonicalize().expect("canonical").join("data");
        let cwd = data.join("a").join("cwd");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        std::fs::write(data.join("operator-notes.txt"), "mine").expect("write");
        open_way(&data, &cwd).expect("open way");
        assert_eq!(mode(&data), 0o711);
        assert_eq!(mode(&data.join("a")), 0o711);
        assert_eq!(
            mode(&cwd),
            0o755,
            "the target itself is laid out by its owner"
        );
        assert_eq!(mode(&data.join("operator-notes.txt")), 0o644);
        let other = tmp.path().canonicalize().expect("canonical").join("other");
        std::fs::create_dir_all(&other).expect("mkdir");
        open_way(&other, &cwd).expect("open way");
        assert_eq!(mode(&other), 0o700);
    }

    #[test]
    fn database_files_become_owner_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("plugind.db");
        std::fs::write(&db, "db").expect("write");
        std::fs::write(tmp.path().join("plugind.db-shm"), "shm").expect("write");
        private_database(&db).expect("private");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&tmp.path().join("plugind.db-shm")), 0o600);
    }

    #[test]
    fn the_daemon_is_not_dumpable_after_hardening() {
        // Runs in the test process: harmless, and exactly what the daemon does at start-up.
        harden_process().expect("harden");
        assert!(!nix::sys::prctl::get_dumpable().expect("get dumpable"));
        assert!(nix::sys::prctl::get_no_new_privs().expect("get no_new_privs"));
    }
}
