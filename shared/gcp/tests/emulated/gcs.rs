//! GcsObjectStore against fake-gcs-server.

use crate::require_emulators;
use crate::support::{config, short_uid};
use bytes::Bytes;
use devgem_gcp::{GcpConfig, GcsObjectStore};
use devgem_ports::{ObjectError, ObjectStore};
use std::time::Instant;

#[tokio::test]
async fn objects_round_trip_and_missing_is_none() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let store = GcsObjectStore::new(&config(emu)).await.unwrap();
    let prefix = format!("deployments/d-{}", short_uid());

    let small = Bytes::from_static(b"hello from devgem\n");
    store
        .put(&format!("{prefix}/small.txt"), small.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get(&format!("{prefix}/small.txt")).await.unwrap(),
        Some(small)
    );

    let big: Bytes = (0..1024 * 1024)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let t = Instant::now();
    store
        .put(&format!("{prefix}/source.tar.gz"), big.clone())
        .await
        .unwrap();
    let put = t.elapsed();
    let t = Instant::now();
    let back = store
        .get(&format!("{prefix}/source.tar.gz"))
        .await
        .unwrap()
        .unwrap();
    eprintln!("MEASURE gcs 1 MiB put {put:?}, get {:?}", t.elapsed());
    assert_eq!(back.len(), big.len(), "no trailing checksum part appended");
    assert_eq!(back, big);

    // Overwrite replaces.
    store
        .put(&format!("{prefix}/small.txt"), Bytes::from_static(b"v2"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&format!("{prefix}/small.txt"))
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"v2")
    );

    assert_eq!(store.get(&format!("{prefix}/missing")).await.unwrap(), None);
    assert!(matches!(
        store.get("../etc/passwd").await,
        Err(ObjectError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn a_missing_bucket_setting_names_the_variable() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let mut config = config(emu);
    config.bucket = None;
    let err = GcsObjectStore::new(&config).await.unwrap_err();
    assert!(err.to_string().contains("DEVGEM_BUCKET"), "{err}");
}

#[tokio::test]
async fn an_unreachable_storage_is_unavailable() {
    let mut config = GcpConfig::new("devgem-local");
    config.bucket = Some("b".into());
    config.storage_emulator = Some("http://127.0.0.1:9".into());
    let store = GcsObjectStore::new(&config).await.unwrap();
    let err = store.get("a/b").await.unwrap_err();
    assert!(matches!(err, ObjectError::Unavailable(_)), "{err:?}");
}
