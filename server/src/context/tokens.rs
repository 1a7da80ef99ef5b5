//! Token counting for budgets: a real BPE for OpenAI-style models, an estimate for others.
//!
//! The BPE ranks of `o200k_base` and `cl100k_base` ship inside the `tiktoken-rs` crate (compiled
//! in with `include_str!`), so counting never touches the network. For other model families
//! (Anthropic, Llama, Qwen, …) whose tokenizers are not bundled, the estimate is one token per
//! four bytes of UTF-8, rounded up. Over the 800-file benchmark corpus (215k lines of Rust) it
//! totals 1.0% below `o200k_base` (`cargo bench --bench context_index`); single items can differ
//! more either way, and other tokenizers differ from `o200k_base` themselves, so leave headroom
//! in budgets for such models.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Mutex, PoisonError};

/// Counts of texts already counted, by tokenizer, length and hash: a bundle's blocks (a
/// definition with its header, a map entry) recur from one bundle to the next, and BPE
/// counting was about a quarter of a bundle's time. Cleared when it reaches
/// [`MAX_CACHED_COUNTS`] entries (about 3 MB), so it never grows without bound.
static COUNTS: Mutex<Option<HashMap<CountKey, usize>>> = Mutex::new(None);

/// A text as [`COUNTS`] knows it: the tokenizer, its length and its hash.
type CountKey = (Tokenizer, usize, u64);

/// At most this many counts are kept in [`COUNTS`].
const MAX_CACHED_COUNTS: usize = 65_536;

/// How tokens are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tokenizer {
    /// `o200k_base`, used by GPT-4o, GPT-4.1, o-series and later OpenAI models.
    O200k,
    /// `cl100k_base`, used by GPT-4 and GPT-3.5.
    Cl100k,
    /// Bytes / 4, rounded up, for model families without a bundled tokenizer.
    Estimate,
}

impl Tokenizer {
    /// The tokenizer named in settings (`o200k`, `cl100k`, `estimate`); unknown names fall back
    /// to the estimate, which the caller may report.
    pub fn from_name(name: &str) -> Option<Tokenizer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "o200k" | "o200k_base" => Some(Tokenizer::O200k),
            "cl100k" | "cl100k_base" => Some(Tokenizer::Cl100k),
            "estimate" | "bytes" => Some(Tokenizer::Estimate),
            _ => None,
        }
    }

    /// The number of tokens `text` costs.
    pub fn count(self, text: &str) -> usize {
        match self {
            Tokenizer::O200k => tiktoken_rs::o200k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Tokenizer::Cl100k => tiktoken_rs::cl100k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Tokenizer::Estimate => text.len().div_ceil(4),
        }
    }
}

impl Tokenizer {
    /// [`count`](Self::count), remembering the result for the same text (see [`COUNTS`]). For
    /// texts that recur, such as a bundle's blocks; the estimate is not worth remembering.
    pub fn count_cached(self, text: &str) -> usize {
        if self == Tokenizer::Estimate {
            return self.count(text);
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let key = (self, text.len(), hasher.finish());
        if let Some(count) = COUNTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|counts| counts.get(&key))
        {
            return *count;
        }
        // Counted without the lock held: another thread's bundle need not wait for this one.
        let count = self.count(text);
        let mut counts = COUNTS.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = counts.get_or_insert_with(HashMap::new);
        if counts.len() >= MAX_CACHED_COUNTS {
            counts.clear();
        }
        counts.insert(key, count);
        count
    }
}

impl fmt::Display for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tokenizer::O200k => "o200k_base",
            Tokenizer::Cl100k => "cl100k_base",
            Tokenizer::Estimate => "estimate (bytes/4)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpe_counts_differ_from_the_byte_estimate_and_are_stable() {
        let text = "fn main() { println!(\"hello, world\"); }";
        let o200k = Tokenizer::O200k.count(text);
        let cl100k = Tokenizer::Cl100k.count(text);
        assert!(o200k > 5 && o200k < text.len(), "{o200k}");
        assert!(cl100k > 5 && cl100k < text.len(), "{cl100k}");
        assert_eq!(Tokenizer::Estimate.count(text), text.len().div_ceil(4));
        assert_eq!(Tokenizer::O200k.count(""), 0);
        // A repeated word is one token per repetition in BPE, not one per four bytes.
        assert_eq!(Tokenizer::O200k.count(&" hello".repeat(100)), 100);
    }

    #[test]
    fn cached_counts_are_the_counts_of_the_same_text() {
        let texts = [
            "fn a() {}\n",
            "fn a() {}\n\n",
            "let x = 1;",
            "",
            "fn a() {}\n",
        ];
        for tokenizer in [Tokenizer::O200k, Tokenizer::Cl100k, Tokenizer::Estimate] {
            for text in texts {
                assert_eq!(
                    tokenizer.count_cached(text),
                    tokenizer.count(text),
                    "{text:?}"
                );
                // The second time it comes from the cache, and is still the same.
                assert_eq!(
                    tokenizer.count_cached(text),
                    tokenizer.count(text),
                    "{text:?}"
                );
            }
        }
        assert_ne!(
            Tokenizer::O200k.count_cached(&" hello".repeat(50)),
            Tokenizer::O200k.count_cached(&" hello".repeat(51))
        );
    }

    #[test]
    fn names_are_parsed_leniently() {
        assert_eq!(Tokenizer::from_name("O200K"), Some(Tokenizer::O200k));
        assert_eq!(Tokenizer::from_name("cl100k_base"), Some(Tokenizer::Cl100k));
        assert_eq!(Tokenizer::from_name("claude"), None);
    }
}
