//! Explores `swarm_fuzz_checks::control_request` (its doc says what it checks and why); `make test`
//! replays this target's committed inputs through the same check on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swarm_fuzz_checks::control_request(data));
