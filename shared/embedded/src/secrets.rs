//! Secrets in one JSON file created with mode 0600, rewritten atomically on every change.

use async_trait::async_trait;
use devgem_ports::{SecretError, SecretValue, Secrets};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use tokio::sync::Mutex;

pub struct FileSecrets {
    path: PathBuf,
    // Serialises read-modify-write cycles within this process.
    lock: Mutex<()>,
}

impl FileSecrets {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn read_all(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                SecretError::Unavailable(format!("{} is corrupt: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(SecretError::Unavailable(e.to_string())),
        }
    }

    fn write_all(&self, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let err = |e: std::io::Error| SecretError::Unavailable(e.to_string());
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        let bytes = serde_json::to_vec(all).map_err(|e| SecretError::Unavailable(e.to_string()))?;
        file.write_all(&bytes).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn put(&self, key: &str, value: &SecretValue) -> Result<(), SecretError> {
        if !crate::valid_key(key) {
            return Err(SecretError::InvalidKey(key.to_string()));
        }
        let _guard = self.lock.lock().await;
        let mut all = self.read_all()?;
        all.insert(key.to_string(), value.expose().to_string());
        self.write_all(&all)
    }

    async fn get(&self, key: &str) -> Result<Option<SecretValue>, SecretError> {
        let _guard = self.lock.lock().await;
        Ok(self.read_all()?.remove(key).map(SecretValue::new))
    }

    async fn delete(&self, key: &str) -> Result<(), SecretError> {
        let _guard = self.lock.lock().await;
        let mut all = self.read_all()?;
        if all.remove(key).is_some() {
            self.write_all(&all)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn file_is_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let secrets = FileSecrets::new(&path);
        secrets
            .put("deployments/d-1/env/API_KEY", &SecretValue::new("s3cr3t"))
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let value = secrets
            .get("deployments/d-1/env/API_KEY")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(value.expose(), "s3cr3t");
        assert_eq!(format!("{value:?}"), "SecretValue(***)");
        assert!(
            secrets
                .get("deployments/d-1/env/OTHER")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_deleted_key_is_gone_and_the_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let secrets = FileSecrets::new(&path);
        for (key, value) in [("links/l-1/env/A", "one"), ("links/l-1/env/B", "two")] {
            secrets.put(key, &SecretValue::new(value)).await.unwrap();
        }
        secrets.delete("links/l-1/env/A").await.unwrap();
        secrets.delete("links/l-1/env/NEVER_SET").await.unwrap();
        assert!(secrets.get("links/l-1/env/A").await.unwrap().is_none());
        let b = secrets.get("links/l-1/env/B").await.unwrap().unwrap();
        assert_eq!(b.expose(), "two");
        // Gone from the file too, not only from this process.
        let file = std::fs::read_to_string(&path).unwrap();
        assert!(!file.contains("one") && file.contains("two"), "{file}");
    }
}
