//! Multi-platform images in the store: a name that names an OCI image
//! index (its blob, as built or pulled) over images stored as usual, one
//! per platform. The name also points (in `names`) at the member for this
//! host (else the first), so `run`, `inspect`, `history` and `images` see
//! one image as docker 25's classic store does; `push`, `save` and
//! `kiln run --platform` see the index. Moving or removing the name drops
//! its index (triggers in the schema), and an index's members are never
//! "dangling" while it is named.

use super::{db, stored_digest, Result, Store, StoreError};
use crate::image::digest::Digest;
use crate::image::oci::{Index, Platform};
use crate::image::reference::ImageRef;
use rusqlite::{params, OptionalExtension};

/// A stored multi-platform image.
#[derive(Debug, Clone)]
pub struct StoredIndex {
    /// The index blob's digest.
    pub digest: Digest,
    /// The index as stored.
    pub index: Index,
    /// Its platform images' IDs, in the index's order.
    pub members: Vec<Digest>,
}

impl Store {
    /// Records the index `bytes` (an OCI image index of the stored images
    /// `members`, in order) under `names`, each name pointing at the
    /// member `default` for single-image commands; one transaction.
    pub fn commit_index(
        &self,
        bytes: &[u8],
        members: &[Digest],
        default: &Digest,
        names: &[ImageRef],
    ) -> Result<Digest> {
        let blob = self.ingest_manifest(bytes, Some(crate::image::oci::media::OCI_INDEX))?;
        let digest = blob.digest;
        self.write(|tx| {
            for id in members {
                let known = tx
                    .prepare_cached("SELECT 1 FROM images WHERE id = ?1")?
                    .query_row([id.to_string()], |_| Ok(()))
                    .optional()?;
                if known.is_none() {
                    return Err(StoreError::ImageNotFound(id.to_string()));
                }
            }
            tx.prepare_cached("DELETE FROM image_index_members WHERE digest = ?1")?
                .execute([digest.to_string()])?;
            for (i, id) in members.iter().enumerate() {
                tx.prepare_cached(
                    "INSERT INTO image_index_members (digest, position, image_id) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![digest.to_string(), i as i64, id.to_string()])?;
            }
            let now = db::now();
            for name in names {
                // Moving the name (the trigger drops its old index) first,
                // then naming the new index.
                tx.prepare_cached(
                    "INSERT INTO names (name, image_id, added) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id, added = excluded.added",
                )?
                .execute(params![name.to_string(), default.to_string(), now])?;
                tx.prepare_cached(
                    "INSERT INTO image_indexes (name, digest, added) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, added = excluded.added",
                )?
                .execute(params![name.to_string(), digest.to_string(), now])?;
            }
            self.unprotect(tx, std::slice::from_ref(&digest))?;
            Ok(())
        })?;
        Ok(digest)
    }

    /// The index `name` names, if it names one.
    pub fn index_named(&self, name: &ImageRef) -> Result<Option<StoredIndex>> {
        let found = self.read(|tx| {
            let digest: Option<String> = tx
                .prepare_cached("SELECT digest FROM image_indexes WHERE name = ?1")?
                .query_row([name.to_string()], |r| r.get(0))
                .optional()?;
            let Some(digest) = digest else {
                return Ok(None);
            };
            let members = tx
                .prepare_cached(
                    "SELECT image_id FROM image_index_members WHERE digest = ?1 ORDER BY position",
                )?
                .query_map([&digest], |r| r.get::<_, String>(0))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let members = members
                .into_iter()
                .map(stored_digest)
                .collect::<Result<Vec<_>>>()?;
            Ok(Some((stored_digest(digest)?, members)))
        })?;
        let Some((digest, members)) = found else {
            return Ok(None);
        };
        let bytes = self.read_blob(&digest)?;
        let index = serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
            what: "image index",
            digest: digest.clone(),
            reason: crate::error_chain::Chain(&e).to_string(),
        })?;
        Ok(Some(StoredIndex {
            digest,
            index,
            members,
        }))
    }

    /// The member of `name`'s index for `platform` (containerd's match:
    /// an older variant runs on a newer one), as an image ID.
    pub fn index_member_for(&self, name: &ImageRef, platform: &Platform) -> Result<Option<Digest>> {
        let Some(stored) = self.index_named(name)? else {
            return Ok(None);
        };
        Ok(stored
            .index
            .manifests
            .iter()
            .zip(&stored.members)
            .filter_map(|(d, id)| Some((d.platform.as_ref()?.runs_on(platform)?, id)))
            .max_by_key(|(level, _)| *level)
            .map(|(_, id)| id.clone()))
    }
}
