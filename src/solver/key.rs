//! Cache keys: what a vertex's result is stored under.
//!
//! `key(v) = sha256(definition digest of v, [contribution of each input])`,
//! where an input contributes its own key, except a local context, which
//! contributes the content digests of exactly the paths `v` reads from it
//! (so editing an unrelated file keeps a `COPY` of other files cached).
//! A base image's key is its resolved manifest digest, so `alpine:3.19` and
//! `alpine@sha256:...` naming the same image share cache.
//!
//! **Invariant:** keys never depend on mtimes, compression, host paths or
//! progress names; only on definitions, input keys and file contents.

use serde::Serialize;
use std::fmt;

use super::canonical;
use super::op::{ContentSelector, Platform};
use crate::image::Digest;

/// Names the key format; bump it when the encoding below changes, or when
/// what an op produces for the same inputs changes, so old cache records
/// stop matching instead of matching wrongly. v2: RUN layers as BuildKit's
/// (mount points kept, unchanged copy-ups dropped) and a layer, empty or
/// not, for every RUN/COPY/ADD/WORKDIR.
const KEY_VERSION: &str = "kiln.cachekey.v2";

/// The key a vertex's result is cached under.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CacheKey(Digest);

impl CacheKey {
    /// The key as a digest (`sha256:...`), e.g. for a database column.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// Rebuilds a key read back from storage.
    pub fn from_digest(digest: Digest) -> CacheKey {
        CacheKey(digest)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

/// What one input adds to a dependent's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKey {
    /// The input vertex's own key.
    Vertex(CacheKey),
    /// The content read from a local context, selection by selection.
    Content(Vec<SelectedContent>),
}

/// A selection and the digest of what it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SelectedContent {
    pub selector: ContentSelector,
    pub digest: Digest,
}

#[derive(Serialize)]
struct VertexKeyInput<'a> {
    version: &'static str,
    definition: &'a Digest,
    inputs: &'a [InputKey],
}

#[derive(Serialize)]
struct ImageKeyInput<'a> {
    version: &'static str,
    image: &'a Digest,
    platform: &'a Platform,
}

/// The key of a vertex with definition digest `definition` whose inputs
/// contribute `inputs` (in input order).
pub fn vertex_key(definition: &Digest, inputs: &[InputKey]) -> CacheKey {
    encode_key(&VertexKeyInput {
        version: KEY_VERSION,
        definition,
        inputs,
    })
}

/// The key of a base image: its resolved manifest digest and the platform
/// (a multi-platform index digest alone does not say which image was used).
/// The reference's spelling is deliberately left out.
pub fn image_key(resolved: &Digest, platform: &Platform) -> CacheKey {
    encode_key(&ImageKeyInput {
        version: KEY_VERSION,
        image: resolved,
        platform,
    })
}

fn encode_key<T: Serialize>(value: &T) -> CacheKey {
    // Only strings, digests and plain structs are encoded: no maps with
    // non-string keys, no floats, so encoding cannot fail.
    match canonical::digest(value) {
        Ok(digest) => CacheKey(digest),
        Err(err) => unreachable!("cache key input failed to encode: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    #[test]
    fn keys_depend_on_definition_inputs_and_content() {
        let base = vertex_key(&d("def"), &[InputKey::Vertex(CacheKey(d("in")))]);
        assert_eq!(
            base,
            vertex_key(&d("def"), &[InputKey::Vertex(CacheKey(d("in")))])
        );
        assert_ne!(
            base,
            vertex_key(&d("def2"), &[InputKey::Vertex(CacheKey(d("in")))])
        );
        assert_ne!(
            base,
            vertex_key(&d("def"), &[InputKey::Vertex(CacheKey(d("in2")))])
        );
        let content = |digest: &str| {
            InputKey::Content(vec![SelectedContent {
                selector: ContentSelector::path("a.txt"),
                digest: d(digest),
            }])
        };
        assert_eq!(
            vertex_key(&d("def"), &[content("x")]),
            vertex_key(&d("def"), &[content("x")])
        );
        assert_ne!(
            vertex_key(&d("def"), &[content("x")]),
            vertex_key(&d("def"), &[content("y")])
        );
    }

    #[test]
    fn image_keys_follow_the_resolved_digest_and_platform() {
        let amd = Platform::linux_amd64();
        let arm = Platform {
            architecture: "arm64".into(),
            ..Platform::linux_amd64()
        };
        assert_eq!(image_key(&d("m"), &amd), image_key(&d("m"), &amd));
        assert_ne!(image_key(&d("m"), &amd), image_key(&d("n"), &amd));
        assert_ne!(image_key(&d("m"), &amd), image_key(&d("m"), &arm));
    }
}
