//! `dify signature …` (PSC §9.3): generate an RSA key pair, sign a `.difypkg`, verify one.
//!
//! Status goes to stderr; every failure is an error (exit code 1).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use plugind_package as package;

#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Generate an RSA-4096 key pair: <filename>.private.pem and <filename>.public.pem (PKCS#1).
    Generate {
        /// Base name of the two key files.
        #[arg(
            short = 'f',
            long = "filename",
            default_value = "dify_plugin_signing_key"
        )]
        filename: String,
    },
    /// Sign a .difypkg with a private key; writes <name>.signed.difypkg next to it.
    Sign {
        /// The package to sign.
        difypkg_path: PathBuf,
        /// PEM file of the private key (`RSA PRIVATE KEY`).
        #[arg(short = 'p', long = "private_key")]
        private_key: PathBuf,
        /// Category recorded in .verification.dify.json: langgenius, partner or community
        /// (case-insensitive).
        #[arg(
            short = 'c',
            long = "authorized_category",
            default_value = "langgenius"
        )]
        authorized_category: String,
    },
    /// Verify a .difypkg's signature with a public key, or with the official key when none is
    /// given.
    Verify {
        /// The package to verify.
        difypkg_path: PathBuf,
        /// PEM file of the public key (`RSA PUBLIC KEY`); the official Langgenius key when
        /// omitted.
        #[arg(short = 'p', long = "public_key")]
        public_key: Option<PathBuf>,
    },
}

pub fn run(cmd: SignatureCommand) -> anyhow::Result<()> {
    match cmd {
        SignatureCommand::Generate { filename } => generate(&filename),
        SignatureCommand::Sign {
            difypkg_path,
            private_key,
            authorized_category,
        } => sign(&difypkg_path, &private_key, &authorized_category),
        SignatureCommand::Verify {
            difypkg_path,
            public_key,
        } => verify(&difypkg_path, public_key.as_deref()),
    }
}

fn generate(filename: &str) -> anyhow::Result<()> {
    if filename.is_empty() {
        bail!("the key pair file name must not be empty");
    }
    let private_path = PathBuf::from(format!("{filename}.private.pem"));
    let public_path = PathBuf::from(format!("{filename}.public.pem"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            bail!(
                "{} already exists; remove it or choose another name with -f",
                path.display()
            );
        }
    }
    eprintln!(
        "generating a {}-bit RSA key pair...",
        package::DEFAULT_KEY_BITS
    );
    let (private, public) = package::generate_key_pair(package::DEFAULT_KEY_BITS)
        .context("failed to generate key pair")?;
    let private_pem = package::private_key_to_pem(&private)?;
    let public_pem = package::public_key_to_pem(&public)?;
    write_new(&private_path, private_pem.as_bytes(), 0o600)
        .with_context(|| format!("failed to write private key {}", private_path.display()))?;
    if let Err(e) = write_new(&public_path, public_pem.as_bytes(), 0o644) {
        let _ = fs::remove_file(&private_path);
        return Err(e)
            .with_context(|| format!("failed to write public key {}", public_path.display()));
    }
    eprintln!(
        "key pair generated successfully: private key {}, public key {}",
        private_path.display(),
        public_path.display()
    );
    Ok(())
}

/// Creates `path` (which must not exist) with `mode` on Unix.
fn write_new(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

fn sign(difypkg_path: &Path, private_key: &Path, category: &str) -> anyhow::Result<()> {
    let Some(verification) = package::authorized_verification(category) else {
        bail!(
            "invalid authorized category {category:?}: must be one of {}",
            package::AUTHORIZED_CATEGORIES.join(", ")
        );
    };
    let plugin = fs::read(difypkg_path)
        .with_context(|| format!("failed to read plugin file {}", difypkg_path.display()))?;
    let pem = fs::read_to_string(private_key)
        .with_context(|| format!("failed to read private key file {}", private_key.display()))?;
    let key = package::parse_private_key_pem(&pem)
        .with_context(|| format!("failed to load private key {}", private_key.display()))?;
    let time = chrono::Utc::now().timestamp();
    let signed = package::sign(&plugin, &key, Some(&verification), time)
        .with_context(|| format!("failed to sign plugin {}", difypkg_path.display()))?;
    let output = signed_path(difypkg_path);
    fs::write(&output, signed)
        .with_context(|| format!("failed to write signed plugin file {}", output.display()))?;
    eprintln!(
        "plugin signed successfully (authorized category {}): {}",
        verification.authorized_category,
        output.display()
    );
    Ok(())
}

/// `dir/name.difypkg` → `dir/name.signed.difypkg` (the last extension, like Go's
/// `filepath.Ext`; no extension → `name.signed`).
fn signed_path(input: &Path) -> PathBuf {
    let base = input
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.rfind('.') {
        Some(dot) => format!("{}.signed{}", &base[..dot], &base[dot..]),
        None => format!("{base}.signed"),
    };
    input.with_file_name(name)
}

fn verify(difypkg_path: &Path, public_key: Option<&Path>) -> anyhow::Result<()> {
    let plugin = fs::read(difypkg_path)
        .with_context(|| format!("failed to read plugin file {}", difypkg_path.display()))?;
    let (keys, which) = match public_key {
        Some(path) => {
            let pem = fs::read_to_string(path)
                .with_context(|| format!("failed to read public key file {}", path.display()))?;
            let key = package::parse_public_key_pem(&pem)
                .with_context(|| format!("failed to load public key {}", path.display()))?;
            (vec![key], format!("public key {}", path.display()))
        }
        None => (
            vec![package::official_public_key()],
            "official public key".to_owned(),
        ),
    };
    let verification = package::verification_with(&plugin, &keys)
        .with_context(|| format!("failed to open plugin {}", difypkg_path.display()))?;
    match verification {
        Some(v) => {
            eprintln!(
                "plugin verified successfully with the {which} (authorized category {})",
                v.authorized_category
            );
            Ok(())
        }
        None => bail!(
            "plugin {} failed verification with the {which}: missing or bad signature",
            difypkg_path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::signed_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn signed_output_names() {
        assert_eq!(
            signed_path(Path::new("a/b/agent.difypkg")),
            PathBuf::from("a/b/agent.signed.difypkg")
        );
        assert_eq!(
            signed_path(Path::new("agent")),
            PathBuf::from("agent.signed")
        );
        assert_eq!(
            signed_path(Path::new("x.y.difypkg")),
            PathBuf::from("x.y.signed.difypkg")
        );
    }
}
