//! Reading `strategies/` from disk: YAML → raw structs → validated domain types, every
//! error reported as `path:line:col: message`, all errors of all files at once.
//!
//! Layout: `strategies/<team>/<name>.yaml` (id `<team>/<name>`) and shared metric
//! templates in `strategies/_templates/<name>.yaml`. A YAML syntax or type error stops
//! that one file at its first such error (serde cannot go on past it); every other
//! mistake of every file is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::strategy::{Strategy, StrategyId};

pub(crate) mod catalog;
mod diagnostics;
mod judges;
mod lint;
mod metrics;
mod raw;
mod router;
pub mod schema;
#[cfg(test)]
mod tests;
mod validate;
mod workload;

pub use catalog::{CatalogEntry, TemplateCatalog};
pub use diagnostics::Diagnostic;
pub use lint::{DEFAULT_SCRAPE_INTERVAL, Lint, rate_ranges};
pub use validate::FileIdentity;

use diagnostics::{FileDiagnostics, yaml_error};
use raw::{RawStrategyFile, RawTemplateFile};

pub const TEMPLATES_DIR: &str = "_templates";

/// Largest strategy or template file accepted, to keep a stray file from exhausting memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The strategies that loaded, and every error of those that did not.
#[derive(Debug, Default)]
pub struct Loaded {
    pub strategies: BTreeMap<StrategyId, Strategy>,
    pub errors: Vec<Diagnostic>,
    /// Valid but doubtful: the strategies load all the same.
    pub warnings: Vec<Diagnostic>,
}

/// Loads a whole strategies folder, with warnings against the default scrape interval.
pub fn load_dir(root: &Path) -> Loaded {
    load_dir_linted(root, Lint::default())
}

/// Loads a whole strategies folder, with warnings measured against `lint`.
pub fn load_dir_linted(root: &Path, lint: Lint) -> Loaded {
    let mut loaded = Loaded::default();
    let catalog = load_templates(root, &mut loaded.errors);
    let teams = match sorted_entries(root) {
        Ok(entries) => entries,
        Err(error) => {
            loaded.errors.push(file_level(
                root,
                format!("cannot read strategies folder: {error}"),
            ));
            return loaded;
        }
    };
    for team_dir in teams {
        let Some(team) = team_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        // Hidden entries: a mounted ConfigMap's `..data` symlink and its versions.
        if team == TEMPLATES_DIR || team.starts_with('.') {
            continue;
        }
        if !team_dir.is_dir() {
            if is_yaml(&team_dir) {
                let message =
                    "strategy files belong in strategies/<team>/<name>.yaml, not at the top"
                        .to_string();
                loaded.errors.push(file_level(&team_dir, message));
            }
            continue;
        }
        match sorted_entries(&team_dir) {
            Ok(files) => {
                for file in files.into_iter().filter(|f| is_yaml(f)) {
                    load_into(&mut loaded, &file, &catalog, lint);
                }
            }
            Err(error) => loaded.errors.push(file_level(
                &team_dir,
                format!("cannot read folder: {error}"),
            )),
        }
    }
    loaded
}

/// Loads what `canaryd validate` is given: folders as strategies roots, single files
/// with the templates of the root they sit in (`<root>/<team>/<name>.yaml`).
pub fn load_paths(paths: &[PathBuf], lint: Lint) -> Loaded {
    let mut all = Loaded::default();
    for path in paths {
        if path.is_dir() {
            let loaded = load_dir_linted(path, lint);
            all.strategies.extend(loaded.strategies);
            all.errors.extend(loaded.errors);
            all.warnings.extend(loaded.warnings);
            continue;
        }
        let team_dir = path.parent().unwrap_or(Path::new("."));
        let root = team_dir.parent().unwrap_or(Path::new("."));
        if team_dir.file_name().is_some_and(|n| n == TEMPLATES_DIR) {
            let mut catalog = TemplateCatalog::default();
            load_template(path, &mut catalog, &mut all.errors);
        } else {
            let catalog = load_templates(root, &mut all.errors);
            load_into(&mut all, path, &catalog, lint);
        }
    }
    all
}

fn load_into(loaded: &mut Loaded, path: &Path, catalog: &TemplateCatalog, lint: Lint) {
    let Some(identity) = identity_of(path) else {
        loaded.errors.push(file_level(
            path,
            "cannot tell team and name from the path".into(),
        ));
        return;
    };
    let source = match read(path) {
        Ok(source) => source,
        Err(error) => return loaded.errors.push(error),
    };
    let (parsed, warnings) = parse_strategy_linted(path, &source, &identity, catalog, lint);
    loaded.warnings.extend(warnings);
    match parsed {
        Ok(strategy) => {
            loaded.strategies.insert(strategy.id.clone(), strategy);
        }
        Err(errors) => loaded.errors.extend(errors),
    }
}

/// Parses and validates one strategy file's text.
pub fn parse_strategy(
    path: &Path,
    source: &str,
    identity: &FileIdentity,
    catalog: &TemplateCatalog,
) -> Result<Strategy, Vec<Diagnostic>> {
    parse_strategy_linted(path, source, identity, catalog, Lint::default()).0
}

/// Parses and validates one strategy file's text; also returns its warnings.
pub fn parse_strategy_linted(
    path: &Path,
    source: &str,
    identity: &FileIdentity,
    catalog: &TemplateCatalog,
    lint: Lint,
) -> (Result<Strategy, Vec<Diagnostic>>, Vec<Diagnostic>) {
    let raw: RawStrategyFile = match serde_saphyr::from_str(source) {
        Ok(raw) => raw,
        Err(error) => return (Err(vec![yaml_error(path, &error)]), Vec::new()),
    };
    let mut d = FileDiagnostics::linted(path, source, lint);
    let strategy = validate::strategy(&mut d, raw, identity, catalog);
    d.warnings.sort_by_key(|w| (w.line, w.column));
    let parsed = match strategy {
        Some(strategy) if d.errors.is_empty() => Ok(strategy),
        _ => {
            d.errors.sort_by_key(|e| (e.line, e.column));
            Err(d.errors)
        }
    };
    (parsed, d.warnings)
}

/// The shared templates of a strategies folder (`<root>/_templates`); errors go to `errors`.
pub fn load_templates(root: &Path, errors: &mut Vec<Diagnostic>) -> TemplateCatalog {
    let mut catalog = TemplateCatalog::default();
    let dir = root.join(TEMPLATES_DIR);
    if let Ok(files) = sorted_entries(&dir) {
        for file in files.into_iter().filter(|f| is_yaml(f)) {
            load_template(&file, &mut catalog, errors);
        }
    }
    catalog
}

fn load_template(path: &Path, catalog: &mut TemplateCatalog, errors: &mut Vec<Diagnostic>) {
    let source = match read(path) {
        Ok(source) => source,
        Err(error) => return errors.push(error),
    };
    let raw: RawTemplateFile = match serde_saphyr::from_str(&source) {
        Ok(raw) => raw,
        Err(error) => return errors.push(yaml_error(path, &error)),
    };
    let mut d = FileDiagnostics::new(path, &source);
    validate::header(&mut d, &raw.api_version, &raw.kind, "MetricTemplate");
    let name = &raw.metadata.name;
    let stem = identity_of(path).map(|i| i.name).unwrap_or_default();
    if name.value != stem {
        d.error(
            &name.referenced,
            format!(
                "metadata.name '{}' must match the file name '{stem}'",
                name.value
            ),
        );
    }
    // Variables are checked against each strategy that uses the template.
    d.template(&raw.spec.query, |_| true, "spec.query");
    if d.errors.is_empty() {
        let entry = CatalogEntry {
            query: raw.spec.query.value.clone(),
            description: raw.metadata.description.clone(),
            path: Some(path.to_path_buf()),
        };
        if catalog.insert(name.value.clone(), entry).is_err() {
            d.error(
                &name.referenced,
                format!(
                    "template '{}' is already defined (a built-in has that name)",
                    name.value
                ),
            );
        }
    }
    errors.extend(d.errors);
}

fn identity_of(path: &Path) -> Option<FileIdentity> {
    let name = path.file_stem()?.to_str()?.to_string();
    let team = path.parent()?.file_name()?.to_str()?.to_string();
    Some(FileIdentity { team, name })
}

fn read(path: &Path) -> Result<String, Diagnostic> {
    let size = std::fs::metadata(path)
        .map_err(|e| file_level(path, format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(file_level(
            path,
            format!("file is {size} bytes; the limit is {MAX_FILE_BYTES}"),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| file_level(path, format!("cannot read: {e}")))
}

fn file_level(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        message,
    }
}

/// A folder's entries in name order, hidden ones left out.
fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

fn is_yaml(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}
