//! Builds images outside kiln, as skopeo would read them: an OCI image
//! layout directory (image-spec `image-layout.md`) with tar layers.

use super::archive::digest_of;
use kiln::image::oci::media::{self, OCI_CONFIG, OCI_MANIFEST};
use std::io::Write;
use std::path::Path;

/// What was written.
pub struct Layout {
    pub manifest_digest: String,
    /// Layer blob digests, bottom to top.
    pub layer_digests: Vec<String>,
}

/// One layer: files (path, content) and whether to gzip the tar.
pub struct LayerSpec {
    pub files: Vec<(String, Vec<u8>)>,
    pub gzip: bool,
}

fn put(dir: &Path, data: &[u8]) -> String {
    let d = digest_of(data);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

/// The tar of `files` (regular files, mode 0644, mtime 0).
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut readers: Vec<&[u8]> = files.iter().map(|(_, data)| &data[..]).collect();
    let mut entries: Vec<(&str, u64, &mut dyn std::io::Read)> = files
        .iter()
        .zip(readers.iter_mut())
        .map(|((name, data), r)| {
            (
                name.as_str(),
                data.len() as u64,
                r as &mut dyn std::io::Read,
            )
        })
        .collect();
    super::archive::write_files(Vec::new(), &mut entries)
}

/// Writes an OCI layout at `dir` holding one image tagged `tag`.
pub fn write_layout(dir: &Path, tag: &str, layers: &[LayerSpec]) -> Layout {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        let raw = tar_of(&l.files);
        diff_ids.push(format!("\"{}\"", digest_of(&raw)));
        let (blob, mt) = if l.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&raw).unwrap();
            (enc.finish().unwrap(), media::OCI_LAYER_GZIP)
        } else {
            (raw, media::OCI_LAYER)
        };
        let d = put(dir, &blob);
        descs.push(format!(
            r#"{{"mediaType":"{mt}","digest":"{d}","size":{}}}"#,
            blob.len()
        ));
        layer_digests.push(d);
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let cd = put(dir, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        descs.join(",")
    );
    let md = put(dir, manifest.as_bytes());
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout {
        manifest_digest: md,
        layer_digests,
    }
}

/// Deterministic pseudo-random bytes (splitmix64): incompressible content
/// that differs per seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
