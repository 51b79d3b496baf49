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

# benchmarks: stats, shards, score vs their decode-only floors, the pipeline,
# score --sweep vs a plain score, and check vs stats (generated data under
# target/bench-data/)
bench:
    cargo bench -j2 --bench stats
    cargo bench -j2 --bench check
    cargo bench -j2 --bench shards
    cargo bench -j2 --bench score
    cargo bench -j2 --bench sweep
    cargo bench -j2 --bench pipeline
    cargo bench -j2 --bench coco
    cargo bench -j2 --features store --bench store
    MASKPREP_BENCH_SHAPES=round cargo bench -j2 --bench stats
    just bench-python

# the Python wheel's `LabelMap.decode` against numpy recipes (builds the
# release wheel into target/venv first; `bash .ci/run` makes the venv)
bench-python:
    target/venv/bin/maturin build --release -i target/venv/bin/python -o target/wheels-release
    target/venv/bin/python -m pip install --quiet --force-reinstall --no-deps target/wheels-release/maskprep-*.whl
    target/venv/bin/python tests/python/decode_bench.py --masks 64 --repeat 7

# sizes of what users install: the release binary and the wheel
sizes:
    cargo build --release -j2 --features store
    ls -l target/release/maskprep target/wheels-release/maskprep-*.whl

# format and lint, as CI checks them
lint:
    cargo fmt --all -- --check
    cargo clippy -j2 --all-targets -- -D warnings

fmt:
    cargo fmt --all

# regenerate fixtures/ (then `cargo test` checks the bytes and numbers)
fixtures:
    cargo run -j2 --example fixtures -- fixtures

# the shipped pipelines (outputs under out/)
plates:
    cargo run -j2 --release -- run pipelines/plates.toml

voc:
    cargo run -j2 --release -- run pipelines/voc.toml

# run the plates pipeline as 3 partitions, then merge them
plates-partitioned:
    cargo run -j2 --release -- run pipelines/plates.toml --partition 1/3
    cargo run -j2 --release -- run pipelines/plates.toml --partition 2/3
    cargo run -j2 --release -- run pipelines/plates.toml --partition 3/3
    cargo run -j2 --release -- merge-run out/plates/parts -o out/plates

# the main job on the shipped fixture
demo:
    cargo run -j2 --release -- stats fixtures/plates
