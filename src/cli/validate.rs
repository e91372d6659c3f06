//! `canaryd validate [PATH…]`: exit 0 when every strategy is valid, else 1 with
//! every error on stderr as `path:line:col: message`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::strategy_files;

pub fn run(paths: &[PathBuf]) -> ExitCode {
    let loaded = strategy_files::load_paths(paths);
    for error in &loaded.errors {
        eprintln!("{error}");
    }
    if loaded.errors.is_empty() {
        println!("{} strategies valid", loaded.strategies.len());
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} errors; {} strategies valid",
            loaded.errors.len(),
            loaded.strategies.len()
        );
        ExitCode::from(1)
    }
}
