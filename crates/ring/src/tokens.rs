//! Random ring tokens for a new member.

use std::collections::HashSet;

use crate::error::RingError;

/// Returns `count` sorted random tokens that collide neither with `taken`
/// nor with each other, as Loki's `GenerateTokens`.
pub fn generate_tokens(
    count: usize,
    taken: &HashSet<u32>,
    rng: &mut fastrand::Rng,
) -> Result<Vec<u32>, RingError> {
    let free = (u64::from(u32::MAX) + 1).saturating_sub(taken.len() as u64);
    // Rejection sampling needs a mostly empty space; in practice the ring
    // holds a few thousand of 2^32 tokens.
    if (count as u64).saturating_mul(2) > free {
        return Err(RingError::TokenSpaceExhausted {
            requested: count,
            free,
        });
    }
    let mut chosen = HashSet::with_capacity(count);
    while chosen.len() < count {
        let candidate = rng.u32(..);
        if !taken.contains(&candidate) {
            chosen.insert(candidate);
        }
    }
    let mut tokens: Vec<u32> = chosen.into_iter().collect();
    tokens.sort_unstable();
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoids_taken_and_duplicate_tokens() {
        let mut rng = fastrand::Rng::with_seed(7);
        let taken: HashSet<u32> = generate_tokens(128, &HashSet::new(), &mut rng)
            .expect("tokens")
            .into_iter()
            .collect();
        let fresh = generate_tokens(128, &taken, &mut rng).expect("tokens");
        assert_eq!(fresh.len(), 128);
        assert!(
            fresh.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted, distinct"
        );
        assert!(fresh.iter().all(|token| !taken.contains(token)));
    }

    #[test]
    fn zero_tokens_is_fine() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(generate_tokens(0, &HashSet::new(), &mut rng)
            .expect("tokens")
            .is_empty());
    }
}
