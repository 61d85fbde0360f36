//! Which files look like secrets, so that no package ships one by accident.
//!
//! A file is secret-looking by its **name** (matched case-insensitively: `SERVER.PEM`, `TLS.KEY`,
//! `Credentials`, `.env.*`, `*.tfstate`, ...), by its **path** (`.docker/config.json`, anything
//! in `.ssh/`), or by its **content** where that is cheap and certain: a PEM private key (a line
//! that is exactly `-----BEGIN ... PRIVATE KEY-----` followed by key material), a PuTTY key, or a
//! Google credentials JSON (`"type": "service_account"` with a `private_key`, `authorized_user`
//! with a `refresh_token`). A symlink is judged as its target too (`config.txt -> .env`).
//! Only the first [`CONTENT_LIMIT`] bytes of a file are read.

use std::fmt;
use std::io::Read;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// How much of a file is read for a content check.
pub(crate) const CONTENT_LIMIT: u64 = 1 << 20;

/// File names that look like secrets (case-insensitive globs on the file name).
const NAMES: &[&str] = &[
    // dotenv files: `.env`, `.env.production`, `prod.env`
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    // keys and keystores
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.ppk",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    // tool credentials
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".dockercfg",
    ".pgpass",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "credentials.csv",
    "*_accesskeys.csv",
    // Google credentials files
    "service-account*.json",
    "service_account*.json",
    "gcp-key*.json",
    "application_default_credentials.json",
    // infrastructure state and variables
    "*.tfstate",
    "*.tfstate.backup",
    "*.tfvars",
    // secret stores
    "secrets.yaml",
    "secrets.yml",
    "secrets.json",
    "secrets.toml",
];

/// Paths that look like secrets (case-insensitive globs on the path in the function's folder).
const PATHS: &[&str] = &["**/.docker/config.json", "**/.ssh/*"];

/// Secret-looking names that are conventionally safe templates.
const ALLOW: &[&str] = &[".env.example", ".env.sample", ".env.template", ".env.dist"];

/// Why a file looks like a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Why {
    /// Its name or path.
    Name,
    /// What its content is.
    Content(&'static str),
    /// It is a symlink to this secret-looking file (a path in the function's folder).
    LinksTo(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Name => f.write_str("its name"),
            Why::Content(what) => write!(f, "it holds {what}"),
            Why::LinksTo(target) => write!(f, "it is a link to `{target}`"),
        }
    }
}

/// The built-in rules, compiled once per walk.
pub(crate) struct Secrets {
    names: GlobSet,
    paths: GlobSet,
    allow: GlobSet,
}

fn globs(patterns: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
            .expect("built-in globs are valid");
        b.add(glob);
    }
    b.build().expect("built-in globs are valid")
}

impl Secrets {
    pub(crate) fn new() -> Self {
        Secrets {
            names: globs(NAMES),
            paths: globs(PATHS),
            allow: globs(ALLOW),
        }
    }

    /// Whether the path `rel` (in the function's folder, `/`-separated) looks like a secret by
    /// its name or place.
    pub(crate) fn by_name(&self, rel: &str) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        !self.allow.is_match(name) && (self.names.is_match(name) || self.paths.is_match(rel))
    }

    /// Whether an include glob's last part is itself secret-looking (`*.pem`, `.env.*`): a glob
    /// written for secrets ships them knowingly.
    pub(crate) fn names_secrets(&self, glob: &str) -> bool {
        let last = glob
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(glob);
        self.names.is_match(last)
    }

    /// Why the file `rel`, read from `real` (its target when it is a symlink, at `real_rel` in
    /// the function's folder), looks like a secret; `None` when it does not.
    pub(crate) fn check(&self, rel: &str, real: &Path, real_rel: Option<&str>) -> Option<Why> {
        if self.by_name(rel) {
            return Some(Why::Name);
        }
        if let Some(target) = real_rel
            && self.by_name(target)
        {
            return Some(Why::LinksTo(target.to_string()));
        }
        content(real).map(Why::Content)
    }
}

/// What secret a file's first bytes are, if any. An unreadable file is not judged here (the
/// packaging reports it when it reads the file).
fn content(path: &Path) -> Option<&'static str> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(CONTENT_LIMIT)
        .read_to_end(&mut bytes)
        .ok()?;
    content_of(&bytes)
}

/// What secret `bytes` are, if any (see the module's doc).
pub(crate) fn content_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PuTTY-User-Key-File-") {
        return Some("a PuTTY private key");
    }
    if has_pem_private_key(bytes) {
        return Some("a PEM private key");
    }
    google_credentials(bytes)
}

/// A line that is exactly a PEM private-key header, followed by key material: base64 or the
/// `Proc-Type:` header of an encrypted legacy key. A string literal in code that merely
/// mentions the header is not one.
fn has_pem_private_key(bytes: &[u8]) -> bool {
    const MARK: &[u8] = b"PRIVATE KEY-----";
    if !bytes.windows(MARK.len()).any(|w| w == MARK) {
        return false;
    }
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        let line = line.trim_ascii();
        if !(line.starts_with(b"-----BEGIN ") && line.ends_with(MARK)) {
            continue;
        }
        let Some(next) = lines.next().map(<[u8]>::trim_ascii) else {
            return false;
        };
        let base64 = next.len() >= 16
            && next
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if base64 || next.starts_with(b"Proc-Type:") {
            return true;
        }
    }
    false
}

/// A Google service-account key or user credentials file.
fn google_credentials(bytes: &[u8]) -> Option<&'static str> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if !has(b"\"private_key\"") && !has(b"\"refresh_token\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str());
    match text("type")? {
        "service_account" if text("private_key").is_some() => {
            Some("a Google service-account private key")
        }
        "authorized_user" if text("refresh_token").is_some() => {
            Some("Google user credentials with a refresh token")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively() {
        let s = Secrets::new();
        for rel in [
            "SERVER.PEM",
            "fn/TLS.KEY",
            "Credentials",
            "service-account.json",
            "gcp-key.json",
            ".git-credentials",
            ".dockercfg",
            "conf/.docker/config.json",
            ".pgpass",
            ".htpasswd",
            "prod.env",
            ".env.local",
            ".ENV",
            "putty.ppk",
            "app.JKS",
            "release.keystore",
            "terraform.tfstate",
            "terraform.tfstate.backup",
            "secrets.yaml",
            "secrets.json",
            "id_ed25519",
            "id_rsa.pub",
            ".ssh/github",
            ".npmrc",
            ".pypirc",
        ] {
            assert!(s.by_name(rel), "{rel} should look like a secret");
        }
        for rel in [
            "app.py",
            ".env.example",
            "config.json",
            "docker/config.json",
            "keys.py",
            "environment.py",
            "my-key.json",
            "identity.py",
        ] {
            assert!(!s.by_name(rel), "{rel} should not look like a secret");
        }
    }

    #[test]
    fn pem_private_keys_are_found_by_content_not_by_a_mention() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAwJ1x2bq3\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(content_of(key.as_bytes()), Some("a PEM private key"));
        let bundle = format!(
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\r\n{}",
            key.replace('\n', "\r\n")
        );
        assert_eq!(content_of(bundle.as_bytes()), Some("a PEM private key"));
        let encrypted = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n";
        assert_eq!(content_of(encrypted.as_bytes()), Some("a PEM private key"));
        let code = "if text.startswith(\"-----BEGIN PRIVATE KEY-----\"):\n    parse(text)\n";
        assert_eq!(content_of(code.as_bytes()), None);
        let certificate =
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        assert_eq!(content_of(certificate.as_bytes()), None);
        assert_eq!(
            content_of(b"PuTTY-User-Key-File-3: ssh-ed25519\n"),
            Some("a PuTTY private key")
        );
    }

    #[test]
    fn google_credentials_are_found_by_content() {
        let sa = r#"{"type": "service_account", "project_id": "p", "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n"}"#;
        assert_eq!(
            content_of(sa.as_bytes()),
            Some("a Google service-account private key")
        );
        let user = r#"{"type": "authorized_user", "client_id": "c", "refresh_token": "1//x"}"#;
        assert!(content_of(user.as_bytes()).is_some());
        // The same keys in other JSON are data, not credentials.
        assert_eq!(content_of(br#"{"private_key": "x", "type": "demo"}"#), None);
        assert_eq!(content_of(br#"{"type": "service_account"}"#), None);
    }
}
