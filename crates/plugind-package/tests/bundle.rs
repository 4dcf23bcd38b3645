//! Bundles (PSC Part 3), built at run time around a signed package packed from
//! `tests/fixtures/agent`.

use std::io::{Cursor, Write};

use plugind_package::*;
use zip::write::SimpleFileOptions;

mod support;

fn fixture() -> Vec<u8> {
    support::signed_package().to_vec()
}

fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        out.start_file(*name, SimpleFileOptions::default())
            .expect("start");
        out.write_all(content).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

fn entry_names(bytes: &[u8]) -> Vec<String> {
    let src = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..src.len())
        .map(|i| src.name_for_index(i).expect("name").to_owned())
        .collect()
}

fn sample() -> Bundle {
    let mut bundle =
        Bundle::new(BundleManifest::new("my-bundle", "someone", "A bundle").expect("manifest"));
    bundle
        .assets
        .insert("icon.svg".to_owned(), b"<svg/>".to_vec());
    bundle
        .extra_files
        .insert("README.md".to_owned(), b"# Bundle\n".to_vec());
    bundle
        .append_github("owner/repo:1.0.0/plugin.difypkg")
        .expect("github");
    bundle
        .append_marketplace("langgenius/openai:^1.0.0")
        .expect("marketplace");
    let checksum = bundle.append_package(fixture()).expect("package");
    assert_eq!(checksum, support::signed_checksum());
    bundle
}

#[test]
fn github_patterns() {
    for ok in [
        "owner/repo:1.0.0/plugin.difypkg",
        "owner/repo:1.x.x/manifest.yaml",
        "owner/repo:1.X.x/manifest.yaml",
        "owner/repo:~1.0.0/plugin.difypkg",
        "owner/repo:^1.0.0/plugin.difypkg",
        "owner/repo:1.0.0-2.0.0/plugin.difypkg",
        "owner/repo:1.0.0-beta/plugin.difypkg",
        "owner/repo:1.0.0-beta-2.0.0/*.difypkg",
        "my_org-1/my_repo-2:0.0.1/a b.difypkg",
    ] {
        assert!(validate_github_pattern(ok).is_ok(), "{ok}");
    }
    for bad in [
        "Owner/repo:1.0.0/plugin.difypkg",
        "owner/Repo:1.0.0/plugin.difypkg",
        "owner/repo:1.0/plugin.difypkg",
        "owner/repo:1.0.0.1/plugin.difypkg",
        "owner/repo:1.0.0-/plugin.difypkg",
        "owner/repo:1.0.0-abcdefghijklmnopq/plugin.difypkg",
        "owner/repo:1.0.0",
        "owner/repo:1.0.0/",
        "owner/repo:1.0.0/a/b.difypkg",
        "owner/repo/1.0.0/plugin.difypkg",
        "owner/repo:12345.0.0/plugin.difypkg",
        "owner/repo:1.x/plugin.difypkg",
        "owner/repo:١.0.0/plugin.difypkg",
        "",
    ] {
        let err = validate_github_pattern(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("invalid github repo pattern"),
            "{err}"
        );
    }
    let parts = GithubDependency {
        repo_pattern: "owner/repo:1.0.0-2.0.0/plugin.difypkg".to_owned(),
    }
    .parts();
    assert_eq!(
        serde_json::to_value(&parts).expect("json"),
        serde_json::json!({
            "repo_address": "https://github.com/owner/repo",
            "repo": "owner/repo",
            "release": "1.0.0-2.0.0",
            "packages": "plugin.difypkg",
        })
    );
    // Not validated on read: too few pieces give empty parts.
    let short = GithubDependency {
        repo_pattern: "owner".to_owned(),
    };
    assert_eq!(short.parts(), GithubParts::default());
}

#[test]
fn marketplace_patterns() {
    for ok in [
        "langgenius/openai:1.0.0",
        "owner/plugin:1.0.0-beta",
        "owner/plugin:1.x.x",
        "owner/plugin:~1.0.0",
        "owner/plugin:^1.0.0",
        "owner/plugin:1.0.0-2.0.0",
        "owner/plugin:1234.5678.9999-abcdefghijklmnop",
    ] {
        assert!(validate_marketplace_pattern(ok).is_ok(), "{ok}");
    }
    for bad in [
        "Langgenius/openai:1.0.0",
        "langgenius/OpenAI:1.0.0",
        "langgenius/openai:1.0",
        "langgenius/openai:1.0.0.1",
        "langgenius/openai:1.0.0-",
        "langgenius/openai:1.0.0-abcdefghijklmnopq",
        "langgenius/openai:1.0.0/extra",
        "langgenius/openai",
        "langgenius:1.0.0",
        "",
    ] {
        let err = validate_marketplace_pattern(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("invalid marketplace pattern"),
            "{err}"
        );
    }
    let parts = MarketplaceDependency {
        marketplace_pattern: "langgenius/openai:^1.0.0".to_owned(),
    }
    .parts();
    assert_eq!(
        serde_json::to_value(&parts).expect("json"),
        serde_json::json!({"organization": "langgenius", "plugin": "openai", "version": "^1.0.0"})
    );
}

#[test]
fn versions() {
    for ok in [
        "0.0.1",
        "1.2.3",
        "1234.0.0",
        "1.0.0-beta_1",
        "1.0.0-abcdefghijklmnop",
    ] {
        assert!(is_valid_version(ok), "{ok}");
    }
    for bad in [
        "",
        "1.0",
        "1.0.0.1",
        "1.0.0-",
        "v1.0.0",
        "1.0.0-abcdefghijklmnopq",
        "12345.0.0",
    ] {
        assert!(!is_valid_version(bad), "{bad}");
    }
    let mut bundle = sample();
    bundle.bump_version("1.2.3").expect("bump");
    assert_eq!(bundle.manifest.version, "1.2.3");
    assert!(matches!(
        bundle.bump_version("1.2"),
        Err(PackageError::InvalidVersion(_))
    ));
    assert_eq!(bundle.manifest.version, "1.2.3");
}

#[test]
fn encode_decode_round_trip() {
    let bundle = sample();
    let bytes = encode_bundle(&bundle).expect("encode");
    assert_eq!(
        entry_names(&bytes),
        [
            "manifest.yaml".to_owned(),
            format!("_assets/{}", support::signed_checksum()),
            "_assets/icon.svg".to_owned(),
            "README.md".to_owned(),
        ]
    );
    let decoded = decode_bundle(&bytes).expect("decode");
    assert_eq!(decoded, bundle);

    let manifest = &decoded.manifest;
    assert_eq!(manifest.name, "my-bundle");
    assert_eq!(manifest.version, "0.0.1");
    assert_eq!(manifest.icon, "icon.svg");
    assert_eq!(manifest.kind, "bundle");
    assert_eq!(manifest.labels.zh_hans, "my-bundle");
    assert_eq!(manifest.description.pt_br, "A bundle");
    assert!(manifest.tags.is_empty());
    let kinds: Vec<&str> = manifest.dependencies.iter().map(Dependency::kind).collect();
    assert_eq!(kinds, ["github", "marketplace", "package"]);

    // The YAML has upstream's shape.
    let yaml = manifest.to_yaml().expect("yaml");
    let value: serde_json::Value = serde_norway::from_str(&yaml).expect("yaml parses");
    assert_eq!(
        value["dependencies"],
        serde_json::json!([
            {"type": "github", "value": {"repo_pattern": "owner/repo:1.0.0/plugin.difypkg"}},
            {"type": "marketplace", "value": {"marketplace_pattern": "langgenius/openai:^1.0.0"}},
            {"type": "package", "value": {"path": support::signed_checksum()}},
        ])
    );
    assert_eq!(value["tags"], serde_json::json!([]));
    assert_eq!(value["type"], "bundle");
}

#[test]
fn package_dependency_points_at_the_signed_package() {
    let bytes = encode_bundle(&sample()).expect("encode");
    let bundle = decode_bundle(&bytes).expect("decode");
    let Some(Dependency::Package(dep)) = bundle.manifest.dependencies.get(2) else {
        panic!("third dependency is a package");
    };
    assert_eq!(dep.path, support::signed_checksum());
    let package = bundle.asset(&dep.path).expect("asset present");
    assert_eq!(package, fixture().as_slice());
    let decoded = decode(package, &support::with_key()).expect("package decodes");
    assert!(decoded.verified);
    assert_eq!(decoded.declaration.author, "tester");
    assert_eq!(decoded.declaration.name, "agent");
    assert_eq!(decoded.checksum, support::signed_checksum());
}

#[test]
fn append_package_rejects_non_packages() {
    let mut bundle = sample();
    let before = bundle.clone();
    let err = bundle
        .append_package(b"not a zip".to_vec())
        .expect_err("not a package");
    assert!(matches!(err, PackageError::InvalidPackage(_)), "{err}");
    assert!(err
        .to_string()
        .ends_with("please provide a valid difypkg file"));
    let no_manifest = make_zip(&[("main.py", b"print()")]);
    assert!(bundle.append_package(no_manifest).is_err());
    assert_eq!(bundle, before);
    assert!(bundle.append_github("Bad/Pattern:1.0.0/x").is_err());
    assert!(bundle.append_marketplace("bad").is_err());
    assert_eq!(bundle, before);
}

#[test]
fn remove_takes_the_asset_along() {
    let mut bundle = sample();
    assert!(matches!(
        bundle.remove(3),
        Err(PackageError::DependencyIndex { index: 3, len: 3 })
    ));
    let removed = bundle.remove(2).expect("remove package");
    assert_eq!(removed.kind(), "package");
    assert!(bundle.asset(&support::signed_checksum()).is_none());
    assert!(bundle.asset("icon.svg").is_some());
    let removed = bundle.remove(0).expect("remove github");
    assert_eq!(removed.kind(), "github");
    assert_eq!(bundle.manifest.dependencies.len(), 1);
    assert_eq!(bundle.manifest.dependencies[0].kind(), "marketplace");
}

#[test]
fn upstream_shaped_manifest_is_read_leniently() {
    let yaml = [
        "name: my-bundle",
        "labels: {en_US: My bundle}",
        "description: {en_US: d}",
        "icon: icon.svg",
        "version: 1.0",
        "author: someone",
        "type: bundle",
        "dependencies:",
        "  - type: github",
        "    value: {repo_pattern: \"owner/repo:1.0.0/plugin.difypkg\"}",
        "  - type: something-new",
        "    value: {whatever: 1}",
        "  - type: marketplace",
        "    value: {marketplace_pattern: \"Not Valid\"}",
        "  - type: package",
        "    value: {path: abc}",
        "  - type: package",
        "",
    ]
    .join("\n");
    let bytes = make_zip(&[
        ("manifest.yaml", yaml.as_bytes()),
        ("_assets/", b""),
        ("_assets/abc", b"pkg"),
        ("README.md", b"readme"),
        ("README_zh_Hans.md", b"readme zh"),
        ("docs/README.md", b"not extra"),
        ("other.txt", b"ignored"),
    ]);
    let bundle = decode_bundle(&bytes).expect("decode");
    let m = &bundle.manifest;
    assert_eq!(m.version, "1.0");
    assert!(m.tags.is_empty());
    assert_eq!(m.labels.en_us, "My bundle");
    assert_eq!(m.dependencies.len(), 5);
    assert_eq!(
        m.dependencies[1],
        Dependency::Unknown("something-new".to_owned())
    );
    // Patterns are not validated on read.
    assert!(
        matches!(&m.dependencies[2], Dependency::Marketplace(d) if d.marketplace_pattern == "Not Valid")
    );
    assert_eq!(
        m.dependencies[4],
        Dependency::Package(PackageDependency::default())
    );
    assert_eq!(bundle.assets.keys().collect::<Vec<_>>(), ["abc"]);
    assert_eq!(
        bundle.extra_files.keys().collect::<Vec<_>>(),
        ["README.md", "README_zh_Hans.md"]
    );
    // The unknown dependency is written back with a null value.
    let again = decode_bundle(&encode_bundle(&bundle).expect("encode")).expect("decode");
    assert_eq!(again, bundle);
    let yaml = bundle.manifest.to_yaml().expect("yaml");
    let value: serde_json::Value = serde_norway::from_str(&yaml).expect("yaml");
    assert_eq!(
        value["dependencies"][1],
        serde_json::json!({"type": "something-new", "value": null})
    );
}

#[test]
fn broken_bundles_are_errors() {
    let err = decode_bundle(b"not a zip").expect_err("not a zip");
    assert!(matches!(err, PackageError::DecodeBundle(_)));
    assert!(
        err.to_string().ends_with("\nfailed to decode bundle"),
        "{err}"
    );

    let err = decode_bundle(&make_zip(&[("README.md", b"x")])).expect_err("no manifest");
    assert_eq!(
        err.to_string(),
        "open manifest.yaml: file does not exist\nfailed to decode bundle"
    );

    for yaml in [
        "name: [unclosed",
        "dependencies: {a: 1}",
        "dependencies:\n  - type: github\n    value: just-a-string\n",
        "name: {a: b}",
    ] {
        let err = decode_bundle(&make_zip(&[("manifest.yaml", yaml.as_bytes())])).expect_err(yaml);
        assert!(
            matches!(err, PackageError::BundleManifest(_)),
            "{yaml}: {err}"
        );
        assert!(err
            .to_string()
            .ends_with("\nfailed to load bundle manifest"));
    }
    // An empty manifest is an empty bundle, not an error (no struct validation upstream).
    let empty = decode_bundle(&make_zip(&[("manifest.yaml", b"")])).expect("empty manifest");
    assert_eq!(empty.manifest, BundleManifest::default());
}

#[test]
fn init_manifest_rules() {
    assert!(BundleManifest::new("my-bundle", "me", "").is_ok());
    assert!(matches!(
        BundleManifest::new("My Bundle", "me", "d"),
        Err(PackageError::InvalidName)
    ));
    assert!(matches!(
        BundleManifest::new("../x", "me", "d"),
        Err(PackageError::InvalidName)
    ));
    assert!(matches!(
        BundleManifest::new("ok", "Me", "d"),
        Err(PackageError::InvalidAuthor)
    ));
}

#[test]
fn directory_form_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("my-bundle");
    let mut bundle = sample();
    bundle
        .assets
        .insert("nested/logo.png".to_owned(), vec![1, 2, 3]);
    save_bundle_dir(&bundle, &dir).expect("save");
    assert!(dir.join("manifest.yaml").is_file());
    assert!(dir.join("README.md").is_file());
    assert!(dir.join("_assets/icon.svg").is_file());
    assert!(dir.join("_assets/nested/logo.png").is_file());
    assert!(dir
        .join("_assets")
        .join(support::signed_checksum())
        .is_file());
    assert!(!dir.join(".manifest.yaml.tmp").exists());

    let loaded = load_bundle_dir(&dir).expect("load");
    assert_eq!(loaded, bundle);

    // Removing the package dependency removes its file on save.
    let mut changed = loaded;
    changed.remove(2).expect("remove");
    save_bundle_dir(&changed, &dir).expect("save");
    assert!(!dir
        .join("_assets")
        .join(support::signed_checksum())
        .exists());
    assert_eq!(load_bundle_dir(&dir).expect("load"), changed);

    // The zip of a directory bundle decodes to the same bundle.
    let zipped = encode_bundle(&load_bundle_dir(&dir).expect("load")).expect("encode");
    assert_eq!(decode_bundle(&zipped).expect("decode"), changed);

    // A directory without manifest or without _assets.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).expect("mkdir");
    assert!(matches!(
        load_bundle_dir(&bare),
        Err(PackageError::DecodeBundle(_))
    ));
    std::fs::write(bare.join("manifest.yaml"), "name: bare\n").expect("write");
    let loaded = load_bundle_dir(&bare).expect("load bare");
    assert_eq!(loaded.manifest.name, "bare");
    assert!(loaded.assets.is_empty());
}
