# maskprep recipes: each runs the same command you could type yourself.

# build the release binary
build:
    cargo build --release -j2

# the whole test suite, as CI runs it (sets up the Python test tools first)
test:
    bash .ci/run

# the Rust tests only (Python interop tests use target/venv if present)
test-quick:
    cargo test -j2

# benchmarks: stats vs decode-only on 1,000 generated 512x512 masks
bench:
    cargo bench -j2 --bench stats

# format and lint, as CI checks them
lint:
    cargo fmt --all -- --check
    cargo clippy -j2 --all-targets -- -D warnings

fmt:
    cargo fmt --all

# regenerate fixtures/ (then `cargo test` checks the bytes and numbers)
fixtures:
    cargo run -j2 --example fixtures -- fixtures

# the main job on the shipped fixture
demo:
    cargo run -j2 --release -- stats fixtures/plates
