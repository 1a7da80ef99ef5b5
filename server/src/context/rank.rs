//! Ranking files: a personalised PageRank over the file reference graph.
//!
//! File A links to file B when A references a name that B defines. A name defined in many
//! files (`new`, `fmt`) says little about which one is meant, so its weight is split between
//! them; type and trait uses weigh more than calls, which are often to methods with common
//! names. Personalising the walk on the current file (and on the files that define what the goal
//! mentions) makes "important" mean "important from here".

use std::collections::HashMap;

use super::index::{FileId, WorkspaceIndex};
use super::tags::RefKind;

/// The damping factor: the chance of following a link rather than jumping home.
const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 40;
const TOLERANCE: f64 = 1e-9;

/// Weighted links between files.
#[derive(Debug, Default)]
pub struct FileGraph {
    /// Outgoing links per file slot: (target, weight).
    out: Vec<Vec<(FileId, f64)>>,
}

fn kind_weight(kind: RefKind) -> f64 {
    match kind {
        RefKind::Implementation => 2.0,
        RefKind::Type => 1.0,
        RefKind::Constant => 1.0,
        RefKind::Call => 0.7,
        RefKind::Method => 0.4,
    }
}

impl FileGraph {
    /// Builds the graph from the index's definitions and references.
    pub fn build(index: &WorkspaceIndex) -> FileGraph {
        let slots = index
            .files()
            .map(|(id, _)| id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut out = vec![Vec::new(); slots];
        let mut targets: HashMap<FileId, f64> = HashMap::new();
        let mut defining: Vec<FileId> = Vec::new();
        for (id, _) in index.files() {
            targets.clear();
            for (name, kind) in index.distinct_references(id) {
                defining.clear();
                defining.extend(index.definitions_of(name).iter().map(|d| d.file));
                defining.sort_unstable();
                defining.dedup();
                if defining.is_empty() || defining.contains(&id) {
                    continue;
                }
                let share = kind_weight(*kind) / defining.len() as f64;
                for &target in &defining {
                    *targets.entry(target).or_default() += share;
                }
            }
            let mut links: Vec<(FileId, f64)> = targets.iter().map(|(&t, &w)| (t, w)).collect();
            links.sort_unstable_by_key(|(t, _)| *t);
            out[id as usize] = links;
        }
        FileGraph { out }
    }

    /// The number of file slots (one past the highest file id).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the graph has no files.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The files `file` links to, with weights.
    pub fn links(&self, file: FileId) -> &[(FileId, f64)] {
        self.out.get(file as usize).map_or(&[], Vec::as_slice)
    }

    /// Personalised PageRank: `home` gives the restart distribution (normalised here; an empty
    /// or all-zero one means uniform). Returns one score per file slot, summing to 1.
    pub fn pagerank(&self, home: &HashMap<FileId, f64>) -> Vec<f64> {
        self.pagerank_within(home, &vec![true; self.out.len()])
    }

    /// Personalised PageRank of the walk that only ever steps onto files `keep` marks (the
    /// files a crate can reach): a link to any other file is not followed, and such files
    /// score 0. Walking through a crate the current one cannot reach and back only adds noise,
    /// and leaving those files out makes the walk as small as what it may return.
    pub fn pagerank_within(&self, home: &HashMap<FileId, f64>, keep: &[bool]) -> Vec<f64> {
        let n = self.out.len();
        if n == 0 {
            return Vec::new();
        }
        let kept = |f: usize| keep.get(f).copied().unwrap_or(false);
        // The kept files, renumbered 0.., with their kept links in one flat array, each weight
        // already divided by the file's kept total so that an iteration is one multiply-add per
        // link.
        let nodes: Vec<usize> = (0..n).filter(|&f| kept(f)).collect();
        let mut local = vec![usize::MAX; n];
        for (i, &f) in nodes.iter().enumerate() {
            local[f] = i;
        }
        let m = nodes.len();
        let mut starts = Vec::with_capacity(m + 1);
        let mut links: Vec<(u32, f64)> = Vec::new();
        for &f in &nodes {
            starts.push(links.len());
            let from = links.len();
            let mut total = 0.0;
            for &(to, w) in &self.out[f] {
                if let Some(&j) = local.get(to as usize).filter(|j| **j != usize::MAX) {
                    links.push((j as u32, w));
                    total += w;
                }
            }
            if total > 0.0 {
                for link in &mut links[from..] {
                    link.1 /= total;
                }
            }
        }
        starts.push(links.len());
        let mut restart = vec![0.0; m];
        let total: f64 = home
            .iter()
            .filter(|(f, w)| kept(**f as usize) && **w > 0.0)
            .map(|(_, w)| w)
            .sum();
        if total > 0.0 {
            for (&f, &w) in home {
                if kept(f as usize) && w > 0.0 {
                    restart[local[f as usize]] = w / total;
                }
            }
        } else if m > 0 {
            restart.fill(1.0 / m as f64);
        }
        let mut rank = restart.clone();
        let mut next = vec![0.0; m];
        for _ in 0..ITERATIONS {
            next.fill(0.0);
            let mut dangling = 0.0;
            for from in 0..m {
                let out = &links[starts[from]..starts[from + 1]];
                if out.is_empty() {
                    dangling += rank[from];
                    continue;
                }
                let share = DAMPING * rank[from];
                if share == 0.0 {
                    continue;
                }
                for &(to, w) in out {
                    next[to as usize] += share * w;
                }
            }
            // Rank that cannot flow anywhere goes home, as does the restart share.
            let home_mass = 1.0 - DAMPING + DAMPING * dangling;
            for (value, r) in next.iter_mut().zip(&restart) {
                *value += home_mass * r;
            }
            let delta: f64 = next.iter().zip(&rank).map(|(a, b)| (a - b).abs()).sum();
            std::mem::swap(&mut rank, &mut next);
            if delta < TOLERANCE {
                break;
            }
        }
        let mut out = vec![0.0; n];
        for (i, &f) in nodes.iter().enumerate() {
            out[f] = rank[i];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(links: &[(FileId, FileId)], n: usize) -> FileGraph {
        let mut out = vec![Vec::new(); n];
        for &(a, b) in links {
            out[a as usize].push((b, 1.0));
        }
        FileGraph { out }
    }

    #[test]
    fn rank_flows_from_home_along_links() {
        // 0 -> 1 -> 2, and 3 -> 4 unconnected to 0.
        let g = graph(&[(0, 1), (1, 2), (3, 4)], 5);
        let rank = g.pagerank(&HashMap::from([(0, 1.0)]));
        assert!((rank.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(rank[1] > rank[3] && rank[2] > rank[4], "{rank:?}");
        assert_eq!(rank[3], 0.0);
        // Homed elsewhere, the other component wins.
        let rank = g.pagerank(&HashMap::from([(3, 1.0)]));
        assert!(rank[4] > rank[1], "{rank:?}");
    }

    #[test]
    fn a_walk_within_kept_files_never_steps_onto_the_others() {
        // 0 -> 1 -> 2 and 0 -> 3 -> 2: with 3 left out, its share goes to 1 instead.
        let g = graph(&[(0, 1), (1, 2), (0, 3), (3, 2)], 4);
        let home = HashMap::from([(0, 1.0)]);
        let all = g.pagerank(&home);
        let within = g.pagerank_within(&home, &[true, true, true, false]);
        assert_eq!(within[3], 0.0);
        assert!(all[3] > 0.0);
        assert!(within[1] > all[1], "{within:?} against {all:?}");
        assert!((within.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn an_empty_home_means_uniform_restarts() {
        let g = graph(&[(0, 1), (2, 1)], 3);
        let rank = g.pagerank(&HashMap::new());
        assert!(rank[1] > rank[0] && (rank[0] - rank[2]).abs() < 1e-12);
    }
}
