//! Secret values of local deployments, kept outside every project:
//! `$XDG_DATA_HOME/nimbus/local/secrets/<service>/<stage>.json` (else under
//! `~/.local/share`), the folders 0700 and the files 0600, next to the deployment registry.
//!
//! Values are never written to the project, its packages, the state folder or `deployment.json`:
//! the runtime reads them here when it starts each worker ([`Secrets`]: the file is read again
//! when it changed, so a value set again reaches every worker started after it, without a
//! redeploy) and passes them in the workers' environment, only to the functions that reference
//! them, and masks them (`***`) in what it reports: the output it captures from the workers,
//! the errors and stack traces of failed invocations, and its own log lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use nimbus_local_workers::{ErrorInfo, InvokeError};

use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::registry::io;

/// Values shorter than this are not masked in logs: masking `1` or `on` would garble every line.
pub const MIN_MASKED_LEN: usize = 4;

/// One stored secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    value: String,
    /// When it was last set (RFC 3339, UTC).
    set_at: String,
}

/// A secret's name and when it was last set; never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The secret's name.
    pub name: String,
    /// When its value was last set (RFC 3339, UTC).
    pub set_at: String,
}

/// The secrets of one service and stage.
pub struct SecretStore {
    file: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("file", &self.file)
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn no_data_folder() -> LocalError {
    LocalError::Io {
        action: "finding the data folder for",
        path: PathBuf::from("secrets"),
        source: std::io::Error::other("neither XDG_DATA_HOME nor HOME is set to an absolute path"),
    }
}

/// The folder of every service's secrets: `$XDG_DATA_HOME/nimbus/local/secrets`, else
/// `$HOME/.local/share/nimbus/local/secrets`; `None` without either.
pub fn root() -> Option<PathBuf> {
    crate::registry::data_root().map(|d| d.join("secrets"))
}

impl SecretStore {
    /// Opens the secrets of `service` at `stage` (empty when none were set).
    pub fn open(service: &str, stage: &str) -> Result<SecretStore, LocalError> {
        let root = root().ok_or_else(no_data_folder)?;
        Self::open_in(&root, service, stage)
    }

    /// Opens the secrets of `service` at `stage` under `root`.
    pub fn open_in(root: &Path, service: &str, stage: &str) -> Result<SecretStore, LocalError> {
        let file = root.join(service).join(format!("{stage}.json"));
        let entries = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LocalError::BadDeployment {
                path: file.clone(),
                reason: format!("unreadable secrets file ({e}); set the secrets again"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io("reading", &file)(e)),
        };
        Ok(SecretStore { file, entries })
    }

    /// The file the values are in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), LocalError> {
        self.entries.insert(
            name.to_string(),
            Entry {
                value: value.to_string(),
                set_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        );
        self.save()
    }

    /// Removes `name`; whether it had a value.
    pub fn remove(&mut self, name: &str) -> Result<bool, LocalError> {
        let had = self.entries.remove(name).is_some();
        if had {
            self.save()?;
        }
        Ok(had)
    }

    /// Whether `name` has a value.
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| e.value.as_str())
    }

    /// Names and when they were set, by name.
    pub fn list(&self) -> Vec<Listed> {
        self.entries
            .iter()
            .map(|(name, e)| Listed {
                name: name.clone(),
                set_at: e.set_at.clone(),
            })
            .collect()
    }

    /// The environment a function's secrets give it (variable → value), or the names of the
    /// secrets that have no value.
    pub fn resolve(
        &self,
        refs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<String>> {
        let mut missing: Vec<String> = refs.values().filter(|s| !self.has(s)).cloned().collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(refs
            .iter()
            .map(|(var, s)| (var.clone(), self.get(s).unwrap_or_default().to_string()))
            .collect())
    }

    fn save(&self) -> Result<(), LocalError> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(parent) = self.file.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io("creating", parent))?;
        }
        let mut text = serde_json::to_vec_pretty(&self.entries).expect("secrets serialize");
        text.push(b'\n');
        crate::state::write_atomic(&self.file, &text)
    }
}

/// Replaces every occurrence of each value (of at least [`MIN_MASKED_LEN`] bytes) with `***`,
/// longer values first (so that a value holding another is masked whole).
pub fn mask(line: &str, values: &[String]) -> String {
    let mut sorted: Vec<&String> = values.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = line.to_string();
    for v in sorted {
        if v.len() >= MIN_MASKED_LEN && out.contains(v.as_str()) {
            out = out.replace(v.as_str(), "***");
        }
    }
    out
}

/// What identifies one version of a secrets file: modification time, inode (a save replaces
/// the file) and size; `None` when there is no file.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp(file: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).ok()?;
    Some((m.modified().ok()?, m.ino(), m.len()))
}

/// The runtime's view of the secret stores: each file read again when it changed since it was
/// last read (checked at every worker start: one `stat`), and every value handed out so far,
/// masked in all the runtime reports.
#[derive(Default)]
pub(crate) struct Secrets {
    stores: Mutex<BTreeMap<PathBuf, (Stamp, SecretStore)>>,
    /// Longest first (see [`mask`]).
    masks: RwLock<Vec<String>>,
}

impl Secrets {
    /// The environment `refs` (variable → secret) give a worker of `function` now.
    pub(crate) fn env(
        &self,
        service: &str,
        stage: &str,
        function: &str,
        refs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, LocalError> {
        if refs.is_empty() {
            return Ok(BTreeMap::new());
        }
        let root = root().ok_or_else(no_data_folder)?;
        self.env_in(&root, service, stage, function, refs)
    }

    /// [`Secrets::env`] with the stores under `root`.
    fn env_in(
        &self,
        root: &Path,
        service: &str,
        stage: &str,
        function: &str,
        refs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, LocalError> {
        let file = root.join(service).join(format!("{stage}.json"));
        let now = stamp(&file); // before reading: a save in between is seen next time
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = stores
            .get(&file)
            .is_some_and(|(at, _)| *at == now && now.is_some());
        if !fresh {
            let store = SecretStore::open_in(root, service, stage)?;
            stores.insert(file.clone(), (now, store));
        }
        let store = &stores[&file].1;
        let values = store
            .resolve(refs)
            .map_err(|names| LocalError::MissingSecrets {
                function: function.to_string(),
                stage: stage.to_string(),
                names,
            })?;
        drop(stores);
        self.remember(values.values());
        Ok(values)
    }

    fn remember<'a>(&self, values: impl Iterator<Item = &'a String>) {
        let new: Vec<&String> = {
            let masks = self.masks.read().unwrap_or_else(|e| e.into_inner());
            values.filter(|v| !masks.contains(v)).collect()
        };
        if new.is_empty() {
            return;
        }
        let mut masks = self.masks.write().unwrap_or_else(|e| e.into_inner());
        for v in new {
            if !masks.contains(v) {
                masks.push(v.clone());
            }
        }
        masks.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// `text` with every value handed out so far masked.
    pub(crate) fn mask(&self, text: &str) -> String {
        let masks = self.masks.read().unwrap_or_else(|e| e.into_inner());
        if masks.is_empty() {
            return text.to_string();
        }
        mask(text, &masks)
    }

    /// `e` with every value handed out so far masked in its message, stack trace or detail.
    pub(crate) fn mask_error(&self, e: InvokeError) -> InvokeError {
        let info = |i: ErrorInfo| ErrorInfo {
            kind: self.mask(&i.kind),
            message: self.mask(&i.message),
            stack: i.stack.map(|s| self.mask(&s)),
        };
        match e {
            InvokeError::Crashed { detail } => InvokeError::Crashed {
                detail: self.mask(&detail),
            },
            InvokeError::LoadFailed { error } => InvokeError::LoadFailed { error: info(error) },
            InvokeError::Handler { error } => InvokeError::Handler { error: info(error) },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn values_are_kept_private_and_listed_without_values() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        let mut s = SecretStore::open_in(&root, "shop", "dev").unwrap();
        s.set("payment-key", "sk_live_123").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.file()), 0o600);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("shop")), 0o700);
        let again = SecretStore::open_in(&root, "shop", "dev").unwrap();
        assert_eq!(again.get("payment-key"), Some("sk_live_123"));
        let listed = again.list();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}{again:?}").contains("sk_live_123"));
        // Stages are apart.
        assert!(
            !SecretStore::open_in(&root, "shop", "prod")
                .unwrap()
                .has("payment-key")
        );

        let refs = BTreeMap::from([
            ("PAY".to_string(), "payment-key".to_string()),
            ("MAIL".to_string(), "mail-key".to_string()),
        ]);
        assert_eq!(again.resolve(&refs).unwrap_err(), ["mail-key"]);
        let one = BTreeMap::from([("PAY".to_string(), "payment-key".to_string())]);
        assert_eq!(again.resolve(&one).unwrap()["PAY"], "sk_live_123");

        let mut again = again;
        assert!(again.remove("payment-key").unwrap());
        assert!(!again.remove("payment-key").unwrap());
        assert!(
            !SecretStore::open_in(&root, "shop", "dev")
                .unwrap()
                .has("payment-key")
        );
    }

    #[test]
    fn masking_replaces_exact_values() {
        let values = vec!["sk_live_123".to_string(), "on".to_string()];
        assert_eq!(
            mask("key=sk_live_123 twice sk_live_123", &values),
            "key=*** twice ***"
        );
        assert_eq!(mask("turned on", &values), "turned on");
        let nested = vec!["abcd".to_string(), "xxabcdxx".to_string()];
        assert_eq!(
            mask("k=xxabcdxx", &nested),
            "k=***",
            "the longer value first"
        );
    }

    #[test]
    fn the_runtime_reads_a_changed_file_again_and_masks_every_value_it_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        let mut store = SecretStore::open_in(&root, "shop", "dev").unwrap();
        store.set("payment-key", "sk_first_1").unwrap();
        let secrets = Secrets::default();
        let refs = BTreeMap::from([("PAY".to_string(), "payment-key".to_string())]);
        let env = |s: &Secrets| s.env_in(&root, "shop", "dev", "charge", &refs);
        assert_eq!(env(&secrets).unwrap()["PAY"], "sk_first_1");
        store.set("payment-key", "sk_second_2").unwrap();
        assert_eq!(env(&secrets).unwrap()["PAY"], "sk_second_2", "read again");
        assert_eq!(
            secrets.mask("old sk_first_1 new sk_second_2"),
            "old *** new ***",
            "a rotated-out value stays masked"
        );
        let failed = secrets.mask_error(InvokeError::Handler {
            error: ErrorInfo {
                kind: "ValueError".into(),
                message: "bad key sk_second_2".into(),
                stack: Some("line 3\nValueError: bad key sk_second_2".into()),
            },
        });
        assert_eq!(
            failed.to_string(),
            "handler failed: ValueError: bad key ***"
        );
        let InvokeError::Handler { error } = failed else {
            unreachable!()
        };
        assert_eq!(
            error.stack.as_deref(),
            Some("line 3\nValueError: bad key ***")
        );
        assert!(matches!(
            secrets.mask_error(InvokeError::Crashed { detail: "sk_first_1".into() }),
            InvokeError::Crashed { detail } if detail == "***"
        ));
        store.remove("payment-key").unwrap();
        let err = env(&secrets).unwrap_err().to_string();
        assert!(
            err.contains("reads secrets with no value: payment-key"),
            "{err}"
        );
    }
}
