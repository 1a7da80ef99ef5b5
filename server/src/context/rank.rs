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

    /// The files `file` links to, with weights.
    pub fn links(&self, file: FileId) -> &[(FileId, f64)] {
        self.out.get(file as usize).map_or(&[], Vec::as_slice)
    }

    /// Personalised PageRank: `home` gives the restart distribution (normalised here; an empty
    /// or all-zero one means uniform). Returns one score per file slot, summing to 1.
    pub fn pagerank(&self, home: &HashMap<FileId, f64>) -> Vec<f64> {
        let n = self.out.len();
        if n == 0 {
            return Vec::new();
        }
        let mut restart = vec![0.0; n];
        let total: f64 = home
            .iter()
            .filter(|(f, w)| (**f as usize) < n && **w > 0.0)
            .map(|(_, w)| w)
            .sum();
        if total > 0.0 {
            for (&f, &w) in home {
                if (f as usize) < n && w > 0.0 {
                    restart[f as usize] = w / total;
                }
            }
        } else {
            restart.fill(1.0 / n as f64);
        }
        let out_sums: Vec<f64> = self
            .out
            .iter()
            .map(|links| links.iter().map(|(_, w)| w).sum())
            .collect();
        let mut rank = restart.clone();
        let mut next = vec![0.0; n];
        for _ in 0..ITERATIONS {
            next.fill(0.0);
            let mut dangling = 0.0;
            for (from, links) in self.out.iter().enumerate() {
                if out_sums[from] <= 0.0 {
                    dangling += rank[from];
                    continue;
                }
                let share = DAMPING * rank[from] / out_sums[from];
                for &(to, w) in links {
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
        rank
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
    fn an_empty_home_means_uniform_restarts() {
        let g = graph(&[(0, 1), (2, 1)], 3);
        let rank = g.pagerank(&HashMap::new());
        assert!(rank[1] > rank[0] && (rank[0] - rank[2]).abs() < 1e-12);
    }
}
