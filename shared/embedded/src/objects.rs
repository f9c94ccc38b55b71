//! Object storage as files under a folder; writes go through a temporary file and a rename so a
//! reader never sees half an object.

use async_trait::async_trait;
use bytes::Bytes;
use devgem_ports::{ObjectError, ObjectStore};
use std::path::PathBuf;

pub struct FolderObjectStore {
    root: PathBuf,
}

impl FolderObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        if !crate::valid_key(key) {
            return Err(ObjectError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }
}

fn unavailable(e: std::io::Error) -> ObjectError {
    ObjectError::Unavailable(e.to_string())
}

#[async_trait]
impl ObjectStore for FolderObjectStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(unavailable)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        tokio::fs::write(&tmp, &bytes).await.map_err(unavailable)?;
        tokio::fs::rename(&tmp, &path).await.map_err(unavailable)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_and_refuses_escaping_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderObjectStore::new(dir.path());
        store
            .put("deployments/d-1/build.log", Bytes::from_static(b"ok"))
            .await
            .unwrap();
        let got = store.get("deployments/d-1/build.log").await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"ok"[..]));
        assert_eq!(store.get("deployments/d-1/none").await.unwrap(), None);
        assert!(matches!(
            store.put("../escape", Bytes::new()).await,
            Err(ObjectError::InvalidKey(_))
        ));
    }
}
