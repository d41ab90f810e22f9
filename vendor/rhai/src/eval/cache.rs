//! System caches.

use crate::func::{RhaiFunc, StraightHashMap};
use crate::types::BloomFilterU64;
use crate::{ImmutableString, StaticVec};
#[cfg(feature = "no_std")]
use std::prelude::v1::*;

/// _(internals)_ An entry in a function resolution cache.
/// Exported under the `internals` feature only.
#[derive(Debug, Clone)]
pub struct FnResolutionCacheEntry {
    /// Function.
    pub func: RhaiFunc,
    /// Optional source.
    pub source: Option<ImmutableString>,
}

/// _(internals)_ A function resolution cache with a bloom filter.
/// Exported under the `internals` feature only.
///
/// The [bloom filter][`BloomFilterU64`] is used to rapidly check whether a function hash has never been encountered.
/// It enables caching a hash only during the second encounter to avoid "one-hit wonders".
#[derive(Debug, Clone, Default)]
pub struct FnResolutionCache {
    /// Hash map containing cached functions.
    pub dict: StraightHashMap<Option<FnResolutionCacheEntry>>,
    /// Bloom filter to avoid caching "one-hit wonders".
    ///
    /// Default to 64 bytes (512 bits) which hopefully is enough for different function calls in a script.
    pub bloom_filter: BloomFilterU64<64>,
}

impl FnResolutionCache {
    /// Clear the [`FnResolutionCache`].
    #[inline(always)]
    #[allow(dead_code)]
    pub fn clear(&mut self) {
        self.dict.clear();
        self.bloom_filter.clear();
    }
}

/// _(internals)_ A type containing system-wide caches.
/// Exported under the `internals` feature only.
///
/// The following caches are contained inside this type:
/// * A stack of [function resolution caches][FnResolutionCache]
#[derive(Debug, Clone, Default)]
pub struct Caches {
    fn_resolution: StaticVec<FnResolutionCache>,
    /// Hashes of typed script methods (`fn Type.method()`) already computed, by
    /// (method hash, type name of the receiver): computing one maps the type name
    /// through the engine's custom types on every method call.
    typed_method_hashes: Vec<(u64, &'static str, u64)>,
    /// Resolutions of the calls that native functions make through their
    /// [`NativeCallContext`][crate::NativeCallContext] (`"x" + 1` calls `to_string`), kept
    /// by [`Engine::call_fn_with_caches`][crate::Engine::call_fn_with_caches].
    pub(crate) native_calls: Option<crate::Shared<crate::Locked<FnResolutionCache>>>,
}

impl Caches {
    /// Create an empty [`Caches`].
    #[inline(always)]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fn_resolution: StaticVec::new_const(),
            typed_method_hashes: Vec::new(),
            native_calls: None,
        }
    }
    /// The hash of the typed script method `hash` on a receiver of type `type_name`,
    /// computed by `make` once and then kept.
    ///
    /// The answer depends only on the engine's registered custom types, which cannot
    /// change while the engine is borrowed for evaluation. Keys compare the type name
    /// by address and length, so two names are only ever confused when they are the
    /// same text.
    #[inline]
    #[must_use]
    pub(crate) fn typed_method_hash(
        &mut self,
        hash: u64,
        type_name: &'static str,
        make: impl FnOnce(&'static str) -> u64,
    ) -> u64 {
        if let Some(&(.., typed)) = self
            .typed_method_hashes
            .iter()
            .find(|(h, t, _)| *h == hash && std::ptr::eq(*t, type_name))
        {
            return typed;
        }
        let typed = make(type_name);
        if self.typed_method_hashes.len() >= 32 {
            self.typed_method_hashes.clear();
        }
        self.typed_method_hashes.push((hash, type_name, typed));
        typed
    }
    /// Get the number of function resolution cache(s) in the stack.
    #[inline(always)]
    #[must_use]
    pub fn fn_resolution_caches_len(&self) -> usize {
        self.fn_resolution.len()
    }
    /// Get a mutable reference to the current function resolution cache.
    ///
    /// A new function resolution cache is pushed onto the stack if the stack is empty.
    #[inline]
    #[must_use]
    pub fn fn_resolution_cache_mut(&mut self) -> &mut FnResolutionCache {
        // Push a new function resolution cache if the stack is empty
        if self.fn_resolution.is_empty() {
            self.push_fn_resolution_cache();
        }
        self.fn_resolution.last_mut().unwrap()
    }
    /// Push an empty function resolution cache onto the stack and make it current.
    #[inline(always)]
    pub fn push_fn_resolution_cache(&mut self) {
        self.fn_resolution.push(<_>::default());
    }
    /// Rewind the function resolution caches stack to a particular size.
    #[inline(always)]
    pub fn rewind_fn_resolution_caches(&mut self, len: usize) {
        self.fn_resolution.truncate(len);
    }
    /// Caches whose only level is `cache`.
    #[inline]
    #[must_use]
    pub(crate) fn with_level(cache: FnResolutionCache) -> Self {
        let mut caches = Self::new();
        caches.fn_resolution.push(cache);
        caches
    }
    /// Takes the first level out (empty if there is none).
    #[inline]
    #[must_use]
    pub(crate) fn take_first_level(&mut self) -> FnResolutionCache {
        if self.fn_resolution.is_empty() {
            return FnResolutionCache::default();
        }
        self.fn_resolution.swap_remove(0)
    }
}
