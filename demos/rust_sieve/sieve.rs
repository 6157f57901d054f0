//! A prime sieve in plain Rust: `import sieve` builds it with rustc and binds it.

/// Mark primes below `n` in `flags` (1 = prime) and return how many there are.
#[unsafe(no_mangle)]
pub extern "C" fn sieve(flags: *mut u8, n: usize) -> usize {
    let flags = unsafe { std::slice::from_raw_parts_mut(flags, n) };
    flags.fill(1);
    for f in flags.iter_mut().take(2) {
        *f = 0;
    }
    let mut i = 2;
    while i * i < n {
        if flags[i] == 1 {
            let mut j = i * i;
            while j < n {
                flags[j] = 0;
                j += i;
            }
        }
        i += 1;
    }
    flags.iter().filter(|&&f| f == 1).count()
}

/// The `k`-th prime (0-based), or 0 if it is not below `limit`.
#[unsafe(no_mangle)]
pub extern "C" fn nth_prime(k: usize, limit: usize) -> u64 {
    let mut flags = vec![0u8; limit];
    sieve(flags.as_mut_ptr(), limit);
    flags.iter().enumerate().filter(|(_, &f)| f == 1).nth(k).map_or(0, |(i, _)| i as u64)
}
