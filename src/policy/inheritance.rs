//! Role inheritance as a graph: its strongly connected components, a cycle
//! through every role of a cyclic component, and the merge of inherited
//! permissions.
//!
//! Roles are numbered by their position in the document, and `edges[i]` lists
//! the roles role `i` inherits from. Every pass here is linear in the roles
//! and `inherits` entries, whatever the graph's shape (the merge, in the
//! entries it reads and writes), so a hostile policy cannot make a build slow.

use std::collections::VecDeque;

use crate::scope_set::ScopeSet;
use crate::work::work;

/// Most role names one cycle report lists before the role itself again; a
/// longer cycle says how many it left out.
pub(super) const CYCLE_NAMES: usize = 16;

/// A cycle through one role, for its `InheritanceCycle` problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CycleReport {
    /// The role reported.
    pub(super) role: usize,
    /// The roles of the cycle from `role`, at most [`CYCLE_NAMES`] of them,
    /// then `role` again.
    pub(super) roles: Vec<usize>,
    /// How many roles of the cycle `roles` leaves out.
    pub(super) omitted: usize,
}

/// One API's set in a role's list of per-API sets.
pub(super) type PerApi = Vec<(usize, ScopeSet)>;

/// Not seen yet, in the per-node tables below.
const UNSEEN: usize = usize::MAX;

/// The strongly connected components of a graph, by Tarjan's algorithm
/// without recursion (an inheritance chain may be 10,000 roles deep).
/// Each component is sorted, and comes after every component it has an edge to.
pub(super) fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    // Call stack frames: (node, position of the next edge to follow).
    let mut frames: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if get(&index, root) != UNSEEN {
            continue;
        }
        frames.push((root, 0));
        while let Some(&mut (node, ref mut edge)) = frames.last_mut() {
            if *edge == 0 && get(&index, node) == UNSEEN {
                set(&mut index, node, next);
                set(&mut low, node, next);
                next += 1;
                stack.push(node);
                set(&mut on_stack, node, true);
            }
            if let Some(&target) = edges.get(node).and_then(|targets| targets.get(*edge)) {
                work(1);
                *edge += 1;
                if get(&index, target) == UNSEEN {
                    frames.push((target, 0));
                } else if get(&on_stack, target) {
                    let lowest = get(&low, node).min(get(&index, target));
                    set(&mut low, node, lowest);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                let lowest = get(&low, parent).min(get(&low, node));
                set(&mut low, parent, lowest);
            }
            if get(&low, node) == get(&index, node) {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    work(1);
                    set(&mut on_stack, member, false);
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components
}

/// Whether a component is a cycle: two roles or more, or one that inherits itself.
pub(super) fn is_cyclic(component: &[usize], edges: &[Vec<usize>]) -> bool {
    match component {
        [single] => edges.get(*single).is_some_and(|targets| targets.contains(single)),
        _ => true,
    }
}

/// A cycle through every role of a cyclic `component` (sorted), in its order.
///
/// One shortest cycle through the component's first role, the *ring*, is
/// found by a breadth-first search. A role on the ring reports the ring from
/// itself. A role off it reports the closed chain: its shortest way to the
/// ring, along the ring, then the ring's shortest way back to it. Every step
/// of a chain is an `inherits` entry, so it proves the cycle, though off the
/// ring it may pass one role twice. Only the first [`CYCLE_NAMES`] roles of a
/// chain are ever listed, and each is found in constant time, so the whole
/// component costs time linear in its roles and `inherits` entries.
pub(super) fn cycles(component: &[usize], edges: &[Vec<usize>]) -> Vec<CycleReport> {
    let graph = Component::new(component, edges);
    let n = component.len();
    let ring = graph.ring();
    let Some(&first) = ring.first() else {
        return Vec::new(); // not cyclic
    };
    let mut on_ring = vec![UNSEEN; n];
    for (position, &node) in ring.iter().enumerate() {
        set(&mut on_ring, node, position);
    }

    // The shortest way from each node to the ring: the next node on it, and
    // how many steps it takes (reverse breadth-first search from the ring).
    let mut toward = vec![UNSEEN; n];
    let mut to_ring = vec![0; n];
    let mut entry = vec![UNSEEN; n]; // the ring node reached
    let mut queue: VecDeque<usize> = ring.iter().copied().collect();
    for &node in &ring {
        set(&mut entry, node, node);
    }
    while let Some(node) = queue.pop_front() {
        for &from in graph.incoming(node) {
            work(1);
            if get(&entry, from) == UNSEEN {
                set(&mut toward, from, node);
                let (steps, reached) = (get(&to_ring, node) + 1, get(&entry, node));
                set(&mut to_ring, from, steps);
                set(&mut entry, from, reached);
                queue.push_back(from);
            }
        }
    }

    // The shortest way from the ring to each node, as a tree of children
    // hanging off ring nodes (forward breadth-first search from the ring).
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut reached = on_ring.iter().map(|&p| p != UNSEEN).collect::<Vec<_>>();
    let mut queue: VecDeque<usize> = ring.iter().copied().collect();
    while let Some(node) = queue.pop_front() {
        for &to in graph.outgoing(node) {
            work(1);
            if !get(&reached, to) {
                set(&mut reached, to, true);
                if let Some(list) = children.get_mut(node) {
                    list.push(to);
                }
                queue.push_back(to);
            }
        }
    }

    let mut reports: Vec<Option<CycleReport>> = vec![None; n];
    let report = |node: usize, listed: Vec<usize>, length: usize| CycleReport {
        role: graph.role(node),
        roles: listed
            .into_iter()
            .chain(std::iter::once(node))
            .map(|local| graph.role(local))
            .collect(),
        omitted: (length + 1).saturating_sub(CYCLE_NAMES + 1),
    };
    let ring_at = |at: usize| ring.get(at % ring.len()).copied().unwrap_or(first);
    let along_ring = |from: usize, steps: usize| {
        let at = get(&on_ring, from);
        (1..=steps).map(move |k| ring_at(at + k))
    };

    for (position, &node) in ring.iter().enumerate() {
        // The ring itself, rotated to start here.
        let listed: Vec<usize> = (0..ring.len().min(CYCLE_NAMES))
            .map(|k| ring_at(position + k))
            .inspect(|_| work(1))
            .collect();
        if let Some(slot) = reports.get_mut(node) {
            *slot = Some(report(node, listed, ring.len()));
        }
    }

    // Depth-first over the tree from each ring node, so that `path` always
    // holds the way from the ring to the node being reported.
    for &root in &ring {
        let mut path = vec![root];
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (node, ref mut child)) = frames.last_mut() {
            let Some(&next) = children.get(node).and_then(|list| list.get(*child)) else {
                frames.pop();
                path.pop();
                continue;
            };
            *child += 1;
            frames.push((next, 0));
            path.push(next);

            // The chain: `next` to the ring, along it to `root`, then `path`.
            let (ring_from, into_ring) = (get(&entry, next), get(&to_ring, next));
            let around = (get(&on_ring, root) + ring.len() - get(&on_ring, ring_from)) % ring.len();
            let back = path.len() - 1;
            let length = into_ring + around + back;
            let to_the_ring =
                std::iter::successors(Some(next), |&at| Some(get(&toward, at))).take(into_ring + 1);
            let listed: Vec<usize> = to_the_ring
                .chain(along_ring(ring_from, around))
                .chain(path.iter().copied().skip(1).take(back.saturating_sub(1)))
                .take(CYCLE_NAMES.min(length))
                .inspect(|_| work(1))
                .collect();
            if let Some(slot) = reports.get_mut(next) {
                *slot = Some(report(next, listed, length));
            }
        }
    }
    reports.into_iter().flatten().collect()
}

/// The edges of one component, between positions in it.
struct Component<'c> {
    roles: &'c [usize],
    outgoing: Vec<Vec<usize>>,
    incoming: Vec<Vec<usize>>,
}

impl<'c> Component<'c> {
    fn new(roles: &'c [usize], edges: &[Vec<usize>]) -> Self {
        let position = |role: &usize| roles.binary_search(role).ok();
        let outgoing: Vec<Vec<usize>> = roles
            .iter()
            .map(|&role| {
                let targets = edges.get(role).map(Vec::as_slice).unwrap_or_default();
                work(targets.len());
                targets.iter().filter_map(position).collect()
            })
            .collect();
        let mut incoming = vec![Vec::new(); roles.len()];
        for (from, targets) in outgoing.iter().enumerate() {
            for &to in targets {
                if let Some(list) = incoming.get_mut(to) {
                    list.push(from);
                }
            }
        }
        Component {
            roles,
            outgoing,
            incoming,
        }
    }

    fn role(&self, node: usize) -> usize {
        get(self.roles, node)
    }

    fn outgoing(&self, node: usize) -> &[usize] {
        self.outgoing.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    fn incoming(&self, node: usize) -> &[usize] {
        self.incoming.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    /// A shortest cycle through node 0, each node once; empty if there is none.
    fn ring(&self) -> Vec<usize> {
        let mut came_from = vec![UNSEEN; self.roles.len()];
        let mut queue = VecDeque::from([0]);
        while let Some(node) = queue.pop_front() {
            for &to in self.outgoing(node) {
                work(1);
                if to == 0 {
                    let mut ring: Vec<usize> =
                        std::iter::successors(Some(node), |&at| Some(get(&came_from, at)))
                            .take_while(|&at| at != UNSEEN)
                            .collect();
                    ring.reverse(); // 0, ..., node
                    return ring;
                }
                if get(&came_from, to) == UNSEEN {
                    set(&mut came_from, to, node);
                    queue.push_back(to);
                }
            }
        }
        Vec::new()
    }
}

/// Each role's permissions with everything it inherits, per API, sorted by
/// API: `own` merged with the merged permissions of every role in `edges`.
///
/// `components` come from [`strongly_connected`] on an acyclic graph, so each
/// is one role, after every role it inherits from. A role's list is found
/// with one slot per API, so the cost is what is read and written: every
/// inherited entry once per `inherits` edge, never a search of a list.
pub(super) fn merge(
    components: &[Vec<usize>],
    edges: &[Vec<usize>],
    mut own: Vec<PerApi>,
    apis: usize,
) -> Vec<PerApi> {
    let mut merged: Vec<PerApi> = vec![Vec::new(); own.len()];
    let mut slots = Slots::new(apis);
    for &role in components.iter().flatten() {
        let mut sets = own.get_mut(role).map(std::mem::take).unwrap_or_default();
        for (k, (api, _)) in sets.iter().enumerate() {
            slots.put(*api, k);
        }
        for &parent in edges.get(role).map(Vec::as_slice).unwrap_or_default() {
            for (api, theirs) in merged.get(parent).map(Vec::as_slice).unwrap_or_default() {
                work(1);
                match slots.get(*api).and_then(|k| sets.get_mut(k)) {
                    Some((_, set)) => set.union_with(theirs),
                    None => {
                        slots.put(*api, sets.len());
                        sets.push((*api, theirs.clone()));
                    }
                }
            }
        }
        slots.clear(&sets);
        sets.sort_unstable_by_key(|(api, _)| *api);
        if let Some(slot) = merged.get_mut(role) {
            *slot = sets;
        }
    }
    merged
}

/// Where each API's set is in the per-API list being built: one slot per
/// API, cleared after each list, so finding a set never searches the list.
#[derive(Debug)]
pub(super) struct Slots {
    at: Vec<usize>,
}

impl Slots {
    /// Slots for `apis` APIs, all empty.
    pub(super) fn new(apis: usize) -> Self {
        Slots {
            at: vec![UNSEEN; apis],
        }
    }

    fn get(&self, api: usize) -> Option<usize> {
        Some(get(&self.at, api)).filter(|&k| k != UNSEEN)
    }

    fn put(&mut self, api: usize, k: usize) {
        set(&mut self.at, api, k);
    }

    /// The set of `api` in `sets`, added empty (of `len` ids) when missing.
    pub(super) fn entry<'s>(&mut self, sets: &'s mut PerApi, api: usize, len: usize) -> &'s mut ScopeSet {
        let k = match self.get(api) {
            Some(k) => k,
            None => {
                self.put(api, sets.len());
                sets.push((api, ScopeSet::with_len(len)));
                sets.len() - 1
            }
        };
        // INVARIANT: `k` is a position in `sets`, recorded when it was pushed.
        #[expect(clippy::indexing_slicing, reason = "`k` was recorded when its set was pushed")]
        &mut sets[k].1
    }

    /// Empties the slots of `sets`, for the next list.
    pub(super) fn clear(&mut self, sets: &PerApi) {
        for (api, _) in sets {
            set(&mut self.at, *api, UNSEEN);
        }
    }
}

fn get<T: Copy + Default>(values: &[T], at: usize) -> T {
    values.get(at).copied().unwrap_or_default()
}

fn set<T>(values: &mut [T], at: usize, value: T) {
    if let Some(slot) = values.get_mut(at) {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::counted;

    /// Every cycle report of a graph, with the work they took.
    fn all_cycles(edges: &[Vec<usize>]) -> (Vec<CycleReport>, usize) {
        counted(|| {
            strongly_connected(edges)
                .iter()
                .filter(|component| is_cyclic(component, edges))
                .flat_map(|component| cycles(component, edges))
                .collect()
        })
    }

    /// Asserts that each report is a chain of real edges from its role back
    /// to it, of `listed + omitted` steps, and that every role of a cyclic
    /// component is reported once.
    fn assert_valid(edges: &[Vec<usize>], reports: &[CycleReport]) {
        let cyclic: Vec<usize> = strongly_connected(edges)
            .into_iter()
            .filter(|component| is_cyclic(component, edges))
            .flatten()
            .collect();
        let mut reported: Vec<usize> = reports.iter().map(|report| report.role).collect();
        reported.sort_unstable();
        let mut expected = cyclic.clone();
        expected.sort_unstable();
        assert_eq!(reported, expected, "every role on a cycle, once");
        for report in reports {
            let roles = &report.roles;
            assert_eq!(roles.first(), Some(&report.role), "{report:?}");
            assert_eq!(roles.last(), Some(&report.role), "{report:?}");
            assert!(roles.len() <= CYCLE_NAMES + 1, "{report:?}");
            let listed = roles.len() - 1;
            let steps = if report.omitted == 0 { listed } else { listed - 1 };
            for pair in roles.windows(2).take(steps) {
                assert!(
                    edges[pair[0]].contains(&pair[1]),
                    "{pair:?} is no edge: {report:?}"
                );
            }
            if report.omitted > 0 {
                assert_eq!(listed, CYCLE_NAMES, "{report:?}");
            }
        }
    }

    /// `n` roles in a ring, `i` inheriting `i + 1`.
    fn ring(n: usize) -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![(i + 1) % n]).collect()
    }

    /// A ring of `n` with one chord from 0 to `n / 2`: the shortest cycle
    /// through 0 skips half the ring, which is off it.
    fn ring_with_chord(n: usize) -> Vec<Vec<usize>> {
        let mut edges = ring(n);
        edges[0].push(n / 2);
        edges
    }

    /// A 2-ring with a long way back: 0 <-> 1, and 1 -> 2 -> ... -> n-1 -> 0.
    fn lollipop(n: usize) -> Vec<Vec<usize>> {
        let mut edges: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        edges[1].insert(0, 0);
        edges
    }

    /// Every node inherits every node before it, and 0 inherits the last.
    fn dense(n: usize) -> Vec<Vec<usize>> {
        (0..n)
            .map(|i| if i == 0 { vec![n - 1] } else { (0..i).collect() })
            .collect()
    }

    #[test]
    fn a_ring_reports_itself_from_every_role() {
        let (reports, _) = all_cycles(&ring(3));
        let roles: Vec<Vec<usize>> = reports.iter().map(|r| r.roles.clone()).collect();
        assert_eq!(roles, [vec![0, 1, 2, 0], vec![1, 2, 0, 1], vec![2, 0, 1, 2]]);
        assert!(reports.iter().all(|r| r.omitted == 0));

        let (long, _) = all_cycles(&ring(40));
        assert_eq!(long[5].roles, (5..21).chain([5]).collect::<Vec<_>>());
        assert_eq!(long[5].omitted, 40 - CYCLE_NAMES);
    }

    #[test]
    fn a_role_off_the_ring_reports_a_closed_chain_through_it() {
        // 0 -> 1 -> 0 is the ring; 2 reaches it and is reached from it.
        let edges = vec![vec![1, 2], vec![0], vec![1]];
        let (reports, _) = all_cycles(&edges);
        assert_valid(&edges, &reports);
        assert_eq!(reports[2].roles, [2, 1, 0, 2]);
    }

    #[test]
    fn reports_are_closed_chains_of_real_edges_for_any_shape() {
        for n in [1, 2, 3, 17, 18, 40] {
            for edges in [ring(n), ring_with_chord(n.max(2)), lollipop(n.max(2)), dense(n)] {
                let (reports, _) = all_cycles(&edges);
                assert_valid(&edges, &reports);
            }
        }
        // Pseudo-random graphs, some with several cyclic components.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..300 {
            let n = 1 + next(30);
            let edges: Vec<Vec<usize>> = (0..n).map(|_| (0..next(4)).map(|_| next(n)).collect()).collect();
            let (reports, _) = all_cycles(&edges);
            assert_valid(&edges, &reports);
        }
    }

    /// Doubling the roles at most doubles the work, give or take a quarter.
    /// (Reporting a ring took O(n) a role and a role off the ring a search of
    /// its component, so each of these shapes was quadratic.)
    #[test]
    fn cycle_reports_grow_linearly_for_any_shape() {
        for (shape, graph) in [
            ("ring", ring as fn(usize) -> Vec<Vec<usize>>),
            ("ring with a chord", ring_with_chord),
            ("lollipop", lollipop),
        ] {
            let (small, at_n) = all_cycles(&graph(2_000));
            let (large, at_2n) = all_cycles(&graph(4_000));
            assert_eq!((small.len(), large.len()), (2_000, 4_000), "{shape}");
            let ratio = at_2n as f64 / at_n as f64;
            assert!(
                ratio <= 2.5,
                "{shape}: doubling the roles multiplied the work by {ratio:.2}"
            );
        }
        // Dense: the work follows the edges (n² / 2 of them), not more.
        let edges = |n: usize| n * (n - 1) / 2 + 1;
        let (_, at_n) = all_cycles(&dense(300));
        let (_, at_2n) = all_cycles(&dense(600));
        let ratio = (at_2n as f64 / edges(600) as f64) / (at_n as f64 / edges(300) as f64);
        assert!(ratio <= 1.25, "dense: work per edge grew {ratio:.2}×");
    }

    fn set_of(len: usize, ids: &[usize]) -> ScopeSet {
        let mut set = ScopeSet::with_len(len);
        ids.iter().for_each(|&id| set.insert(id));
        set
    }

    #[test]
    fn merge_unions_what_each_role_inherits() {
        // 2 inherits 0 and 1; 0 and 2 share API 0; 1 brings API 1.
        let edges = vec![vec![], vec![], vec![0, 1]];
        let own = vec![
            vec![(0, set_of(4, &[0]))],
            vec![(1, set_of(4, &[3]))],
            vec![(0, set_of(4, &[1]))],
        ];
        let merged = merge(&strongly_connected(&edges), &edges, own, 2);
        assert_eq!(merged[0], [(0, set_of(4, &[0]))]);
        assert_eq!(merged[1], [(1, set_of(4, &[3]))]);
        assert_eq!(merged[2], [(0, set_of(4, &[0, 1])), (1, set_of(4, &[3]))]);
    }

    /// The entries a merge writes: its output's size.
    fn entries(merged: &[PerApi]) -> usize {
        merged.iter().map(Vec::len).sum()
    }

    /// A chain of `n` roles over `n` APIs: role i holds API i and inherits
    /// role i - 1, so it ends with i + 1 APIs (n² / 2 entries in all).
    fn chain(n: usize) -> (Vec<Vec<usize>>, Vec<PerApi>) {
        let edges = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        let own = (0..n).map(|i| vec![(i, set_of(1, &[0]))]).collect();
        (edges, own)
    }

    /// One role inheriting `n` roles, each over its own API.
    fn wide(n: usize) -> (Vec<Vec<usize>>, Vec<PerApi>) {
        let mut edges: Vec<Vec<usize>> = vec![vec![]; n];
        edges.push((0..n).collect());
        let mut own: Vec<PerApi> = (0..n).map(|i| vec![(i, set_of(1, &[0]))]).collect();
        own.push(Vec::new());
        (edges, own)
    }

    /// The work of a merge is linear in what it writes: doubling the input
    /// keeps the work per written entry within a quarter. (The merge used to
    /// search a role's list for each inherited entry: cubic for a chain,
    /// quadratic for a wide role.)
    #[test]
    fn merge_grows_with_its_output() {
        for (shape, input) in [
            ("chain", chain as fn(usize) -> (Vec<Vec<usize>>, Vec<PerApi>)),
            ("wide", wide),
        ] {
            let per_entry = |n: usize| {
                let (edges, own) = input(n);
                let components = strongly_connected(&edges);
                let (merged, work) = counted(|| merge(&components, &edges, own, n));
                work as f64 / entries(&merged) as f64
            };
            let (at_n, at_2n) = (per_entry(500), per_entry(1_000));
            assert!(
                at_2n <= at_n * 1.25,
                "{shape}: work per entry went from {at_n:.2} to {at_2n:.2}"
            );
        }
    }
}
