//! Property tests of header validation: any bytes, and valid headers with random mutations, are
//! either rejected or describe a layout that fits the mapping. Never a panic.

use ndring::DType;
use ndring::layout::{
    CONTROL_OFFSET, CONTROL_SIZE, FIXED_SIZE, Fixed, Layout, Params, RingKind, decode,
};
use proptest::prelude::*;

fn check_fits(l: &Layout, mapping_len: u64) {
    let p = &l.params;
    assert!(l.total_size as u64 <= mapping_len);
    assert!(l.index_offset >= CONTROL_OFFSET + CONTROL_SIZE);
    assert!(l.peers_offset >= l.index_offset + p.slots * 8);
    assert!(l.slots_offset >= l.peers_offset + p.max_peers * 128);
    assert!(l.payload_offset + l.payload_bytes <= l.slot_stride);
    assert_eq!(l.slots_offset + p.slots * l.slot_stride, l.total_size);
    assert_eq!(
        l.payload_bytes,
        p.shape.iter().product::<usize>() * p.dtype.size()
    );
    assert!(l.slots_offset >= FIXED_SIZE);
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![
            Just(RingKind::Spsc),
            Just(RingKind::Mpmc),
            Just(RingKind::Broadcast),
            Just(RingKind::Rpc)
        ],
        1u32..=DType::ALL.len() as u32,
        prop::collection::vec(1usize..64, 0..4),
        2usize..32,
        0usize..256,
        2usize..16,
        any::<bool>(),
    )
        .prop_map(
            |(kind, dtype, shape, slots, user_meta, max_peers, timestamps)| Params {
                kind,
                dtype: DType::from_code(dtype).unwrap(),
                reply: (kind == RingKind::Rpc)
                    .then(|| (DType::F32, shape.iter().rev().copied().collect())),
                shape,
                slots,
                user_meta,
                max_peers,
                timestamps,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), len in any::<u64>()) {
        if let Ok((l, _)) = decode(&bytes, len) {
            check_fits(&l, len);
        }
    }

    #[test]
    fn valid_headers_round_trip(p in params()) {
        let l = Layout::compute(p).unwrap();
        let f = l.encode(1, 2);
        let (back, _) = decode(bytemuck::bytes_of(&f), l.total_size as u64).unwrap();
        prop_assert_eq!(&back, &l);
        check_fits(&back, l.total_size as u64);
        prop_assert!(decode(bytemuck::bytes_of(&f), l.total_size as u64 - 1).is_err());
    }

    #[test]
    fn mutated_headers_are_rejected_or_fit(
        p in params(),
        flips in prop::collection::vec((0usize..std::mem::size_of::<Fixed>(), any::<u8>()), 1..8),
        slack in 0u64..1 << 20,
    ) {
        let l = Layout::compute(p).unwrap();
        let mut bytes = bytemuck::bytes_of(&l.encode(1, 2)).to_vec();
        for (at, v) in flips {
            bytes[at] = v;
        }
        let len = l.total_size as u64 + slack;
        if let Ok((m, _)) = decode(&bytes, len) {
            check_fits(&m, len);
        }
    }

    #[test]
    fn mutated_fields_are_rejected_or_fit(
        p in params(),
        field in 0usize..(std::mem::size_of::<Fixed>() / 8),
        value in prop_oneof![any::<u64>(), 0u64..4096, Just(u64::MAX), Just(1u64 << 63)],
    ) {
        let l = Layout::compute(p).unwrap();
        let mut bytes = bytemuck::bytes_of(&l.encode(1, 2)).to_vec();
        bytes[field * 8..field * 8 + 8].copy_from_slice(&value.to_le_bytes());
        let len = l.total_size as u64;
        if let Ok((m, _)) = decode(&bytes, len) {
            check_fits(&m, len);
        }
    }
}
