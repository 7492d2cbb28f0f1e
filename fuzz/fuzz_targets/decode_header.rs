//! Any bytes and any mapping size: `decode` returns, never panics, and an accepted layout fits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], u64)| {
    let (bytes, len) = input;
    if let Ok((l, _)) = ndring::layout::decode(bytes, len) {
        assert!(l.total_size as u64 <= len);
        assert!(l.payload_offset + l.payload_bytes <= l.slot_stride);
        assert_eq!(l.slots_offset + l.params.slots * l.slot_stride, l.total_size);
    }
});
