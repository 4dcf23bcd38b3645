//! Property / fuzz tests of the package decoder (zip + YAML).
//!
//! Every generated input goes through `decode`, `checksum`, `read_file` and `extract_to` under
//! `catch_unwind`. The properties: no panic; an error is a `PackageError` whose Display is a
//! plain, non-empty message (no Debug dump); `extract_to` never creates anything outside its
//! destination and leaves no destination (and no temp dir) behind on error; the zip and YAML bomb
//! strategies stay within a bounded peak RSS.
//!
//! Case count per strategy: `PLUGIND_FUZZ_CASES` (default 256). A long campaign by hand:
//! `PLUGIND_FUZZ_CASES=100000 cargo test -p plugind-package --release --test fuzz_decoder -- --nocapture`
//! (`--nocapture` shows the per-strategy execution counts).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{Cursor, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use plugind_package::{
    checksum, decode, extract_to, pack_dir, read_file, DecodeOptions, PackageError,
    MAX_DECIMAL_DIGITS,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

mod support;

// ------------------------------------------------------------------------------------------------
// Inputs
// ------------------------------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("PLUGIND_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(256)
}

/// A signed agent-strategy package (packed from `tests/fixtures/agent`, generated key).
fn fixture() -> &'static [u8] {
    support::signed_package()
}

const TOOL_MANIFEST: &str = "version: 0.1.0\ntype: plugin\nauthor: tester\nname: echo\nicon: icon.svg\n\
label: {en_US: Echo}\ndescription: {en_US: Echoes text}\ntags: [utilities]\ncreated_at: 2025-01-08T15:22:00.5Z\n\
resource: {memory: 1048576, permission: {tool: {enabled: true}}}\nplugins: {tools: [provider/x.yaml]}\n\
meta: {version: 0.0.1, arch: [amd64], runner: {language: python, version: '3.12', entrypoint: main}}\n";

const TOOL_PROVIDER: &str =
    "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\n\
credentials_for_provider:\n  api_key: {type: secret-input, required: true, label: {en_US: Key}}\n\
tools: [tools/x.yaml]\nextra: {python: {source: provider/x.py}}\n";

const TOOL_FILE: &str =
    "identity: {author: tester, name: x, label: {en_US: X}}\ndescription: {human: {en_US: h}, llm: l}\nparameters: []\n";

/// A small tool plugin packed with `pack_dir`.
fn tool_plugin() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: [(&str, &str); 5] = [
            ("manifest.yaml", TOOL_MANIFEST),
            ("provider/x.yaml", TOOL_PROVIDER),
            ("tools/x.yaml", TOOL_FILE),
            ("_assets/icon.svg", "<svg/>"),
            ("main.py", "print('hi')\n"),
        ];
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        let bytes = pack_dir(dir.path()).expect("pack");
        decode(&bytes, &DecodeOptions::default()).expect("the generated tool plugin is valid");
        bytes
    })
}

#[derive(Clone, Debug)]
enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    content: Vec<u8>,
    kind: Kind,
    deflate: bool,
}

impl Entry {
    fn file(name: &str, content: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.to_owned(),
            content: content.into(),
            kind: Kind::File,
            deflate: true,
        }
    }
}

/// Builds a zip from `entries`; entries the writer refuses (duplicates, ...) are skipped.
fn build_zip(entries: &[Entry], comment: Option<&[u8]>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    if let Some(c) = comment {
        w.set_raw_comment(c.to_vec().into_boxed_slice());
    }
    for e in entries {
        let method = if e.deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let opts = SimpleFileOptions::default().compression_method(method);
        let ok = match e.kind {
            Kind::File => {
                w.start_file(e.name.as_str(), opts).is_ok() && w.write_all(&e.content).is_ok()
            }
            Kind::Dir => w.add_directory(e.name.as_str(), opts).is_ok(),
            Kind::Symlink => w
                .add_symlink(e.name.as_str(), String::from_utf8_lossy(&e.content), opts)
                .is_ok(),
        };
        if !ok {
            let _ = w.abort_file();
        }
    }
    w.finish().map(Cursor::into_inner).unwrap_or_default()
}

fn u16_at(b: &[u8], p: usize) -> usize {
    usize::from(u16::from_le_bytes([b[p], b[p + 1]]))
}

fn u32_at(b: &[u8], p: usize) -> usize {
    u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize
}

/// Rewrites the declared uncompressed size (and optionally the CRC) of entry `index`, in both the
/// central directory and the local header, of a zip written by `build_zip` (no comment).
fn patch_entry(zip: &mut [u8], index: usize, size: u32, crc: Option<u32>) {
    let eocd = zip
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("eocd");
    let mut p = u32_at(zip, eocd + 16);
    for i in 0..=index {
        assert_eq!(&zip[p..p + 4], b"PK\x01\x02", "central directory header");
        let local = u32_at(zip, p + 42);
        if i == index {
            zip[p + 24..p + 28].copy_from_slice(&size.to_le_bytes());
            zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
            if let Some(crc) = crc {
                zip[p + 16..p + 20].copy_from_slice(&crc.to_le_bytes());
                zip[local + 14..local + 18].copy_from_slice(&crc.to_le_bytes());
            }
            return;
        }
        p += 46 + u16_at(zip, p + 28) + u16_at(zip, p + 30) + u16_at(zip, p + 32);
    }
}

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

/// Marks of a Debug rendering (`Os { code: .. }`, `Custom { kind: .. }`, `InvalidArchive("..")`).
const DEBUG_MARKS: [&str; 9] = [
    " { ",
    "kind: ",
    "Custom {",
    "Os {",
    "Error {",
    "ErrorImpl",
    "Some(",
    "InvalidArchive(",
    "UnsupportedArchive(",
];

/// The error's Display is a clear message: non-empty, no Debug dump, no panic text.
fn check_message(err: &PackageError, names: &[String]) -> Result<(), TestCaseError> {
    let msg = err.to_string();
    prop_assert!(!msg.trim().is_empty(), "empty error message: {err:?}");
    prop_assert!(
        !msg.starts_with(char::is_whitespace),
        "message starts with whitespace: {msg:?}"
    );
    // Entry names are user data and may contain anything; judge the message without them.
    let mut stripped = msg.clone();
    let mut names: Vec<&String> = names.iter().filter(|n| !n.is_empty()).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in names {
        stripped = stripped
            .replace(&format!("{n:?}"), "<name>")
            .replace(n.as_str(), "<name>");
    }
    for mark in DEBUG_MARKS {
        prop_assert!(
            !stripped.contains(mark),
            "Debug dump in message {msg:?} ({err:?})"
        );
    }
    prop_assert!(
        !stripped.contains("panicked"),
        "panic text in message {msg:?}"
    );
    // Provider-file paths come from the YAML and are echoed whole (like upstream); see report.
    let echoes_yaml_path = matches!(
        err,
        PackageError::ReadPluginFile { .. } | PackageError::UnmarshalPluginFile(_)
    );
    prop_assert!(
        echoes_yaml_path || stripped.len() <= 2048,
        "{} byte message",
        msg.len()
    );
    // One purpose: at most the `errors.Join`-style two lines of the category check.
    prop_assert!(stripped.lines().count() <= 2, "multi-line message {msg:?}");
    Ok(())
}

fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let text = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {text}"))
    })
}

/// Decode-side properties. Returns whether `decode` succeeded.
fn check_decode(
    bytes: &[u8],
    opts: &DecodeOptions,
    names: &[String],
) -> Result<bool, TestCaseError> {
    let started = Instant::now();
    let decoded = no_panic("decode", || decode(bytes, opts))?;
    let ok = match &decoded {
        Ok(pkg) => {
            prop_assert_eq!(pkg.checksum.len(), 64);
            let total: usize = pkg.assets.values().map(Vec::len).sum();
            prop_assert!(
                total as u64 <= opts.max_uncompressed_size,
                "assets exceed the limit"
            );
            true
        }
        Err(e) => {
            check_message(e, names)?;
            false
        }
    };
    drop(decoded);
    match no_panic("checksum", || checksum(bytes))? {
        Ok(sum) => prop_assert_eq!(sum.len(), 64),
        Err(e) => check_message(&e, names)?,
    }
    match no_panic("read_file", || read_file(bytes, "manifest.yaml"))? {
        Ok(_) => {}
        Err(e) => check_message(&e, names)?,
    }
    prop_assert!(
        started.elapsed() < Duration::from_secs(30),
        "decoding took {:?}",
        started.elapsed()
    );
    Ok(ok)
}

/// Every path under `root` (relative), not following symlinks.
fn listing(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Absolute entry names generated by the strategies all live under this directory.
fn abs_marker() -> PathBuf {
    std::env::temp_dir().join(format!("plugind-fuzz-abs-{}", std::process::id()))
}

/// Nesting of the destination below the temp root: deeper than any `..` run the strategies make.
const DST_DEPTH: [&str; 6] = ["l1", "l2", "l3", "l4", "l5", "work"];

/// Extraction properties: nothing outside the destination, nothing left behind on error.
fn check_extract(bytes: &[u8], names: &[String]) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let work = DST_DEPTH
        .iter()
        .fold(root.path().to_path_buf(), |p, d| p.join(d));
    std::fs::create_dir_all(&work).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let dst = work.join("plugin");
    let dst_rel = dst.strip_prefix(root.path()).expect("inside").to_path_buf();
    let before = listing(root.path());

    let result = no_panic("extract_to", || extract_to(bytes, &dst))?;

    let after = listing(root.path());
    let added: Vec<&PathBuf> = after
        .difference(&before)
        .filter(|p| !p.starts_with(&dst_rel))
        .collect();
    prop_assert!(added.is_empty(), "extract_to wrote outside dst: {added:?}");
    let removed: Vec<&PathBuf> = before.difference(&after).collect();
    prop_assert!(removed.is_empty(), "extract_to removed {removed:?}");
    prop_assert!(
        !abs_marker().exists(),
        "extract_to followed an absolute entry name"
    );
    match result {
        Ok(()) => {
            prop_assert!(dst.is_dir());
            for rel in after.iter().filter(|p| p.starts_with(&dst_rel)) {
                let meta = std::fs::symlink_metadata(root.path().join(rel))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    meta.is_dir() || meta.is_file(),
                    "extract_to created a non-regular file {rel:?}"
                );
            }
        }
        Err(e) => {
            check_message(&e, names)?;
            prop_assert!(!dst.exists(), "destination left behind after {e}");
            let leftovers = listing(&work);
            prop_assert!(
                leftovers.is_empty(),
                "temp files left behind: {leftovers:?}"
            );
        }
    }
    Ok(())
}

/// Peak-RSS measurement for the bomb strategies (Linux; elsewhere a no-op).
/// The memory-checked tests run one at a time.
static MEMORY: Mutex<()> = Mutex::new(());

/// Peak RSS growth allowed for one bomb case.
const MEMORY_BOUND: u64 = 192 << 20;

fn vm_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// Resets the peak-RSS counter; returns the current RSS.
fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    vm_kb("VmRSS:")
}

fn bounded<T>(f: impl FnOnce() -> Result<T, TestCaseError>) -> Result<T, TestCaseError> {
    let base = reset_peak();
    let out = f()?;
    if let (Some(base), Some(peak)) = (base, vm_kb("VmHWM:")) {
        let grown = peak.saturating_sub(base);
        prop_assert!(
            grown <= MEMORY_BOUND,
            "peak RSS grew by {} MiB",
            grown >> 20
        );
    }
    Ok(out)
}

/// Runs `test` (which returns whether `decode` succeeded) over `strategy`, printing the counts.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<bool, TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = cases();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    });
    let executions = Cell::new(0u64);
    let decoded = Cell::new(0u64);
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        executions.set(executions.get() + 1);
        let ok = test(v)?;
        decoded.set(decoded.get() + u64::from(ok));
        Ok(())
    });
    eprintln!(
        "fuzz_decoder[{name}]: {} executions ({cases} cases, {} decoded successfully) in {:.1?}",
        executions.get(),
        decoded.get(),
        started.elapsed()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ------------------------------------------------------------------------------------------------
// Strategies
// ------------------------------------------------------------------------------------------------

const SPECIAL_NAMES: &[&str] = &[
    "../x",
    "../../x",
    "../../../../../x",
    "a/../../b",
    "a/../../../../../../b",
    "./",
    "./x",
    ".",
    "..",
    "",
    "/",
    "a//b",
    "a/./b",
    "a/..",
    "..\\x",
    "a\\..\\..\\b",
    "\\x",
    "C:/x",
    "c:\\x",
    "x\0y",
    "\0",
    "manifest.yaml",
    "manifest.yaml/",
    "./manifest.yaml",
    "_assets/",
    "_assets/icon.svg",
    "_assets/../../x",
    "provider/x.yaml",
    "tools/x.yaml",
    ".verification.dify.json",
    "dir/",
    "dir",
    "dir/file",
    "a\u{202e}b",
    "ｍanifest.yaml",
];

fn entry_name() -> impl Strategy<Value = String> {
    let segments = prop::collection::vec(
        prop::sample::select(
            &[
                "..",
                ".",
                "",
                "a",
                "b",
                "_assets",
                "provider",
                "manifest.yaml",
            ][..],
        ),
        1..7,
    )
    .prop_map(|s| s.join("/"));
    let abs = "[a-z]{1,8}".prop_map(|s| format!("{}/{s}", abs_marker().display()));
    prop_oneof![
        4 => prop::sample::select(SPECIAL_NAMES).prop_map(str::to_owned),
        3 => segments,
        2 => "[a-z_./\\\\]{0,24}",
        1 => "\\PC{0,24}",
        1 => abs,
        1 => ("[a-z]{1,4}", 60usize..2000).prop_map(|(s, n)| s.repeat(n)),
        1 => ("[a-z]{1,4}", 1usize..40).prop_map(|(s, n)| format!("{}{s}", "../".repeat(n))),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        entry_name(),
        prop::collection::vec(any::<u8>(), 0..256),
        prop_oneof![6 => Just(Kind::File), 1 => Just(Kind::Dir), 1 => Just(Kind::Symlink)],
        any::<bool>(),
    )
        .prop_map(|(name, content, kind, deflate)| Entry {
            name,
            content,
            kind,
            deflate,
        })
}

const WEIRD_VALUES: &[&str] = &[
    "",
    "~",
    "null",
    "[]",
    "{}",
    "[[[]]]",
    "!!binary aGVsbG8=",
    "!custom x",
    "*nope",
    "&a x",
    "'unterminated",
    "\"\\uD800\"",
    "\"a\\0b\"",
    "-1",
    "1e999",
    "0x1F",
    "99999999999999999999999",
    "2025-13-45T99:99:99Z",
    "0001-01-01",
    "2025-01-08 15:22:00",
    "ütf-8 ✓",
    "6b3f0c2e-4a1d-4c3b-9a5e-1f2d3c4b5a69",
    "Upper",
    "a b",
    "{tools: [../../etc/passwd]}",
    "{tools: [/abs.yaml]}",
    "{tools: [provider/x.yaml, provider/x.yaml]}",
    "{models: [provider/x.yaml]}",
    "{endpoints: [provider/x.yaml], tools: [provider/x.yaml]}",
    "{agent_strategies: [missing.yaml]}",
    "{datasources: [provider/x.yaml]}",
    "{triggers: [provider/x.yaml]}",
    "{tools: [manifest.yaml]}",
    "{tools: [tools/x.yaml]}",
    "{tools: [_assets/]}",
    "{tools: [provider/x.yaml], models: [provider/x.yaml]}",
    "{tools: provider/x.yaml}",
    "{tools: [[a]]}",
    "[a, b",
    "{a: b",
    "|\n  block\n  text",
    ">-\n  folded",
    "\n  - list",
    "{memory: -5, permission: {storage: {enabled: yes, size: huge}}}",
    "{memory: 1e3, permission: [tool]}",
    "{version: 1, runner: []}",
    "{en_US: [1, 2]}",
];

const MANIFEST_FIELDS: [(&str, &str); 12] = [
    ("version", "0.1.0"),
    ("type", "plugin"),
    ("author", "tester"),
    ("name", "echo"),
    ("icon", "icon.svg"),
    ("label", "{en_US: Echo}"),
    ("description", "{en_US: Echoes text}"),
    ("tags", "[utilities]"),
    ("created_at", "2025-01-08T15:22:00.5Z"),
    (
        "resource",
        "{memory: 1048576, permission: {tool: {enabled: true}}}",
    ),
    ("plugins", "{tools: [provider/x.yaml]}"),
    (
        "meta",
        "{version: 0.0.1, arch: [amd64], runner: {language: python, version: '3.12', entrypoint: main}}",
    ),
];

const PROVIDER_FIELDS: [(&str, &str); 4] = [
    (
        "identity",
        "{author: tester, name: x, label: {en_US: X}, icon: icon.svg}",
    ),
    (
        "credentials_for_provider",
        "{api_key: {type: secret-input, required: true, label: {en_US: Key}}}",
    ),
    ("tools", "[tools/x.yaml]"),
    ("extra", "{python: {source: provider/x.py}}"),
];

/// One field: kept (most often), dropped, replaced by a weird value or by random text.
fn field_value(default: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        40 => Just(Some(default.to_owned())),
        1 => Just(None),
        2 => prop::sample::select(WEIRD_VALUES).prop_map(|v| Some(v.to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

/// A YAML mapping built from `fields` with mutated values and optional extra lines.
fn yaml_doc(fields: &'static [(&'static str, &'static str)]) -> impl Strategy<Value = String> {
    let values: Vec<_> = fields.iter().map(|(_, v)| field_value(v)).collect();
    (
        values,
        prop::collection::vec("[ -~]{0,30}", 0..3),
        any::<bool>(),
    )
        .prop_map(move |(values, extra, duplicate)| {
            let mut doc = String::new();
            for ((key, _), value) in fields.iter().zip(values) {
                if let Some(v) = value {
                    doc.push_str(&format!("{key}: {v}\n"));
                }
            }
            if duplicate {
                doc.push_str("name: again\n");
            }
            for line in extra {
                doc.push_str(&line);
                doc.push('\n');
            }
            doc
        })
}

/// A zip with random entries and (usually) a mutated manifest + provider + tool file.
fn random_package() -> impl Strategy<Value = (Vec<Entry>, Option<Vec<u8>>)> {
    (
        prop::option::weighted(0.8, yaml_doc(&MANIFEST_FIELDS)),
        prop::option::weighted(0.7, yaml_doc(&PROVIDER_FIELDS)),
        prop::option::weighted(
            0.7,
            prop_oneof![Just(TOOL_FILE.to_owned()), "[ -~\n]{0,80}"],
        ),
        any::<bool>(),
        prop_oneof![Just(Vec::new()), prop::collection::vec(entry(), 1..7)],
        prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_flat_map(|(manifest, provider, tool, icon, random, comment)| {
            let mut entries = Vec::new();
            if let Some(m) = manifest {
                entries.push(Entry::file("manifest.yaml", m));
            }
            if let Some(p) = provider {
                entries.push(Entry::file("provider/x.yaml", p));
            }
            if let Some(t) = tool {
                entries.push(Entry::file("tools/x.yaml", t));
            }
            if icon {
                entries.push(Entry::file("_assets/icon.svg", "<svg/>"));
            }
            entries.extend(random);
            (Just(entries).prop_shuffle(), Just(comment))
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    Truncate(Index),
    FlipBits(Vec<(Index, u8)>),
    /// Bit flips in the last 2 KiB (central directory, EOCD), where they matter most.
    FlipTail(Vec<(Index, u8)>),
    Overwrite(Index, Vec<u8>),
    /// Removes a range (shifts every offset after it).
    Cut(Index, usize),
    /// Appends a copy of a slice (a second, conflicting directory/EOCD).
    Append(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Truncate),
        2 => prop::collection::vec((any::<Index>(), 0u8..8), 1..8).prop_map(Mutation::FlipBits),
        3 => prop::collection::vec((any::<Index>(), 0u8..8), 1..8).prop_map(Mutation::FlipTail),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        1 => (any::<Index>(), 1usize..512).prop_map(|(i, n)| Mutation::Cut(i, n)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Append(a, b)),
    ]
}

fn apply(src: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = src.to_vec();
    match m {
        Mutation::Truncate(i) => b.truncate(i.index(src.len())),
        Mutation::FlipBits(flips) => {
            for (i, bit) in flips {
                let p = i.index(b.len());
                b[p] ^= 1 << bit;
            }
        }
        Mutation::FlipTail(flips) => {
            let tail = b.len().min(2048);
            let start = b.len() - tail;
            for (i, bit) in flips {
                let p = start + i.index(tail);
                b[p] ^= 1 << bit;
            }
        }
        Mutation::Overwrite(i, bytes) => {
            let p = i.index(b.len());
            let end = (p + bytes.len()).min(b.len());
            b[p..end].copy_from_slice(&bytes[..end - p]);
        }
        Mutation::Cut(i, n) => {
            let p = i.index(b.len());
            let end = (p + n).min(b.len());
            b.drain(p..end);
        }
        Mutation::Append(a, z) => {
            let (x, y) = (a.index(src.len()), z.index(src.len()));
            let (lo, hi) = (x.min(y), x.max(y));
            b.extend_from_slice(&src[lo..hi]);
        }
    }
    b
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[test]
fn fuzz_arbitrary_bytes() {
    let strategy = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..2048),
        // Something that looks like a zip: local header signature and an EOCD at the end.
        2 => (prop::collection::vec(any::<u8>(), 0..512), prop::collection::vec(any::<u8>(), 18..20))
            .prop_map(|(body, eocd)| {
                let mut b = b"PK\x03\x04".to_vec();
                b.extend(body);
                b.extend_from_slice(b"PK\x05\x06");
                b.extend(eocd);
                b
            }),
        1 => prop::collection::vec(prop::sample::select(&b"PK\x01\x02\x03\x04\x05\x06\x00\xff"[..]), 0..256),
    ];
    run("arbitrary_bytes", strategy, |bytes| {
        let ok = check_decode(&bytes, &DecodeOptions::default(), &[])?;
        check_extract(&bytes, &[])?;
        Ok(ok)
    });
}

#[test]
fn fuzz_random_zips() {
    run("random_zips", random_package(), |(entries, comment)| {
        let zip = build_zip(&entries, comment.as_deref());
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        let ok = check_decode(&zip, &DecodeOptions::default(), &names)?;
        check_extract(&zip, &names)?;
        Ok(ok)
    });
}

#[test]
fn fuzz_mutated_packages() {
    let strategy = (any::<bool>(), mutation());
    run("mutated_packages", strategy, |(signed, m)| {
        let src = if signed { fixture() } else { tool_plugin() };
        let bytes = apply(src, &m);
        let names = zip::ZipArchive::new(Cursor::new(src))
            .map(|z| z.file_names().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        let ok = check_decode(&bytes, &DecodeOptions::default(), &names)?;
        check_extract(&bytes, &names)?;
        Ok(ok)
    });
}

// ---- (c2) model pricing decimals ---------------------------------------------------------------

const MODEL_MANIFEST: &str = "version: 0.1.0\ntype: plugin\nauthor: tester\nname: prices\nicon: icon.svg\n\
label: {en_US: Prices}\ndescription: {en_US: Prices}\ncreated_at: 2025-01-08T15:22:00.5Z\n\
resource: {memory: 1048576}\nplugins: {models: [provider/m.yaml]}\n\
meta: {version: 0.0.1, arch: [amd64], runner: {language: python, version: '3.12', entrypoint: main}}\n";

const MODEL_PROVIDER: &str = "provider: m\nmodels:\n  llm:\n    predefined: ['models/*.yaml']\n";

/// Spellings that are no decimal (or only look like one).
const NOT_DECIMALS: &[&str] = &[
    "NaN",
    "nan",
    ".nan",
    ".NaN",
    "Inf",
    "-Inf",
    "inf",
    "+Infinity",
    "-infinity",
    ".inf",
    "-.inf",
    "+.Inf",
    "1e",
    "1E",
    "1e+",
    "1e-",
    "e5",
    "-",
    "+",
    ".",
    "-.",
    "--1",
    "+-1",
    "1..2",
    "1.2.3",
    "0x10",
    "0x1p3",
    "1_000",
    "1,5",
    "1 000",
    "١٢",
    "½",
    "",
    " ",
    "1e5.5",
    "1e0x1",
];

/// A pricing value: huge and negative exponents, long digit strings, non-numbers, random text.
fn pricing_value() -> impl Strategy<Value = String> {
    let mantissa = "[-+]?[0-9]{0,6}(\\.[0-9]{0,6})?";
    prop_oneof![
        // Sane prices (so that whole packages decode too).
        12 => "[0-9]{1,3}(\\.[0-9]{1,8})?",
        // Exponents anywhere in i64, and near the bound.
        3 => (mantissa, any::<i64>(), any::<bool>())
            .prop_map(|(m, e, upper)| format!("{m}{}{e}", if upper { 'E' } else { 'e' })),
        3 => (mantissa, -420i64..420).prop_map(|(m, e)| format!("{m}e{e}")),
        1 => (mantissa, prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(100_000_000_000)])
            .prop_map(|(m, e)| format!("{m}e{e}")),
        // Long digit strings, with and without a point, and zeros that vanish when written out.
        2 => (1usize..2000, 0usize..600, "[1-9]").prop_map(|(int, frac, d)| {
            format!("{}.{}", d.repeat(int), "3".repeat(frac))
        }),
        1 => (0usize..5000, "[1-9]", 0usize..5000, -6000i64..6000).prop_map(|(lead, d, trail, e)| {
            format!("{}{d}{}e{e}", "0".repeat(lead), "0".repeat(trail))
        }),
        2 => prop::sample::select(NOT_DECIMALS).prop_map(str::to_owned),
        1 => "[-+0-9eE. ]{0,16}",
        1 => "[ -~]{0,20}",
    ]
}

/// A model plugin whose model file carries three pricing values (quoted or bare YAML scalars).
fn pricing_package() -> impl Strategy<Value = ([String; 3], [bool; 3])> {
    (
        [pricing_value(), pricing_value(), pricing_value()],
        [any::<bool>(), any::<bool>(), any::<bool>()],
    )
}

fn pricing_zip(values: &[String; 3], quoted: &[bool; 3]) -> Vec<u8> {
    let scalar = |v: &String, q: bool| {
        if q {
            format!("'{}'", v.replace('\'', "''"))
        } else {
            v.clone()
        }
    };
    let model = format!(
        "model: a\nlabel: {{en_US: A}}\nmodel_type: llm\npricing:\n  input: {}\n  output: {}\n  unit: {}\n  currency: USD\n",
        scalar(&values[0], quoted[0]),
        scalar(&values[1], quoted[1]),
        scalar(&values[2], quoted[2]),
    );
    build_zip(
        &[
            Entry::file("manifest.yaml", MODEL_MANIFEST),
            Entry::file("provider/m.yaml", MODEL_PROVIDER),
            Entry::file("models/a.yaml", model),
            Entry::file("_assets/icon.svg", "<svg/>"),
        ],
        None,
    )
}

/// Pricing decimals: no value makes the decoder allocate its written-out form (the old code
/// aborted on `1e100000000000`), a decoded price is a plain decimal within the documented
/// bound, and a refused one says why.
#[test]
fn fuzz_model_pricing() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    run("model_pricing", pricing_package(), |(values, quoted)| {
        let zip = pricing_zip(&values, &quoted);
        bounded(|| {
            let ok = check_decode(&zip, &DecodeOptions::default(), &values)?;
            if ok {
                let pkg = decode(&zip, &DecodeOptions::default())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let json = serde_json::to_value(&pkg.declaration)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let pricing = &json["model"]["models"][0]["pricing"];
                for key in ["input", "output", "unit"] {
                    let Some(text) = pricing[key].as_str() else {
                        continue;
                    };
                    let digits = text.chars().filter(char::is_ascii_digit).count();
                    prop_assert!(
                        digits <= MAX_DECIMAL_DIGITS
                            && text
                                .trim_start_matches('-')
                                .chars()
                                .all(|c| c.is_ascii_digit() || c == '.'),
                        "{key}: {text:?} from {values:?}"
                    );
                }
            }
            Ok(ok)
        })
    });
}

/// The example from the report: 100 GB written out, refused at once.
#[test]
fn pricing_exponent_bomb_is_refused_within_bounded_memory() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    for value in ["1e100000000000", "1e-100000000000", "1e1000000000"] {
        let zip = pricing_zip(
            &[value.to_owned(), "0.002".to_owned(), "0.001".to_owned()],
            &[true, true, true],
        );
        let err = bounded(|| {
            let r = no_panic("decode", || decode(&zip, &DecodeOptions::default()))?;
            Ok(r.err())
        })
        .and_then(|e| e.ok_or_else(|| TestCaseError::fail("decoded")))
        .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert!(
            err.to_string().contains("more than 400 digits"),
            "{value}: {err}"
        );
    }
}

// ---- (d) zip bombs -----------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Bomb {
    /// An entry whose data inflates to `actual` bytes while the headers declare `declared`.
    Lying {
        name: &'static str,
        actual: usize,
        declared: u32,
        keep_crc: bool,
    },
    /// Honest, highly compressible entries against a (random) `max_uncompressed_size`.
    Compressible { sizes: Vec<usize>, max: u64 },
    /// Many tiny entries.
    Many { count: usize },
}

fn bomb() -> impl Strategy<Value = Bomb> {
    prop_oneof![
        3 => (
            prop::sample::select(&["manifest.yaml", "_assets/icon.svg", "provider/x.yaml", "main.py"][..]),
            1usize..(8 << 20),
            prop_oneof![0u32..1024, Just(u32::MAX - 1), Just(u32::MAX), any::<u32>()],
            any::<bool>(),
        )
            .prop_map(|(name, actual, declared, keep_crc)| Bomb::Lying { name, actual, declared, keep_crc }),
        3 => (prop::collection::vec(1usize..(2 << 20), 1..4), 0u64..(4 << 20))
            .prop_map(|(sizes, max)| Bomb::Compressible { sizes, max }),
        1 => (1usize..3000).prop_map(|count| Bomb::Many { count }),
    ]
}

fn tool_entries() -> Vec<Entry> {
    vec![
        Entry::file("manifest.yaml", TOOL_MANIFEST),
        Entry::file("provider/x.yaml", TOOL_PROVIDER),
        Entry::file("tools/x.yaml", TOOL_FILE),
        Entry::file("_assets/icon.svg", "<svg/>"),
    ]
}

/// Builds the bomb; returns the bytes, the options and whether decode must fail.
fn build_bomb(b: &Bomb) -> (Vec<u8>, DecodeOptions, bool) {
    let defaults = DecodeOptions::default();
    match b {
        Bomb::Lying {
            name,
            actual,
            declared,
            keep_crc,
        } => {
            let mut entries: Vec<Entry> = tool_entries()
                .into_iter()
                .filter(|e| e.name != *name)
                .collect();
            entries.push(Entry::file(name, vec![b'a'; *actual]));
            let index = entries.len() - 1;
            let mut zip = build_zip(&entries, None);
            let crc = (!keep_crc).then_some(0xdead_beef);
            patch_entry(&mut zip, index, *declared, crc);
            // Inflating beyond the declared size must fail; so must a wrong CRC.
            let must_fail = *actual as u64 > u64::from(*declared) || !keep_crc;
            (zip, defaults, must_fail)
        }
        Bomb::Compressible { sizes, max } => {
            let mut entries = tool_entries();
            let mut total: u64 = entries.iter().map(|e| e.content.len() as u64).sum();
            for (i, size) in sizes.iter().enumerate() {
                entries.push(Entry::file(
                    &format!("_assets/zeros{i}.bin"),
                    vec![0u8; *size],
                ));
                total += *size as u64;
            }
            let opts = DecodeOptions {
                max_uncompressed_size: *max,
                ..DecodeOptions::default()
            };
            (build_zip(&entries, None), opts, total > *max)
        }
        Bomb::Many { count } => {
            let mut entries = tool_entries();
            entries.extend((0..*count).map(|i| Entry::file(&format!("f/{i}"), "x")));
            (build_zip(&entries, None), defaults, false)
        }
    }
}

#[test]
fn fuzz_zip_bombs() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    run("zip_bombs", bomb(), |b| {
        let (zip, opts, must_fail) = build_bomb(&b);
        let names: Vec<String> = [
            "manifest.yaml",
            "_assets/icon.svg",
            "provider/x.yaml",
            "main.py",
        ]
        .map(str::to_owned)
        .to_vec();
        let ok = bounded(|| check_decode(&zip, &opts, &names))?;
        prop_assert!(!(ok && must_fail), "bomb {b:?} decoded");
        if let Bomb::Compressible { .. } = b {
            if must_fail {
                let err = decode(&zip, &opts).expect_err("too large");
                prop_assert!(matches!(err, PackageError::TooLarge(_)), "{err}");
            }
        }
        // `extract_to` is only ever given decoded packages; bound its memory for those whose
        // declared sizes stay within the limit.
        if let Bomb::Lying { declared, .. } = b {
            if u64::from(declared) <= DecodeOptions::default().max_uncompressed_size {
                bounded(|| check_extract(&zip, &names))?;
            }
        } else {
            bounded(|| check_extract(&zip, &names))?;
        }
        Ok(ok)
    });
}

/// One real-scale bomb: 64 MiB of zeros (64 KiB compressed) against the default 50 MiB limit,
/// honest and with a lying (tiny) declared size.
#[test]
fn large_zip_bomb_is_refused_within_bounded_memory() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let mut entries = tool_entries();
    entries.push(Entry::file("_assets/zeros.bin", vec![0u8; 64 << 20]));
    let honest = build_zip(&entries, None);
    assert!(honest.len() < 1 << 20, "compressed to {}", honest.len());
    let mut lying = honest.clone();
    patch_entry(&mut lying, entries.len() - 1, 1000, None);
    for zip in [honest, lying] {
        let err = bounded(|| {
            let r = no_panic("decode", || decode(&zip, &DecodeOptions::default()))?;
            let err = r.err().ok_or_else(|| TestCaseError::fail("bomb decoded"))?;
            check_message(&err, &[])?;
            bounded(|| check_extract(&zip, &[]))?;
            Ok(err.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("large zip bomb: {err}");
    }
}

// ---- (e) YAML bombs ----------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum YamlBomb {
    /// Nested anchors, each level `width` aliases of the previous one.
    Laughs {
        levels: usize,
        width: usize,
        key: &'static str,
    },
    /// One big scalar referenced `count` times.
    ScalarAliases {
        size: usize,
        count: usize,
        key: &'static str,
    },
    /// `depth` levels of flow or block nesting.
    Deep { depth: usize, style: u8 },
    /// One huge scalar.
    HugeScalar { size: usize, quoted: bool },
    /// A provider listing the same (big) tool file `count` times.
    FileReferences { size: usize, count: usize },
}

#[derive(Clone, Copy, Debug)]
enum Place {
    Manifest,
    Provider,
    Tool,
}

fn yaml_bomb() -> impl Strategy<Value = YamlBomb> {
    let key =
        prop::sample::select(&["tool", "tags", "label", "unknown_key", "identity", "tools"][..]);
    prop_oneof![
        (1usize..12, 2usize..12, key.clone()).prop_map(|(levels, width, key)| YamlBomb::Laughs {
            levels,
            width,
            key
        }),
        (1usize..(64 << 10), 1usize..16384, key)
            .prop_map(|(size, count, key)| YamlBomb::ScalarAliases { size, count, key }),
        (1usize..20_000, 0u8..4).prop_map(|(depth, style)| YamlBomb::Deep { depth, style }),
        (1usize..(8 << 20), any::<bool>())
            .prop_map(|(size, quoted)| YamlBomb::HugeScalar { size, quoted }),
        (1usize..(64 << 10), 1usize..16384)
            .prop_map(|(size, count)| YamlBomb::FileReferences { size, count }),
    ]
}

/// The bomb as a YAML mapping document (top-level keys), plus extra files it needs.
fn yaml_bomb_doc(b: &YamlBomb) -> (String, Vec<Entry>) {
    match b {
        YamlBomb::Laughs { levels, width, key } => {
            let mut doc = format!("l0: &l0 [{}]\n", vec!["\"lol\""; *width].join(","));
            for l in 1..=*levels {
                let refs = vec![format!("*l{}", l - 1); *width].join(",");
                doc.push_str(&format!("l{l}: &l{l} [{refs}]\n"));
            }
            doc.push_str(&format!("{key}: {{bomb: *l{levels}}}\n"));
            (doc, Vec::new())
        }
        YamlBomb::ScalarAliases { size, count, key } => {
            let mut doc = format!("s: &s \"{}\"\n{key}: [", "x".repeat(*size));
            doc.push_str(&vec!["*s"; *count].join(","));
            doc.push_str("]\n");
            (doc, Vec::new())
        }
        YamlBomb::Deep { depth, style } => {
            let doc = match style {
                0 => format!("tool: {}{}\n", "[".repeat(*depth), "]".repeat(*depth)),
                1 => format!("tool: {}1{}\n", "{a: ".repeat(*depth), "}".repeat(*depth)),
                2 => {
                    let mut d = String::from("tool:\n");
                    for i in 0..(*depth).min(5000) {
                        d.push_str(&" ".repeat(i + 1));
                        d.push_str("k:\n");
                    }
                    d
                }
                _ => format!("tool: {}x\n", "- ".repeat(*depth)),
            };
            (doc, Vec::new())
        }
        YamlBomb::HugeScalar { size, quoted } => {
            let body = "y".repeat(*size);
            let doc = if *quoted {
                format!("tool: {{identity: \"{body}\"}}\n")
            } else {
                format!("tool:\n  identity: {body}\n")
            };
            (doc, Vec::new())
        }
        YamlBomb::FileReferences { size, count } => {
            let doc = format!("tools: [{}]\n", vec!["tools/big.yaml"; *count].join(","));
            let big = format!("identity: {}\n", "z".repeat(*size));
            (doc, vec![Entry::file("tools/big.yaml", big)])
        }
    }
}

/// Puts the bomb into the manifest, the provider file or the tool file of the tool plugin.
fn yaml_bomb_zip(b: &YamlBomb, place: Place) -> Vec<u8> {
    let (doc, extra) = yaml_bomb_doc(b);
    let mut entries = tool_entries();
    let target = match (b, place) {
        (YamlBomb::FileReferences { .. }, _) => "provider/x.yaml",
        (_, Place::Manifest) => "manifest.yaml",
        (_, Place::Provider) => "provider/x.yaml",
        (_, Place::Tool) => "tools/x.yaml",
    };
    for e in &mut entries {
        if e.name == target {
            let mut content;
            if target == "manifest.yaml" {
                // Keep the real manifest; the bomb's keys come first (later duplicates would
                // make a "duplicate key" error before any expansion).
                content = doc.clone().into_bytes();
                for line in TOOL_MANIFEST.lines() {
                    let key = line.split(':').next().unwrap_or_default();
                    if !doc.lines().any(|l| l.starts_with(&format!("{key}:"))) {
                        content.extend_from_slice(line.as_bytes());
                        content.push(b'\n');
                    }
                }
            } else {
                content = doc.clone().into_bytes();
                if target == "provider/x.yaml" && !doc.starts_with("identity") {
                    content.extend_from_slice(
                        b"identity: {author: tester, name: x, label: {en_US: X}}\n",
                    );
                }
            }
            e.content = content;
        }
    }
    entries.extend(extra);
    build_zip(&entries, None)
}

#[test]
fn fuzz_yaml_bombs() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let place = prop_oneof![
        Just(Place::Manifest),
        Just(Place::Provider),
        Just(Place::Tool)
    ];
    run("yaml_bombs", (yaml_bomb(), place), |(b, place)| {
        let zip = yaml_bomb_zip(&b, place);
        let ok = bounded(|| check_decode(&zip, &DecodeOptions::default(), &[]))?;
        Ok(ok)
    });
}

/// Regression: a 64 KiB scalar referenced 16k times through an alias used to expand into 1 GiB
/// of strings (serde's alias repetition limit counts jumps, not bytes).
#[test]
fn yaml_scalar_alias_bomb_is_refused() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    for place in [Place::Manifest, Place::Provider, Place::Tool] {
        let b = YamlBomb::ScalarAliases {
            size: 64 << 10,
            count: 16 << 10,
            key: "tool",
        };
        let zip = yaml_bomb_zip(&b, place);
        let err = bounded(|| {
            let r = no_panic("decode", || decode(&zip, &DecodeOptions::default()))?;
            Ok(r.err())
        })
        .and_then(|e| e.ok_or_else(|| TestCaseError::fail("bomb decoded")))
        .unwrap_or_else(|e| panic!("{place:?}: {e}"));
        eprintln!("yaml alias bomb in {place:?}: {err}");
    }
}

/// Regression: 200k nested `[` took minutes in the (quadratic) YAML scanner; an 8 MiB scalar of
/// the wrong type ended up verbatim in the manifest error.
#[test]
fn deep_nesting_and_huge_scalars_fail_fast_with_short_messages() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let deep = [
        YamlBomb::Deep {
            depth: 200_000,
            style: 0,
        },
        YamlBomb::Deep {
            depth: 200_000,
            style: 1,
        },
    ]
    .map(|b| (format!("{b:?}"), yaml_bomb_zip(&b, Place::Manifest)));
    let huge = {
        let manifest = TOOL_MANIFEST.replace(
            "resource: {memory: 1048576,",
            &format!("resource: {{memory: \"{}\",", "y".repeat(8 << 20)),
        );
        let mut entries = tool_entries();
        entries[0] = Entry::file("manifest.yaml", manifest);
        (
            "8 MiB string as resource.memory".to_owned(),
            build_zip(&entries, None),
        )
    };
    for (b, zip) in deep.into_iter().chain([huge]) {
        let started = Instant::now();
        let err = decode(&zip, &DecodeOptions::default()).expect_err("bomb decoded");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{b} took {:?}",
            started.elapsed()
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("failed to unmarshal manifest.yaml: ") && msg.len() < 1024,
            "{msg}"
        );
        eprintln!("{b}: {msg}");
    }
}

/// Regression: a provider listing one 64 KiB tool file 16k times used to parse it 16k times and
/// keep every copy (1 GiB).
#[test]
fn repeated_file_references_are_bounded() {
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let b = YamlBomb::FileReferences {
        size: 64 << 10,
        count: 16 << 10,
    };
    let zip = yaml_bomb_zip(&b, Place::Provider);
    let err = bounded(|| {
        let r = no_panic("decode", || decode(&zip, &DecodeOptions::default()))?;
        Ok(r.err())
    })
    .and_then(|e| e.ok_or_else(|| TestCaseError::fail("bomb decoded")))
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("repeated file references: {err}");
}
