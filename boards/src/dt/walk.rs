//! Bounded traversal of a validated tree: a depth limit, a node budget, and a
//! view of one node together with its ancestors (needed for `#address-cells`,
//! `ranges`, `interrupt-parent` and `dma-coherent` inheritance, and for naming
//! the node in an error).

use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::{Node, Property};

use super::cells::{self, MAX_CELLS};
use super::error::{DtError, NodePath};

/// Deepest tree walked (the root is depth 0). Real trees stay below 8.
pub const MAX_DEPTH: usize = 16;
/// Most nodes one walk visits. QEMU's Pi 4 tree has under 700.
pub const MAX_NODES: usize = 16_384;

/// The ancestors of a node, root first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ancestry<'a> {
    nodes: [Option<FdtNode<'a>>; MAX_DEPTH],
    len: usize,
}

impl<'a> Ancestry<'a> {
    pub(crate) const fn new() -> Self {
        Self { nodes: [None; MAX_DEPTH], len: 0 }
    }

    pub(crate) fn push(&mut self, node: FdtNode<'a>) -> Result<(), DtError> {
        let slot =
            self.nodes.get_mut(self.len).ok_or(DtError::Limit { what: "tree depth", limit: MAX_DEPTH })?;
        *slot = Some(node);
        self.len += 1;
        Ok(())
    }

    pub(crate) fn pop(&mut self) {
        if let Some(slot) = self.len.checked_sub(1).and_then(|i| self.nodes.get_mut(i)) {
            *slot = None;
            self.len -= 1;
        }
    }

    /// Number of ancestors (0 for the root itself).
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The ancestor at depth `i` (0 is the root).
    pub(crate) fn get(&self, i: usize) -> Option<FdtNode<'a>> {
        if i < self.len {
            self.nodes.get(i).copied().flatten()
        } else {
            None
        }
    }

    /// The direct parent.
    pub(crate) fn parent(&self) -> Option<FdtNode<'a>> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Ancestors, root first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = FdtNode<'a>> + '_ {
        self.nodes[..self.len].iter().flatten().copied()
    }

    /// The path of the ancestor at depth `i`.
    pub(crate) fn path_to(&self, i: usize) -> NodePath {
        NodePath::from_names(self.iter().take(i + 1).map(|n| n.name()))
    }
}

/// A node and its ancestors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Located<'a> {
    pub(crate) anc: Ancestry<'a>,
    pub(crate) node: FdtNode<'a>,
}

impl<'a> Located<'a> {
    pub(crate) fn at(&self) -> At<'a, '_> {
        At { anc: &self.anc, node: self.node }
    }
}

/// `#address-cells` / `#size-cells` of a bus: how its children's `reg` and
/// its own `ranges` child side are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddrSpace {
    pub(crate) address_cells: u32,
    pub(crate) size_cells: u32,
}

/// One node seen with its ancestors: the property accessors used by every
/// parser, each error naming the node.
#[derive(Clone, Copy)]
pub(crate) struct At<'a, 'n> {
    pub(crate) anc: &'n Ancestry<'a>,
    pub(crate) node: FdtNode<'a>,
}

impl<'a> At<'a, '_> {
    /// The node's path, for an error.
    pub(crate) fn path(&self) -> NodePath {
        NodePath::from_names(self.anc.iter().map(|n| n.name()).chain(core::iter::once(self.node.name())))
    }

    pub(crate) fn bad(&self, property: &'static str, reason: &'static str) -> DtError {
        DtError::BadProperty { node: self.path(), property, reason }
    }

    /// A property's raw value, borrowed from the blob.
    pub(crate) fn prop(&self, name: &str) -> Option<&'a [u8]> {
        prop(self.node, name)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.node.property(name).is_some()
    }

    /// A one-cell property.
    pub(crate) fn u32(&self, name: &'static str) -> Result<Option<u32>, DtError> {
        self.prop(name)
            .map(|v| cells::as_u32(v).ok_or_else(|| self.bad(name, "not exactly one cell")))
            .transpose()
    }

    /// A string property.
    pub(crate) fn str(&self, name: &'static str) -> Result<Option<&'a str>, DtError> {
        self.prop(name)
            .map(|v| cells::as_str(v).ok_or_else(|| self.bad(name, "not a NUL-terminated string")))
            .transpose()
    }

    pub(crate) fn is_compatible(&self, s: &str) -> bool {
        self.prop("compatible").is_some_and(|v| cells::stringlist_contains(v, s))
    }

    /// Linux's `of_device_is_available`: no `status`, or `"okay"` / `"ok"`.
    pub(crate) fn is_enabled(&self) -> bool {
        is_enabled(self.node)
    }

    pub(crate) fn phandle(&self) -> Result<Option<u32>, DtError> {
        match self.u32("phandle")? {
            Some(p) => Ok(Some(p)),
            None => self.u32("linux,phandle"),
        }
    }

    /// This node's own `#address-cells` / `#size-cells` (defaults 2 and 1).
    pub(crate) fn address_space(&self) -> Result<AddrSpace, DtError> {
        address_space(self.node).map_err(|p| self.bad(p, "more than 4 cells or not one cell"))
    }

    /// The address space `reg` is encoded in: the parent's.
    pub(crate) fn reg_space(&self) -> Result<AddrSpace, DtError> {
        let parent = self.anc.parent().ok_or_else(|| self.bad("reg", "on the root node"))?;
        address_space(parent).map_err(|p| DtError::BadProperty {
            node: self.anc.path_to(self.anc.len() - 1),
            property: p,
            reason: "more than 4 cells or not one cell",
        })
    }

    /// The nearest `interrupt-parent`, on the node or an ancestor.
    pub(crate) fn interrupt_parent(&self) -> Result<Option<u32>, DtError> {
        if let Some(p) = self.u32("interrupt-parent")? {
            return Ok(Some(p));
        }
        for depth in (0..self.anc.len()).rev() {
            let Some(n) = self.anc.get(depth) else {
                continue;
            };
            if let Some(v) = prop(n, "interrupt-parent") {
                return cells::as_u32(v).map(Some).ok_or(DtError::BadProperty {
                    node: self.anc.path_to(depth),
                    property: "interrupt-parent",
                    reason: "not exactly one cell",
                });
            }
        }
        Ok(None)
    }

    /// `dma-coherent` on the node or any ancestor (Linux `of_dma_is_coherent`).
    pub(crate) fn dma_coherent(&self) -> bool {
        self.has("dma-coherent") || self.anc.iter().any(|n| n.property("dma-coherent").is_some())
    }
}

pub(crate) fn prop<'a>(node: FdtNode<'a>, name: &str) -> Option<&'a [u8]> {
    node.property(name).and_then(|p| p.value_as::<&'a [u8]>().ok())
}

pub(crate) fn is_enabled(node: FdtNode<'_>) -> bool {
    match prop(node, "status") {
        None => true,
        Some(v) => matches!(cells::as_str(v), Some("okay" | "ok")),
    }
}

/// A node's `#address-cells` / `#size-cells`; on error, the bad property.
pub(crate) fn address_space(node: FdtNode<'_>) -> Result<AddrSpace, &'static str> {
    let read = |name: &'static str, default: u32| match prop(node, name) {
        None => Ok(default),
        Some(v) => match cells::as_u32(v) {
            Some(n) if n <= MAX_CELLS => Ok(n),
            _ => Err(name),
        },
    };
    Ok(AddrSpace { address_cells: read("#address-cells", 2)?, size_cells: read("#size-cells", 1)? })
}

/// What a walk does after visiting a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Visit the node's children next.
    Descend,
    /// Skip its children.
    Skip,
    /// End the walk.
    Stop,
}

/// Visits every node depth-first, root first, with its ancestors; fails if the
/// tree is deeper than [`MAX_DEPTH`] or has more than [`MAX_NODES`] nodes.
pub(crate) fn walk<'a, F>(fdt: Fdt<'a>, mut visit: F) -> Result<(), DtError>
where
    F: FnMut(&Ancestry<'a>, FdtNode<'a>) -> Result<Flow, DtError>,
{
    let mut anc = Ancestry::new();
    let mut budget = MAX_NODES;
    walk_node(fdt.root(), &mut anc, &mut visit, &mut budget).map(|_| ())
}

/// Returns whether the walk was stopped. Recursion depth is bounded by
/// [`MAX_DEPTH`] through [`Ancestry::push`].
fn walk_node<'a, F>(
    node: FdtNode<'a>,
    anc: &mut Ancestry<'a>,
    visit: &mut F,
    budget: &mut usize,
) -> Result<bool, DtError>
where
    F: FnMut(&Ancestry<'a>, FdtNode<'a>) -> Result<Flow, DtError>,
{
    *budget = budget.checked_sub(1).ok_or(DtError::Limit { what: "nodes", limit: MAX_NODES })?;
    match visit(anc, node)? {
        Flow::Stop => return Ok(true),
        Flow::Skip => return Ok(false),
        Flow::Descend => {}
    }
    let mut pushed = false;
    for child in node.children() {
        if !pushed {
            anc.push(node)?;
            pushed = true;
        }
        if walk_node(child, anc, visit, budget)? {
            anc.pop();
            return Ok(true);
        }
    }
    if pushed {
        anc.pop();
    }
    Ok(false)
}

/// Whether a path component names a node: with a unit address it must match
/// exactly, without one it matches any unit address (DT spec §2.2.3).
pub(crate) fn component_matches(component: &str, name: &str) -> bool {
    if component.contains('@') {
        component == name
    } else {
        name.split('@').next() == Some(component)
    }
}

/// The node at an absolute `path`, with its ancestors.
pub(crate) fn find_path<'a>(fdt: Fdt<'a>, path: &str) -> Result<Option<Located<'a>>, DtError> {
    if !path.starts_with('/') {
        return Ok(None);
    }
    let mut anc = Ancestry::new();
    let mut node = fdt.root();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let Some(child) = node.children().find(|c| component_matches(component, c.name())) else {
            return Ok(None);
        };
        anc.push(node)?;
        node = child;
    }
    Ok(Some(Located { anc, node }))
}

/// The node whose `phandle` is `phandle`, with its ancestors (one bounded walk).
pub(crate) fn find_phandle<'a>(fdt: Fdt<'a>, phandle: u32) -> Result<Option<Located<'a>>, DtError> {
    // 0 and 0xffffffff are never valid phandles (DT spec §2.3.3).
    if phandle == 0 || phandle == u32::MAX {
        return Ok(None);
    }
    let mut found = None;
    walk(fdt, |anc, node| {
        let at = At { anc, node };
        if at.phandle().ok().flatten() == Some(phandle) {
            found = Some(Located { anc: *anc, node });
            return Ok(Flow::Stop);
        }
        Ok(Flow::Descend)
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::component_matches;

    #[test]
    fn path_components() {
        assert!(component_matches("memory", "memory@40000000"));
        assert!(component_matches("memory", "memory"));
        assert!(component_matches("memory@40000000", "memory@40000000"));
        assert!(!component_matches("memory@0", "memory@40000000"));
        assert!(!component_matches("mem", "memory@40000000"));
        assert!(!component_matches("serial", "serial0"));
    }
}
