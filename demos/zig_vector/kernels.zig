//! Vector kernels in plain Zig: `import kernels` builds them with the ziglang wheel and binds them.

pub const Stats = extern struct { mean: f64, min: f64, max: f64 };

/// y = a * x + y over the first n values.
export fn saxpy(a: f64, x: [*]const f64, y: [*]f64, n: usize) void {
    for (0..n) |i| y[i] = a * x[i] + y[i];
}

/// Mean, minimum and maximum of the first n values.
export fn describe(x: [*]const f64, n: usize) Stats {
    var s = Stats{ .mean = 0, .min = x[0], .max = x[0] };
    for (0..n) |i| {
        s.mean += x[i];
        s.min = @min(s.min, x[i]);
        s.max = @max(s.max, x[i]);
    }
    s.mean /= @floatFromInt(n);
    return s;
}

/// Scale the first n values to unit Euclidean length; returns the old length.
export fn normalize(x: [*]f64, n: usize) f64 {
    var sum: f64 = 0;
    for (0..n) |i| sum += x[i] * x[i];
    const length = @sqrt(sum);
    if (length > 0) for (0..n) |i| {
        x[i] /= length;
    };
    return length;
}
