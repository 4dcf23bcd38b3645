//! `dify bundle …` (PSC §9.2): create a bundle directory, edit its dependencies, package it into
//! a `.difybndl`, list what it holds.
//!
//! `<bundle>` is a bundle directory or a bundle zip; a zip is rewritten in place when saved.
//! Unlike upstream's TUI, `init` and `regenerate` take flags, so they work in scripts. Status
//! goes to stderr, `analyze`'s listing to stdout; every failure is an error (exit code 1).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use plugind_package::{self as package, Bundle, BundleManifest, DecodeOptions, Dependency};

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Create ./<name>/ with manifest.yaml, README.md and _assets/icon.svg.
    Init {
        /// Bundle name (^[a-z0-9_-]{1,128}$); also the directory created.
        #[arg(long)]
        name: String,
        /// Author (^[a-z0-9_-]{1,64}$).
        #[arg(long)]
        author: String,
        /// Description (all four languages).
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Append a dependency.
    Append {
        #[command(subcommand)]
        command: AppendCommand,
    },
    /// Remove dependency number <index> (0-based, as `analyze` lists them) and its asset.
    Remove {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        #[arg(short = 'i', long = "index")]
        index: usize,
    },
    /// Replace the bundle's name, labels, author and/or description.
    Regenerate {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        /// New name (also sets the labels).
        #[arg(long)]
        name: Option<String>,
        /// New author.
        #[arg(long)]
        author: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Set the bundle version.
    Bump {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        /// New version (^\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?$).
        #[arg(short = 't', long = "target_version")]
        target_version: String,
    },
    /// Package a bundle into a zip (default <basename>.difybndl in the current directory).
    Package {
        /// Bundle directory (or bundle zip).
        bundle_path: PathBuf,
        /// Output file.
        #[arg(short = 'o', long = "output_path")]
        output_path: Option<PathBuf>,
    },
    /// List the dependencies with their parsed parts and package assets.
    Analyze {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppendCommand {
    /// Append a github dependency (owner/repo:<version>/<asset>).
    Github {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        #[arg(short = 'r', long = "repo_pattern")]
        repo_pattern: String,
    },
    /// Append a marketplace dependency (organization/plugin:<version>).
    Marketplace {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        #[arg(short = 'm', long = "marketplace_pattern")]
        marketplace_pattern: String,
    },
    /// Append a local .difypkg: stored as _assets/<checksum>.
    Package {
        /// Bundle directory or bundle zip.
        bundle_path: PathBuf,
        #[arg(short = 'p', long = "package_path")]
        package_path: PathBuf,
    },
}

pub fn run(cmd: BundleCommand) -> anyhow::Result<()> {
    match cmd {
        BundleCommand::Init {
            name,
            author,
            description,
        } => init(Path::new("."), &name, &author, &description).map(|_| ()),
        BundleCommand::Append { command } => append(command),
        BundleCommand::Remove { bundle_path, index } => edit(&bundle_path, |bundle| {
            let removed = bundle.remove(index)?;
            Ok(format!("removed dependency {index} ({})", removed.kind()))
        }),
        BundleCommand::Regenerate {
            bundle_path,
            name,
            author,
            description,
        } => edit(&bundle_path, |bundle| {
            regenerate(bundle, name, author, description)
        }),
        BundleCommand::Bump {
            bundle_path,
            target_version,
        } => edit(&bundle_path, |bundle| {
            bundle.bump_version(&target_version)?;
            Ok(format!("bundle version set to {target_version}"))
        }),
        BundleCommand::Package {
            bundle_path,
            output_path,
        } => package_bundle(&bundle_path, output_path),
        BundleCommand::Analyze { bundle_path } => analyze(&bundle_path),
    }
}

fn append(cmd: AppendCommand) -> anyhow::Result<()> {
    match cmd {
        AppendCommand::Github {
            bundle_path,
            repo_pattern,
        } => edit(&bundle_path, |bundle| {
            bundle.append_github(&repo_pattern)?;
            Ok(format!("added github dependency {repo_pattern}"))
        }),
        AppendCommand::Marketplace {
            bundle_path,
            marketplace_pattern,
        } => edit(&bundle_path, |bundle| {
            bundle.append_marketplace(&marketplace_pattern)?;
            Ok(format!(
                "added marketplace dependency {marketplace_pattern}"
            ))
        }),
        AppendCommand::Package {
            bundle_path,
            package_path,
        } => {
            let bytes = fs::read(&package_path)
                .with_context(|| format!("failed to read package {}", package_path.display()))?;
            edit(&bundle_path, |bundle| {
                let checksum = bundle.append_package(bytes)?;
                Ok(format!(
                    "added package dependency {} as _assets/{checksum}",
                    package_path.display()
                ))
            })
        }
    }
}

/// Creates `<parent>/<name>/` and returns its path. The directory must not exist yet; on failure
/// what was created is removed.
pub(crate) fn init(
    parent: &Path,
    name: &str,
    author: &str,
    description: &str,
) -> anyhow::Result<PathBuf> {
    let manifest = BundleManifest::new(name, author, description)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let mut bundle = Bundle::new(manifest);
    bundle
        .assets
        .insert("icon.svg".to_owned(), ICON_SVG.as_bytes().to_vec());
    bundle.extra_files.insert(
        "README.md".to_owned(),
        readme(name, author, &bundle.manifest.version).into_bytes(),
    );
    fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let written = package::save_bundle_dir(&bundle, &dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let workflows = dir.join(".github").join("workflows");
            fs::create_dir_all(&workflows)
                .with_context(|| format!("failed to create {}", workflows.display()))
        });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(e.context(format!("failed to create bundle {}", dir.display())));
    }
    eprintln!("bundle created successfully: {}", dir.display());
    Ok(dir)
}

fn readme(name: &str, author: &str, version: &str) -> String {
    let date = chrono::Local::now().format("%Y-%m-%d");
    format!(
        "# {name}\n\n- Author: {author}\n- Version: {version}\n- Created: {date}\n\n\
         ## Dependencies\n\nDescribe the plugins this bundle installs and why they belong together.\n"
    )
}

/// A plain bundle icon (a stack of three boxes).
const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" viewBox="0 0 100 100">
  <g fill="none" stroke="#1f2937" stroke-width="5" stroke-linejoin="round">
    <rect x="18" y="14" width="64" height="20" rx="4"/>
    <rect x="18" y="40" width="64" height="20" rx="4"/>
    <rect x="18" y="66" width="64" height="20" rx="4"/>
  </g>
</svg>
"##;

fn regenerate(
    bundle: &mut Bundle,
    name: Option<String>,
    author: Option<String>,
    description: Option<String>,
) -> anyhow::Result<String> {
    if name.is_none() && author.is_none() && description.is_none() {
        bail!("nothing to change: give --name, --author and/or --description");
    }
    let current = &bundle.manifest;
    let fresh = BundleManifest::new(
        name.as_deref().unwrap_or(&current.name),
        author.as_deref().unwrap_or(&current.author),
        description.as_deref().unwrap_or(&current.description.en_us),
    )?;
    let manifest = &mut bundle.manifest;
    if name.is_some() {
        manifest.name = fresh.name;
        manifest.labels = fresh.labels;
    }
    if author.is_some() {
        manifest.author = fresh.author;
    }
    if description.is_some() {
        manifest.description = fresh.description;
    }
    Ok("bundle regenerated".to_owned())
}

/// Where a bundle was read from, to save it back there.
enum Source {
    Dir(PathBuf),
    Zip(PathBuf),
}

fn load(path: &Path) -> anyhow::Result<(Bundle, Source)> {
    let meta =
        fs::metadata(path).with_context(|| format!("failed to load bundle {}", path.display()))?;
    if meta.is_dir() {
        let bundle = package::load_bundle_dir(path)
            .with_context(|| format!("failed to load bundle {}", path.display()))?;
        Ok((bundle, Source::Dir(path.to_path_buf())))
    } else {
        let bytes =
            fs::read(path).with_context(|| format!("failed to read bundle {}", path.display()))?;
        let bundle = package::decode_bundle(&bytes)
            .with_context(|| format!("failed to load bundle {}", path.display()))?;
        Ok((bundle, Source::Zip(path.to_path_buf())))
    }
}

fn save(bundle: &Bundle, source: &Source) -> anyhow::Result<()> {
    match source {
        Source::Dir(dir) => package::save_bundle_dir(bundle, dir)
            .with_context(|| format!("failed to save bundle {}", dir.display())),
        Source::Zip(path) => {
            let bytes = package::encode_bundle(bundle)?;
            write_replacing(path, &bytes)
                .with_context(|| format!("failed to save bundle {}", path.display()))
        }
    }
}

/// Loads the bundle, applies `change`, saves it back; prints what changed.
fn edit(
    path: &Path,
    change: impl FnOnce(&mut Bundle) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let (mut bundle, source) = load(path)?;
    let message = change(&mut bundle)?;
    save(&bundle, &source)?;
    eprintln!("{message}");
    Ok(())
}

/// Writes `path` through a temporary file beside it and a rename.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&temp, bytes)?;
    fs::rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

fn package_bundle(bundle_path: &Path, output: Option<PathBuf>) -> anyhow::Result<()> {
    let output = match output {
        Some(path) => path,
        None => {
            let Some(base) = bundle_path.file_name() else {
                bail!(
                    "invalid input path {}: run this from outside the bundle directory or give -o",
                    bundle_path.display()
                );
            };
            PathBuf::from(format!("{}.difybndl", base.to_string_lossy()))
        }
    };
    let (bundle, _) = load(bundle_path)?;
    let bytes = package::encode_bundle(&bundle).context("failed to export bundle")?;
    fs::write(&output, bytes).with_context(|| format!("failed to write {}", output.display()))?;
    eprintln!("bundle packaged successfully: {}", output.display());
    Ok(())
}

fn analyze(bundle_path: &Path) -> anyhow::Result<()> {
    let (bundle, _) = load(bundle_path)?;
    let m = &bundle.manifest;
    println!("bundle {} {} by {}", m.name, m.version, m.author);
    if m.dependencies.is_empty() {
        println!("no dependencies");
        return Ok(());
    }
    let mut missing = 0;
    for (i, dependency) in m.dependencies.iter().enumerate() {
        match dependency {
            Dependency::Github(dep) => {
                let p = dep.parts();
                println!(
                    "[{i}] github {}: repo {}, release {}, asset {}",
                    dep.repo_pattern, p.repo_address, p.release, p.packages
                );
            }
            Dependency::Marketplace(dep) => {
                let p = dep.parts();
                println!(
                    "[{i}] marketplace {}: organization {}, plugin {}, version {}",
                    dep.marketplace_pattern, p.organization, p.plugin, p.version
                );
            }
            Dependency::Package(dep) => match bundle.asset(&dep.path) {
                Some(bytes) => {
                    let opts = DecodeOptions {
                        max_uncompressed_size: u64::MAX,
                        public_keys: Vec::new(),
                    };
                    let what = match package::decode(bytes, &opts) {
                        Ok(pkg) => format!(
                            "{}{}",
                            pkg.uid,
                            if pkg.verified {
                                ", signed"
                            } else {
                                ", unsigned"
                            }
                        ),
                        Err(e) => format!("not a valid package: {e}"),
                    };
                    println!("[{i}] package {}: {} bytes, {what}", dep.path, bytes.len());
                }
                None => {
                    missing += 1;
                    println!("[{i}] package {}: asset not found in the bundle", dep.path);
                }
            },
            Dependency::Unknown(kind) => {
                println!("[{i}] unknown dependency type {kind:?} (skipped)")
            }
        }
    }
    if missing > 0 {
        bail!("{missing} package dependencies refer to missing assets");
    }
    Ok(())
}
