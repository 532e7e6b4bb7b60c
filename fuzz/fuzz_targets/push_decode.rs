//! Push bodies: byte 0 picks the content type and encoding, byte 1 the JSON
//! shape, the rest is the body; decoding and validation must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = sluice_distributor::fuzzing::push(input);
});
