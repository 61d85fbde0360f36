//! The dependency graph of the desired resources: validation (unique ids, known dependencies,
//! no cycles, each named) and a deterministic topological order (dependencies first, ties by id).

use std::collections::{BTreeMap, BTreeSet};

use crate::{Error, NativeResource};

/// Desired resources with their dependencies resolved to indexes.
#[derive(Debug)]
pub(crate) struct Graph<'a> {
    pub resources: &'a [NativeResource],
    /// Per resource, the ids it depends on (sorted), as recorded in the state.
    pub dep_ids: Vec<Vec<String>>,
    /// Per resource, the indexes it depends on.
    pub deps: Vec<Vec<usize>>,
    /// Every index, dependencies before dependents, ties broken by id.
    pub order: Vec<usize>,
    index: BTreeMap<&'a str, usize>,
}

impl<'a> Graph<'a> {
    /// Validates `resources` and orders them.
    pub fn new(resources: &'a [NativeResource]) -> Result<Self, Error> {
        let mut index = BTreeMap::new();
        for (i, r) in resources.iter().enumerate() {
            if index.insert(r.id.as_str(), i).is_some() {
                return Err(Error::DuplicateResource { id: r.id.clone() });
            }
        }
        let mut dep_ids = Vec::with_capacity(resources.len());
        let mut deps = Vec::with_capacity(resources.len());
        for r in resources {
            let ids: Vec<String> = r.dependencies().into_iter().collect();
            let mut idx = Vec::with_capacity(ids.len());
            for d in &ids {
                match index.get(d.as_str()) {
                    Some(&j) => idx.push(j),
                    None => {
                        return Err(Error::UnknownDependency {
                            id: r.id.clone(),
                            dependency: d.clone(),
                        });
                    }
                }
            }
            dep_ids.push(ids);
            deps.push(idx);
        }
        let order = topological(resources, &deps)?;
        Ok(Graph {
            resources,
            dep_ids,
            deps,
            order,
            index,
        })
    }

    /// The index of `id`, if it is desired.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// Kahn's algorithm over ids; a remainder means a cycle, which is then named.
fn topological(resources: &[NativeResource], deps: &[Vec<usize>]) -> Result<Vec<usize>, Error> {
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); resources.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = (0..resources.len())
        .filter(|&i| waiting[i] == 0)
        .map(|i| (resources[i].id.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(resources.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert((resources[d].id.as_str(), d));
            }
        }
    }
    if order.len() == resources.len() {
        return Ok(order);
    }
    let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    Err(Error::DependencyCycle {
        cycle: find_cycle(&ids, deps, |i| waiting[i] > 0),
    })
}

/// A cycle among the nodes for which `stuck` holds (every stuck node has a stuck dependency),
/// starting from the smallest id: `[a, b, …, a]`, each depending on the next.
pub(crate) fn find_cycle(
    ids: &[&str],
    deps: &[Vec<usize>],
    stuck: impl Fn(usize) -> bool,
) -> Vec<String> {
    let Some(start) = (0..ids.len()).filter(|&i| stuck(i)).min_by_key(|&i| ids[i]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut seen = BTreeMap::from([(start, 0)]);
    let mut at = start;
    loop {
        let Some(next) = deps[at]
            .iter()
            .copied()
            .filter(|&d| stuck(d))
            .min_by_key(|&d| ids[d])
        else {
            return path.iter().map(|&i| ids[i].to_string()).collect();
        };
        if let Some(&pos) = seen.get(&next) {
            let mut cycle: Vec<String> = path[pos..].iter().map(|&i| ids[i].to_string()).collect();
            cycle.push(ids[next].to_string());
            return cycle;
        }
        seen.insert(next, path.len());
        path.push(next);
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(id: &str, deps: &[&str]) -> NativeResource {
        NativeResource {
            id: id.into(),
            kind: "k".into(),
            physical_name: None,
            properties: json!({}),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            replace_on: vec![],
            retain_data: false,
        }
    }

    #[test]
    fn order_is_topological_with_ties_by_id() {
        let rs = [
            res("c", &["a"]),
            res("b", &[]),
            res("a", &[]),
            res("d", &["c", "b"]),
        ];
        let g = Graph::new(&rs).unwrap();
        let ids: Vec<&str> = g.order.iter().map(|&i| rs[i].id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
    }

    #[test]
    fn unknown_dependencies_duplicates_and_cycles_are_named() {
        let err = Graph::new(&[res("a", &["ghost"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource `a` depends on `ghost`, which is not in the deployment: add it or remove the dependency"
        );
        let err = Graph::new(&[res("a", &[]), res("a", &[])]).unwrap_err();
        assert!(matches!(err, Error::DuplicateResource { .. }));
        let err = Graph::new(&[
            res("x", &[]),
            res("b", &["c"]),
            res("c", &["a"]),
            res("a", &["b", "x"]),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle `a` → `b` → `c` → `a` (each depends on the next): remove one of these dependencies"
        );
        let err = Graph::new(&[res("self", &["self"])]).unwrap_err();
        assert!(err.to_string().contains("`self` → `self`"), "{err}");
    }
}
