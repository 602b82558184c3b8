//! The architecture as written down is the architecture in the code: every module of `src/` imports only modules in
//! layers below its own (ARCHITECTURE.md's `layers` block, top layer first), so there is no import cycle; and every
//! `method.md §…` citation in the sources names a section (or a numbered item of one) of docs/method.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Every .rs file under `dir`, as (path relative to the crate, text).
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

/// The layers, top first: ARCHITECTURE.md's fenced `layers` block, one layer per line.
fn layers() -> BTreeMap<String, usize> {
    let doc = read("ARCHITECTURE.md");
    let block = doc.split("```layers\n").nth(1).expect("ARCHITECTURE.md has a ```layers block").split("```").next().unwrap();
    let mut out = BTreeMap::new();
    for (i, line) in block.lines().enumerate() {
        for m in line.split_whitespace() {
            assert!(out.insert(m.to_string(), i).is_none(), "{m} is listed twice");
        }
    }
    out
}

/// The top-level modules a file names: `crate::m`, `crate::{m, …}` and (in main.rs) `hyperdistill::m`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // comments do not import anything
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    for prefix in ["crate::", "hyperdistill::"] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for item in group.split('}').next().unwrap_or("").split(',') {
                    let m: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !m.is_empty() {
                        out.insert(m);
                    }
                }
            } else {
                let m: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !m.is_empty() {
                    out.insert(m);
                }
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let layer = layers();
    let mut files = vec![];
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut seen = BTreeSet::new();
    let mut faults = vec![];
    for (path, text) in &files {
        let top = path.trim_start_matches("src/").split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue;
        }
        seen.insert(top.clone());
        let Some(&own) = layer.get(&top) else {
            faults.push(format!("{path}: module '{top}' is not in ARCHITECTURE.md's layers"));
            continue;
        };
        for m in imports(text) {
            if m == top || m == "self" || m == "super" {
                continue;
            }
            match layer.get(&m) {
                Some(&l) if l > own => {}
                Some(&l) => faults.push(format!("{path}: '{top}' (layer {own}) imports '{m}' (layer {l}), which is not below it")),
                None => {} // a crate's item at the root (lib.rs re-exports none) or an external crate's path
            }
        }
    }
    for m in layer.keys() {
        assert!(seen.contains(m), "ARCHITECTURE.md lists '{m}', which src/ does not have");
    }
    println!("{} files, {} modules in {} layers", files.len(), seen.len(), layer.values().max().unwrap() + 1);
    assert!(faults.is_empty(), "layering broken:\n{}", faults.join("\n"));
}

/// Section numbers of docs/method.md ("1", "1.3", …) with the count of numbered items in each.
fn method_sections() -> BTreeMap<String, usize> {
    let doc = read("docs/method.md");
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if line.starts_with('#') {
            let number = line.trim_start_matches('#').trim().split_whitespace().next().unwrap_or("").trim_end_matches('.').to_string();
            if number.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                out.insert(number.clone(), 0);
                current = Some(number);
            }
        } else if let Some(c) = &current {
            let item: String = line.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !item.is_empty() && line[item.len()..].starts_with(". ") {
                let n = out.get_mut(c).unwrap();
                *n = (*n).max(item.parse().unwrap());
            }
        }
    }
    out
}

#[test]
fn method_citations_resolve() {
    let sections = method_sections();
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| ["rs", "wgsl", "toml", "py", "md", "sh"].iter().any(|e| x == *e)) {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut files = vec![];
    for dir in ["src", "shaders", "tests", "presets", "benches"] {
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        files.push((doc.to_string(), read(doc)));
    }
    let (mut count, mut faults) = (0, vec![]);
    for (path, text) in &files {
        for (i, _) in text.match_indices("method.md §") {
            let cite: String = text[i + "method.md §".len()..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let cite = cite.trim_end_matches('.');
            if cite.is_empty() {
                continue; // prose about citations ("method.md §N"), not one
            }
            // a range "§1.3–1.6" cites its first section; "§N.M.K" is item K of §N.M, "§N.K" item K of §N where §N.K is no heading
            let ok = sections.contains_key(cite)
                || cite.rsplit_once('.').is_some_and(|(sec, item)| sections.get(sec).is_some_and(|&n| item.parse::<usize>().is_ok_and(|k| k >= 1 && k <= n)));
            count += 1;
            if !ok {
                faults.push(format!("{path}: method.md §{cite}"));
            }
        }
    }
    println!("{count} citations of docs/method.md checked against {} sections", sections.len());
    assert!(count > 50, "too few citations found ({count}): is the search broken?");
    assert!(faults.is_empty(), "citations that name no section of docs/method.md:\n{}", faults.join("\n"));
}
