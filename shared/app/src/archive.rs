//! Source archives: the analyze stage packs the checkout into one gzipped tarball in object
//! storage, and the build stage unpacks it, so the two can run on different machines.

use std::path::Path;

/// Packs `dir` (symlinks kept as links, never followed) into a `.tar.gz`.
pub fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    tar.into_inner()?.finish()
}

/// Unpacks an archive made by [`pack`] into `dest`. Entries that would land outside `dest`
/// are refused by `tar` itself.
pub fn unpack(bytes: &[u8], dest: &Path) -> std::io::Result<()> {
    let decoder = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.unpack(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_tree() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/c.txt"), "hello").unwrap();
        let bytes = pack(src.path()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&bytes, dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("a/b/c.txt")).unwrap(),
            "hello"
        );
    }
}
