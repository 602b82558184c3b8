//! rng: the one named generator. Every random draw in hyperdistill comes from a ChaCha8 stream derived from the
//! user's `u64` seed and a purpose label; draws that belong to something — the network of iteration t, the real batch
//! and augmentation of class c at iteration t, the initial images of class c, evaluation network k — come from a
//! stream keyed by exactly that (`keyed`), not from one stream taken in sequence. So adding a consumer never shifts
//! the others, and any split of the classes over several processes draws what the unsplit run draws (`--shard`).

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// FNV-1a of the label: the ChaCha stream of a purpose.
fn label(purpose: &str) -> u64 {
    purpose.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Generator for `purpose` (e.g. "selfcheck", "bench-data") under `seed`, taken in sequence.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(label(purpose));
    rng
}

/// Generator for `purpose` under `seed`, keyed by up to three numbers (an iteration, a class, a pass): the 256-bit
/// ChaCha key is (seed, key 0, key 1, key 2) and the label picks the stream, so distinct keys never share a stream.
pub fn keyed(seed: u64, purpose: &str, keys: &[u64]) -> ChaCha8Rng {
    assert!(keys.len() <= 3, "at most three keys");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    for (i, k) in keys.iter().enumerate() {
        // + 1: a key of 0 differs from no key
        key[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&k.wrapping_add(1).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(label(purpose));
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| stream(7, "init").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed and purpose must repeat");
        assert_ne!(stream(7, "init").next_u64(), stream(7, "data").next_u64());
        assert_ne!(stream(7, "init").next_u64(), stream(8, "init").next_u64());
    }

    #[test]
    fn keyed_streams_depend_on_every_key_and_nothing_else() {
        let first = |seed, p, k: &[u64]| keyed(seed, p, k).next_u64();
        assert_eq!(first(1, "real", &[5, 3]), first(1, "real", &[5, 3]));
        let all = [first(1, "real", &[5, 3]), first(1, "real", &[5, 4]), first(1, "real", &[6, 3]), first(2, "real", &[5, 3]),
            first(1, "dsa", &[5, 3]), first(1, "real", &[5]), first(1, "real", &[5, 3, 0])];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "streams {i} and {j} coincide");
            }
        }
    }
}
