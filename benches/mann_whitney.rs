//! Mann-Whitney U on 100,000 canary vs 100,000 baseline samples (the asymptotic path:
//! ranking 200,000 values with ties is the cost).

use std::hint::black_box;

use canaryd::domain::judge::mann_whitney::{Alternative, test};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Latencies in ms; `resolution` rounds them (0.1 ms: ties as in practice; 0: none).
fn samples(rng: &mut StdRng, n: usize, shift: f64, resolution: f64) -> Vec<f64> {
    (0..n)
        .map(|_| rng.random::<f64>() * 50.0 + 100.0 + shift)
        .map(|v| {
            if resolution > 0.0 {
                (v / resolution).round() * resolution
            } else {
                v
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    for (name, resolution) in [
        ("mann_whitney_100k_vs_100k_ties", 0.1),
        ("mann_whitney_100k_vs_100k_no_ties", 0.0),
    ] {
        let canary = samples(&mut rng, 100_000, 1.0, resolution);
        let baseline = samples(&mut rng, 100_000, 0.0, resolution);
        c.bench_function(name, |b| {
            b.iter(|| {
                test(
                    black_box(&canary),
                    black_box(&baseline),
                    Alternative::Greater,
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
