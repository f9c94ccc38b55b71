//! GcsObjectStore against fake-gcs-server.
