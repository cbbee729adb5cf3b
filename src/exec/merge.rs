//! Merge ops: root filesystems stacked on one another (`COPY --link`).
//!
//! A result is a stack of snapshots named by chain ID, and a chain ID
//! names a layer *on its parent*: the layers of each input after the first
//! are republished on the stack below them with
//! [`Store::rebase_layer`](crate::cache::Store::rebase_layer) (same diff
//! ID and blobs, a hard-linked snapshot under the new chain ID). So an
//! image rebuilt on a new base holds the new base's layers plus the very
//! layer the linked copy made before, and nothing is copied or hashed.
//!
//! The merged view is what overlayfs shows for the stack: an entry of an
//! upper input hides a lower one of another type, directories of both are
//! merged. BuildKit's `MergeOp` gives the same view for its overlay
//! snapshotter (lower dirs stacked).

use super::file_op::input_rootfs;
use super::{Artifact, ExecContext, Rootfs};
use crate::solver::{ExecError, MergeOp};

/// Runs `op` over `inputs` (the vertex's input outputs, in order).
pub fn run(cx: &ExecContext, op: &MergeOp, inputs: &[Artifact]) -> Result<Rootfs, ExecError> {
    let mut layers = Vec::new();
    for input in &op.inputs {
        let rootfs = input_rootfs(inputs, input.index())?;
        for layer in rootfs.layers.iter() {
            let parent = layers.last().map(|l: &crate::cache::LayerInfo| &l.chain_id);
            let stacked = cx.store.rebase_layer(layer, parent).map_err(|e| {
                ExecError::with_context(format!("stacking layer {}", layer.diff_id), e)
            })?;
            layers.push(stacked);
        }
    }
    Ok(Rootfs::new(layers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::Input;
    use std::path::Path;

    fn cx(root: &Path) -> ExecContext {
        crate::exec::fixture::exec_context(root)
    }

    /// A one-layer root filesystem holding `files`, stacked on `below`.
    fn rootfs(cx: &ExecContext, below: &Rootfs, files: &[&str]) -> Rootfs {
        let dir = cx.store.scratch_path("layer").unwrap();
        std::fs::create_dir(&dir).unwrap();
        for f in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        below.commit(&cx.store, &dir, None).unwrap()
    }

    fn merge(cx: &ExecContext, inputs: &[Rootfs]) -> Rootfs {
        let op = MergeOp {
            inputs: (0..inputs.len() as u32).map(Input).collect(),
        };
        let artifacts: Vec<Artifact> = inputs.iter().cloned().map(Artifact::Rootfs).collect();
        run(cx, &op, &artifacts).unwrap()
    }

    #[test]
    fn upper_layers_keep_their_diff_ids_on_any_base() {
        let t = tempfile::tempdir().unwrap();
        let cx = cx(&t.path().join("root"));
        let scratch = Rootfs::default();
        let base_a = rootfs(&cx, &scratch, &["a"]);
        let base_b = rootfs(&cx, &rootfs(&cx, &scratch, &["b1"]), &["b2"]);
        let link = rootfs(&cx, &scratch, &["app/f"]);
        let on_a = merge(&cx, &[base_a.clone(), link.clone()]);
        let on_b = merge(&cx, &[base_b.clone(), link.clone()]);
        let diff_ids =
            |r: &Rootfs| -> Vec<_> { r.layers.iter().map(|l| l.diff_id.clone()).collect() };
        assert_eq!(
            diff_ids(&on_a),
            [diff_ids(&base_a), diff_ids(&link)].concat()
        );
        assert_eq!(
            diff_ids(&on_b),
            [diff_ids(&base_b), diff_ids(&link)].concat()
        );
        // The base's snapshots are used as they are; the link layer gets
        // a snapshot per parent, with the same content.
        assert_eq!(on_b.layers[..2], base_b.layers[..]);
        assert_ne!(on_a.top(), on_b.top());
        for r in [&on_a, &on_b] {
            let dir = cx.store.snapshot_path(r.top().unwrap());
            assert_eq!(std::fs::read(dir.join("app/f")).unwrap(), b"app/f");
        }
        // On scratch, and of nothing, a merge changes nothing.
        assert_eq!(merge(&cx, &[scratch.clone(), link.clone()]), link);
        assert_eq!(merge(&cx, &[]), scratch);
    }

    #[test]
    fn a_missing_input_fails() {
        let t = tempfile::tempdir().unwrap();
        let cx = cx(&t.path().join("root"));
        let op = MergeOp {
            inputs: vec![Input(0), Input(1)],
        };
        let err = run(&cx, &op, &[Artifact::Rootfs(Rootfs::default())]).unwrap_err();
        assert!(err.to_string().contains("missing input #1"), "{err}");
    }
}
