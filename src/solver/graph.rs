//! The build graph: vertices (an op plus its inputs), built by appending.
//!
//! Appending is the builder API: a vertex can only name vertices already in
//! the graph, so every graph is acyclic by construction. Two appends of the
//! same definition over the same inputs yield one vertex (two stages that
//! both say `FROM alpine` pull it once).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

use super::op::{Input, MountKind, Op};
use crate::image::Digest;

/// A vertex's id within one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VertexId(u32);

impl VertexId {
    /// The id of the `index`th vertex added to a graph. Ids only mean
    /// something within their graph; this exists for progress consumers and
    /// tests that need to name a vertex without one.
    pub const fn from_index(index: u32) -> VertexId {
        VertexId(index)
    }

    /// The vertex's position in the graph.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for VertexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// What a person sees of a vertex; never part of any digest, so renaming a
/// step or moving it to another line keeps its cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexInfo {
    /// Progress name, e.g. `[2/5] RUN make`.
    pub name: String,
    /// Where the step comes from, e.g. `Dockerfile:12`; prefixes errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Never take this step from the cache (its fresh result is still
    /// recorded): `--no-cache-filter` marks its stages' steps, as
    /// BuildKit's `llb.IgnoreCache` is op metadata, never part of the key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
}

impl VertexInfo {
    /// A name without a source location.
    pub fn named(name: impl Into<String>) -> VertexInfo {
        VertexInfo {
            name: name.into(),
            location: None,
            ignore_cache: false,
        }
    }

    /// A name with the source location errors are reported at.
    pub fn at(name: impl Into<String>, location: impl Into<String>) -> VertexInfo {
        VertexInfo {
            name: name.into(),
            location: Some(location.into()),
            ignore_cache: false,
        }
    }
}

/// One step of the graph.
#[derive(Clone, Debug)]
pub struct Vertex {
    op: Op,
    inputs: Vec<VertexId>,
    info: VertexInfo,
    definition: Digest,
}

impl Vertex {
    /// The step's definition.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// The vertices the op's [`Input`] positions refer to.
    pub fn inputs(&self) -> &[VertexId] {
        &self.inputs
    }

    /// The vertex that input position `input` refers to.
    pub fn input(&self, input: Input) -> Option<VertexId> {
        self.inputs.get(input.index()).copied()
    }

    /// Name and source location for progress and errors.
    pub fn info(&self) -> &VertexInfo {
        &self.info
    }

    /// The digest of the op's canonical encoding.
    pub fn definition_digest(&self) -> &Digest {
        &self.definition
    }
}

/// Why a vertex cannot be added, or a vertex id does not belong to a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{name}: op refers to input #{index} but the vertex has {count} inputs")]
    InputOutOfRange {
        name: String,
        index: u32,
        count: usize,
    },
    #[error("{name}: input {id} is not a vertex of this graph")]
    UnknownInput { name: String, id: VertexId },
    #[error("{name}: a source op takes no inputs")]
    SourceWithInputs { name: String },
    #[error("{name}: an exec needs a writable layer mount at / as its first mount")]
    NoRootMount { name: String },
    #[error("{name}: cannot encode op")]
    Encode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("vertex {0} is not part of this graph")]
    UnknownVertex(VertexId),
    #[error("graph is full: more than {} vertices", u32::MAX)]
    Full,
}

/// A build graph. Vertex ids are dense and every vertex's inputs have
/// smaller ids than the vertex itself (a topological order for free).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    vertices: Vec<Vertex>,
    by_definition: HashMap<(Digest, Vec<VertexId>), VertexId>,
}

/// The result of [`Graph::prune_to`].
#[derive(Clone, Debug)]
pub struct Pruned {
    /// Only what the target needs.
    pub graph: Graph,
    /// The target's id in the pruned graph.
    pub target: VertexId,
    /// Old id → new id, for every kept vertex.
    pub mapping: HashMap<VertexId, VertexId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Appends a vertex running `op` over `inputs` (the vertices its
    /// [`Input`] positions name), or returns the existing vertex with the
    /// same definition and inputs; the first one's info is kept.
    pub fn add(
        &mut self,
        op: Op,
        inputs: impl Into<Vec<VertexId>>,
        info: VertexInfo,
    ) -> Result<VertexId, GraphError> {
        let inputs = inputs.into();
        for &id in &inputs {
            if id.index() >= self.vertices.len() {
                return Err(GraphError::UnknownInput {
                    name: info.name,
                    id,
                });
            }
        }
        // Inputs are part of a vertex's identity: stray ones would split
        // vertices that are the same step.
        if matches!(op, Op::Image(_) | Op::Context(_) | Op::Http(_) | Op::Git(_))
            && !inputs.is_empty()
        {
            return Err(GraphError::SourceWithInputs { name: info.name });
        }
        for input in op.referenced_inputs() {
            if input.index() >= inputs.len() {
                return Err(GraphError::InputOutOfRange {
                    name: info.name,
                    index: input.0,
                    count: inputs.len(),
                });
            }
        }
        if let Op::Exec(exec) = &op {
            let root_ok = exec
                .mounts
                .first()
                .is_some_and(|m| m.dest == "/" && m.kind == MountKind::Layer);
            if !root_ok {
                return Err(GraphError::NoRootMount { name: info.name });
            }
        }
        let definition = match op.definition_digest() {
            Ok(d) => d,
            Err(source) => {
                return Err(GraphError::Encode {
                    name: info.name,
                    source,
                })
            }
        };
        let identity = (definition.clone(), inputs.clone());
        if let Some(&existing) = self.by_definition.get(&identity) {
            // The same step asked for twice: one that must not hit the
            // cache wins.
            self.vertices[existing.index()].info.ignore_cache |= info.ignore_cache;
            return Ok(existing);
        }
        let id = VertexId(u32::try_from(self.vertices.len()).map_err(|_| GraphError::Full)?);
        self.vertices.push(Vertex {
            op,
            inputs,
            info,
            definition,
        });
        self.by_definition.insert(identity, id);
        Ok(id)
    }

    /// The vertex with this id, if it belongs to this graph.
    pub fn get(&self, id: VertexId) -> Option<&Vertex> {
        self.vertices.get(id.index())
    }

    /// Number of vertices.
    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    /// Whether the graph has no vertices.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// All vertices with their ids, inputs before dependents.
    pub fn iter(&self) -> impl Iterator<Item = (VertexId, &Vertex)> {
        self.vertices
            .iter()
            .enumerate()
            .map(|(i, v)| (VertexId(i as u32), v))
    }

    /// The vertices `target` depends on, itself included, inputs first.
    pub fn reachable_from(&self, target: VertexId) -> Result<Vec<VertexId>, GraphError> {
        if self.get(target).is_none() {
            return Err(GraphError::UnknownVertex(target));
        }
        let mut needed = vec![false; self.vertices.len()];
        needed[target.index()] = true;
        // Inputs always have smaller ids, so one backwards sweep suffices.
        for i in (0..=target.index()).rev() {
            if needed[i] {
                for input in &self.vertices[i].inputs {
                    needed[input.index()] = true;
                }
            }
        }
        Ok((0..=target.index())
            .filter(|&i| needed[i])
            .map(|i| VertexId(i as u32))
            .collect())
    }

    /// A copy of the graph with only what `target` needs (`--target`: later
    /// and unrelated stages are neither built nor counted).
    pub fn prune_to(&self, target: VertexId) -> Result<Pruned, GraphError> {
        let keep = self.reachable_from(target)?;
        let mut graph = Graph::new();
        let mut mapping = HashMap::with_capacity(keep.len());
        for old in keep {
            let v = &self.vertices[old.index()];
            let inputs: Vec<VertexId> = v.inputs.iter().map(|i| mapping[i]).collect();
            let new = VertexId(graph.vertices.len() as u32);
            graph
                .by_definition
                .insert((v.definition.clone(), inputs.clone()), new);
            graph.vertices.push(Vertex {
                op: v.op.clone(),
                inputs,
                info: v.info.clone(),
                definition: v.definition.clone(),
            });
            mapping.insert(old, new);
        }
        Ok(Pruned {
            target: mapping[&target],
            graph,
            mapping,
        })
    }
}

impl std::ops::Index<VertexId> for Graph {
    type Output = Vertex;
    /// Panics on an id from another graph: ids are only made by `add`.
    fn index(&self, id: VertexId) -> &Vertex {
        &self.vertices[id.index()]
    }
}

/// Collects a vertex's inputs while its op is written, handing out the
/// [`Input`] position for each (the same vertex twice gets one position).
#[derive(Clone, Debug, Default)]
pub struct InputList {
    ids: Vec<VertexId>,
}

impl InputList {
    /// An empty list.
    pub fn new() -> InputList {
        InputList::default()
    }

    /// The position of `id`, adding it if new.
    pub fn add(&mut self, id: VertexId) -> Input {
        let index = match self.ids.iter().position(|&x| x == id) {
            Some(i) => i,
            None => {
                self.ids.push(id);
                self.ids.len() - 1
            }
        };
        Input(index as u32)
    }
}

impl From<InputList> for Vec<VertexId> {
    fn from(list: InputList) -> Vec<VertexId> {
        list.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageRef;
    use crate::solver::op::{
        ContextSource, CopyFiles, Exec, FileAction, FileOp, ImageSource, Platform,
    };

    fn image(name: &str) -> Op {
        Op::Image(ImageSource {
            reference: ImageRef::parse(name).unwrap(),
            platform: Platform::linux_amd64(),
        })
    }

    fn run(cmd: &str) -> Op {
        Op::Exec(Exec::on_rootfs(&["sh", "-c", cmd], &[]))
    }

    #[test]
    fn identical_vertices_are_merged() {
        let mut g = Graph::new();
        let a = g
            .add(image("alpine"), vec![], VertexInfo::named("a"))
            .unwrap();
        let b = g
            .add(image("alpine:latest"), vec![], VertexInfo::named("b"))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(g[a].info().name, "a");
        let r1 = g
            .add(run("make"), vec![a], VertexInfo::named("r1"))
            .unwrap();
        let r2 = g
            .add(run("make"), vec![a], VertexInfo::named("r2"))
            .unwrap();
        assert_eq!(r1, r2);
        // Same command over a different input is a different vertex.
        let r3 = g
            .add(run("make"), vec![r1], VertexInfo::named("r3"))
            .unwrap();
        assert_ne!(r1, r3);
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn prune_keeps_only_what_the_target_needs() {
        let mut g = Graph::new();
        let base = g
            .add(image("alpine"), vec![], VertexInfo::named("base"))
            .unwrap();
        let ctx = g
            .add(
                Op::Context(ContextSource {
                    name: "context".into(),
                    ..Default::default()
                }),
                vec![],
                VertexInfo::named("ctx"),
            )
            .unwrap();
        let build = g
            .add(run("make"), vec![base], VertexInfo::named("build"))
            .unwrap();
        let _test = g
            .add(run("make test"), vec![build], VertexInfo::named("test"))
            .unwrap();
        let mut inputs = InputList::new();
        let root = inputs.add(base);
        let src = inputs.add(build);
        let again = inputs.add(build);
        assert_eq!(src, again);
        let copy = Op::File(FileOp {
            base: Some(root),
            actions: vec![FileAction::CopyFiles(CopyFiles::new(src, "/out", "/"))],
            source_date_epoch: None,
        });
        let fin = g.add(copy, inputs, VertexInfo::named("final")).unwrap();
        let pruned = g.prune_to(fin).unwrap();
        let names: Vec<&str> = pruned
            .graph
            .iter()
            .map(|(_, v)| v.info().name.as_str())
            .collect();
        assert_eq!(names, ["base", "build", "final"]);
        assert!(!pruned.mapping.contains_key(&ctx));
        assert_eq!(
            pruned.graph[pruned.target].inputs(),
            [pruned.mapping[&base], pruned.mapping[&build]]
        );
        // The pruned graph still merges what it holds.
        let mut pg = pruned.graph;
        assert_eq!(
            pg.add(
                run("make"),
                vec![pruned.mapping[&base]],
                VertexInfo::named("x")
            )
            .unwrap(),
            pruned.mapping[&build]
        );
    }

    #[test]
    fn malformed_vertices_are_rejected() {
        let mut g = Graph::new();
        let err = g
            .add(run("x"), vec![], VertexInfo::named("[1/1] RUN x"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "[1/1] RUN x: op refers to input #0 but the vertex has 0 inputs"
        );
        let err = g
            .add(image("alpine"), vec![VertexId(7)], VertexInfo::named("img"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "img: input v7 is not a vertex of this graph"
        );
        let a = g
            .add(image("alpine"), vec![], VertexInfo::named("a"))
            .unwrap();
        let Op::Exec(mut exec) = run("x") else {
            unreachable!()
        };
        exec.mounts[0].kind = MountKind::Bind;
        let err = g
            .add(Op::Exec(exec), vec![a], VertexInfo::named("r"))
            .unwrap_err();
        assert!(matches!(err, GraphError::NoRootMount { .. }), "{err}");
        assert!(matches!(
            g.prune_to(VertexId(9)),
            Err(GraphError::UnknownVertex(_))
        ));
    }
}
