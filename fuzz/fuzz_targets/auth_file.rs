//! The auth file: tokens or diagnostics with line and column, never a panic.
#![no_main]

use std::path::Path;

use canaryd::auth::Tokens;
use canaryd_fuzz::assert_placed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/canaryd/auth.yaml");
    match Tokens::parse(path, text) {
        Ok(tokens) => {
            // An empty bearer token never signs anyone in.
            assert!(
                tokens.authenticate("").is_none(),
                "the empty token is accepted"
            );
        }
        Err(diagnostics) => assert_placed(&diagnostics, path, text),
    }
});
