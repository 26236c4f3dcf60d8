//! `contracts/catalogue.json` is the service catalogue (`api::catalogue`)
//! for tools outside Rust: `scripts/check_chart.py` checks the Helm chart
//! against it. This test fails when the file and the code differ;
//! `UPDATE_CATALOGUE=1 cargo test -p api --test catalogue` rewrites it.

use std::path::PathBuf;

#[test]
fn the_catalogue_file_is_the_catalogue() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/catalogue.json");
    let expected = api::catalogue::to_json();
    if std::env::var("UPDATE_CATALOGUE").as_deref() == Ok("1") {
        std::fs::write(&path, &expected).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == expected,
        "{} is not the catalogue in crates/api/src/catalogue.rs: rewrite it with \
         `UPDATE_CATALOGUE=1 cargo test -p api --test catalogue`\n--- file\n{written}\n--- code\n{expected}",
        path.display()
    );
}
