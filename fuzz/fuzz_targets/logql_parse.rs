//! LogQL text: parsing must never panic, and what parses must print back to
//! text that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let _ = sluice_logql::parse_selector(text);
    let _ = sluice_logql::format_query(text);
    if let Ok(expr) = sluice_logql::parse_expr(text) {
        let printed = expr.to_string();
        if let Err(err) = sluice_logql::parse_expr(&printed) {
            panic!("{text:?} printed as {printed:?}, which does not parse: {err}");
        }
    }
});
