//! The chunk benches' data sets, from the one log generator the load tool
//! also uses (`sluice_loadgen::generator`); described in `chunk.rs`.

use sluice_loadgen::generator::{self, Format};

/// Bytes of log lines per data set.
pub const DATA_SET_BYTES: usize = 16 << 20;

/// Realistic service logs: JSON (`json`) or plain text.
pub fn generate_service(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
    let format = if json { Format::Json } else { Format::Text };
    generator::generate_service(format, bytes, seed)
}

/// The worst case: every line with its own random ids; JSON or logfmt.
pub fn generate_random(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
    let format = if json { Format::Json } else { Format::Logfmt };
    generator::generate_random(format, bytes, seed)
}

/// The four data sets of the stored-size table.
pub fn data_sets() -> Vec<(&'static str, Vec<(i64, String)>)> {
    vec![
        ("json", generate_service(DATA_SET_BYTES, true, 7)),
        ("text", generate_service(DATA_SET_BYTES, false, 11)),
        ("json-rand", generate_random(DATA_SET_BYTES, true, 7)),
        ("logfmt-rand", generate_random(DATA_SET_BYTES, false, 11)),
    ]
}
