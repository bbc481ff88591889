//! The shape of the code, checked: no module imports go in a circle (between
//! sibling files, or between top-level modules), the model stays plain Rust,
//! SQL stays in the store, and no file grows past 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files by module path (`["drain", "core"]`), test-only files left out.
fn sources() -> BTreeMap<Vec<String>, (PathBuf, String)> {
    let mut out = BTreeMap::new();
    for root in ["src", "actors"] {
        walk(Path::new(root), &mut |path| {
            let rel = path.to_string_lossy().replace('\\', "/");
            if !rel.ends_with(".rs") || rel == "src/main.rs" {
                return;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let mut parts: Vec<String> = if let Some(r) = rel.strip_prefix("actors/") {
                std::iter::once("actors".to_string())
                    .chain(r.trim_end_matches(".rs").split('/').map(str::to_string))
                    .collect()
            } else {
                rel["src/".len()..]
                    .trim_end_matches(".rs")
                    .split('/')
                    .map(str::to_string)
                    .collect()
            };
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            out.insert(parts, (path.to_path_buf(), text));
        });
    }
    out
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

/// The code a file compiles outside tests: comments and `#[cfg(test)]`
/// modules removed.
fn code(path: &Path, text: &str) -> String {
    let name = path.to_string_lossy();
    if name.ends_with("_tests.rs") || name.ends_with("_props.rs") {
        return String::new();
    }
    let body = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which modules each module names (`crate::…` and `super::…` paths),
/// resolved to the longest module that exists.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let sources = sources();
    let path = regex::Regex::new(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)").unwrap();
    let mut graph = BTreeMap::new();
    for (me, (file, text)) in &sources {
        let mut deps = BTreeSet::new();
        for cap in path.captures_iter(&code(file, text)) {
            let tail: Vec<String> = cap[2]
                .trim_start_matches("::")
                .split("::")
                .map(str::to_string)
                .collect();
            // `super` is the parent module, for a `mod.rs` as for a file.
            let mut full: Vec<String> = if &cap[1] == "crate" {
                Vec::new()
            } else {
                me[..me.len().saturating_sub(1)].to_vec()
            };
            full.extend(tail);
            let found = (1..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|p| sources.contains_key(p));
            if let Some(dep) = found {
                if dep != *me {
                    deps.insert(dep);
                }
            }
        }
        graph.insert(me.clone(), deps);
    }
    graph
}

/// Strongly connected components with more than one member.
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            for w in self.g.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[w].min(self.low[v]);
                    self.low.insert(v, l);
                } else if self.stack.contains(&w) {
                    let l = self.index[w].min(self.low[v]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    comp.push(w.join("::"));
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    self.found.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[test]
fn no_two_files_import_each_other_in_a_circle() {
    // A module and its own submodules may name each other (a parent declares
    // and re-exports its children, children use what their parent shares);
    // any other circle is a tangle.
    let graph: BTreeMap<_, BTreeSet<_>> = graph()
        .into_iter()
        .map(|(k, deps)| {
            let deps = deps.into_iter().filter(|d| !related(&k, d)).collect();
            (k, deps)
        })
        .collect();
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new());
}

#[test]
fn top_level_modules_form_layers_without_circles() {
    let mut top: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (k, deps) in graph() {
        let Some(first) = k.first().cloned() else {
            continue;
        };
        let entry = top.entry(vec![first.clone()]).or_default();
        for d in deps {
            if let Some(df) = d.first() {
                if *df != first {
                    entry.insert(vec![df.clone()]);
                }
            }
        }
    }
    assert_eq!(cycles(&top), Vec::<Vec<String>>::new());
    // The supervisor knows nothing of its children's messages.
    let sup = &graph()[&vec!["actors".to_string(), "supervisor".to_string()]];
    for child in ["heartbeat", "queue", "scheduler", "sweeper"] {
        assert!(
            !sup.contains(&vec!["messages".to_string(), child.to_string()]),
            "the supervisor imports messages::{child}"
        );
    }
}

#[test]
fn the_model_is_plain_rust_and_sql_stays_in_the_store() {
    for (module, (file, text)) in sources() {
        let code = code(&file, &text);
        if module.first().map(String::as_str) == Some("model") {
            for banned in ["sqlx", "tokio", "ractor", "axum", "reqwest"] {
                assert!(
                    !code.contains(banned),
                    "{} mentions {banned}",
                    file.display()
                );
            }
        }
        if module.first().map(String::as_str) == Some("actors") {
            assert!(!code.contains("sqlx"), "{} mentions sqlx", file.display());
        }
    }
}

#[test]
fn no_file_is_over_600_lines() {
    for (_, (file, text)) in sources() {
        let lines = text.lines().count();
        assert!(lines <= 600, "{} has {lines} lines", file.display());
    }
}
